/**
 * An Automerge field's state (`engine.load`: a hub's snapshot on a client, a store read on
 * either side) is measured before Automerge decodes it (adapters/automerge/engine.ts,
 * measureState): A.load costs per op and per change, and run-length columns make those free
 * to send (a 1 KB state took 3.7-4.8 s and 233 MB). Refused past MAX_FIELD_OPS,
 * MAX_FIELD_CHANGES or MAX_FIELD_BYTES (inflated); the hub refuses updates that would take a
 * field past them, so what it accepted always loads. Asserted as refusals and counts, not
 * durations (timings: the commit message and test/support/automerge-load-bombs.ts).
 */
import * as A from "@automerge/automerge"
import fc from "fast-check"
import { automergeDoc, automergeText, MAX_FIELD_CHANGES, MAX_FIELD_OPS } from "../adapters/automerge/index.js"
import { AutomergeHandle, automergeEngine } from "../adapters/automerge/engine.js"
import { measureChunk } from "../adapters/automerge/validate.js"
import { inflateRawBounded } from "../adapters/automerge/inflate.js"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { CrdtFields } from "../core/crdt/fields.js"
import { CanonError } from "../core/errors.js"
import type { CrdtField } from "../core/crdt/engine.js"
import { EMPTY_300K, LIST_1M } from "./support/automerge-load-bombs.js"

/** A field encoding (engine.ts: ["a1", save(), owners]) around any Automerge bytes. */
const fieldState = (saved: Uint8Array): Uint8Array => encodeCanonical(["a1", saved, []])
const savedOf = (encoded: Uint8Array): Uint8Array => (decodeCanonical(encoded) as [string, Uint8Array])[1]

describe("a state past the bounds is refused before Automerge decodes it", () => {
  const engine = automergeText().engine

  test("1,054 bytes of 1,000,000 list elements inserted and deleted (2,000,000 ops as measured)", () => {
    expect(LIST_1M.length).toBeLessThan(1100)
    const m = measureChunk(LIST_1M, { maxOps: 1 << 30, maxInflatedBytes: 1 << 30, inflate: inflateRawBounded })
    expect(m).toMatchObject({ ok: true, ops: 2_000_001 })
    expect(() => engine.load(fieldState(LIST_1M))).toThrow(`the columns decode to more than ${MAX_FIELD_OPS} entries`)
  })

  test("208 bytes of 300,000 empty changes", () => {
    expect(() => engine.load(fieldState(EMPTY_300K))).toThrow(`more than ${MAX_FIELD_CHANGES} changes`)
  })

  test("deflated columns are inflated under the byte bound (a browser has no synchronous inflate: adapters/automerge/inflate.ts)", () => {
    const field = automergeDoc({ blob: new Uint8Array(0) }).engine.create()
    field.handle.change((d) => { d.blob = new Uint8Array(2 << 20).fill(7) })
    // As an older version stored it, or a peer sends it: deflated (this one encodes plain columns).
    const saved = A.save(field.handle.doc)
    expect(saved.length).toBeLessThan(10_000)
    expect(savedOf(field.encode()).length).toBeGreaterThan(2 << 20)
    const small = automergeDoc({ blob: new Uint8Array(0) }, { maxState: { bytes: 1 << 20 } }).engine
    expect(() => small.load(fieldState(saved))).toThrow(/deflated data inflates to more than 1048576 bytes/)
    // Under the default bound it loads, with its content.
    expect(automergeDoc({ blob: new Uint8Array(0) }).engine.load(fieldState(saved)).handle.doc.blob.length).toBe(2 << 20)
    field.destroy()
  })

  test("a stored state past the bounds is storage-corrupt (CrdtFields.load, as a replica or the hub opens the document)", () => {
    const decls = { body: automergeText(), other: automergeText() }
    let error: unknown
    try {
      new CrdtFields(decls, { body: fieldState(LIST_1M) })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(CanonError)
    expect((error as CanonError).code).toBe("storage-corrupt")
    expect((error as CanonError).message).toMatch(/The CRDT field "body" in a stored state cannot be loaded: The Automerge state is not loaded: the columns decode to more than/)
  })

  test("reloading one field (after it broke) from a state past the bounds is storage-corrupt too, and the field is kept", () => {
    const fields = new CrdtFields({ body: automergeText() }, {})
    const before = fields.field("body")
    let error: unknown
    try {
      fields.reloadField("body", fieldState(LIST_1M))
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(CanonError)
    expect((error as CanonError).code).toBe("storage-corrupt")
    expect((error as CanonError).message).toMatch(/The CRDT field "body" cannot be reloaded from its stored state: The Automerge state is not loaded: the columns decode to more than/)
    expect(fields.field("body")).toBe(before)
  })

  test("a custom bound is part of the field's kind: peers that disagree on it are different machines", () => {
    expect(automergeText().engine.kind).toBe('automerge-text/1:{"text":""}')
    expect(automergeText({ maxState: { ops: 5000 } }).engine.kind).toBe(`automerge-text/1:{"text":""};state<=5000,${MAX_FIELD_CHANGES},${256 << 20}`)
  })
})

describe("the hub keeps a field within the bounds, so its own snapshots always load", () => {
  const OPS = 5000
  const engine = automergeText({ maxState: { ops: OPS } }).engine

  /** A client's edit as the update its field sends. */
  const edit = (client: CrdtField<any>, f: () => void): Uint8Array[] => {
    const out: Uint8Array[] = []
    const stop = client.onLocalChange((u) => out.push(...(u as Uint8Array[])))
    f()
    stop()
    return out
  }

  test("an update that would take the field past MAX ops is refused crdt-too-large; the field is unchanged and still loads", () => {
    const hub = engine.create()
    const client = engine.create()
    const take = (u: Uint8Array[]) => {
      const r = hub.validate(u, { clientId: "c1", trusted: false })
      if (r.ok) hub.apply([r.update])
      return r
    }
    expect(take(edit(client, () => client.handle.splice(0, 0, "x".repeat(2000)))).ok).toBe(true)
    // A delete's successor counts twice as measureChunk measures (max(ops, successors) + successors): 2,001 + 2,000.
    expect(take(edit(client, () => client.handle.splice(0, 2000))).ok).toBe(true)
    const before = hub.hash()
    // 3,001 ops + 2,000 successors: one past the bound.
    const over = edit(client, () => client.handle.splice(0, 0, "y".repeat(1000)))
    expect(take(over)).toMatchObject({ ok: false, rejection: { code: "command-too-large", message: expect.stringMatching(/^crdt-too-large: The Automerge field would hold more than 5000 ops/) } })
    expect(hub.hash()).toBe(before)
    const loaded = engine.load(hub.encode())
    expect(loaded.hash()).toBe(before)
    // What fits is taken (a fresh client: the refused change stays with its own).
    const other = engine.load(hub.encode())
    expect(take(edit(other, () => other.handle.splice(0, 0, "z".repeat(999)))).ok).toBe(true)
    expect(engine.load(hub.encode()).hash()).toBe(hub.hash())
    for (const f of [hub, client, loaded, other]) f.destroy()
  })

  /** An edit of a random text: an insert or a delete at a random place. */
  const op = fc.oneof(
    fc.record({ at: fc.nat(), text: fc.string({ minLength: 1, maxLength: 200, size: "max" }) }),
    fc.record({ at: fc.nat(), del: fc.integer({ min: 1, max: 600 }) }),
  )

  test("property: whatever the hub accepted from several clients loads again, with the same heads, under the same bound", () => {
    const OPS = 800
    const engine = automergeText({ maxState: { ops: OPS } }).engine
    let refused = 0
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), op), { minLength: 1, maxLength: 40 }), (script) => {
      const hub = engine.create()
      const clients = [engine.create(), engine.create(), engine.create()]
      for (const [who, o] of script) {
        const c = clients[who]!
        const text = c.handle.text as string
        const at = o.at % (text.length + 1)
        const u = edit(c, () => ("text" in o ? c.handle.splice(at, 0, o.text) : c.handle.splice(at, Math.min(o.del, text.length - at))))
        if (u.length === 0) continue
        const r = hub.validate(u, { clientId: `c${who}`, trusted: false })
        if (!r.ok) {
          expect(r.rejection.message).toMatch(/^crdt-(too-large|missing-deps)/)
          if (r.rejection.message.startsWith("crdt-too-large")) refused++
          continue
        }
        hub.apply([r.update])
        // The clients catch up on what the hub has (a refused change stays only with its client).
        for (const other of clients) if (other !== c) {
          const missing = A.getChanges(other.handle.doc, hub.handle.doc)
          if (missing.length === 0) continue
          const v = other.validate(missing, { clientId: "hub", trusted: true })
          if (!v.ok) throw new Error(v.rejection.message)
          other.apply([v.update])
        }
      }
      const again = engine.load(hub.encode())
      expect(again.hash()).toBe(hub.hash())
      expect(measureChunk(savedOf(hub.encode()), { maxOps: 1 << 30, maxInflatedBytes: 1 << 30, inflate: inflateRawBounded })).toMatchObject({ ok: true, ops: expect.any(Number) })
      expect((measureChunk(savedOf(hub.encode()), { maxOps: 1 << 30, maxInflatedBytes: 1 << 30, inflate: inflateRawBounded }) as { ops: number }).ops).toBeLessThanOrEqual(OPS)
      for (const f of [hub, again, ...clients]) f.destroy()
    }), { numRuns: 25, seed: 1 })
    // The bound was reached in some runs (the property is about what happens there).
    expect(refused).toBeGreaterThan(0)
  })

  test("honest fields far larger than the automerge-paper trace load under the default bounds: 300,000 characters typed, 100,000 deleted", () => {
    const field = automergeText().engine.create()
    field.handle.splice(0, 0, "lorem ipsum dolor sit amet ".repeat(300_000 / 27 + 1).slice(0, 300_000))
    field.handle.splice(1000, 100_000)
    const loaded = automergeText().engine.load(field.encode())
    expect(loaded.hash()).toBe(field.hash())
    expect((loaded.handle.text as string).length).toBe(200_000)
    for (const f of [field, loaded]) f.destroy()
  }, 20_000)

  test("a field made with the engine's create() measures as its initial save does", () => {
    const e = automergeEngine("doc", { a: 1, b: [1, 2] }, (d) => new AutomergeHandle(d), { maxState: { ops: 3 } })
    expect(() => e.create()).toThrow(/initial content of an Automerge field is too large/)
  })
})

/**
 * The Automerge change validator (adapters/automerge/validate.ts) on both paths: CRDT fields
 * (CrdtFields → the field engine) and whole documents (CrdtDocHost → automergeDocEngine).
 * Forged changes that Automerge's decodeChange and applyChanges accept, but whose save() then
 * does not load again or loads other content with equal heads, are refused with typed reasons:
 * a pred naming an op of another object, a startOp reusing op counters, a map key on a list
 * op. Decompression and run-length bombs are refused before anything is decoded; honest
 * changes as large as the limits are not. And the last line of defence: a save() that does
 * not load back is never stored (fields fall back to their changes; documents keep the base).
 */
import * as A from "@automerge/automerge"
import zlib from "node:zlib"
import fc from "fast-check"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { CrdtFields } from "../core/crdt/fields.js"
import { automergeDoc, automergeText, crdtReason } from "../adapters/automerge/index.js"
import { measureChunk } from "../adapters/automerge/validate.js"

const ACTOR = "ab".repeat(16)
const OTHER = "cd".repeat(16)
const INITIAL = "0".repeat(32)

/** A change re-encoded after `edit` rewrote its decoded form (hash recomputed). */
const reencode = (change: Uint8Array, edit: (dc: any) => void): Uint8Array => {
  const dc = A.decodeChange(change) as any
  delete dc.hash
  edit(dc)
  return A.encodeChange(dc)
}

/** The forgeries, each made by `actor` on top of `base` (which has `text`, `m`, `list`). */
const forgeries = (base: A.Doc<any>, actor: string, textOwner: string) => {
  const mine = () => A.clone(base, { actor })
  const setB = A.getLastLocalChange(A.change(mine(), (x: any) => { x.m.b = 2 }))!
  // An op id of a character of the text (the text object is the first op of `textOwner`'s change making it).
  const textChange = A.getAllChanges(base).map((c) => A.decodeChange(c)).find((d) => d.actor === textOwner && d.ops.some((o) => o.action === "makeText"))!
  const makeText = textChange.ops.findIndex((o) => o.action === "makeText")
  const char = `${textChange.startOp + makeText + 2}@${textOwner}`
  return {
    /** A `set` in map m whose pred is a character of the text (another object). */
    predOtherObject: reencode(setB, (dc) => { dc.ops[0].pred = [char] }),
    /** A `set` in map m whose pred is an op that does not exist. */
    predMissing: reencode(setB, (dc) => { dc.ops[0].pred = [`999@${OTHER}`] }),
    /** The list push with a map key instead of an element. */
    keyOnList: reencode(A.getLastLocalChange(A.change(mine(), (x: any) => { x.list.push(2); x.m.b = 2 }))!, (dc) => { delete dc.ops[0].elemId; dc.ops[0].key = "x" }),
    /** A text insert after an element of another object (the list). */
    elementOfOtherObject: reencode(A.getLastLocalChange(A.change(mine(), (x: any) => { A.splice(x, ["text"], 1, 0, "Z") }))!, (dc) => {
      const list = A.getAllChanges(base).map((c) => A.decodeChange(c)).flatMap((d) => d.ops.map((o, i) => ({ o, id: `${d.startOp + i}@${d.actor}` }))).find((x) => (x.o as any).insert && x.o.obj !== dc.ops[0].obj)!
      dc.ops[0].elemId = list.id
    }),
    /** A set in an object that does not exist. */
    noSuchObject: reencode(setB, (dc) => { dc.ops[0].obj = `77@${OTHER}` }),
    /** The same change starting at op 1: its op counters reuse the history's. */
    startOpReused: reencode(setB, (dc) => { dc.startOp = 1 }),
  }
}

const FORGERY_REASON = {
  predOtherObject: "crdt-invalid",
  predMissing: "crdt-invalid",
  keyOnList: "crdt-invalid",
  elementOfOtherObject: "crdt-invalid",
  noSuchObject: "crdt-invalid",
  startOpReused: "crdt-equivocation",
} as const

/** The content as canonical JSON (a loaded document lists map keys in another order). */
const content = (d: A.Doc<any>): string => {
  const sort = (v: unknown): unknown => Array.isArray(v) ? v.map(sort) : v !== null && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])])) : v
  return JSON.stringify(sort(JSON.parse(JSON.stringify(d))))
}

describe("CRDT fields", () => {
  const decls = { sketch: automergeDoc({ text: "hello world", m: { a: 1 } as Record<string, number>, list: [1] as number[] }) }
  const fieldDoc = (f: CrdtFields) => (f.field("sketch").handle as { doc: A.Doc<any> }).doc

  test.each(Object.keys(FORGERY_REASON) as Array<keyof typeof FORGERY_REASON>)("a forged change (%s) is refused with its reason; the snapshot reloads with the same content", (kind) => {
    const hub = new CrdtFields(decls)
    const forged = forgeries(fieldDoc(hub), ACTOR, INITIAL)[kind]
    const refusal = hub.check("sketch", [forged], "mallory")
    expect(refusal && crdtReason(refusal)).toBe(FORGERY_REASON[kind])
    // An honest change from the same actor is still taken, and everything reloads as it is.
    const honest = A.getLastLocalChange(A.change(A.clone(fieldDoc(hub), { actor: ACTOR }), (x: any) => { x.m.c = 3; A.splice(x, ["text"], 0, 0, "> ") }))!
    expect(hub.check("sketch", [honest], "mallory")).toBeUndefined()
    expect(hub.merge("sketch", [honest], "mallory")).toBeUndefined()
    const joined = new CrdtFields(decls, hub.encode())
    expect(joined.hashes()).toEqual(hub.hashes())
    expect(content(fieldDoc(joined))).toBe(content(fieldDoc(hub)))
    expect(fieldDoc(hub).text).toBe("> hello world")
  })

  test("a change after a forgery that the same update depends on is checked against it (inside one update)", () => {
    const hub = new CrdtFields(decls)
    let d = A.clone(fieldDoc(hub), { actor: ACTOR })
    d = A.change(d, (x: any) => { x.m2 = { z: 1 } })
    const one = A.getLastLocalChange(d)!
    d = A.change(d, (x: any) => { x.m2.z = 2 })
    const two = A.getLastLocalChange(d)!
    expect(hub.check("sketch", [one, two], "mallory")).toBeUndefined()
    expect(hub.merge("sketch", [one, two], "mallory")).toBeUndefined()
    // A third whose pred names the first change's object creation instead of the key's op.
    d = A.change(d, (x: any) => { x.m2.z = 3 })
    const three = reencode(A.getLastLocalChange(d)!, (dc) => { dc.ops[0].pred = [A.decodeChange(one).startOp + "@" + ACTOR] })
    expect(crdtReason(hub.check("sketch", [three], "mallory")!)).toBe("crdt-invalid")
  })

  test("a compressed change chunk (deflate) is refused before decoding; an RLE bomb of deletes is too large; honest changes at the limit pass", () => {
    const hub = new CrdtFields({ notes: automergeText({ maxUpdateBytes: 4096 }) })
    const h = hub.field("notes").handle as { doc: A.Doc<any> }
    let mine = A.change(A.clone(h.doc, { actor: ACTOR }), (x: any) => A.splice(x, ["text"], 0, 0, "a".repeat(3900)))
    const insert = A.getLastLocalChange(mine)!
    // The honest insert of 3,900 characters (3,901 ops) fits the 4,096 bytes and ops (4,036 bytes for 4,000 characters).
    expect(insert.length).toBeLessThan(4096)
    expect(hub.check("notes", [insert], "m")).toBeUndefined()
    expect(hub.merge("notes", [insert], "m")).toBeUndefined()
    const compressed = compress(insert)
    expect(A.decodeChange(compressed).hash).toBe(A.decodeChange(insert).hash)
    expect(crdtReason(hub.check("notes", [compressed], "m")!)).toBe("crdt-invalid")
    // Deleting the 3,900 characters is an honest 3,900-op change of a few dozen bytes: under the limit.
    mine = A.change(mine, (x: any) => A.splice(x, ["text"], 0, 3900))
    const del = A.getLastLocalChange(mine)!
    expect(del.length).toBeLessThan(200)
    expect(hub.check("notes", [del], "m")).toBeUndefined()
    // 5,000 deletes in under 200 bytes: over the op limit, refused without decoding.
    let big = A.change(A.clone(h.doc, { actor: OTHER }), (x: any) => A.splice(x, ["text"], 0, 0, "b".repeat(5000)))
    big = A.change(big, (x: any) => A.splice(x, ["text"], 0, 5000))
    const bomb = A.getLastLocalChange(big)!
    expect(bomb.length).toBeLessThan(200)
    expect(crdtReason(hub.check("notes", [bomb], "m")!)).toBe("crdt-too-large")
  })

  test("default limits: a 333-byte deflated change of 300,000 ops is refused in milliseconds", () => {
    const hub = new CrdtFields({ notes: automergeText() })
    const h = hub.field("notes").handle as { doc: A.Doc<any> }
    const raw = A.getLastLocalChange(A.change(A.clone(h.doc, { actor: ACTOR }), (x: any) => A.splice(x, ["text"], 0, 0, "a".repeat(300_000))))!
    const bomb = compress(raw)
    expect(bomb.length).toBeLessThan(1024)
    const t = performance.now()
    expect(crdtReason(hub.check("notes", [bomb], "mallory")!)).toBe("crdt-invalid")
    expect(crdtReason(hub.check("notes", [raw], "mallory")!)).toBe("crdt-too-large")
    expect(performance.now() - t).toBeLessThan(2_000)
  })

  test("last line of defence: a field whose save() would not load snapshots its changes instead", () => {
    const hub = new CrdtFields(decls)
    const handle = hub.field("sketch").handle as { doc: A.Doc<any>; set(d: A.Doc<any>): void }
    const forged = forgeries(handle.doc, ACTOR, INITIAL).startOpReused
    // Straight into the document, past validation (a forgery the validator does not know yet).
    const [next] = A.applyChanges(handle.doc, [forged])
    expect(() => A.load(A.save(next))).toThrow()
    handle.set(next)
    const joined = new CrdtFields(decls, hub.encode())
    expect(joined.hashes()).toEqual(hub.hashes())
    expect(content(fieldDoc(joined))).toBe(content(next))
  })

  test("property: random honest edits from several actors are always accepted, and the snapshot reloads identically", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("text" as const), at: fc.nat(), del: fc.nat(3), s: fc.string({ maxLength: 5 }) }),
      fc.record({ k: fc.constant("map" as const), key: fc.constantFrom("a", "b", "c"), v: fc.integer() }),
      fc.record({ k: fc.constant("list" as const), at: fc.nat(), del: fc.boolean(), v: fc.integer() }),
      fc.record({ k: fc.constant("mark" as const), at: fc.nat() }),
      fc.record({ k: fc.constant("unset" as const), key: fc.constantFrom("a", "b", "c") }),
      fc.record({ k: fc.constant("nested" as const), at: fc.nat(), v: fc.integer() }),
      fc.record({ k: fc.constant("counter" as const), by: fc.integer({ min: -5, max: 5 }) }),
    )
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(2), fc.array(op, { minLength: 1, maxLength: 4 }), fc.boolean()), { minLength: 1, maxLength: 12 }), (steps) => {
      const hub = new CrdtFields(decls)
      const actors = [ACTOR, OTHER, "ef".repeat(16)]
      const docs = actors.map((a) => A.clone(fieldDoc(hub), { actor: a }))
      for (const [who, ops, sync] of steps) {
        if (sync) docs[who] = A.merge(docs[who]!, A.clone(fieldDoc(hub)))
        docs[who] = A.change(docs[who]!, (x: any) => {
          for (const o of ops) {
            if (o.k === "text") A.splice(x, ["text"], o.at % (x.text.length + 1), o.del, o.s)
            else if (o.k === "map") x.m[o.key] = o.v
            else if (o.k === "unset") delete x.m[o.key]
            else if (o.k === "nested") {
              // An object inside the list, then edited in place (ops in an object made by an insert).
              const at = o.at % (x.list.length + 1)
              x.list.insertAt(at, { v: o.v, inner: [o.v] })
              x.list[at].v = o.v + 1
              x.list[at].inner.push(o.v)
            } else if (o.k === "counter") {
              if (x.m.n === undefined) x.m.n = new A.Counter(0)
              else x.m.n.increment(o.by)
            }
            else if (o.k === "list") {
              if (o.del && x.list.length > 0) x.list.deleteAt(o.at % x.list.length)
              else x.list.insertAt(o.at % (x.list.length + 1), o.v)
            } else if (x.text.length > 1) A.mark(x, ["text"], { start: 0, end: 1 + (o.at % (x.text.length - 1)), expand: "both" }, "b", true)
          }
        })
        const change = A.getLastLocalChange(docs[who]!)
        if (change === undefined) continue
        expect(hub.check("sketch", [change], `c${who}`)).toBeUndefined()
        expect(hub.merge("sketch", [change], `c${who}`)).toBeUndefined()
      }
      const joined = new CrdtFields(decls, hub.encode())
      expect(joined.hashes()).toEqual(hub.hashes())
      expect(content(fieldDoc(joined))).toBe(content(fieldDoc(hub)))
    }), { numRuns: 60, seed: 11 })
  })
})

describe("whole documents", () => {
  const source = () => {
    let src = A.init<any>({ actor: OTHER })
    src = A.change(src, (x: any) => { x.text = "hello world"; x.m = { a: 1 }; x.list = [1] })
    return src
  }

  test.each(Object.keys(FORGERY_REASON) as Array<keyof typeof FORGERY_REASON>)("a forged change (%s) is refused as update-malformed; compaction and restart keep the content", async (kind) => {
    const storage = new MemoryStorage()
    const events: Array<{ type: string; code?: string }> = []
    const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, compactAfterBytes: 1 << 30, onEvent: (e) => events.push(e as never) })
    const doc = await h.open<AutomergeBox>("automerge", "am")
    const src = source()
    expect((await doc.submit(A.getAllChanges(src))).rejected).toEqual([])
    const forged = forgeries(src, ACTOR, OTHER)[kind]
    const out = await doc.submit([forged])
    expect(out.rejected.map((r) => r.code)).toEqual(["update-malformed"])
    // Honest work from the same actor goes on.
    const honest = A.getLastLocalChange(A.change(A.clone(src, { actor: ACTOR }), (x: any) => { x.m.c = 3 }))!
    expect(await doc.submit([honest])).toEqual({ stored: 1, known: 0, rejected: [] })
    const live = content(doc.doc.doc)
    await doc.compact()
    await h.close()
    expect(events.filter((e) => e.code === "compact-failed")).toEqual([])
    const again = await new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false }).open<AutomergeBox>("automerge", "am")
    expect(content(again.doc.doc)).toBe(live)
  })

  test("a document chunk carrying a forged change is refused as a whole (a guard: A.load refuses this one by itself too)", async () => {
    const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false })
    const doc = await h.open<AutomergeBox>("automerge", "am")
    const src = source()
    const [withForged] = A.applyChanges(A.clone(src), [forgeries(src, ACTOR, OTHER).keyOnList])
    const chunk = A.save(withForged)
    const out = await doc.submit([chunk])
    expect(out.rejected.map((r) => r.code)).toEqual(["update-malformed"])
    expect(content(doc.doc.doc)).toBe(content(A.init()))
    await h.close()
  })

  test("a 500-byte document chunk of 300,000 ops and a 333-byte compressed change are refused in milliseconds", async () => {
    let d = A.init<any>()
    d = A.change(d, (x: any) => { x.t = ""; A.splice(x, ["t"], 0, 0, "a".repeat(300_000)) })
    const chunk = A.save(d)
    const change = compress(A.getLastLocalChange(d)!)
    expect(chunk.length).toBeLessThan(1024)
    expect(change.length).toBeLessThan(1024)
    const engine = automergeDocEngine()
    const t = performance.now()
    const verdicts = await Promise.all([engine.check(chunk), engine.check(change)])
    expect(performance.now() - t).toBeLessThan(2_000)
    expect(verdicts.map((v) => (v.ok ? "ok" : v.code))).toEqual(["update-too-large", "update-too-large"])
    // Under a limit that admits it, the same compressed change is honest content and is taken.
    const roomy = automergeDocEngine({ maxChangeOps: 400_000 })
    expect((await roomy.check(change)).ok).toBe(true)
  }, 30_000)

  test("measured: an honest document chunk counts its ops (deletes included, an overwrite at most twice); deflated columns are inflated under the byte bound", () => {
    let d = A.init<any>({ actor: ACTOR })
    d = A.change(d, (x: any) => { x.t = ""; A.splice(x, ["t"], 0, 0, "xy".repeat(5000)); x.m = { a: 1 } })
    d = A.change(d, (x: any) => { A.splice(x, ["t"], 0, 3000); x.m.a = 2 })
    const ops = A.getAllChanges(d).reduce((n, c) => n + A.decodeChange(c).ops.length, 0)
    const inflate = (b: Uint8Array, max: number) => { try { return zlib.inflateRawSync(b, { maxOutputLength: max }) } catch { return undefined } }
    const m = measureChunk(A.save(d), { maxOps: 1e9, maxInflatedBytes: 1 << 20, inflate })
    // Every op, plus every successor (a delete, or an overwrite counted twice: here m.a).
    expect(m).toMatchObject({ ok: true, type: 0, ops: ops + 1, changes: 2 })
    expect(measureChunk(A.save(d), { maxOps: 1e9, maxInflatedBytes: 100, inflate })).toMatchObject({ ok: false, tooLarge: true })
    expect(measureChunk(A.save(d), { maxOps: 1e9, maxInflatedBytes: 1 << 20 })).toMatchObject({ ok: false, tooLarge: false })
    expect(measureChunk(A.save(d), { maxOps: ops - 1, maxInflatedBytes: 1 << 20, inflate })).toMatchObject({ ok: false, tooLarge: true })
  })

  test("last line of defence: compaction keeps the previous base when save() would not load back", async () => {
    const storage = new MemoryStorage()
    const events: Array<{ type: string; code?: string }> = []
    const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, compactAfterBytes: 1 << 30, onEvent: (e) => events.push(e as never) })
    const doc = await h.open<AutomergeBox>("automerge", "am")
    const src = source()
    await doc.submit(A.getAllChanges(src))
    // A forgery straight into the live document, past validation.
    ;[doc.doc.doc] = A.applyChanges(doc.doc.doc, [forgeries(src, ACTOR, OTHER).startOpReused])
    expect(() => automergeDocEngine().encode(doc.doc)).toThrow(/load/)
    await doc.compact()
    expect(events.filter((e) => e.code === "compact-failed")).toHaveLength(1)
    await h.close()
    const again = await new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false }).open<AutomergeBox>("automerge", "am")
    expect(content(again.doc.doc)).toBe(content(src))
  })
})

/** A change as a compressed change chunk (chunk type 2, raw deflate of the body). */
function compress(c: Uint8Array): Uint8Array {
  let i = 9, len = 0, shift = 0
  for (;;) { const b = c[i++]!; len += (b & 0x7f) * 2 ** shift; shift += 7; if (!(b & 0x80)) break }
  const comp = zlib.deflateRawSync(c.subarray(i, i + len), { level: 9 })
  const uleb = (v: number) => { const o: number[] = []; do { let b = v & 0x7f; v = Math.floor(v / 128); if (v) b |= 0x80; o.push(b) } while (v); return o }
  return Uint8Array.from([...c.subarray(0, 8), 2, ...uleb(comp.length), ...comp])
}

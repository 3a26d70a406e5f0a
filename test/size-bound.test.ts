/**
 * maxDocumentBytes (core/authority/size-bound.ts): no writer can take a document past its
 * bound, whatever the size of its state (measured in the commit or by a snapshot) or its CRDT
 * fields; commands that only remove always pass and make room again; replicas converge on
 * what the hub kept.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type Doc } from "../core/index.js"
import { encodeCanonical } from "../core/canonical.js"
import { SizeBound, tombstoneReserve } from "../core/authority/size-bound.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { yText } from "../adapters/yjs/index.js"
import * as Y from "yjs"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { running, settle, settleWithTurns } from "./support/virtual-time.js"

const DOC = "list"

const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { body: yText() },
  commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s, { title }) => { s.title = title } } },
})

describe("SizeBound", () => {
  test("a write fits while the bound plus it stays within the limit; a write of nothing always fits", () => {
    const b = new SizeBound(100, 40, true)
    expect(b.fits(60)).toBe(true)
    expect(b.fits(61)).toBe(false)
    b.accept(50, true)
    expect(b.bound).toBe(90)
    expect(b.fits(11)).toBe(false)
    expect(b.fits(0)).toBe(true)
  })

  test("a measure replaces the bound, up or down, plus what was accepted after it began; an older measure ending later does not", () => {
    const b = new SizeBound(100, 40, true)
    b.accept(30, true)
    const first = b.measure(0)
    b.accept(10, true)
    first.done(20, 0)
    expect(b.bound).toBe(30)
    // Counts that fell short (a CRDT's encoding outgrew its updates): the measure raises the bound, and the document is full.
    b.measure(0).done(95, 0)
    expect(b.bound).toBe(95)
    expect(b.fits(6)).toBe(false)
    // A measure begun before the one the bound rests on changes nothing.
    first.done(10, 0)
    expect(b.bound).toBe(95)
  })

  test("measuring again waits for a change and for ten times the last measure's duration; a failed one may be retried at once", () => {
    const b = new SizeBound(100, 40, true)
    expect(b.mayMeasure(0)).toBe(false)
    b.accept(0, true)
    expect(b.mayMeasure(0)).toBe(true)
    const m = b.measure(1000)
    b.accept(0, true)
    expect(b.mayMeasure(1000)).toBe(false)
    m.done(40, 1005)
    expect(b.mayMeasure(1054)).toBe(false)
    expect(b.mayMeasure(1055)).toBe(true)
    b.measure(1055).failed()
    expect(b.mayMeasure(1055)).toBe(true)
    expect(new SizeBound(100, 40, false).mayMeasure(0)).toBe(true)
  })
})

const world = (maxDocumentBytes: number) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const storage = new MemoryStorage()
  const start = () => {
    const hub = new Hub({ machines: [Todo, Note], storage, runtime: rt, maxDocumentBytes, maxCommandBytes: 256 << 10 })
    net.listen(hub)
    return hub
  }
  return { rt, net, storage, hub: start(), start }
}

const replica = async (w: ReturnType<typeof world>, name: string) => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name })
  const doc = await client.open(Todo, DOC)
  return { client, doc }
}

/** A hub bounded at `max` and one replica of a Note document, with the codes of its rejected commands. */
const noteReplica = async (max: number) => {
  const w = world(max)
  const client = await CanonClient.open({ transport: w.net.transport("a"), runtime: w.rt, clientId: "a" })
  const doc = await client.open(Note, "n1")
  const rejected: string[] = []
  doc.on("rejected", (r) => rejected.push(r.rejection.code))
  await settleWithTurns(w.rt, 200)
  return { w, client, doc, rejected }
}

/** Submits `add`s of `bytes`-character titles one at a time until one is rejected; their ids, and the rejection. */
const fill = async (w: ReturnType<typeof world>, doc: Doc<typeof Todo>, prefix: string, bytes: number, most: number) => {
  const added: string[] = []
  for (let i = 0; i < most; i++) {
    const id = `${prefix}${i}`
    const outcome = doc.submit("add", { id, title: String(i % 10).repeat(bytes) }).then(() => undefined, (e: unknown) => e)
    await settle(w.rt, 100)
    const rejection = await outcome
    if (rejection !== undefined) return { added, rejection: rejection as { code: string; message: string } }
    added.push(id)
  }
  return { added, rejection: undefined }
}

describe("maxDocumentBytes", () => {
  test("a bound that is not a number of bytes above 0 is refused when the hub is made", () => {
    const storage = new MemoryStorage()
    const runtime = new VirtualRuntime(1)
    for (const bad of [0, -1, Number.NaN, "64" as unknown as number]) {
      expect(() => new Hub({ machines: [Todo], storage, runtime, maxDocumentBytes: bad })).toThrow(/^maxDocumentBytes must be a number of bytes above 0 \(Infinity for no bound\), not /)
    }
    expect(() => new Hub({ machines: [Todo], storage, runtime, crdt: { engines: [], maxDocumentBytes: 0 } })).toThrow(/^crdt\.maxDocumentBytes must be/)
    expect(() => new Hub({ machines: [Todo], storage, runtime, maxDocumentBytes: Infinity })).not.toThrow()
  })

  test("a writer fills a small document to its bound and no further; removals make room again; replicas agree", async () => {
    const max = 64 << 10
    const w = world(max)
    const a = await replica(w, "a")
    const b = await replica(w, "b")
    await settle(w.rt, 200)
    const authority = await w.hub.doc(DOC, Todo)

    const first = await fill(w, a.doc, "x", 4000, 100)
    expect(first.rejection).toMatchObject({ code: "command-too-large" })
    expect(first.rejection!.message).toMatch(/^Document "list" is full: this command would take it past 65536 bytes \(the hub's maxDocumentBytes\)\. Delete something/)
    const size = encodeCanonical(authority.state).length
    expect(size).toBeLessThanOrEqual(max)
    // Measured before refusing: the bound counts 3 bytes a character, which alone would refuse at about a third.
    expect(size).toBeGreaterThan(max - 8000)

    // Full: more of the same is refused; a removal passes, and then there is room for one more.
    await expect(Promise.all([a.doc.submit("add", { id: "y", title: "9".repeat(4000) }), settle(w.rt, 200)])).rejects.toMatchObject({ code: "command-too-large" })
    await Promise.all([a.doc.submit("remove", { id: first.added[0]! }), a.doc.submit("remove", { id: first.added[1]! }), settle(w.rt, 200)])
    const second = await fill(w, a.doc, "z", 4000, 10)
    expect(second.added.length).toBeGreaterThanOrEqual(1)
    expect(second.rejection).toMatchObject({ code: "command-too-large" })
    expect(encodeCanonical(authority.state).length).toBeLessThanOrEqual(max)

    await settle(w.rt, 500)
    expect(a.doc.snapshot()).toEqual(authority.state)
    expect(b.doc.snapshot()).toEqual(authority.state)
    expect(b.doc.confirmedHash()).toBe(authority.stateHash())

    // The bound holds across a restart: the loaded document is measured.
    await a.client.close()
    await b.client.close()
    await w.hub.close()
    w.start()
    const c = await replica(w, "c")
    await settle(w.rt, 300)
    await expect(Promise.all([c.doc.submit("add", { id: "after", title: "8".repeat(8000) }), settle(w.rt, 200)])).rejects.toMatchObject({ code: "command-too-large" })
    await c.client.close()
  })

  test("a state too big to measure in the commit is measured by a snapshot: full, then room again after removals", async () => {
    const max = 3 << 20
    const w = world(max)
    const a = await replica(w, "a")
    await settle(w.rt, 200)
    const authority = await w.hub.doc(DOC, Todo)
    const first = await fill(w, a.doc, "x", 60_000, 200)
    expect(first.rejection).toMatchObject({ code: "command-too-large" })
    // The bound (strings by their UTF-8 bytes; measured in the commit only while under 1 MiB) came this close.
    const size = encodeCanonical(authority.state).length
    expect(size).toBeLessThanOrEqual(max)
    expect(size).toBeGreaterThan(max - 2 * 61_000)
    for (const id of first.added.slice(0, 10)) void a.doc.submit("remove", { id })
    await settle(w.rt, 1000)
    // The first add after the removals may be refused (the bound has not seen them yet) and
    // asks for a snapshot; once it is taken, there is room.
    let accepted = 0
    for (let i = 0; i < 6 && accepted === 0; i++) {
      const r = await fill(w, a.doc, `z${i}-`, 60_000, 1)
      accepted = r.added.length
      await settle(w.rt, 2000)
    }
    expect(accepted).toBe(1)
    expect(encodeCanonical(authority.state).length).toBeLessThanOrEqual(max)
    await a.client.close()
  })

  test("CRDT fields are bounded too: updates are weighed before they merge, and a refused one never merges", async () => {
    const max = 48 << 10
    const { w, client, doc, rejected } = await noteReplica(max)
    for (let i = 0; i < 40 && rejected.length === 0; i++) {
      doc.crdt.body.insert(doc.crdt.body.length, String(i % 10).repeat(3000))
      await settleWithTurns(w.rt, 100)
    }
    expect(rejected).toContain("command-too-large")
    const authority = await w.hub.doc("n1", Note)
    // The refused change's tombstone may be in the hub's commit: time runs while it snapshots.
    const meta = await running(w.rt, authority.snapshotNow())
    expect(meta.size).toBeLessThanOrEqual(max)
    await settleWithTurns(w.rt, 1000)
    // The replica took the hub's state back: what was refused is not in its text either.
    expect(doc.pendingCount).toBe(0)
    expect(doc.confirmedHash()).toBe(authority.stateHash())
    expect(doc.crdt.body.length).toBeLessThan(max)
    await client.close()
  })
})

describe("review findings", () => {
  test("scattered Yjs deletes, which grow the field's encoding past their updates' size, do not take a document past its bound", async () => {
    const max = 64 << 10
    const { w, client, doc, rejected } = await noteReplica(max)
    const body = doc.crdt.body
    for (let i = 0; i < 10; i++) {
      body.insert(body.length, "a".repeat(2000))
      await settleWithTurns(w.rt, 100)
    }
    const authority = await w.hub.doc("n1", Note)
    // Delete every second to fourth character, 500 a transaction, until the hub refuses one.
    let x = 12345
    const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648
    let pos = body.length - 2
    const sizes: number[] = []
    while (pos >= 0 && rejected.length === 0) {
      body.doc!.transact(() => {
        for (let i = 0; i < 500 && pos >= 0; i++, pos -= 2 + Math.floor(rnd() * 3)) body.delete(pos, 1)
      })
      await settleWithTurns(w.rt, 50)
      sizes.push((await authority.snapshotNow()).size)
    }
    await settleWithTurns(w.rt, 500)
    expect(Math.max(...sizes, (await authority.snapshotNow()).size)).toBeLessThanOrEqual(max)
    expect(doc.confirmedHash()).toBe(authority.stateHash())
    await client.close()
  })

  test("a document filled to within a few bytes of its bound still takes commands that remove (Todo's remove also decrements a count)", async () => {
    const max = 64 << 10
    const w = world(max)
    const a = await replica(w, "a")
    await settle(w.rt, 200)
    const authority = await w.hub.doc(DOC, Todo)
    const size = () => encodeCanonical(authority.state).length
    const submit = async (name: string, args: unknown) => {
      const p = (a.doc.submit as (n: string, x: unknown) => Promise<unknown>)(name, args).then(() => "ok", (e: { code: string }) => e.code)
      await settle(w.rt, 100)
      return p
    }
    let i = 0
    while ((await submit("add", { id: `x${i}`, title: "a".repeat(3000) })) === "ok") i++
    // Fill to within 8 bytes: a shorter rename (accepted, a change) lets each add be measured in the commit.
    for (let step = 0, t = 2999; step < 60 && max - size() >= 8; step++) {
      await submit("rename", { id: "x0", title: "a".repeat(t--) })
      await submit("add", { id: `y${step}`, title: "b".repeat(Math.max(0, max - size() - 36 + (step % 8))) })
    }
    expect(max - size()).toBeLessThan(8)
    expect(await submit("add", { id: "big", title: "c".repeat(100) })).toBe("command-too-large")
    expect([await submit("remove", { id: "x1" }), await submit("toggle", { id: "x0" }), await submit("remove", { id: "x2" })]).toEqual(["ok", "ok", "ok"])
    await a.client.close()
  })
})

describe("whole CRDT documents (maxDocumentBytes of their host)", () => {
  const writer = () => {
    const d = new Y.Doc()
    d.clientID = 5
    const updates: Uint8Array[] = []
    d.on("update", (u: Uint8Array) => updates.push(u))
    const text = d.getText("t")
    return { d, text, take: () => updates.splice(0) }
  }

  test("a Yjs document takes updates until its stored bytes reach the bound; a compaction that finds room lets more in", async () => {
    const max = 20_000
    const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, compactAfterBytes: 1 << 30, maxDocumentBytes: max })
    const doc = await h.open<Y.Doc>("yjs", "d")
    const w = writer()
    for (let i = 0; i < 15; i++) w.text.insert(w.text.length, String(i % 10).repeat(2000))
    const updates = w.take()
    // Each update is charged three times its bytes (CRDT_GROWTH_FACTOR) until a measure.
    const first = await doc.submit(updates)
    // A Yjs document keeps the last 64th for deletions (crdt-doc-delete-full.test.ts): inserts stop short of it.
    const limit = max - tombstoneReserve(max)
    expect(first.stored).toBe(Math.floor(limit / (3 * updates[0]!.length)))
    expect(first.rejected.length).toBe(15 - first.stored)
    expect(first.rejected[0]).toMatchObject({ code: "update-too-large", index: first.stored })
    expect(first.rejected[0]!.message).toMatch(new RegExp(`^Document "d" is full: this update would take it past ${limit} bytes \\(the hub's maxDocumentBytes, 20000, less`))
    // The refusal compacted the document, measuring it: the refused inserts find room now, as far as the bound allows.
    const second = await doc.submit(updates.slice(first.stored))
    expect(second.stored).toBeGreaterThan(0)
    const stored = doc.storedBytes
    expect(stored.base + stored.tail).toBeLessThanOrEqual(max)
    expect(Y.encodeStateAsUpdate(doc.doc).length).toBeLessThanOrEqual(max)
    // What the hub holds is what it stored: the refused inserts are not in it.
    expect(doc.doc.getText("t").length).toBe((first.stored + second.stored) * 2000)

    // Deleting most of it is accepted; an insert may be refused until a compaction measures
    // the document (the deleted text is gone from its encoding), then there is room. A writer
    // refused starts again from the hub's state, as a stock client resyncs.
    const edit = async (change: (t: Y.Text) => void) => {
      const reader = new Y.Doc()
      Y.applyUpdate(reader, Y.encodeStateAsUpdate(doc.doc))
      const updates: Uint8Array[] = []
      reader.on("update", (u: Uint8Array) => updates.push(u))
      change(reader.getText("t"))
      return doc.submit(updates)
    }
    expect((await edit((t) => t.delete(0, t.length - 2000))).stored).toBe(1)
    const tries: string[] = []
    for (let i = 0; i < 3 && !tries.includes("stored"); i++) {
      const o = await edit((t) => t.insert(0, "x".repeat(2000)))
      tries.push(o.stored === 1 ? "stored" : o.rejected[0]!.code)
    }
    // Refused at most until the compaction a refusal asks for has measured the document.
    expect(tries.at(-1)).toBe("stored")
    expect(tries.slice(0, -1).every((t) => t === "update-too-large")).toBe(true)
    expect(doc.storedBytes.base + doc.storedBytes.tail).toBeLessThanOrEqual(max)
    await h.close()
  })
})

/**
 * Documents nobody follows are kept loaded a while (core/authority/idle-documents.ts): a
 * reader leaving and coming back does not make the hub read the document again from storage
 * each time (O(document): a reader looping subscribe / unsubscribe on a large document kept
 * the hub reloading it every 250 ms). Kept documents are bounded in count, bytes and time;
 * one used again is never unloaded under its user.
 */
import * as Y from "yjs"
import { hubWorld } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"
import { CrdtDocHost } from "../core/crdt-docs/host.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { DEFAULT_IDLE_DOCUMENTS } from "../core/authority/idle-documents.js"

const add = (clientSeq: number, id: string, title = id) => ({ clientSeq, name: "add", args: { id, title } })

test("a reader leaving and coming back finds the document loaded: no reload from storage", async () => {
  const w = hubWorld()
  const a = await w.peer()
  const instances = new Set<unknown>()
  for (let cycle = 0; cycle < 10; cycle++) {
    w.subscribe(a, "d")
    await w.run(10)
    instances.add(await w.hub.doc("d", Todo))
    a.send({ type: "unsubscribe", docId: "d" })
    await w.run(1_000)
  }
  expect(instances.size).toBe(1)
  // Once its time is up, it goes.
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms)
  expect(w.hub.stats().documents).toBe(0)
})

test("kept documents are bounded in count: the least recently left go first", async () => {
  const w = hubWorld({ idleDocuments: { count: 3 } })
  const a = await w.peer()
  for (const d of ["a", "b", "c", "d", "e"]) {
    w.subscribe(a, d)
    await w.run(10)
    a.send({ type: "unsubscribe", docId: d })
    await w.run(400)
    expect(w.hub.stats().documents).toBeLessThanOrEqual(3)
  }
  const kept = await Promise.all(["c", "d", "e"].map((d) => w.hub.doc(d, Todo)))
  // "a" and "b" were unloaded: getting them loads new instances, while c, d, e are the kept ones.
  await w.run(400)
  expect(await Promise.all(["c", "d", "e"].map((d) => w.hub.doc(d, Todo)))).toEqual(kept)
})

test("kept documents are bounded in bytes of state", async () => {
  const w = hubWorld({ idleDocuments: { bytes: 250_000 } })
  const a = await w.peer()
  for (const d of ["a", "b", "c", "d"]) {
    w.subscribe(a, d)
    await w.run(10)
    // About 100 KB of state each (measured at the snapshot taken below).
    a.send({ type: "submit", docId: d, ackedClientSeq: 0, commands: Array.from({ length: 10 }, (_, i) => add(i + 1, `i${i}`, "t".repeat(10_000))) })
    await w.run(50)
    const snapshot = (await w.hub.doc(d, Todo)).snapshotNow()
    await w.run(100)
    await snapshot
    a.send({ type: "unsubscribe", docId: d })
    await w.run(400)
    expect(w.hub.stats().documents).toBeLessThanOrEqual(2)
    expect((await w.hub.doc(d, Todo)).stateSize).toBeGreaterThan(100_000)
    await w.run(400)
  }
  expect(w.hub.stats().documents).toBe(2)
})

test("a kept document used again is not unloaded under its follower when its time is up, and is let go once left", async () => {
  const w = hubWorld()
  const a = await w.peer()
  const b = await w.peer()
  w.subscribe(a, "d")
  await w.run(10)
  a.send({ type: "unsubscribe", docId: "d" })
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms - 1_000)
  const kept = await w.hub.doc("d", Todo)
  w.subscribe(b, "d")
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms * 2)
  // Still the same instance, serving its follower.
  expect(await w.hub.doc("d", Todo)).toBe(kept)
  b.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [add(1, "x")] })
  await w.run(50)
  expect(b.of("entries", "d").flatMap((m) => m.entries.map((e) => e.seq))).toEqual([1])
  b.send({ type: "unsubscribe", docId: "d" })
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms + 1_000)
  expect(w.hub.stats().documents).toBe(0)
})

test("a kept document handed out without a follower (hub.doc) is still let go", async () => {
  const w = hubWorld()
  const a = await w.peer()
  w.subscribe(a, "d")
  await w.run(10)
  a.send({ type: "unsubscribe", docId: "d" })
  await w.run(1_000)
  expect(w.hub.stats().documents).toBe(1)
  const doc = await w.hub.doc("d", Todo)
  expect(doc.headSeq).toBe(0)
  await w.run(DEFAULT_IDLE_DOCUMENTS.ms + 1_000)
  expect(w.hub.stats().documents).toBe(0)
})

test("count 0 unloads a document as soon as it is idle", async () => {
  const w = hubWorld({ idleDocuments: { count: 0 } })
  const a = await w.peer()
  w.subscribe(a, "d")
  await w.run(10)
  a.send({ type: "unsubscribe", docId: "d" })
  await w.run(400)
  expect(w.hub.stats().documents).toBe(0)
})

describe("whole CRDT documents", () => {
  const host = (runtime?: VirtualRuntime) =>
    new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, ...(runtime !== undefined ? { runtime, idleDocuments: { count: 2 } } : {}) })

  /** Opened and written once: a document never written is not kept (its reload costs nothing). */
  const written = async (h: CrdtDocHost, docId: string) => {
    const d = await h.open<Y.Doc>("yjs", docId)
    const w = new Y.Doc()
    w.getText("t").insert(0, docId)
    expect((await d.submit([Y.encodeStateAsUpdate(w)])).stored).toBe(1)
    return d
  }

  test("with a runtime, a released document is kept a while, bounded in count", async () => {
    const rt = new VirtualRuntime(1)
    const h = host(rt)
    const first = await written(h, "a")
    h.release(first)
    await rt.run({ forMs: 10 })
    expect(await h.open("yjs", "a")).toBe(first)
    h.release(first)
    for (const d of ["b", "c"]) {
      h.release(await written(h, d))
      await rt.run({ forMs: 10 })
    }
    // Two kept at most: "a", left first, was unloaded.
    expect(await h.open("yjs", "a")).not.toBe(first)
    const c = await h.open("yjs", "c")
    h.release(c)
    await rt.run({ forMs: DEFAULT_IDLE_DOCUMENTS.ms + 1_000 })
    expect(await h.open("yjs", "c")).not.toBe(c)
    await h.close()
  })

  test("without a runtime, a released document is unloaded at once", async () => {
    const h = host()
    const first = await h.open("yjs", "a")
    h.release(first)
    await new Promise((r) => setTimeout(r, 10))
    expect(await h.open("yjs", "a")).not.toBe(first)
    await h.close()
  })
})

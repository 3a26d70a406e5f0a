/**
 * The authority of whole CRDT documents (core/crdt-docs) with the Yjs and Automerge engines
 * on memory storage: store, dedupe, fan-out without echo, reload, compaction (atomic with the
 * deletion of what it covers), typed refusals, and a bounded fuzz of the update path.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import fc from "fast-check"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocStore, type CrdtSubscriber } from "../core/crdt-docs/index.js"
import type { BatchOp, BatchOptions, KVStore } from "../core/ports/storage.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { cyclicUpdate, rawUpdate } from "./support/yjs-raw.js"
import { countingStorage } from "./support/counting-storage.js"

const host = (storage: KVStore, compactAfterBytes = 1 << 30) =>
  new CrdtDocHost({ engines: [yjsDocEngine(), automergeDocEngine()], storage, sync: false, compactAfterBytes })

const recorder = (): CrdtSubscriber & { got: Uint8Array[] } => {
  const got: Uint8Array[] = []
  return { got, onUpdates: (us) => got.push(...us) }
}

/** Keystroke updates of a Y.Doc typing `s`. */
const typing = (s: string, clientID: number): Uint8Array[] => {
  const d = new Y.Doc()
  d.clientID = clientID
  const out: Uint8Array[] = []
  d.on("update", (u: Uint8Array) => out.push(u))
  for (const ch of s) d.getText("t").insert(d.getText("t").length, ch)
  return out
}

test("Yjs: updates are stored once, fanned out to the others only, and reload", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<Y.Doc>("yjs", "d1")
  const a = recorder()
  const b = recorder()
  doc.subscribe(a)
  doc.subscribe(b)
  const ups = typing("hello", 7)
  const out = await doc.submit(ups, a)
  expect(out).toEqual({ stored: 5, known: 0, rejected: [] })
  expect(a.got).toEqual([])
  expect(b.got.length).toBe(5)
  // The same updates again add nothing: acknowledged, not stored.
  expect(await doc.submit(ups, b)).toEqual({ stored: 0, known: 5, rejected: [] })
  expect(doc.seq).toBe(5)
  await h.close()
  const again = await host(storage).open<Y.Doc>("yjs", "d1")
  expect(again.doc.getText("t").toString()).toBe("hello")
  expect(again.seq).toBe(5)
})

test("Yjs: compaction writes the encoded live doc and deletes the covered updates in one batch", async () => {
  const storage = new MemoryStorage()
  const h = host(storage, 200)
  const doc = await h.open<Y.Doc>("yjs", "big")
  const ups = typing("the quick brown fox jumps over the lazy dog ".repeat(4), 3)
  for (const u of ups) await doc.submit([u])
  const stored = await new CrdtDocStore(storage).load("big")
  expect(stored!.meta.baseSeq).toBeGreaterThan(0)
  expect(stored!.entries.length).toBeLessThan(ups.length)
  expect(stored!.entries.every((e) => e.seq > stored!.meta.baseSeq)).toBe(true)
  const reloaded = await host(storage).open<Y.Doc>("yjs", "big")
  expect(reloaded.doc.getText("t").toString()).toBe(doc.doc.getText("t").toString())
  // The base is the V2 state of the doc, smaller than the updates it replaced.
  expect(stored!.base!.length).toBeLessThan(ups.reduce((n, u) => n + u.length, 0))
})

test("a failed compaction loses nothing: the document reloads from the old base and tail", async () => {
  const inner = new MemoryStorage()
  let failCompaction = false
  const flaky: KVStore = {
    get: (k) => inner.get(k),
    range: (o) => inner.range(o),
    close: () => inner.close(),
    batch: (ops: ReadonlyArray<BatchOp>, o?: BatchOptions) =>
      failCompaction && ops.some((op) => op.type === "del") ? Promise.reject(new Error("disk full")) : inner.batch(ops, o),
  }
  const events: string[] = []
  const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage: flaky, sync: false, compactAfterBytes: 100, onEvent: (e) => events.push(e.type) })
  const doc = await h.open<Y.Doc>("yjs", "c")
  const sub = { closed: "", onUpdates: () => {}, onClose(code: string) { this.closed = code } }
  doc.subscribe(sub)
  failCompaction = true
  for (const u of typing("abcdefghijklmnopqrstuvwxyz".repeat(3), 4)) await doc.submit([u]).catch(() => undefined)
  expect(events).toContain("doc-broken")
  expect(sub.closed).toBe("storage-failed")
  failCompaction = false
  const stored = await new CrdtDocStore(inner).load("c")
  const again = await h.open<Y.Doc>("yjs", "c")
  expect(again).not.toBe(doc)
  expect(again.seq).toBe(stored!.meta.seq)
  expect(again.doc.getText("t").toString()).toBe("abcdefghijklmnopqrstuvwxyz".repeat(3).slice(0, again.seq))
})

test("typed refusals: malformed, too large, missing dependencies, wrong kind, bad id", async () => {
  const h = new CrdtDocHost({ engines: [yjsDocEngine({ maxUpdateBytes: 1000 }), automergeDocEngine()], storage: new MemoryStorage(), sync: false })
  const doc = await h.open<Y.Doc>("yjs", "r")
  const src = new Y.Doc()
  src.getText("t").insert(0, "ab")
  const sv = Y.encodeStateVector(src)
  src.getText("t").insert(1, "X")
  const dependent = Y.encodeStateAsUpdate(src, sv)
  const big = new Y.Doc()
  big.getText("t").insert(0, "x".repeat(2000))
  const out = await doc.submit([new Uint8Array([1, 2, 3]), Y.encodeStateAsUpdate(big), dependent, new Uint8Array()])
  expect(out.rejected.map((r) => [r.index, r.code])).toEqual([[0, "update-malformed"], [1, "update-too-large"], [3, "update-malformed"], [2, "update-missing-deps"]])
  expect(doc.doc.getText("t").toString()).toBe("")
  await expect(h.open("automerge", "r")).rejects.toMatchObject({ code: "doc-kind-mismatch" })
  await expect(h.open("yjs", "")).rejects.toMatchObject({ code: "doc-id-invalid" })
  // Subdocuments are refused.
  const withSub = new Y.Doc()
  withSub.getMap("m").set("sub", new Y.Doc())
  expect((await doc.submit([Y.encodeStateAsUpdate(withSub)])).rejected[0]?.code).toBe("update-malformed")
})

test("Automerge: changes and document chunks are stored once, missing dependencies refused, reload", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<AutomergeBox>("automerge", "am")
  let src = A.from({ text: "hi" })
  const first = A.getAllChanges(src)
  src = A.change(src, (d) => A.splice(d, ["text"], 2, 0, "!"))
  const second = A.getLastLocalChange(src)!
  // The dependent change first: refused; then both: stored.
  expect((await doc.submit([second])).rejected[0]?.code).toBe("update-missing-deps")
  expect(await doc.submit([...first, second])).toEqual({ stored: first.length + 1, known: 0, rejected: [] })
  expect(await doc.submit([A.save(src)])).toMatchObject({ stored: 0, known: 1 })
  expect((doc.doc.doc as { text: string }).text).toBe("hi!")
  await h.close()
  const again = await host(storage).open<AutomergeBox>("automerge", "am")
  expect((again.doc.doc as { text: string }).text).toBe("hi!")
  expect(A.getHeads(again.doc.doc)).toEqual(A.getHeads(src))
})

test("fuzz: bit flips and random bytes through the update path never throw and leave a loadable document", async () => {
  const storage = new MemoryStorage()
  const h = host(storage, 2_000)
  const ydoc = await h.open<Y.Doc>("yjs", "fy")
  const adoc = await h.open<AutomergeBox>("automerge", "fa")
  const good = Y.encodeStateAsUpdate((() => { const d = new Y.Doc(); d.getText("t").insert(0, "hello"); d.getMap("m").set("k", [1, "x"]); return d })())
  const change = A.getLastLocalChange(A.change(A.init<{ n?: number }>(), (d) => { d.n = 1 }))!
  const codes = new Set(["update-malformed", "update-too-large", "update-missing-deps", "update-failed"])
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc.tuple(fc.nat(good.length * 8 - 1)).map(([bit]) => { const u = good.slice(); u[bit >> 3]! ^= 1 << (bit & 7); return u }),
      fc.tuple(fc.nat(change.length * 8 - 1)).map(([bit]) => { const u = change.slice(); u[bit >> 3]! ^= 1 << (bit & 7); return u }),
    ),
    async (bytes) => {
      for (const doc of [ydoc, adoc] as const) {
        const out = await (doc as typeof ydoc).submit([bytes])
        for (const r of out.rejected) expect(codes.has(r.code)).toBe(true)
      }
    },
  ), { numRuns: 300, seed: 11 })
  // Both documents still encode and reload.
  await h.close()
  const h2 = host(storage)
  expect(() => Y.encodeStateAsUpdateV2(ydoc.doc)).not.toThrow()
  await expect(h2.open("yjs", "fy")).resolves.toBeDefined()
  await expect(h2.open("automerge", "fa")).resolves.toBeDefined()
})

test("Yjs: an update Yjs cannot integrate in full is refused before it touches the document: no rebuild, nothing held", async () => {
  const { storage: counting, reads: readsSoFar } = countingStorage()
  const events: string[] = []
  const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage: counting, sync: false, compactAfterBytes: 1 << 30, onEvent: (e) => events.push(e.type === "doc-report" ? `${e.type}:${e.code}` : e.type) })
  const doc = await h.open<Y.Doc>("yjs", "cyc")
  await doc.submit(typing("hello", 7))
  const before = Y.encodeStateAsUpdateV2(doc.doc)
  const readsBefore = readsSoFar()
  const hostile = [
    cyclicUpdate([0x51, 0x52]),
    cyclicUpdate([1, 2, 3]),
    rawUpdate([{ client: 9, clock: 0, items: [{ origin: [9, 1], text: "a" }, { text: "b" }] }]),
    rawUpdate([{ client: 9, clock: 0, items: [{ origin: [7, 0], text: "a" }] }, { client: 9, clock: 1, items: [{ origin: [9, 0], text: "b" }] }]),
    rawUpdate([], [[7, 5, 0]]),
  ]
  const out = await doc.submit(hostile)
  expect(out.rejected.map((r) => r.code)).toEqual(["update-missing-deps", "update-missing-deps", "update-missing-deps", "update-malformed", "update-missing-deps"])
  expect(out.rejected[0]!.message).toMatch(/cycle/)
  // Refused by the check: no library throw, no reload from storage.
  expect(events).toEqual([])
  expect(readsSoFar() - readsBefore).toBe(0)
  expect(doc.doc.store.pendingStructs).toBeNull()
  expect(doc.doc.store.pendingDs).toBeNull()
  expect(Buffer.from(Y.encodeStateAsUpdateV2(doc.doc))).toEqual(Buffer.from(before))
  // The IDs the cycle named are free: a real write of them is taken.
  const d = new Y.Doc(); d.clientID = 0x51
  Y.applyUpdate(d, Y.encodeStateAsUpdate(doc.doc))
  d.getText("t").insert(5, "!")
  expect(await doc.submit([Y.encodeStateAsUpdate(d, Y.encodeStateVector(doc.doc))])).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.doc.getText("t").toString()).toBe("hello!")
  await h.close()
})

test("fuzz: random origin graphs among new items: cycles refused without a rebuild, the others taken", async () => {
  const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, onEvent: (e) => { if (e.type === "doc-report") throw new Error(e.message) } })
  const doc = await h.open<Y.Doc>("yjs", "fz")
  await doc.submit(typing("abc", 7))
  let next = 100
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 2, max: 5 }).chain((n) => fc.tuple(fc.constant(n), fc.array(fc.tuple(fc.nat(n), fc.nat(n - 1)), { minLength: n, maxLength: n }))),
    async ([n, links]) => {
      // n clients, one item each; item i's origin: client links[i][0]'s item (n: the present "abc").
      const clients = Array.from({ length: n }, () => next++)
      const origin = (i: number): readonly [number, number] => (links[i]![0] === n ? [7, 2] : [clients[links[i]![0]]!, 0])
      const u = rawUpdate(clients.map((client, i) => ({ client, clock: 0, items: [{ origin: origin(i), text: "x" }] })))
      // A cycle exists iff following origins from some item comes back to it.
      const cyclic = clients.some((_, start) => {
        let i = start
        for (let k = 0; k <= n; k++) {
          if (links[i]![0] === n) return false
          i = links[i]![0]
          if (i === start) return true
        }
        return false
      })
      const out = await doc.submit([u])
      if (cyclic) expect(out.rejected.map((r) => r.code)).toEqual(["update-missing-deps"])
      else expect(out).toMatchObject({ stored: 1, rejected: [] })
      expect(doc.doc.store.pendingStructs).toBeNull()
    },
  ), { numRuns: 200, seed: 12 })
  await h.close()
})

/**
 * Whole CRDT documents: what the hub's work on them measures, not what it was estimated.
 * - An apply's measured time past its estimate is charged to its payer: an 18-byte Yjs insert
 *   among siblings of one origin took 377 ms (Yjs scans them) and was charged as one struct
 *   (.scratch/s35/review/y-scan-micro.mts).
 * - The stored tail is compacted once it cost as much to merge as the last encode took (at
 *   least 250 ms), not by its count: 2,048 cheap updates at the end of a 2M-struct text forced
 *   an encode of 156-253 ms each, charged to nobody (.scratch/s35/review/c1-compact-count.mts).
 * - The index build a document's first write starts after each load (`warm`) is paid by that
 *   write's payer: a writer reloading a 1M-op Automerge document and sending one change, in a
 *   loop, had the hub build 7.7 s of index per 0.8 s load it paid
 *   (.scratch/s35/tenant2/a1-warm-cycle.mts).
 *
 * Deterministic: the runtime's steady clock moves only by what the engine says its work took.
 */
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocStore, type CrdtDocEngine, type CrdtWorkBudget } from "../core/crdt-docs/index.js"
import type { Runtime } from "../core/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

/** A host whose Yjs engine's applies and encodes take `costs`' milliseconds of its steady clock. */
const setup = (costs: { apply: number; encode: number; warm?: number }) => {
  const vr = new VirtualRuntime(3)
  let busy = 0
  const runtime: Runtime = { now: () => vr.now(), setTimer: (ms, fn) => vr.setTimer(ms, fn), random: vr.random, monotonic: () => vr.now() + busy }
  const base = yjsDocEngine()
  const engine: CrdtDocEngine<Y.Doc> = Object.assign(Object.create(base) as CrdtDocEngine<Y.Doc>, {
    apply(doc: Y.Doc, updates: ReadonlyArray<Uint8Array>, stop: never, meter: never) {
      busy += costs.apply * updates.length
      return base.apply(doc, updates, stop, meter)
    },
    encode(doc: Y.Doc) {
      busy += costs.encode
      return base.encode(doc)
    },
    ...(costs.warm !== undefined ? { warm: () => ({ weight: costs.warm! * 1000, run: async () => {} }) } : {}),
  })
  const storage = new MemoryStorage()
  const host = new CrdtDocHost({ engines: [engine], storage, sync: false, runtime, work: { burstMicros: 1_000_000, microsPerSecond: 250_000 } })
  const work = (host as unknown as { work: CrdtWorkBudget }).work
  return { host, storage, work }
}

/** `n` one-character inserts at the end of a text, after a first update of `first` characters. */
const typing = (n: number, first = 1): Uint8Array[] => {
  const d = new Y.Doc()
  d.clientID = 21
  const out: Uint8Array[] = []
  d.on("update", (u: Uint8Array) => out.push(u))
  d.getText("t").insert(0, "x".repeat(first))
  for (let i = 0; i < n; i++) d.getText("t").insert(first + i, "y")
  return out
}

test("an apply's measured time past its estimate is charged to its payer: its next submit waits, another payer's does not", async () => {
  const { host, work } = setup({ apply: 2_000, encode: 0 })
  const doc = await host.open<Y.Doc>("yjs", "scan")
  const [first, second] = typing(1)
  expect((await doc.submit([first!], undefined, undefined, "p:eve")).stored).toBe(1)
  // 2 s of work for a one-struct estimate, past the 1 s burst: eve is in debt.
  expect(work.turn("p:eve")).toBeDefined()
  expect(work.turn("p:bob")).toBeUndefined()
  void second
  await host.close()
})

test("the tail is compacted once merging it cost as much as the last encode, not by its count", async () => {
  // Cheap applies, a costly encode: thousands of tiny updates and no compaction.
  const cheap = setup({ apply: 0, encode: 1_000 })
  const a = await cheap.host.open<Y.Doc>("yjs", "cheap")
  const ups = typing(2_200, 100_000)
  // The first update alone is a tail as large as a base: compacted by its bytes.
  await a.submit([ups[0]!])
  for (let i = 1; i < ups.length; i += 100) await a.submit(ups.slice(i, i + 100))
  // Before: compacted at 2,048 updates, a 1 s encode for 2,048 cheap ones.
  expect((await new CrdtDocStore(cheap.storage).load("cheap"))!.entries).toHaveLength(2_200)
  await cheap.host.close()

  // Costly applies: compacted once their time reaches the encode's (1 s: the fourth of 300 ms).
  const costly = setup({ apply: 300, encode: 1_000 })
  const b = await costly.host.open<Y.Doc>("yjs", "costly")
  const few = typing(5, 100_000)
  await b.submit([few[0]!])
  const entries = async () => (await new CrdtDocStore(costly.storage).load("costly"))!.entries.length
  for (let i = 1; i <= 3; i++) await b.submit([few[i]!])
  expect(await entries()).toBe(3)
  await b.submit([few[4]!])
  expect(await entries()).toBe(0)
  await costly.host.close()
})

test("the index build a document's first write starts is paid by that write's payer", async () => {
  const { host, work } = setup({ apply: 0, encode: 0, warm: 3_000 })
  const doc = await host.open<Y.Doc>("yjs", "indexed")
  const [first] = typing(0)
  expect((await doc.submit([first!], undefined, undefined, "p:mallory")).stored).toBe(1)
  // 3 s of estimated build, past the 1 s burst.
  expect(work.turn("p:mallory")).toBeDefined()
  expect(work.turn("p:bob")).toBeUndefined()
  await host.close()
})

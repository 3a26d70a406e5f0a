/**
 * Whole CRDT documents are loaded from storage paid for, as /sync loads are (core/crdt-docs/host.ts
 * `open`). A read-only user opened a heavy stored Automerge document (1M ops in 55 KB: 0.75 s of
 * A.load, synchronous) on /automerge, then asked for 70 ids nobody has: their empty documents
 * filled the 64 kept idle ones and pushed the heavy one out, so the next open loaded it again.
 * Uncharged and unthrottled, another user's command round trip went from 2 ms to 633 ms (p50).
 * Now a document never written is not kept; an open that loads pays a token of its payer's
 * loads bucket and the engine's measured time to its payer's work; in debt, its open is refused
 * (retried by stock clients), never queued: queued opens outlived their sockets (35,687 in 30 s
 * held 300 MB of the hub).
 *
 * Deterministic: a virtual runtime whose steady clock the engine moves by 750 ms per load (the
 * heavy load's time), counting the loads.
 */
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost, type CrdtDocEngine } from "../core/crdt-docs/index.js"
import type { Runtime } from "../core/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const LOAD_MS = 750
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

/** A host whose Yjs engine takes LOAD_MS of the steady clock per load of a stored document. */
const setup = async (options: { readonly idle?: number; readonly work?: Record<string, number> } = {}) => {
  const vr = new VirtualRuntime(7)
  let busy = 0
  const runtime: Runtime = { now: () => vr.now(), setTimer: (ms, fn) => vr.setTimer(ms, fn), random: vr.random, monotonic: () => vr.now() + busy }
  const base = yjsDocEngine()
  const loads = new Map<string, number>()
  const engine: CrdtDocEngine<Y.Doc> = Object.assign(Object.create(base) as CrdtDocEngine<Y.Doc>, {
    load(bytes: Uint8Array) {
      busy += LOAD_MS
      return base.load(bytes)
    },
    restore(doc: Y.Doc, updates: ReadonlyArray<Uint8Array>, meter: never) {
      busy += LOAD_MS
      return base.restore(doc, updates, meter)
    },
  })
  const storage = new MemoryStorage()
  const host = new CrdtDocHost({
    engines: [engine], storage, sync: false, runtime,
    ...(options.idle !== undefined ? { idleDocuments: { count: options.idle } } : {}),
    ...(options.work !== undefined ? { work: options.work } : {}),
  })
  // The heavy document: written once (the app's own open, unpaid), then left.
  const heavy = await host.open<Y.Doc>("yjs", "heavy")
  const writer = new Y.Doc()
  writer.getText("t").insert(0, "x".repeat(1000))
  expect((await heavy.submit([Y.encodeStateAsUpdate(writer)])).stored).toBe(1)
  host.release(heavy)
  await settle()
  // Out of memory: the next open reads it from storage.
  host.letGoIdle()
  await settle()
  const heavyLoads = (): number => loads.get("heavy") ?? 0
  const before = busy
  const open = async (docId: string, payer: string) => {
    const b = busy
    const doc = await host.open<Y.Doc>("yjs", docId, payer)
    if (busy > b && docId === "heavy") loads.set("heavy", heavyLoads() + 1)
    return doc
  }
  return { vr, host, open, heavyLoads, busy: () => busy - before }
}

test("/yjs, /automerge: requests for ids nobody has do not push a stored document out of the kept ones", async () => {
  // 8 kept (64 by default): within the loads burst, nothing waits.
  const { host, open, heavyLoads } = await setup({ idle: 8 })
  for (let round = 0; round < 3; round++) {
    host.release(await open("heavy", "p:reader-eve"))
    await settle()
    // More than the 8 kept: each one empty, never written.
    for (let i = 0; i < 10; i++) {
      host.release(await open(`nothing-${round}-${i}`, "p:reader-eve"))
      await settle()
    }
  }
  // Before the fix: 3 (each round's empty documents pushed it out, and it was read again).
  expect(heavyLoads()).toBe(1)
  await host.close()
})

test("/yjs, /automerge: a load is paid by its opener (a loads bucket, its measured time as work); in debt its open is refused, never queued, and other payers' opens go on", async () => {
  // Nothing kept: every open of a document nobody follows loads it again.
  const { vr, host, open, heavyLoads } = await setup({ idle: 0, work: { burstMicros: 1_000_000, microsPerSecond: 250_000, loadsPerSecond: 5, loadBurst: 10 } })
  // A reader opening it again and again for 10 s of the clock, retrying each refusal 100 ms later.
  const end = vr.now() + 10_000
  const refusals: string[] = []
  while (vr.now() < end) {
    try {
      host.release(await open("heavy", "p:reader-eve"))
    } catch (e) {
      refusals.push(`${(e as { code: string }).code}: ${(e as Error).message}`)
    }
    await settle()
    await vr.run({ forMs: 100 })
  }
  // 0.75 s of work each, at 0.25 s a second (the loads' own time included: the steady clock
  // runs 10 s + 0.75 s a load) after a 1 s burst, the last one into debt: at most 7 loads.
  // Before the fix: one a round, about 100.
  expect({ heavyLoads: heavyLoads(), within: heavyLoads() >= 3 && heavyLoads() <= 7 }).toEqual({ heavyLoads: heavyLoads(), within: true })
  expect(refusals.length).toBeGreaterThan(50)
  expect(refusals[0]).toMatch(/^doc-unavailable: This user opened documents the hub had to read from storage past 5 a second, or its work on the hub is in debt: open "heavy" again in \d+ s\.$/)
  // Refused opens left nothing waiting: no load happens for them later.
  const loaded = heavyLoads()
  await vr.run({ forMs: 60_000 })
  await settle()
  expect(heavyLoads()).toBe(loaded)
  // Another payer is not held behind eve's debt: its open loads at once.
  const at = vr.now()
  const bob = await open("heavy", "p:bob")
  expect(vr.now() - at).toBe(0)
  expect(heavyLoads()).toBe(loaded + 1)
  host.release(bob)
  await host.close()
})

test("/yjs, /automerge: loads of ids nobody has are counted too: past the loads bucket, they are refused until it refills", async () => {
  const { vr, host, open } = await setup({ work: { loadsPerSecond: 5, loadBurst: 10 } })
  const first = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => open(`nothing-${i}`, "p:reader-carol")))
  // The burst of 10 at once; the rest refused, typed, with when to come back.
  const opened = first.filter((r) => r.status === "fulfilled")
  expect(opened).toHaveLength(10)
  for (const r of opened) host.release((r as PromiseFulfilledResult<Awaited<ReturnType<typeof open>>>).value)
  const refused = first.filter((r): r is PromiseRejectedResult => r.status === "rejected")
  expect(refused).toHaveLength(20)
  for (const r of refused) expect(r.reason).toMatchObject({ code: "doc-unavailable", message: expect.stringMatching(/again in 1 s\.$/) })
  // 2 s later, 10 more at 5 a second (and no more: the bucket holds its burst at most).
  await vr.run({ forMs: 2_000 })
  const again = await Promise.allSettled(Array.from({ length: 11 }, (_, i) => open(`nothing-${10 + i}`, "p:reader-carol")))
  expect(again.map((r) => r.status)).toEqual([...new Array<string>(10).fill("fulfilled"), "rejected"])
  await host.close()
})

test("an anonymous connection's loads are paid by its address, not by the socket", async () => {
  // Imported here: the other tests of this file run on a build without it.
  const { loadPayer } = await import("../core/crdt-docs/work-budget.js")
  const a = {}, b = {}
  expect(loadPayer("anonymous", a, { remoteAddress: "203.0.113.7" })).toBe(loadPayer("anonymous", b, { remoteAddress: "203.0.113.7" }))
  expect(loadPayer("anonymous", a, { remoteAddress: "2001:db8::1", limitKey: "2001:db8::/64" })).toBe(loadPayer("anonymous", b, { remoteAddress: "2001:db8::2", limitKey: "2001:db8::/64" }))
  expect(loadPayer("alice", a, { remoteAddress: "203.0.113.7" })).toBe(loadPayer("alice", b))
  // Without an address, the socket pays (anonymous sockets never share a principal's account).
  expect(loadPayer("anonymous", a)).not.toBe(loadPayer("anonymous", b))
})

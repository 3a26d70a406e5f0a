/**
 * Whole CRDT documents are loaded from storage paid for, as /sync loads are (core/crdt-docs/host.ts
 * `open`). A read-only user opened a heavy stored Automerge document (1M ops in 55 KB: 0.75 s of
 * A.load, synchronous) on /automerge, then asked for 70 ids nobody has: their empty documents
 * filled the 64 kept idle ones and pushed the heavy one out, so the next open loaded it again.
 * Uncharged and unthrottled, another user's command round trip went from 2 ms to 633 ms (p50).
 * Now a document never written is not kept; an open that loads pays a token of its payer's
 * loads bucket and the engine's measured time to its payer's work, and waits while in debt.
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

/** Runs the virtual clock in steps of 10 ms, letting the loops between timers go on, until `done` or `forMs` is up. */
const drive = async (vr: VirtualRuntime, done: () => boolean, forMs = 60_000): Promise<void> => {
  const end = vr.now() + forMs
  while (!done() && vr.now() < end) {
    for (let j = 0; j < 5; j++) await settle()
    if (!done()) await vr.run({ forMs: Math.min(10, end - vr.now()) })
  }
}

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

test("/yjs, /automerge: a load is paid by its opener (a loads bucket, its measured time as work) and waits in debt, other payers not", async () => {
  // Nothing kept: every open of a document nobody follows loads it again.
  const { vr, host, open, heavyLoads } = await setup({ idle: 0, work: { burstMicros: 1_000_000, microsPerSecond: 250_000, loadsPerSecond: 5, loadBurst: 10 } })
  let opened = 0
  const attacker = (async () => {
    for (let i = 0; i < 40; i++) {
      host.release(await open("heavy", "p:reader-eve"))
      opened++
      await settle()
    }
  })().catch((e: unknown) => e)
  await drive(vr, () => opened === 40, 10_000)
  // 0.75 s of work each, at 0.25 s a second (the loads' own time included: the steady clock
  // runs 10 s + 0.75 s a load) after a 1 s burst, the last one into debt: n * 0.75 <= 1 +
  // 0.25 * (10 + 0.75 * n) + 0.75, at most 7 loads (6 here: one every 2.25 s).
  // Before the fix: all 40 at once, no virtual time passing.
  expect({ opened, heavyLoads: heavyLoads(), within: heavyLoads() >= 3 && heavyLoads() <= 7 }).toEqual({ opened, heavyLoads: heavyLoads(), within: true })
  // Another payer is not held behind eve's debt: its open loads at once, no virtual time passing.
  const at = vr.now()
  let bobs = false
  const bob = open("heavy", "p:bob").then((d) => {
    bobs = true
    return d
  })
  for (let i = 0; i < 5 && !bobs; i++) await settle()
  expect({ bobs, waited: vr.now() - at }).toEqual({ bobs: true, waited: 0 })
  host.release(await bob)
  // Its opens still waiting are refused as the hub shuts down, typed.
  await host.close()
  await vr.run()
  expect(await attacker).toMatchObject({ code: "doc-unavailable", message: "The hub is shutting down." })
})

test("/yjs, /automerge: loads of ids nobody has are counted too: past the loads bucket, they wait", async () => {
  const { vr, host, open } = await setup({ work: { loadsPerSecond: 5, loadBurst: 10 } })
  let empties = 0
  const at = vr.now()
  const counting = (async () => {
    for (let i = 0; i < 30; i++) {
      host.release(await open(`nothing-${i}`, "p:reader-carol"))
      empties++
      await settle()
    }
  })()
  for (let i = 0; i < 50; i++) await settle()
  // The burst of 10 at once, the rest at 5 a second.
  expect(empties).toBe(10)
  await drive(vr, () => empties === 30)
  expect(empties).toBe(30)
  // 20 more at 5 a second.
  expect(vr.now() - at).toBe(4_000)
  await counting
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

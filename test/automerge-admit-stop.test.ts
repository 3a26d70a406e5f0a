/**
 * Work in slices stops with its owner (adapters/automerge/admit.ts's StopSignal). A 150-byte
 * Automerge document chunk can carry 262,144 changes, seconds of decoding done a slice per
 * turn of the event loop. Before, nothing told that work its document had closed or its link
 * had gone: a closing hub waited for the decode to end (and then stored the upload), and a
 * replica decoded a detached peer's message to the end for nobody. In a jest worker such a
 * loop outlived its test file and showed up in the next file's quiet check (CI, closed-quiet).
 *
 * Asserted as mechanisms: what the closing hub does with the half-decoded upload (refused,
 * not stored), and how many turns of the event loop pass between the owner going and the
 * work ending (a count, not a duration: before, one per remaining slice).
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocError } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { changesOfAsync, DECODE_SLICE } from "../adapters/automerge/admit.js"
import { measureChunk } from "../adapters/automerge/validate.js"
import { AutomergeReplica, memoryLinkPair } from "../adapters/peer/index.js"
import { emptyChangesChunk } from "./support/crdt-work.js"

const CHANGES = 40_000

const chunk = emptyChangesChunk(CHANGES, "0a".repeat(16))

/** Counters still ticking: stopped after each test, whatever happened in it. */
const ticking = new Set<() => void>()
afterEach(() => {
  for (const stop of ticking) stop()
  ticking.clear()
})

/** Counts turns of the event loop (a timer per turn) until stopped. */
const turns = () => {
  let n = 0
  let on = true
  const tick = () => {
    n++
    if (on) setTimeout(tick, 0)
  }
  setTimeout(tick, 0)
  const stop = () => void (on = false)
  ticking.add(stop)
  return { get count() { return n }, stop }
}

const turnsUntil = async (cond: () => boolean, most = 10_000): Promise<void> => {
  for (let i = 0; i < most && !cond(); i++) await new Promise((r) => setTimeout(r, 0))
}

test("changesOfAsync stops at its next pause once its signal is aborted, and not before", async () => {
  const m = measureChunk(chunk, { maxOps: 1 << 20, maxInflatedBytes: 64 << 20 })
  if (!m.ok) throw new Error(m.message)
  expect((await changesOfAsync(chunk, m, { aborted: false })).length).toBe(CHANGES)
  const stop = { aborted: false }
  const t = turns()
  const decoding = changesOfAsync(chunk, m, stop)
  await turnsUntil(() => t.count >= 2)
  stop.aborted = true
  const at = t.count
  await expect(decoding).rejects.toThrow(/stopped/)
  t.stop()
  expect(t.count - at).toBeLessThanOrEqual(2)
}, 60_000)

/** The hub's Automerge engine, and a promise that resolves once it starts preparing `update`. */
const watchedEngine = (update: Uint8Array) => {
  const engine = automergeDocEngine()
  let started!: () => void
  const preparing = new Promise<void>((r) => (started = r))
  const watched: typeof engine = { ...engine, prepare: (u, stop) => (u === update && started(), engine.prepare!(u, stop)) }
  return { engine, watched, preparing }
}

test("a hub closing while it decodes a large upload stops at the next slice: the upload is refused, not stored", async () => {
  const storage = new MemoryStorage()
  const { engine, watched, preparing } = watchedEngine(chunk)
  const h = new CrdtDocHost({ engines: [watched], storage, sync: false, compactAfterBytes: 1 << 30 })
  const doc = await h.open<AutomergeBox>("automerge", "big")
  const outcome = doc.submit([chunk]).then((o) => ({ stored: o.stored }), (e: unknown) => ({ error: e }))
  await preparing
  const t = turns()
  await turnsUntil(() => t.count >= 3)
  const at = t.count
  await h.close()
  const closedAfter = t.count - at
  t.stop()
  const o = await outcome
  expect(o).toEqual({ error: expect.any(CrdtDocError) })
  expect((o as { error: CrdtDocError }).error.code).toBe("doc-unavailable")
  // Before: the close waited for every remaining slice (40 of them), then stored the upload.
  expect(closedAfter).toBeLessThan(CHANGES / DECODE_SLICE / 4)
  const again = new CrdtDocHost({ engines: [engine], storage, sync: false })
  const reloaded = await again.open<AutomergeBox>("automerge", "big")
  expect(A.getAllChanges(reloaded.doc.doc).length).toBe(0)
  await again.close()
}, 60_000)

test("what a closing hub cut short is not half kept: an update queued behind it, depending on a change of it, is refused too, and the store loads", async () => {
  const storage = new MemoryStorage()
  const heavy = emptyChangesChunk(CHANGES, "0b".repeat(16))
  const { engine, watched, preparing } = watchedEngine(heavy)
  const h = new CrdtDocHost({ engines: [watched], storage, sync: false, compactAfterBytes: 1 << 30 })
  const doc = await h.open<AutomergeBox>("automerge", "d")
  const settled = (p: Promise<{ stored: number }>) => p.then((o) => `stored ${o.stored}`, (e: CrdtDocError) => e.code)
  // One batch in flight (w); x and the heavy chunk then form the next batch, x applied first.
  const w = A.change(A.init<Record<string, number>>({ actor: "0c".repeat(16) }), (d) => { d.w = 1 })
  const x = A.change(A.init<Record<string, number>>({ actor: "0d".repeat(16) }), (d) => { d.x = 1 })
  const y = A.change(x, (d) => { d.y = 1 })
  const outcomes = [doc.submit([A.getLastLocalChange(w)!]), doc.submit([A.getLastLocalChange(x)!]), doc.submit([heavy])].map(settled)
  await preparing
  // Queued behind them: a change that depends on x.
  outcomes.push(settled(doc.submit([A.getLastLocalChange(y)!])))
  await h.close()
  const [ow, ox, oHeavy, oy] = await Promise.all(outcomes)
  expect([ow, ox, oHeavy]).toEqual(["stored 1", "doc-unavailable", "doc-unavailable"])
  // Stored on top, y would depend on an x that never was, and the document would no longer load.
  expect(oy).toBe("doc-unavailable")
  const again = new CrdtDocHost({ engines: [engine], storage, sync: false })
  const reloaded = await again.open<AutomergeBox>("automerge", "d")
  expect(reloaded.doc.doc).toEqual({ w: 1 })
  await again.close()
}, 60_000)

test("a replica stops decoding a peer's large message at the next slice once that link is detached", async () => {
  const errors: string[] = []
  const replica = new AutomergeReplica(A.init<unknown>(), { onError: (e) => errors.push(e.code) })
  const [mine, theirs] = memoryLinkPair()
  const detach = replica.attach(mine)
  const message = A.encodeSyncMessage({ heads: [], need: [], have: [{ lastSync: [], bloom: new Uint8Array() }], changes: [chunk] } as unknown as A.DecodedSyncMessage)
  const t = turns()
  theirs.send(message)
  // Into the decode: a few slices done.
  await turnsUntil(() => t.count >= 5)
  detach()
  const at = t.count
  await replica.idle()
  const after = t.count - at
  t.stop()
  // Before: one turn per remaining slice (about 35).
  expect(after).toBeLessThan(CHANGES / DECODE_SLICE / 4)
  expect(A.getAllChanges(replica.doc).length).toBe(0)
  expect(errors).toEqual([])
}, 60_000)

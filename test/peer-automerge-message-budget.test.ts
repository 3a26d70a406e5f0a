/**
 * ATTACK REVIEW 2 (high, event-loop block / CPU amplification): an Automerge document chunk
 * of empty changes is a few bytes per thousand changes, and AutomergeReplica decodes every
 * change of every chunk of a message (A.load + getAllChanges + decodeChange each) before
 * looking at whether it already has them. One ~1 KB sync message blocks the victim's event
 * loop for seconds; the same message sent again costs the same again.
 *
 * Mechanism: measureChunk bounds one chunk to maxChangeOps (262,144) "ops, preds or changes",
 * but nothing bounds the work per byte or per message: 20,000 empty changes of one actor
 * save to 123 bytes (columns RLE/delta encoded), and changesOf() turns them into 20,000
 * decoded changes (~45 us each). changesIn() runs measureChunkAsync + changesOf for every
 * chunk of `message.changes` (no de-duplication of identical chunks, no per-message bound
 * on changes), and the `known(c.hash)` filter runs only after all of them are decoded. The
 * awaits in between resolve as microtasks, so timers and sockets starve meanwhile.
 *
 * Measured: one 123-byte chunk of 20,000 changes ~0.9 s; the same chunk 8 times in one
 * ~1 KB message: ~7 s of blocked event loop. At the bound (262,144 changes per chunk,
 * ~150 bytes) it is ~12 s per chunk, so a 64 KB message is hours.
 */
import * as A from "@automerge/automerge"
import { AutomergeReplica, memoryLinkPair } from "../adapters/peer/index.js"
import { sleep } from "./support/ws.js"
import { attach } from "./support/replicas.js"

// What the fix does, asserted without wall-clock thresholds (CI machines are shared): the op
// budget is the message's, a chunk repeated in a message is read once, and decoding a large
// chunk gives the event loop turns.

/** A document chunk of `n` empty changes by one actor (about 123 bytes for 20,000). */
const emptyChanges = (n: number, actor: string): Uint8Array => {
  let doc = A.init<{ x?: number }>({ actor })
  for (let i = 0; i < n; i++) doc = A.emptyChange(doc)
  return A.save(doc)
}

const message = (chunks: Uint8Array[]): Uint8Array =>
  A.encodeSyncMessage({ heads: [], need: [], have: [{ lastSync: [], bloom: new Uint8Array() }], changes: chunks } as unknown as A.DecodedSyncMessage)

const victim = (maxChangeOps?: number) => {
  const errors: string[] = []
  const replica = new AutomergeReplica(A.init<{ x?: number }>(), { ...(maxChangeOps !== undefined ? { maxChangeOps } : {}), onError: (e) => errors.push(e.code) })
  const [mine, theirs] = memoryLinkPair()
  attach(replica, mine)
  return { replica, errors, send: async (bytes: Uint8Array) => { theirs.send(bytes); await sleep(0); await replica.idle() } }
}

test("the op budget is the message's: two chunks of 20,000 changes pass a 30,000 budget one at a time, not together", async () => {
  const first = emptyChanges(20_000, "aa".repeat(16))
  const second = emptyChanges(20_000, "bb".repeat(16))
  expect(first.length).toBeLessThan(200)
  const alone = victim(30_000)
  await alone.send(message([first]))
  expect(alone.errors).toEqual([])
  expect(A.getAllChanges(alone.replica.doc).length).toBe(20_000)
  const together = victim(30_000)
  await together.send(message([first, second]))
  expect(together.errors).toEqual(["update-too-large"])
  expect(A.getAllChanges(together.replica.doc).length).toBe(0)
}, 60_000)

test("a chunk repeated in a message is read once (8 copies fit the budget of one), and decoding yields to the event loop", async () => {
  const chunk = emptyChanges(20_000, "cc".repeat(16))
  const v = victim(30_000)
  let turns = 0
  const tick = setInterval(() => turns++, 0)
  await v.send(message(Array.from({ length: 8 }, () => chunk)))
  clearInterval(tick)
  expect(v.errors).toEqual([])
  expect(A.getAllChanges(v.replica.doc).length).toBe(20_000)
  // Timers ran while the 20,000 changes were decoded (slices of 1,000).
  expect(turns).toBeGreaterThan(5)
}, 60_000)

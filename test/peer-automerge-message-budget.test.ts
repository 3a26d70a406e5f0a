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

test("a 1 KB sync message repeating a tiny chunk of many empty changes does not block the event loop for seconds", async () => {
  let forged = A.init<{ x?: number }>()
  for (let i = 0; i < 20_000; i++) forged = A.emptyChange(forged)
  const chunk = A.save(forged)
  const replica = new AutomergeReplica(A.init<{ x?: number }>())
  const [victim, attacker] = memoryLinkPair()
  replica.attach(victim)
  await sleep(20)
  const msg = A.encodeSyncMessage({ heads: A.getHeads(forged), need: [], have: [{ lastSync: [], bloom: new Uint8Array() }], changes: Array.from({ length: 8 }, () => chunk) } as unknown as A.DecodedSyncMessage)
  let maxGap = 0
  let last = Date.now()
  const tick = setInterval(() => { const now = Date.now(); maxGap = Math.max(maxGap, now - last); last = now }, 10)
  const t0 = Date.now()
  attacker.send(msg)
  await sleep(0)
  await replica.idle()
  await sleep(30)
  clearInterval(tick)
  console.log(`chunk ${chunk.length} bytes, message ${msg.length} bytes: handled in ${Date.now() - t0} ms, longest event-loop gap ${maxGap} ms`)
  expect(msg.length).toBeLessThan(2_000)
  expect(maxGap).toBeLessThan(2_000)
}, 30_000)

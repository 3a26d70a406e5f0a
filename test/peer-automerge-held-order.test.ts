/**
 * ATTACK REVIEW 3 (high, event-loop block): AutomergeReplica.takeReady was quadratic in the
 * number of changes of one message when a peer lists them in reverse causal order, and ran
 * synchronously: a 215 KB sync message blocked the victim's event loop for ~10 s (4,000
 * changes, 288 KB: ~20 s; the op budget allows 262,144 changes per message: hours).
 *
 * Mechanism: every change of the message goes into `held` in the order the message lists it.
 * takeReady made passes over `held` in that order, each pass taking only the changes whose
 * deps were taken in an earlier pass or in this pass before them. A chain c1 <- c2 <- ... <- cN
 * listed as cN, ..., c1 took one change per pass: N passes over N entries, and for each entry
 * not yet ready it asked the WebAssembly backend (getChangeByHash) again.
 *
 * The test counts those questions rather than timing them (a shared machine's clock is noise):
 * linear, the reversed message asks about as often as the same message in causal order (the
 * control), a few per change; quadratic, it asked about N²/2 times (500,000 for N = 1,000).
 */
import * as A from "@automerge/automerge"
import { AutomergeReplica, memoryLinkPair } from "../adapters/peer/index.js"
import { sleep } from "./support/ws.js"

const N = 1_000

/** The backend's prototype: every document's getChangeByHash is this one method. */
const backendPrototype = Object.getPrototypeOf(A.getBackend(A.init())) as { getChangeByHash: (hash: string) => unknown }

const deliver = async (changes: Uint8Array[], heads: string[]): Promise<{ lookups: number; synced: boolean }> => {
  const replica = new AutomergeReplica(A.init<{ x?: number }>())
  const [victim, attacker] = memoryLinkPair()
  const detach = replica.attach(victim)
  await sleep(20)
  const msg = A.encodeSyncMessage({ heads, need: [], have: [{ lastSync: [], bloom: new Uint8Array() }], changes } as unknown as A.DecodedSyncMessage)
  const original = backendPrototype.getChangeByHash
  let lookups = 0
  backendPrototype.getChangeByHash = function (this: unknown, hash: string) {
    lookups++
    return original.call(this, hash)
  }
  try {
    attacker.send(msg)
    await sleep(0)
    await replica.idle()
    return { lookups, synced: A.getHeads(replica.doc).join() === heads.join() }
  } finally {
    backendPrototype.getChangeByHash = original
    detach()
    victim.close()
  }
}

test("a sync message listing a chain of changes in reverse order costs no more than in causal order", async () => {
  let forged = A.init<{ x?: number }>()
  for (let i = 0; i < N; i++) forged = A.emptyChange(forged)
  const changes = A.getAllChanges(forged)
  const heads = A.getHeads(forged)
  const control = await deliver([...changes], heads)
  const reversed = await deliver([...changes].reverse(), heads)
  console.log(`${N} changes: ${control.lookups} backend lookups in causal order, ${reversed.lookups} in reverse order`)
  expect(control.synced).toBe(true)
  expect(reversed.synced).toBe(true)
  // Each change is looked up a bounded number of times, whatever the order.
  expect(control.lookups).toBeGreaterThanOrEqual(N)
  expect(reversed.lookups).toBeLessThanOrEqual(Math.max(2 * control.lookups, 4 * N))
}, 60_000)

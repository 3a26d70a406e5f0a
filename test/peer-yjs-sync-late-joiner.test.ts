/**
 * ATTACK REVIEW 2 (high, honest convergence): over a BroadcastChannel, a YSyncSession that
 * opened while nobody else was on the channel never receives the content of a replica that
 * joins later, and drops every later update of that replica, for good.
 *
 * Mechanism: the first member's handshake() sends step1 and sets awaitingStep2 = true. Nobody
 * hears that step1, so no step2 ever comes; a BroadcastChannel never closes/reopens, so
 * nothing resets awaitingStep2. The late joiner B sends its own step1 (A answers it: B gets
 * A's content) but B never sends A a step2 of its offline content. Every later update of B
 * depends on that content: A's apply() sees reason "missing", counts resyncs++, and re-runs
 * the handshake only `if (!this.awaitingStep2 ...)` - which stays true forever. So the
 * missing-dependency recovery the hardening added never fires on exactly the link type
 * (several peers, no reopen) it was meant for; A's `synced` stays false and whenSynced()
 * never resolves.
 *
 * Measured: A = "A-", B = "A-later-offline-b" after 1 s; A.synced false, A.resyncs 1 (and
 * grows with each of B's edits, all dropped).
 */
import * as Y from "yjs"
import { YSyncSession, broadcastChannelLink } from "../adapters/peer/index.js"
import { sleep, until } from "./support/ws.js"

test("a replica that joins a BroadcastChannel later with offline edits converges with the one already there", async () => {
  const name = `review2-ybc-${Math.random()}`
  const a = new Y.Doc()
  const la = broadcastChannelLink(name)
  const sa = new YSyncSession(a, la)
  await sleep(100)
  const b = new Y.Doc()
  b.getText("t").insert(0, "offline-b")
  const lb = broadcastChannelLink(name)
  const sb = new YSyncSession(b, lb)
  await sleep(200)
  b.getText("t").insert(0, "later-")
  a.getText("t").insert(0, "A-")
  const same = () => a.getText("t").toString() === b.getText("t").toString()
  const converged = await until(same, 3_000, 20)
  console.log(`A=${JSON.stringify(a.getText("t").toString())} B=${JSON.stringify(b.getText("t").toString())} A.synced=${sa.synced} A.resyncs=${sa.resyncs}`)
  try {
    expect(converged).toBe(true)
    expect(a.getText("t").toString()).toContain("offline-b")
  } finally {
    sa.destroy(); sb.destroy(); la.close(); lb.close()
  }
})

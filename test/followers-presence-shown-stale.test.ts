/**
 * A `shown` entry set for a newcomer still waiting for its catch-up (by a drain of what it
 * was owed) is not deleted by the relay that skips newcomers (followers.ts broadcastPresence:
 * the presenceJoined `continue` comes before the shown check). The newcomer's catch-up then
 * shows another state of that client without replacing the entry (the change is no longer
 * queued), and a later relay whose holder's message is the stale entry's object is skipped:
 * the newcomer keeps showing a state the client no longer has.
 *
 * Client X has two connections, X1 (earlier) and X2; client Z's second connection N is the
 * newcomer, its catch-up held back by Z's presence budget (Z1 relayed a large presence).
 * A review of the `shown` commit; fails on it. Fixed: a newcomer waiting for its catch-up is
 * sent leaves only, and a due state sent without a queued relay clears its entry.
 */
import { WirePeer, hubWorld } from "./support/hub-wire.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"

type World = ReturnType<typeof hubWorld>
const presences = (p: WirePeer) => p.received.filter((m): m is Extract<ServerMessage, { type: "presence" }> => m.type === "presence")

const peerAs = async (w: World, clientId: string, secret: string): Promise<WirePeer> => {
  const p = new WirePeer(clientId)
  p.listener = w.hub.accept(p.conn, { remoteAddress: `test:${clientId}:${Math.random()}` })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret })
  await w.run(5)
  if (!p.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} not welcomed: ${JSON.stringify(p.received)}`)
  return p
}

test("a newcomer is shown a client's current state after its other connection clears", async () => {
  // A tiny high-water mark: a stalled newcomer is paused by its "synced" alone.
  const w = hubWorld({ highWaterMark: 50, limits: { maxPresenceBytes: 2 << 20 } as never })
  const xs = newClientSecret(w.rt)
  const zs = newClientSecret(w.rt)
  const x1 = await peerAs(w, "clientx00000", xs)
  const x2 = await peerAs(w, "clientx00000", xs)
  const z1 = await peerAs(w, "clientz00000", zs)
  const r = await w.peer()
  for (const p of [x1, x2, z1, r]) w.subscribe(p, "room")
  x1.send({ type: "presence-set", docId: "room", state: { who: "x1", v: 0 } })
  await w.run(200)
  // Z's presence, relayed to 3 receivers (~4.5 MB), puts client Z in debt for some seconds.
  z1.send({ type: "presence-set", docId: "room", state: { big: "z".padEnd(1_500_000, "z") } })
  await w.run(60)
  // Z's second connection comes, not reading: its catch-up waits for Z's budget.
  const n = await peerAs(w, "clientz00000", zs)
  n.stall()
  w.subscribe(n, "room")
  await w.run(300)
  // X1 clears its presence: X is gone to everyone; the paused newcomer is owed the leave.
  x1.send({ type: "presence-set", docId: "room", state: null })
  await w.run(50)
  // X1 sets a state again; the newcomer reads, and is sent it (what it was owed) before the relay.
  x1.send({ type: "presence-set", docId: "room", state: { who: "x1", v: 1 } })
  n.read()
  await w.run(100)
  // X2 sets its state: X looks like X2 now (relayed to N at its catch-up).
  x2.send({ type: "presence-set", docId: "room", state: { who: "x2" } })
  await w.run(6_000)
  const caughtUp = presences(n).filter((m) => m.clientId === "clientx00000").map((m) => m.state)
  expect(caughtUp.at(-1)).toEqual({ who: "x2" })
  // X2 clears: X looks like X1 again, to everyone.
  x2.send({ type: "presence-set", docId: "room", state: null })
  await w.run(500)
  expect(presences(r).filter((m) => m.clientId === "clientx00000").at(-1)?.state).toEqual({ who: "x1", v: 1 })
  const seen = presences(n).filter((m) => m.clientId === "clientx00000").map((m) => m.state)
  expect(seen.at(-1)).toEqual({ who: "x1", v: 1 })
  await w.hub.close()
}, 60_000)

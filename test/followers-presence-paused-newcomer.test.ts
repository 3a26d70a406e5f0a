/**
 * A newcomer paused while it waits for its catch-up is owed a client's leave; the client
 * comes back, and the newcomer, draining, is sent its state (what it was owed, as it is now).
 * Its catch-up then sends that same message again (DESIGN.md 6: "each state once"). A review
 * of the `shown` commit; fails on it. Fixed: such a newcomer is sent leaves only until its
 * catch-up.
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
  if (!p.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} not welcomed`)
  return p
}

test("a newcomer sent a state while it waited for its catch-up is not sent it again by the catch-up", async () => {
  const w = hubWorld({ highWaterMark: 50, limits: { maxPresenceBytes: 2 << 20 } as never })
  const zs = newClientSecret(w.rt)
  const x = await w.peer()
  const z1 = await peerAs(w, "clientz00000", zs)
  const r = await w.peer()
  for (const p of [x, z1, r]) w.subscribe(p, "room")
  x.send({ type: "presence-set", docId: "room", state: { v: 0 } })
  await w.run(200)
  z1.send({ type: "presence-set", docId: "room", state: { big: "z".padEnd(1_500_000, "z") } })
  await w.run(60)
  const n = await peerAs(w, "clientz00000", zs)
  n.stall()
  w.subscribe(n, "room")
  await w.run(300)
  x.send({ type: "presence-set", docId: "room", state: null })
  await w.run(50)
  x.send({ type: "presence-set", docId: "room", state: { v: 1 } })
  n.read()
  await w.run(6_000)
  const seen = presences(n).filter((m) => m.clientId === x.clientId)
  expect(seen.map((m) => m.state)).toEqual([{ v: 1 }])
  await w.hub.close()
}, 60_000)

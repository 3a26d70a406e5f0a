/**
 * A client's queued presence change keeps the connection that made it, if one alone did: it
 * is not told (Followers `presenceChanged`, a12a9f8). A connection that subscribes again is a
 * new follower object with the same connection (it keeps its presence and what it was told),
 * and the change it made just before was still noted as the old object's: at the tick the
 * connection was told its own change, as a relay of how its client looks to it (its other
 * connection's state again, which it had; or its client gone, which it never saw).
 */
import { WirePeer, hubWorld } from "./support/hub-wire.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"

type World = ReturnType<typeof hubWorld>
const presences = (p: WirePeer, clientId: string) =>
  p.received.filter((m): m is Extract<ServerMessage, { type: "presence" }> => m.type === "presence" && m.clientId === clientId).map((m) => m.state)

const peerAs = async (w: World, clientId: string, secret: string, address: string): Promise<WirePeer> => {
  const p = new WirePeer(clientId)
  p.listener = w.hub.accept(p.conn, { remoteAddress: address })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret })
  await w.run(5)
  if (!p.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} not welcomed`)
  return p
}

test("a connection that sets its presence and subscribes again is not told its own change", async () => {
  const w = hubWorld()
  const xs = newClientSecret(w.rt)
  const x1 = await peerAs(w, "clientx00000", xs, "test:x1")
  const x2 = await peerAs(w, "clientx00000", xs, "test:x2")
  const r = await w.peer()
  for (const p of [x1, x2, r]) {
    w.subscribe(p, "room")
    await w.run(10)
  }
  x2.send({ type: "presence-set", docId: "room", state: { who: "x2" } })
  await w.run(200)
  expect(presences(x1, "clientx00000")).toEqual([{ who: "x2" }])
  // X1 sets its presence and subscribes again (a replica resyncing) before the tick.
  x1.send({ type: "presence-set", docId: "room", state: { who: "x1" } })
  w.subscribe(x1, "room")
  await w.run(200)
  expect(presences(x1, "clientx00000")).toEqual([{ who: "x2" }])
  expect(presences(x2, "clientx00000")).toEqual([{ who: "x1" }])
  await w.hub.close()
}, 30_000)

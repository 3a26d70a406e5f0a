/**
 * A client of two connections is shown to the others as one of them (the later one holding a
 * presence: followers.ts `latestPresence`). A change by its other connection, or that one
 * leaving, changes nothing the others see, yet the relay sent every other follower the shown
 * connection's state again: one message object they already had, per change, to every
 * receiver (the app heard the same presence again each time; DESIGN.md 6, "each state once").
 * Found by an attack review.
 */
import { WirePeer, hubWorld } from "./support/hub-wire.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"

type World = ReturnType<typeof hubWorld>
const presences = (p: WirePeer, clientId: string) =>
  p.received.filter((m): m is Extract<ServerMessage, { type: "presence" }> => m.type === "presence" && m.clientId === clientId).map((m) => m.state)

const peerAs = async (w: World, clientId: string, secret: string): Promise<WirePeer> => {
  const p = new WirePeer(clientId)
  p.listener = w.hub.accept(p.conn, { remoteAddress: `test:${clientId}:${Math.random()}` })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret })
  await w.run(5)
  if (!p.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} not welcomed`)
  return p
}

test("a change by a client's connection that is not the one shown is not relayed to the others as the shown state again", async () => {
  const w = hubWorld()
  const xs = newClientSecret(w.rt)
  const x1 = await peerAs(w, "clientx00000", xs)
  const x2 = await peerAs(w, "clientx00000", xs)
  const r = await w.peer()
  for (const p of [x1, x2, r]) {
    w.subscribe(p, "room")
    await w.run(10)
  }
  x2.send({ type: "presence-set", docId: "room", state: { who: "x2" } })
  await w.run(200)
  for (let i = 0; i < 10; i++) {
    x1.send({ type: "presence-set", docId: "room", state: { who: "x1", i } })
    await w.run(100)
  }
  // X1 leaves: X still looks like X2.
  x1.send({ type: "unsubscribe", docId: "room" })
  await w.run(200)
  expect(presences(r, "clientx00000")).toEqual([{ who: "x2" }])
  // X2 clears (X1 has left): X is gone.
  x2.send({ type: "presence-set", docId: "room", state: null })
  await w.run(200)
  expect(presences(r, "clientx00000")).toEqual([{ who: "x2" }, null])
  // X2 sees X1's states (its own client's other connection) as they change.
  expect(presences(x2, "clientx00000")).toEqual([...Array.from({ length: 10 }, (_, i) => ({ who: "x1", i })), null])
  await w.hub.close()
}, 30_000)

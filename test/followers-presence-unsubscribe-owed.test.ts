/**
 * A document closed and opened again on one connection: what the hub sent the old
 * subscription may still be on its way, and the client routes it by docId to the new Doc
 * (followers-presence-reopen). A follower paused with a leave owed (presenceDue) that
 * unsubscribed had that leave dropped (`stop` clears it, the follower is gone); the state it
 * was sent before the pause, still in its buffer, then reached the reopened Doc, and the
 * newcomer's catch-up lists only clients that are here: the departed client was shown for
 * good. The same without a pause: a state in flight, the client's leave relayed on a tick
 * between the unsubscribe and the subscribe (to followers only, which the connection was not).
 * Found by an attack review (a model check of views under random churn).
 */
import { hubWorld } from "./support/hub-wire.js"
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

test("a leave owed to a paused follower that unsubscribes reaches its connection's next subscription", async () => {
  const w = hubWorld({ highWaterMark: 50 })
  const x = await w.peer()
  const n = await w.peer()
  for (const p of [x, n]) w.subscribe(p, "room")
  x.send({ type: "presence-set", docId: "room", state: { v: 0 } })
  await w.run(300)
  expect(n.of("presence", "room").at(-1)?.state).toEqual({ v: 0 })
  n.stall()
  // Into n's buffer: over the high-water mark.
  x.send({ type: "presence-set", docId: "room", state: { v: 1, pad: "p".repeat(100) } })
  await w.run(100)
  // X leaves: n is paused, owed the leave.
  x.send({ type: "presence-set", docId: "room", state: null })
  await w.run(100)
  // n's app closes the document and opens it again (its buffer still holds { v: 1 }).
  n.send({ type: "unsubscribe", docId: "room" })
  w.subscribe(n, "room")
  await w.run(100)
  n.read()
  await w.run(3_000)
  // What reached the reopened Doc about X ends with X gone.
  expect(n.of("presence", "room").filter((m) => m.clientId === x.clientId).at(-1)?.state).toBeNull()
  await w.hub.close()
}, 30_000)

const reopen = async (closeMs: number, clearMs: number) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 100, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const a = await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a" })
  const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b" })
  const ad = await a.open(Todo, "board")
  const bd = await b.open(Todo, "board")
  ad.setPresence({ name: "Ada" })
  await rt.run({ forMs: 1_000 })
  ad.setPresence({ name: "Ada", x: 1 })
  // b closes the board as the relay of { x: 1 } is on its way, and opens it again a little later.
  await rt.run({ forMs: 150 + closeMs })
  await bd.close()
  await rt.run({ forMs: clearMs })
  ad.setPresence(null)
  await rt.run({ forMs: 60 - clearMs })
  const bd2 = await b.open(Todo, "board")
  await rt.run({ forMs: 1_000 })
  const ghost = bd2.presence.get("a")
  await a.close()
  await b.close()
  await hub.close()
  return ghost
}

test("a client that left while a document was closed is not shown when it is opened again on the connection", async () => {
  const ghosts: Array<{ closeMs: number; clearMs: number; ghost: unknown }> = []
  for (let closeMs = 0; closeMs < 60; closeMs += 10) {
    for (const clearMs of [0, 10, 20, 40]) {
      const ghost = await reopen(closeMs, clearMs)
      if (ghost !== undefined) ghosts.push({ closeMs, clearMs, ghost })
    }
  }
  expect(ghosts).toEqual([])
})

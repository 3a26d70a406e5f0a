/**
 * Presence: ephemeral per-document state relayed by the hub, never in the log, gone when a
 * client leaves, resent on reconnect; relayed on the document's tick (50 ms), latest wins.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { hubWorld } from "./support/hub-wire.js"

const setup = async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, backoff: { baseMs: 10, maxMs: 50 } })
    return { client, doc: await client.open(Todo, "board") }
  }
  return { rt, net, hub, open }
}

test("a client sees who else is here, their updates, and their leaving; nothing enters the log", async () => {
  const { rt, hub, open } = await setup()
  const a = await open("a")
  a.doc.setPresence({ name: "Ada", colour: "#c33", editing: null })
  await rt.run({ forMs: 100 })
  const b = await open("b")
  await rt.run({ forMs: 100 })
  expect(b.doc.presence.get(a.client.clientId)).toEqual({ name: "Ada", colour: "#c33", editing: null })
  b.doc.setPresence({ name: "Bo", colour: "#33c", editing: "card-1" })
  a.doc.setPresence({ name: "Ada", colour: "#c33", editing: "card-2" })
  await rt.run({ forMs: 100 })
  expect(a.doc.presence.get(b.client.clientId)).toMatchObject({ editing: "card-1" })
  expect(b.doc.presence.get(a.client.clientId)).toMatchObject({ editing: "card-2" })
  expect(a.doc.presence.has(a.client.clientId)).toBe(false)
  await b.client.close()
  await rt.run({ forMs: 100 })
  expect(a.doc.presence.has(b.client.clientId)).toBe(false)
  expect((await hub.doc("board", Todo)).headSeq).toBe(0)
})

test("presence is resent after a reconnect and cleared while offline", async () => {
  const { rt, net, open } = await setup()
  const a = await open("a")
  const b = await open("b")
  a.doc.setPresence({ name: "Ada" })
  // A tick for b's catch-up (b's subscribe reaches the hub after a's presence), and the network.
  await rt.run({ forMs: 100 })
  expect(b.doc.presence.size).toBe(1)
  const seen: unknown[] = []
  b.doc.on("presence", (e) => seen.push(e.state))
  net.drop("b")
  await rt.run({ forMs: 5 })
  expect(b.doc.presence.size).toBe(0)
  await rt.run({ forMs: 500 })
  expect(b.doc.presence.get(a.client.clientId)).toEqual({ name: "Ada" })
  expect(seen).toContainEqual(null)
  net.drop("a")
  await rt.run({ forMs: 500 })
  expect(b.doc.presence.get(a.client.clientId)).toEqual({ name: "Ada" })
})

test("oversized presence is refused with a sentence", async () => {
  const { rt, open } = await setup()
  const a = await open("a")
  const b = await open("b")
  const errors: string[] = []
  a.doc.on("error", (e) => errors.push(e.code))
  a.doc.setPresence({ blob: "x".repeat(10_000) })
  await rt.run({ forMs: 50 })
  expect(errors).toEqual(["presence-too-large"])
  expect(b.doc.presence.size).toBe(0)
})

test("a client's presence changes reach each other follower at most once a tick, the latest: a sender within its message rate cannot make the hub send every follower every change", async () => {
  const w = hubWorld({})
  const sender = await w.peer()
  const followers = [await w.peer(), await w.peer(), await w.peer()]
  for (const p of [sender, ...followers]) w.subscribe(p, "room")
  await w.run(100)
  // 200 changes in 20 ms: before, 200 messages to each follower.
  for (let i = 0; i < 200; i++) {
    sender.send({ type: "presence-set", docId: "room", state: { x: i } })
    if (i % 50 === 49) await w.run(5)
  }
  await w.run(200)
  for (const f of followers) {
    const seen = f.of("presence", "room").filter((m) => m.clientId === sender.clientId)
    expect(seen.length).toBeLessThanOrEqual(2)
    expect(seen[seen.length - 1]!.state).toEqual({ x: 199 })
  }
})

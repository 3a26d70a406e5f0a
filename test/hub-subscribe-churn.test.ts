/**
 * A client subscribing to fresh documents as fast as its message rate allows (and leaving
 * them at once) makes the hub load a document per subscribe, each from storage. Two bounds
 * keep that from taking the hub (hub.ts `withinLimits`, `receive`):
 * - what one connection sent and the hub has not handled yet is bounded in messages
 *   (`maxQueuedMessages`): past it the connection is not read until half is handled, so a
 *   flood waits in the sender's socket, not in the hub's memory;
 * - document loads cost a client tokens of its own bucket (`loadsPerSecond`, `loadBurst`),
 *   shared by its connections: past it the connection is held like one past its command rate
 *   (closed `rate-limited` on a transport that cannot pause). Another client is not slowed.
 * Virtual time, a memory network that can pause, a storage whose reads take time.
 */
import { Hub, type ClientMessage, type HubEvent, type ServerMessage } from "../core/index.js"
import type { Connection, ConnectionAcceptor } from "../core/ports/transport.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { DEFAULT_LIMITS, type HubLimits } from "../core/authority/limits.js"
import { Todo } from "./support/machines.js"
import { hubWorld } from "./support/hub-wire.js"

const subscribe = (docId: string): ClientMessage =>
  ({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })

/** A hub on a memory network whose storage reads take 1 ms; counts what each connection delivered to it. */
const world = (limits: Partial<HubLimits>) => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const events: HubEvent[] = []
  const storage = new MemoryStorage({ latency: { runtime: rt, ms: () => 2, readMs: () => 1 } })
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, limits, onEvent: (e) => events.push(e) })
  const delivered: number[] = []
  const counting: ConnectionAcceptor = {
    accept: (conn, info) => {
      const i = delivered.push(0) - 1
      const listener = hub.accept(conn, info)
      return { onMessage: (m) => (delivered[i]!++, listener.onMessage(m)), onClose: (c) => listener.onClose(c) }
    },
  }
  net.listen(counting)
  /** A raw peer that said hello; records what the hub sends it. */
  const secrets = new Map<string, string>()
  const peer = async (name: string) => {
    const received: ServerMessage[] = []
    let closed: string | undefined
    const conn: Connection<ClientMessage> = net.transport(name).connect({ onMessage: (m) => received.push(m), onClose: (c) => (closed = c.code) })
    const clientId = `${name}`.padEnd(16, "0")
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: secrets.get(name) ?? secrets.set(name, newClientSecret(rt)).get(name)! })
    for (let t = 0; t < 1000 && !received.some((m) => m.type === "welcome"); t += 5) await rt.run({ forMs: 5 })
    if (!received.some((m) => m.type === "welcome")) throw new Error(`${name} was not welcomed: ${JSON.stringify(received)}`)
    return { conn, received, closed: () => closed, synced: () => received.filter((m) => m.type === "synced").length }
  }
  return { rt, hub, events, delivered, peer }
}

test("a connection flooding subscribes is not read past maxQueuedMessages while the hub works through them; every one is answered, in order", async () => {
  const { rt, hub, delivered, peer } = world({ maxQueuedMessages: 64, loadsPerSecond: 1e9, loadBurst: 1e9 })
  const churner = await peer("churner")
  const N = 600
  for (let i = 0; i < N; i++) {
    churner.conn.send(subscribe(`fresh-${i}`))
    churner.conn.send({ type: "unsubscribe", docId: `fresh-${i}` })
  }
  // What the hub has taken from the connection and not answered yet: a subscribe is answered
  // `synced` once its document is loaded, its unsubscribe right after.
  let most = 0
  let reported = 0
  for (let t = 0; t < 20_000 && churner.synced() < N; t += 5) {
    await rt.run({ forMs: 5 })
    most = Math.max(most, delivered[0]! - 1 - 2 * churner.synced())
    reported = Math.max(reported, hub.stats().mostQueuedMessages)
  }
  // What the hub says it holds (its stats) is the bound too.
  expect(reported).toBeGreaterThan(32)
  expect(reported).toBeLessThanOrEqual(65)
  expect(churner.synced()).toBe(N)
  expect(churner.closed()).toBeUndefined()
  expect(churner.received.filter((m) => m.type === "synced").map((m) => (m as { docId: string }).docId)).toEqual(Array.from({ length: N }, (_, i) => `fresh-${i}`))
  // The bound, plus the messages a delivery in flight carries past the pause.
  expect(most).toBeLessThanOrEqual(64 + 2)
  expect(most).toBeGreaterThan(32)
})

test("document loads are charged to the client: a churner is held to loadsPerSecond after its burst, another client is not slowed", async () => {
  const { rt, events, peer } = world({ loadsPerSecond: 50, loadBurst: 100 })
  const churner = await peer("churner")
  const honest = await peer("honest")
  let i = 0
  const seconds = 4
  for (let t = 0; t < seconds * 1000; t += 50) {
    // 20 subscribes and their unsubscribes every 50 ms: 800 messages a second, within the message rate.
    for (let j = 0; j < 20; j++, i++) {
      churner.conn.send(subscribe(`churn-${i}`))
      churner.conn.send({ type: "unsubscribe", docId: `churn-${i}` })
    }
    await rt.run({ forMs: 50 })
  }
  // The burst, then the rate (a load in flight as the hold begins counts once more).
  expect(churner.synced()).toBeGreaterThanOrEqual(100 + 50 * (seconds - 1))
  expect(churner.synced()).toBeLessThanOrEqual(100 + 50 * seconds + 5)
  expect(events.some((e) => e.type === "limit" && e.code === "rate-held" && /loads/.test(e.message))).toBe(true)
  // The honest client's own bucket is full: its document loads at once.
  const before = rt.now()
  honest.conn.send(subscribe("honest-doc"))
  for (let t = 0; t < 2000 && honest.synced() === 0; t += 5) await rt.run({ forMs: 5 })
  expect(honest.synced()).toBe(1)
  expect(rt.now() - before).toBeLessThan(200)
})

test("a client reconnecting does not get a fresh load burst: its connections share one bucket", async () => {
  const { rt, peer } = world({ loadsPerSecond: 10, loadBurst: 50 })
  const first = await peer("same")
  for (let i = 0; i < 50; i++) first.conn.send(subscribe(`a-${i}`))
  await rt.run({ forMs: 2000 })
  expect(first.synced()).toBe(50)
  first.conn.close()
  await rt.run({ forMs: 10 })
  const again = await peer("same")
  for (let i = 0; i < 50; i++) again.conn.send(subscribe(`b-${i}`))
  await rt.run({ forMs: 1000 })
  // Two seconds of refill at 10 a second, not another burst of 50.
  expect(again.synced()).toBeLessThanOrEqual(35)
  expect(again.synced()).toBeGreaterThan(0)
})

test("on a transport that cannot pause, a client past its loads is closed rate-limited; documents already loaded cost nothing", async () => {
  const { run, peer, subscribe: follow, hub } = hubWorld({ limits: { loadsPerSecond: 10, loadBurst: 20 } })
  await hub.doc("shared", Todo)
  const p = await peer()
  // Following a loaded document again and again takes no load token.
  for (let i = 0; i < 100; i++) {
    follow(p, "shared")
    p.send({ type: "unsubscribe", docId: "shared" })
    await run(5)
  }
  expect(p.closed).toBeUndefined()
  for (let i = 0; i < 40; i++) follow(p, `fresh-${i}`)
  await run(100)
  expect(p.closed).toBe("rate-limited")
  expect(p.of("error").some((e) => e.code === "rate-limited" && /Document loads past 10 per second/.test(e.message))).toBe(true)
})

test("the defaults let a page open its documents at once", () => {
  // A connection may follow maxDocsPerConnection documents; opening them all at once is not held.
  expect(DEFAULT_LIMITS.loadBurst).toBeGreaterThanOrEqual(DEFAULT_LIMITS.maxDocsPerConnection)
  expect(DEFAULT_LIMITS.maxQueuedMessages).toBeGreaterThanOrEqual(DEFAULT_LIMITS.maxDocsPerConnection)
})

test("on a transport that cannot pause, a connection with maxQueuedMessages waiting is closed rate-limited; one under it is not", async () => {
  const { run, peer, subscribe: follow } = hubWorld({ limits: { maxQueuedMessages: 32, loadsPerSecond: 1e9, loadBurst: 1e9 } })
  const under = await peer()
  for (let i = 0; i < 32; i++) follow(under, `u-${i}`)
  await run(100)
  expect(under.closed).toBeUndefined()
  expect(under.of("synced")).toHaveLength(32)
  const over = await peer()
  for (let i = 0; i < 33; i++) follow(over, `o-${i}`)
  await run(100)
  expect(over.closed).toBe("rate-limited")
  expect(over.of("error").some((e) => e.code === "rate-limited" && /More than 32 messages waiting/.test(e.message))).toBe(true)
})

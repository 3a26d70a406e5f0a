/**
 * Ways around the CRDT work charge an attack review found (hub-crdt-work.test.ts has the
 * charge itself). Each update here is an Automerge change of about 170 bytes re-deleting
 * 3,000 characters another change deleted (test/support/automerge-redeletes.ts), about
 * 60,000 µs of estimated work; the budget is 50,000 µs a second, 50,000 at once.
 * - A submit carrying many merges was merged whole: the hold stopped only the next message.
 * - Frames of one socket read were all handled: the pause stops the next read, not this one.
 * - A transport that cannot pause paid at most the burst a submit, and its debt was forgiven.
 */
import { Hub, defineMachine } from "../core/index.js"
import type { ConnectionAcceptor } from "../core/ports/transport.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { encodeClientMessage } from "../core/internal.js"
import { automergeText } from "../adapters/automerge/index.js"
import { RawClient } from "./support/hostile-raw.js"
import { insertAndRedeletes } from "./support/automerge-redeletes.js"

const Notes = defineMachine({ name: "notes", version: 1, initial: () => ({}), commands: {}, crdt: { body: automergeText() } })
const engine = Notes.crdt!.body!.engine
const RATE = 50_000
const BURST = 50_000
const LIMITS = { workPerSecond: RATE, workBurst: BURST }
const CHARS = 3_000
const COPIES = 10

const unpausable = (hub: Hub): ConnectionAcceptor => ({
  accept: (conn, info) => hub.accept({ send: (m) => conn.send(m), close: (c, r) => conn.close(c, r), get bufferedAmount() { return conn.bufferedAmount } }, info),
})

const world = (acceptor: (hub: Hub) => ConnectionAcceptor = (hub) => hub) => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: rt, limits: LIMITS })
  net.listen(acceptor(hub))
  const received: ServerMessage[] = []
  let closed: string | undefined
  const conn = net.transport("c").connect({ onOpen: () => {}, onMessage: (m) => void received.push(m as ServerMessage), onClose: (i) => void (closed = i.code) })
  let seq = 0
  const start = async () => {
    await rt.run({ forMs: 5 })
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "attacker000000", machines: [], secret: newClientSecret(rt) })
    conn.send({ type: "subscribe", docId: "d", machine: Notes.name, version: Notes.version, fingerprint: Notes.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 20 })
  }
  const submit = (updates: unknown[]) =>
    conn.send({ type: "submit", docId: "d", commands: updates.map((args) => ({ clientSeq: ++seq, name: "$crdt.body", args })), ackedClientSeq: 0 } satisfies ClientMessage)
  const outcomes = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : []))
  const accepted = () => outcomes().filter((o) => "seq" in o).length
  const until = async (n: number, maxMs: number, step = 10) => {
    for (let t = 0; t < maxMs && outcomes().length < n && closed === undefined; t += step) await rt.run({ forMs: step })
  }
  return { rt, hub, start, submit, outcomes, accepted, until, closed: () => closed }
}

test("one submit of many heavy merges: no more of it is merged than the budget allows, and the rest follows as it is paid", async () => {
  const w = world()
  await w.start()
  const { insert, redeletes } = insertAndRedeletes(engine, CHARS, COPIES)
  w.submit([insert])
  await w.until(1, 10_000)
  expect(w.accepted()).toBe(1)
  await w.rt.run({ forMs: 3_000 }) // paid, and the bucket full again
  const each = engine.weigh(redeletes[0])
  expect(each).toBeGreaterThan(BURST)
  w.submit(redeletes)
  await w.rt.run({ forMs: 2_000 })
  // In 2 s: the burst and 2 s of rate, plus the merge that overdraws.
  expect(w.accepted() - 1).toBeLessThanOrEqual(Math.floor((BURST + 2 * RATE) / each) + 1)
  await w.until(1 + COPIES, 30_000, 100)
  expect(w.accepted()).toBe(1 + COPIES) // slowed, not refused
  await w.hub.close()
})

test("a transport that cannot pause: a merge sent while the client is in debt closes the connection (the debt is not forgiven)", async () => {
  const w = world(unpausable)
  await w.start()
  const { insert, redeletes } = insertAndRedeletes(engine, 3 * CHARS, 8) // each three times the burst
  const each = engine.weigh(redeletes[0])
  const t0 = w.rt.now()
  w.submit([insert])
  await w.until(1, 2_000)
  for (const u of redeletes) {
    await w.rt.run({ forMs: Math.ceil((BURST / RATE) * 1000) + 100 }) // what a full bucket would need
    if (w.closed() !== undefined) break
    w.submit([u])
    await w.until(w.outcomes().length + 1, 100)
  }
  const seconds = (w.rt.now() - t0) / 1000
  const merged = engine.weigh(insert) + each * Math.max(0, w.accepted() - 1)
  if (w.closed() === undefined) expect(merged).toBeLessThanOrEqual(BURST + RATE * seconds + each)
  else expect(w.closed()).toBe("rate-limited")
  await w.hub.close()
})

test("over a real WebSocket: heavy submits in one socket read are not merged past the debt before it is paid", async () => {
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: systemRuntime, limits: LIMITS })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const raw = await RawClient.connect(`ws://127.0.0.1:${server.addresses()[0]!.port}/sync`)
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  try {
    await raw.helloFresh()
    await raw.subscribe("d", Notes)
    const { insert, redeletes } = insertAndRedeletes(engine, CHARS, COPIES)
    const each = engine.weigh(redeletes[0])
    const merged = () => raw.received.flatMap((m) => (m.type === "results" ? m.outcomes : [])).filter((o) => "seq" in o).length
    raw.send({ type: "submit", docId: "d", commands: [{ clientSeq: 1, name: "$crdt.body", args: insert }], ackedClientSeq: 0 })
    for (let i = 0; i < 100 && merged() < 1; i++) await sleep(50)
    expect(merged()).toBe(1)
    await sleep(2_000) // paid, and the bucket full again
    // Every frame in one TCP write: the hub reads them in one go.
    const socket = (raw.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket
    socket.cork()
    redeletes.forEach((u, i) => raw.sendFrame(encodeClientMessage({ type: "submit", docId: "d", commands: [{ clientSeq: i + 2, name: "$crdt.body", args: u }], ackedClientSeq: 0 })))
    socket.uncork()
    const t0 = Date.now()
    await sleep(1_500)
    const seconds = (Date.now() - t0) / 1000
    expect(merged() - 1).toBeLessThanOrEqual(Math.floor((BURST + RATE * seconds) / each) + 1)
    expect(raw.closed).toBeUndefined()
  } finally {
    await raw.close()
    await server.close()
    await hub.close()
  }
}, 30_000)

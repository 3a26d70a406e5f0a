/**
 * The hub's command rate against a replica back from a long offline spell: on a transport
 * that can pause, commands past the rate are held (the connection is not read until the
 * bucket allows them), never refused, so the outbox arrives once, on one connection. Where
 * the transport cannot pause, a flood is still closed `rate-limited`. The last test runs over a
 * real WebSocket server on 127.0.0.1.
 */
import { CanonClient, Hub, type ClientMessage, type HubEvent, type ServerMessage } from "../core/index.js"
import type { ConnectionAcceptor } from "../core/ports/transport.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { encodeClientMessage } from "../core/internal.js"
import { Counter } from "./support/machines.js"
import { RawClient } from "./support/hostile-raw.js"
import { WirePeer, hubWorld } from "./support/hub-wire.js"
import { newClientSecret } from "../core/ports/runtime.js"

const RATE = 1_000
const BURST = 2_000
const N = 10_000

const setup = (acceptor: (hub: Hub) => ConnectionAcceptor = (hub) => hub, limits = { commandsPerSecond: RATE, commandBurst: BURST }) => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), limits })
  net.listen(acceptor(hub))
  return { rt, net, hub, events }
}

/** A client that queued N commands offline, then connects. */
const backFromOffline = async (env: ReturnType<typeof setup>, n = N) => {
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], autoConnect: false })
  const doc = await client.open(Counter, "d")
  for (let i = 0; i < n; i++) doc.submit("incr", { by: 1 }).catch(() => {})
  await env.rt.run({ forMs: 100 })
  client.connect()
  return doc
}

test("a long outbox over the command rate is held, not refused: one connection, every command once, no faster than the rate", async () => {
  let accepted = 0
  const env = setup((hub) => ({ accept: (conn, info) => (accepted++, hub.accept(conn, info)) }))
  const doc = await backFromOffline(env)
  const t0 = env.rt.now()
  const authority = await env.hub.doc("d", Counter)
  for (let i = 0; i < 200 && doc.pendingCount > 0; i++) {
    await env.rt.run({ forMs: 100 })
    // What the hub let in by now: a burst, then the rate (plus one submit read as a hold began).
    expect(authority.state.value).toBeLessThanOrEqual(BURST + (RATE * (env.rt.now() - t0)) / 1000 + 256)
  }
  expect(doc.pendingCount).toBe(0)
  expect(authority.state.value).toBe(N)
  expect(env.events.filter((e) => e.type === "limit" && e.code !== "rate-held")).toEqual([])
  expect(env.events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(true)
  expect(accepted).toBe(1)
})

test("a transport that cannot pause: commands past the rate close the connection rate-limited, and the client still gets everything in", async () => {
  // The hub sees connections without pause/resume.
  const env = setup((hub) => ({
    accept: (conn, info) => hub.accept({ send: (m) => conn.send(m), close: (c, r) => conn.close(c, r), get bufferedAmount() { return conn.bufferedAmount } }, info),
  }))
  const doc = await backFromOffline(env)
  for (let i = 0; i < 600 && doc.pendingCount > 0; i++) await env.rt.run({ forMs: 100 })
  expect(doc.pendingCount).toBe(0)
  expect((await env.hub.doc("d", Counter)).state.value).toBe(N)
  expect(env.events.some((e) => e.type === "limit" && e.code === "rate-limited")).toBe(true)
  expect(env.events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(false)
})

test("over a real WebSocket: a peer sending its outbox at once past the rate is held, never closed", async () => {
  const events: HubEvent[] = []
  const rate = 2_000
  const burst = 1_000
  const frames = 40
  const perFrame = 250
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime, limits: { commandsPerSecond: rate, commandBurst: burst }, onEvent: (e) => events.push(e) })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const raw = await RawClient.connect(`ws://127.0.0.1:${server.addresses()[0]!.port}/sync`)
  try {
    await raw.helloFresh()
    await raw.subscribe("d", Counter)
    let clientSeq = 0
    for (let f = 0; f < frames; f++) {
      const commands = Array.from({ length: perFrame }, () => ({ clientSeq: ++clientSeq, name: "incr", args: { by: 1 } }))
      raw.sendFrame(encodeClientMessage({ type: "submit", docId: "d", commands, ackedClientSeq: 0 }))
    }
    const outcomes = () => raw.received.flatMap((m) => (m.type === "results" && m.docId === "d" ? m.outcomes : []))
    const end = Date.now() + 30_000
    while (outcomes().length < frames * perFrame && raw.closed === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    expect(raw.closed).toBeUndefined()
    expect(raw.received.filter((m) => m.type === "error")).toEqual([])
    expect(outcomes().map((o) => o.clientSeq)).toEqual(Array.from({ length: frames * perFrame }, (_, i) => i + 1))
    // Held at least once. (How closely the rate holds is the memory test's: a paused socket
    // still delivers what it had buffered, so over TCP the hub may read a little past it.)
    expect(events.filter((e) => e.type === "limit").map((e) => (e as { code: string }).code)).toContain("rate-held")
    expect(events.filter((e) => e.type === "limit" && e.code !== "rate-held")).toEqual([])
  } finally {
    await raw.close()
    await server.close()
    await hub.close()
  }
}, 60_000)

test("a held WebSocket the server closes completes its close handshake at once (the socket is read again to hear the peer's close)", async () => {
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime, limits: { commandsPerSecond: 100, commandBurst: 10 }, onEvent: (e) => events.push(e) })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const raw = await RawClient.connect(`ws://127.0.0.1:${server.addresses()[0]!.port}/sync`)
  try {
    await raw.helloFresh()
    await raw.subscribe("d", Counter)
    // One submit of 1000 commands at 100/s: a hold of about 10 s.
    const commands = Array.from({ length: 1000 }, (_, i) => ({ clientSeq: i + 1, name: "incr", args: { by: 1 } }))
    raw.sendFrame(encodeClientMessage({ type: "submit", docId: "d", commands, ackedClientSeq: 0 }))
    for (let i = 0; i < 500 && !events.some((e) => e.type === "limit" && e.code === "rate-held"); i++) await new Promise((r) => setTimeout(r, 10))
    expect(events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(true)
    const t0 = Date.now()
    await server.close()
    // Before: 5 s, the close timeout, since the held socket never read the peer's close frame.
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(raw.closed).toBeDefined()
  } finally {
    await raw.close()
    await hub.close()
  }
}, 30_000)

test("commandsPerSecond 0 (a burst, then nothing): past the burst the connection is closed rate-limited, never held forever or let through", async () => {
  const env = setup(undefined, { commandsPerSecond: 0, commandBurst: 100 })
  const doc = await backFromOffline(env, 2_000)
  await env.rt.run({ forMs: 2_000 })
  expect(env.events.some((e) => e.type === "limit" && e.code === "rate-limited")).toBe(true)
  expect(env.events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(false)
  expect((await env.hub.doc("d", Counter)).state.value).toBeLessThanOrEqual(100)
  expect(doc.pendingCount).toBeGreaterThan(0)
})

test("a client's other documents are not held behind one document's long outbox: it sends a window at a time", async () => {
  const env = setup()
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], autoConnect: false })
  const a = await client.open(Counter, "a")
  for (let i = 0; i < 3 * N; i++) a.submit("incr", { by: 1 }).catch(() => {})
  const b = await client.open(Counter, "b")
  await env.rt.run({ forMs: 100 })
  client.connect()
  const t0 = env.rt.now()
  for (let i = 0; i < 400 && !b.synced; i++) await env.rt.run({ forMs: 20 })
  // Before: "b" was synced only after "a"'s whole backlog had been read at the rate (28 s).
  expect(env.rt.now() - t0).toBeLessThan(1_000)
  // And "a"'s outbox still arrives whole, at the rate.
  for (let i = 0; i < 600 && a.pendingCount > 0; i++) await env.rt.run({ forMs: 100 })
  expect((await env.hub.doc("a", Counter)).state.value).toBe(3 * N)
  await client.close()
}, 60_000)

test("a client's connections share its command rate: reconnecting does not start a fresh burst", async () => {
  const w = hubWorld({ limits: { commandsPerSecond: 10, commandBurst: 200 } })
  const secret = newClientSecret(w.rt)
  const connect = async (clientId: string): Promise<WirePeer> => {
    const p = new WirePeer(clientId)
    p.listener = w.hub.accept(p.conn, { remoteAddress: "test" })
    p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret })
    await w.run(5)
    w.subscribe(p, "d")
    await w.run(10)
    return p
  }
  const submit = (p: WirePeer, from: number, n: number) =>
    p.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: Array.from({ length: n }, (_, i) => ({ clientSeq: from + i, name: "add", args: { id: `${p.clientId}-${from + i}`, title: "t" } })) })
  const first = await connect("shared0000000001")
  submit(first, 1, 150)
  await w.run(10)
  expect(first.closed).toBeUndefined()
  first.conn.close("closed", "bye")
  // Same client, new connection: 50 commands are left of its burst, not 200.
  const again = await connect("shared0000000001")
  submit(again, 151, 150)
  await w.run(10)
  expect(again.closed).toBe("rate-limited")
  // Another client has a bucket of its own.
  const other = await connect("other00000000001")
  submit(other, 1, 150)
  await w.run(10)
  expect(other.closed).toBeUndefined()
})

test("what a connection sends before its hello is proved is the client's spending: pipelined behind the hello, it gets no fresh burst", async () => {
  // A transport that cannot pause reads on while the hello is proved: counted on the
  // connection's own bucket, then taken from the client's when the hello is proved.
  const w = hubWorld({ limits: { commandsPerSecond: 10, commandBurst: 200 } })
  const secret = newClientSecret(w.rt)
  const submitFrom = (p: WirePeer, from: number, n: number) =>
    p.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: Array.from({ length: n }, (_, i) => ({ clientSeq: from + i, name: "add", args: { id: `${p.clientId}-${from + i}`, title: "t" } })) })
  const pipelined = (from: number, n: number): WirePeer => {
    const p = new WirePeer("piped00000000001")
    p.listener = w.hub.accept(p.conn, { remoteAddress: "test" })
    p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: p.clientId, machines: [], secret })
    w.subscribe(p, "d")
    submitFrom(p, from, n)
    return p
  }
  const first = pipelined(1, 150)
  await w.run(20)
  expect(first.closed).toBeUndefined()
  first.conn.close("closed", "bye")
  // 50 commands are left of the client's burst: 150 more, pipelined again, are past it.
  const again = pipelined(151, 150)
  await w.run(20)
  submitFrom(again, 301, 1)
  await w.run(20)
  expect(again.closed).toBe("rate-limited")
})

test("a transport that can pause is not read past a hello until it is proved: a client in debt is held, not given a fresh burst", async () => {
  const rt = new VirtualRuntime(11)
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), limits: { commandsPerSecond: 10, commandBurst: 20 } })
  const secret = newClientSecret(rt)
  const results: number[] = []
  /** A socket whose peer sends everything at once: what the hub has not paused for is read at once, the rest when it resumes. */
  const open = (from: number, n: number) => {
    const queue: ClientMessage[] = []
    let paused = false
    let closed = false
    const conn = {
      send: (m: ServerMessage) => void (m.type === "results" && results.push(rt.now())),
      close: () => void (closed = true),
      bufferedAmount: 0,
      pause: () => void (paused = true),
      resume: () => {
        paused = false
        while (!paused && queue.length > 0) listener.onMessage(queue.shift()!)
      },
    }
    const listener = hub.accept(conn, { remoteAddress: "test" })
    const send = (m: ClientMessage) => (paused ? queue.push(m) : listener.onMessage(m))
    send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "paused0000000001", machines: [], secret })
    send({ type: "subscribe", docId: "d", machine: Counter.name, version: Counter.version, fingerprint: Counter.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: Array.from({ length: n }, (_, i) => ({ clientSeq: from + i, name: "incr", args: { by: 1 } })) })
    return { close: () => { closed = true; listener.onClose({ code: "closed", reason: "bye" }) }, closed: () => closed }
  }
  const first = open(1, 60) // 40 past the burst: 4 s of debt
  for (let i = 0; i < 100 && results.length === 0; i++) await rt.run({ forMs: 10 })
  expect(results).toHaveLength(1)
  first.close()
  await rt.run({ forMs: 50 })
  const t0 = rt.now()
  results.length = 0
  open(61, 20)
  for (let i = 0; i < 100 && results.length === 0; i++) await rt.run({ forMs: 100 })
  // Read once the client's debt is paid (some 4 s after the first connection's submit), not at once.
  expect(results[0]! - t0).toBeGreaterThanOrEqual(3_000)
  expect(events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(true)
  await hub.close()
})

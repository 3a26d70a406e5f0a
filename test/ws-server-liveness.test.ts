/**
 * On the Canon route only a pong is a sign of life (adapters/ws/server.ts), as on the CRDT
 * routes. Before, any frame counted: a peer that sent and never read stayed for good, and
 * what the hub answered it waited in the hub's memory (review r15, finding 1: one such socket
 * grew the hub by 10 MiB/s for 36 s, never closed past the 15 s ping and 15 s pong window).
 * Time the hub holds a socket unread (input flow control) does not count against the pong
 * timeout, since the pong is not read meanwhile; the time it is read does, so a peer cannot
 * stay by getting itself held again and again. Clients that read stay: Node's `ws` and
 * browsers answer pings by themselves.
 *
 * Over real sockets on 127.0.0.1; every loop is bounded in count and time.
 */
import { WebSocket } from "ws"
import { CanonClient, Hub, newClientId, type ClientMessage, type CloseInfo, type ConnectionAcceptor, type ServerMessage } from "../core/index.js"
import { decodeServerMessage, describeMachine, encodeClientMessage } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport, type WsServerEvent } from "../adapters/ws/index.js"
import { Counter } from "./support/machines.js"
import { newSecret } from "./support/hostile-raw.js"
import { sleep, until } from "./support/ws.js"

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

/**
 * A hub on a real WebSocket server with quick pings; what the server reports, and the hub's
 * limit codes, are recorded. The pong timeout leaves a loaded machine's event loop room (the
 * healthy client answers from it).
 */
const start = async (hubOptions: { readonly handshakeTimeoutMs?: number } = {}) => {
  const serverEvents: WsServerEvent[] = []
  const hubLimits: string[] = []
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime, onEvent: (e) => void (e.type === "limit" && hubLimits.push(e.code)), ...hubOptions })
  const ws = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 50, pongTimeoutMs: 1_000, onEvent: (e) => void serverEvents.push(e) })
  cleanup.push(() => hub.close(), () => ws.close())
  return { hub, url: ws.urls()[0]!, serverEvents, hubLimits }
}

/**
 * A raw protocol 1 peer that has said hello and been welcomed; `deafen` stops it reading its
 * socket for good. `afterHello` runs right after the hello is sent, before anything is read.
 */
const peer = async (url: string, afterHello?: () => void) => {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const received: ServerMessage[] = []
  ws.on("message", (data) => {
    const r = decodeServerMessage(new Uint8Array(data as Buffer), { version: 1 })
    if (r.ok === true) received.push(r.message)
  })
  ws.on("error", () => {})
  cleanup.push(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  const frame = (m: ClientMessage): Uint8Array => encodeClientMessage(m, { version: 1 })
  ws.send(frame({ type: "hello", protocol: { min: 1, max: 1 }, clientId: newClientId(systemRuntime), secret: newSecret(), machines: [describeMachine(Counter)] }))
  afterHello?.()
  expect(await until(() => received.some((m) => m.type === "welcome"), 5_000)).toBe(true)
  return {
    ws, frame,
    /** Stops reading: pings and everything else the hub sends stay unread. */
    deafen: () => (ws as unknown as { _socket: { pause(): void } })._socket.pause(),
  }
}

test("a peer that sends and never reads is dropped after the pong timeout; a client that reads stays", async () => {
  const { hub, url, serverEvents } = await start()
  // A healthy client on the same server: `ws` answers pings by itself.
  const client = await CanonClient.open({ transport: wsClientTransport(url, { idleTimeoutMs: 1_000 }), runtime: systemRuntime, machines: [Counter] })
  cleanup.push(() => client.close())
  const doc = await client.open(Counter, "healthy")
  const p = await peer(url)
  p.deafen()
  // Messages the hub answers with nothing (presence for a document it does not follow), 50 a
  // second: before, any frame counted as a sign of life and the socket was never dropped.
  const quiet = p.frame({ type: "presence-set", docId: "elsewhere", state: { x: 1 } })
  const end = Date.now() + 10_000
  while (!serverEvents.some((e) => e.type === "timeout") && Date.now() < end) {
    p.ws.send(quiet)
    await sleep(20)
  }
  expect(serverEvents.filter((e) => e.type === "timeout")).toHaveLength(1)
  expect(await until(() => hub.stats().connections === 1, 2_000)).toBe(true)
  // The reader is still there, many ping intervals and pong timeouts later, and works.
  await sleep(1_500)
  await doc.submit("incr", { by: 1 })
  expect(doc.state).toEqual({ value: 1 })
  expect(serverEvents.filter((e) => e.type === "timeout")).toHaveLength(1)
  expect(hub.stats().connections).toBe(1)
})

test("a socket the hub holds unread again and again is still dropped once its unread time passes the pong timeout", async () => {
  // An acceptor that holds each connection unread 40 ms of every 50 (as rate holds would).
  const conns: Array<{ close: CloseInfo | undefined }> = []
  const timers: Array<ReturnType<typeof setInterval>> = []
  cleanup.push(() => timers.forEach((t) => clearInterval(t)))
  const acceptor: ConnectionAcceptor = {
    accept: (conn) => {
      const seen: { close: CloseInfo | undefined } = { close: undefined }
      conns.push(seen)
      let tick = 0
      conn.pause!()
      timers.push(setInterval(() => {
        tick = (tick + 1) % 5
        if (tick === 0) conn.resume!()
        else if (tick === 1) conn.pause!()
      }, 10))
      return { onMessage: () => {}, onClose: (i) => void (seen.close = i) }
    },
  }
  const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 50, pongTimeoutMs: 400 })
  cleanup.push(() => server.close())
  const connect = async (autoPong: boolean) => {
    const ws = new WebSocket(server.urls()[0]!, { perMessageDeflate: false, autoPong })
    ws.on("error", () => {})
    cleanup.push(() => ws.terminate())
    await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  }
  await connect(false)
  await connect(true)
  expect(await until(() => conns.length === 2, 2_000)).toBe(true)
  // Read a fifth of the time: 400 ms of it within about 2 s; before, never dropped.
  expect(await until(() => conns[0]!.close !== undefined, 10_000)).toBe(true)
  expect(conns[0]!.close!.code).toBe("timeout")
  // A peer that answers pings is read in between, and stays.
  await sleep(1_000)
  expect(conns[1]!.close).toBeUndefined()
})

test("a peer that never reads but sends pongs unasked is dropped: only a pong echoing one of the hub's pings counts", async () => {
  const { hub, url, serverEvents } = await start()
  const p = await peer(url)
  p.deafen()
  // Unasked pongs, empty and with a guessed payload, 50 a second: before, any pong answered.
  const end = Date.now() + 10_000
  let i = 0
  while (!serverEvents.some((e) => e.type === "timeout") && Date.now() < end) {
    p.ws.pong(i++ % 2 === 0 ? Buffer.alloc(0) : Buffer.alloc(8, i))
    await sleep(20)
  }
  expect(serverEvents.filter((e) => e.type === "timeout")).toHaveLength(1)
  expect(await until(() => hub.stats().connections === 0, 2_000)).toBe(true)
})

/** Blocks this process's event loop for `ms`: a long synchronous task, or a starved CPU. */
const stall = (ms: number): void => {
  const end = Date.now() + ms
  while (Date.now() < end) { /* busy */ }
}

test("a stall that begins with a pong unread keeps the peer: the hub's first sweep after it does not judge time its process could not read", async () => {
  const { hub, url, serverEvents } = await start()
  const p = await peer(url)
  // The peer answers the hub's ping at once (ws does), then this process blocks: the pong
  // waits in the hub's socket for 2.5 pong timeouts. After a stall the timers run before the
  // sockets are read; before, the hub's sweep then found the pong late and dropped the peer.
  await new Promise<void>((resolve) => p.ws.once("ping", () => (stall(2_500), resolve())))
  await sleep(1_000)
  expect(serverEvents.filter((e) => e.type === "timeout")).toEqual([])
  expect(hub.stats().connections).toBe(1)
  expect(p.ws.readyState).toBe(WebSocket.OPEN)
})

test("a client whose process stalls past its idle timeout keeps its connection: the late idle check looks again once what arrived is read", async () => {
  const { url } = await start()
  const client = await CanonClient.open({ transport: wsClientTransport(url, { idleTimeoutMs: 1_000 }), runtime: systemRuntime, machines: [Counter] })
  cleanup.push(() => client.close())
  const doc = await client.open(Counter, "stalled")
  await doc.submit("incr", { by: 1 })
  const statuses: string[] = []
  client.onStatus((s, info) => statuses.push(info === undefined ? s : `${s} (${info.code})`))
  // Hub and client share this process: the client's idle check comes due during the stall,
  // with the hub's keepalives waiting unread; before, it timed out the connection (4009).
  stall(2_500)
  await sleep(1_000)
  expect(statuses).toEqual([])
  await doc.submit("incr", { by: 1 })
  expect(doc.state).toEqual({ value: 2 })
})

test("a stall of the process past the hub's handshake deadline, with the hello waiting unread, does not drop the client", async () => {
  const { hubLimits, url } = await start({ handshakeTimeoutMs: 300 })
  // The hello goes out, and this process (the hub's too) blocks past the deadline before the
  // hub reads it. After the stall the timers run first; before, the deadline then closed it.
  const p = await peer(url, () => stall(600))
  expect(hubLimits).toEqual([])
  expect(p.ws.readyState).toBe(WebSocket.OPEN)
})

test("a stall of the process past a client's connect timeout, with the socket's open waiting unread, does not fail the connect", async () => {
  const { url } = await start()
  const closes: CloseInfo[] = []
  let opened = false
  const conn = wsClientTransport(url, { connectTimeoutMs: 300 }).connect({ onMessage: () => {}, onOpen: () => void (opened = true), onClose: (i) => void closes.push(i) })
  cleanup.push(() => conn.close("done", ""))
  // The hub is this process too: the stall ends with the connect timer past due and the
  // upgrade not yet answered. Before, the timer, run first, failed the connect; now, run
  // late, it looks again 250 ms later, by which time the socket has opened.
  stall(600)
  expect(await until(() => opened || closes.length > 0, 5_000)).toBe(true)
  expect(closes).toEqual([])
  expect(opened).toBe(true)
})

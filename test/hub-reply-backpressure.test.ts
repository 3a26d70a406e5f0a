/**
 * What the hub answers a peer itself (errors, refusals, the welcome), not only what documents
 * send their followers, goes through the output gate (core/authority/guarded-connection.ts).
 * An attack (review r15, finding 1): sockets that never read sent requests the hub answers
 * with an error; the answers were sent with no check (only followers' sends were) and the
 * hub's memory grew by 80 MiB/s, unsent replies all, each quoting a 900 KB machine name.
 * Now every send to a connection goes through one gate: past `hardLimit` bytes unread, the
 * connection is closed `slow-consumer`; and a client string quoted back is bounded
 * (`quoted`, core/limits.ts).
 *
 * Over real sockets on 127.0.0.1; every loop is bounded in count and time.
 */
import { WebSocket } from "ws"
import { Hub, newClientId, type ClientMessage, type HubEvent, type ServerMessage } from "../core/index.js"
import { decodeServerMessage, describeMachine, encodeClientMessage } from "../core/internal.js"
import { MAX_MESSAGE_CHARS } from "../core/limits.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, type WsServerEvent, type WsServerOptions } from "../adapters/ws/index.js"
import { Counter } from "./support/machines.js"
import { newSecret } from "./support/hostile-raw.js"
import { sleep, until } from "./support/ws.js"

const KiB = 1024
const HARD_LIMIT = 256 * KiB

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

/** A hub on a real WebSocket server; what both report is recorded. */
const start = async (server: Partial<WsServerOptions> = {}, hardLimit = HARD_LIMIT) => {
  const hubEvents: HubEvent[] = []
  const serverEvents: WsServerEvent[] = []
  const hub = new Hub({
    machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime, hardLimit,
    // The flood must reach the gate, not the message rate.
    limits: { messagesPerSecond: 1_000_000, messageBurst: 1_000_000 },
    onEvent: (e) => void hubEvents.push(e),
  })
  const ws = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], onEvent: (e) => void serverEvents.push(e), ...server })
  cleanup.push(() => hub.close(), () => ws.close())
  return { hub, server: ws, url: ws.urls()[0]!, hubEvents, serverEvents }
}

/** A raw protocol 1 peer that has said hello and been welcomed; `deafen` stops it reading its socket for good. */
const peer = async (url: string) => {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const received: ServerMessage[] = []
  let closed: { code: number; reason: string } | undefined
  ws.on("message", (data) => {
    const r = decodeServerMessage(new Uint8Array(data as Buffer), { version: 1 })
    if (r.ok === true) received.push(r.message)
  })
  ws.on("close", (code, reason) => void (closed = { code, reason: reason.toString() }))
  ws.on("error", () => {})
  cleanup.push(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  const frame = (m: ClientMessage): Uint8Array => encodeClientMessage(m, { version: 1 })
  ws.send(frame({ type: "hello", protocol: { min: 1, max: 1 }, clientId: newClientId(systemRuntime), secret: newSecret(), machines: [describeMachine(Counter)] }))
  expect(await until(() => received.some((m) => m.type === "welcome"), 5_000)).toBe(true)
  return {
    ws, received, frame,
    get closed() { return closed },
    /** Stops reading: what the hub sends stays in the socket buffers, then in the hub. */
    deafen: () => (ws as unknown as { _socket: { pause(): void } })._socket.pause(),
  }
}

/** A deafened peer asks for error after error; returns the most the hub's end held unsent. */
const flood = async (hub: Hub, server: WsServer, p: Awaited<ReturnType<typeof peer>>): Promise<number> => {
  p.deafen()
  // `not-subscribed`, about 600 bytes each: an ordinary answer, not a large one.
  const ask = p.frame({ type: "fetch-state", docId: `doc/${"n".repeat(480)}` })
  const hubSide = server.sockets()[0]!
  let most = 0
  let sent = 0
  const end = Date.now() + 30_000
  // 60,000 asks (about 35 MB of answers): far past the socket buffers and the limits.
  while (sent < 60_000 && hub.stats().connections > 0 && Date.now() < end) {
    if (p.ws.bufferedAmount < 256 * KiB) for (let i = 0; i < 200; i++, sent++) p.ws.send(ask)
    await sleep(1)
    most = Math.max(most, hubSide.bufferedAmount)
  }
  return most
}

test("a peer that never reads and asks for error after error is closed slow-consumer; the hub holds at most the hard limit for it", async () => {
  const { hub, server, url, hubEvents } = await start()
  const most = await flood(hub, server, await peer(url))
  expect(await until(() => hub.stats().connections === 0, 5_000)).toBe(true)
  expect(hubEvents).toContainEqual(expect.objectContaining({ type: "limit", code: "slow-consumer" }))
  // What waited unread on the hub's end: the limit and the one answer that crossed it.
  expect(most).toBeGreaterThan(0)
  expect(most).toBeLessThanOrEqual(HARD_LIMIT + 2 * KiB)
})

test("under a hard limit larger than the server's maxUnsentBytes, the server cuts the peer that holds the most, and the hub forgets it", async () => {
  const limit = 8 * 1024 * KiB // the least a server takes
  const { hub, server, url, serverEvents } = await start({ maxUnsentBytes: limit }, 64 * 1024 * KiB)
  const most = await flood(hub, server, await peer(url))
  expect(await until(() => hub.stats().connections === 0, 5_000)).toBe(true)
  expect(serverEvents).toContainEqual(expect.objectContaining({ type: "unsent-full" }))
  expect(server.unsentBytes).toEqual({ held: 0, limit, cuts: 1 })
  expect(most).toBeGreaterThan(0)
  expect(most).toBeLessThanOrEqual(limit + 2 * KiB)
})

test("a machine name, a docId or a message type a peer sends is quoted back bounded", async () => {
  const { url } = await start()
  const p = await peer(url)
  const long = "M".repeat(200_000)
  p.ws.send(p.frame({ type: "subscribe", docId: "d", machine: long, version: 1, fingerprint: "f", fromSeq: 0, ackedClientSeq: 0 }))
  expect(await until(() => p.received.some((m) => m.type === "error"), 5_000)).toBe(true)
  const error = p.received.find((m) => m.type === "error")!
  expect(error).toMatchObject({ type: "error", code: "machine-unknown", docId: "d" })
  const message = (error as { message: string }).message
  expect(message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS)
  // Its start and its length: enough to recognise it.
  expect(message).toMatch(/^This hub has no machine "M{16,}…" \(200000 characters\)\.$/)

  // A hello declaring such a machine: refused, the sentence bounded, the name not echoed as a field.
  const ws = new WebSocket(url, { perMessageDeflate: false })
  cleanup.push(() => ws.terminate())
  const got: ServerMessage[] = []
  ws.on("message", (d) => {
    const r = decodeServerMessage(new Uint8Array(d as Buffer), { version: 1 })
    if (r.ok === true) got.push(r.message)
  })
  ws.on("error", () => {})
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  ws.send(encodeClientMessage({ type: "hello", protocol: { min: 1, max: 1 }, clientId: newClientId(systemRuntime), secret: newSecret(), machines: [{ name: long, version: 1, fingerprint: "f" }] }, { version: 1 }))
  expect(await until(() => got.some((m) => m.type === "refused"), 5_000)).toBe(true)
  const refused = got.find((m) => m.type === "refused") as { code: string; message: string; machine?: string }
  expect(refused.code).toBe("machine-unknown")
  expect(refused.machine).toBeUndefined()
  expect(refused.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS)
  expect(refused.message).toContain("(200000 characters)")
})

/**
 * A WsServer on addresses it binds itself counts every TCP socket where it enters, at twice its
 * WebSocket caps (adapters/ws/socket-cap.ts): before, a socket that had not sent its upgrade
 * request was counted by nothing, so one host could hold any number of them (each for up to
 * requestTimeoutMs, then open more). Real sockets on 127.0.0.1, from other loopback addresses
 * as other hosts.
 */
import net from "node:net"
import { WebSocket } from "ws"
import type { ConnectionAcceptor } from "../core/index.js"
import { WsServer } from "../adapters/ws/index.js"

const held: Array<net.Socket | WebSocket> = []
let server: WsServer | undefined
afterEach(async () => {
  for (const s of held.splice(0)) s instanceof WebSocket ? s.terminate() : s.destroy()
  await server?.close()
  server = undefined
})

/** Keeps every connection open. */
const acceptor: ConnectionAcceptor = { accept: () => ({ onMessage: () => {}, onClose: () => {} }) }

const idle = (port: number, from: string): { socket: net.Socket; closed: Promise<void> } => {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress: from })
  socket.on("error", () => {})
  held.push(socket)
  return { socket, closed: new Promise((r) => socket.once("close", () => r())) }
}

const cut = async (tries: ReadonlyArray<{ closed: Promise<void> }>, n: number): Promise<void> => {
  let done = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${done} of ${n} cut in 5000 ms`)), 5_000)
    for (const t of tries) void t.closed.then(() => { if (++done === n) (clearTimeout(timer), resolve()) })
  })
}

const dial = (port: number, from: string): Promise<number | string> => new Promise((resolve) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { localAddress: from })
  held.push(ws)
  ws.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
  ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
  ws.once("open", () => setTimeout(() => ws.readyState === WebSocket.OPEN && resolve("open"), 100))
})

test("idle sockets from one address are cut past twice maxConnectionsPerAddress, before any upgrade; another address still connects", async () => {
  server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], maxConnectionsPerAddress: 2 })
  const port = server.addresses()[0]!.port
  const tries = Array.from({ length: 7 }, () => idle(port, "127.0.0.2"))
  await cut(tries, 3)
  expect(tries.filter((t) => !t.socket.destroyed).length).toBe(4)
  expect(await dial(port, "127.0.0.3")).toBe("open")
}, 30_000)

test("in all, sockets are cut past twice maxConnections", async () => {
  server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], maxConnections: 1 })
  const port = server.addresses()[0]!.port
  const tries = ["127.0.0.4", "127.0.0.5", "127.0.0.6"].map((from) => idle(port, from))
  await cut(tries, 1)
  expect(tries.filter((t) => !t.socket.destroyed).length).toBe(2)
}, 30_000)

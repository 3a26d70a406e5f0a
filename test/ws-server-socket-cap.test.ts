/**
 * A WsServer on addresses it binds itself counts every TCP socket where it enters, at twice its
 * WebSocket caps (adapters/ws/socket-cap.ts): before, a socket that had not sent its upgrade
 * request was counted by nothing, so one host could hold any number of them (each for up to
 * requestTimeoutMs, then open more). Real sockets on 127.0.0.1, from other loopback addresses
 * as other hosts.
 */
import { closeHeld, cut, dial, idle } from "./support/raw-sockets.js"
import type { ConnectionAcceptor } from "../core/index.js"
import { WsServer } from "../adapters/ws/index.js"

let server: WsServer | undefined
const acceptor: ConnectionAcceptor = { accept: () => ({ onMessage: () => {}, onClose: () => {} }) }
afterEach(async () => {
  closeHeld()
  await server?.close()
  server = undefined
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

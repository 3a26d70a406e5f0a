/**
 * listenWsLinks counts every TCP socket where it enters (adapters/peer/ws-listen.ts, with
 * adapters/ws/socket-cap.ts), at twice its WebSocket caps: before, a socket that had not sent
 * its upgrade request was counted by nothing, so one host could hold any number of them (each
 * for up to requestTimeoutMs, then open more). Real sockets on 127.0.0.1, from other loopback
 * addresses (127.0.0.2...) as other hosts.
 */
import { closeHeld, cut, dial, idle } from "./support/raw-sockets.js"
import { listenWsLinks, type PeerListener } from "../adapters/peer/ws-listen.js"

let listener: PeerListener | undefined
afterEach(async () => {
  closeHeld()
  await listener?.close()
  listener = undefined
})

test("idle sockets from one host are cut past twice its cap, before any upgrade; another host still links", async () => {
  let links = 0
  listener = await listenWsLinks({ host: "127.0.0.1", port: 0, maxConnections: 4, maxConnectionsPerAddress: 1 }, () => links++)
  const tries = Array.from({ length: 6 }, () => idle(listener!.port, "127.0.0.2"))
  await cut(tries, 4)
  expect(tries.filter((t) => !t.socket.destroyed).length).toBe(2)
  expect(await dial(listener.port, "127.0.0.3")).toBe("open")
  expect(links).toBe(1)
  // A freed socket is a free slot again.
  tries.find((t) => !t.socket.destroyed)!.socket.destroy()
  let again = await dial(listener.port, "127.0.0.2")
  for (let i = 0; i < 20 && again !== "open"; i++) again = await dial(listener.port, "127.0.0.2")
  expect(again).toBe("open")
}, 30_000)

test("sockets from every host together are cut past twice maxConnections", async () => {
  listener = await listenWsLinks({ host: "127.0.0.1", port: 0, maxConnections: 2 }, () => {})
  const tries = ["127.0.0.4", "127.0.0.5", "127.0.0.6"].flatMap((from) => [idle(listener!.port, from), idle(listener!.port, from)])
  await cut(tries, 2)
  expect(tries.filter((t) => !t.socket.destroyed).length).toBe(4)
}, 30_000)

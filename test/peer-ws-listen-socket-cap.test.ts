/**
 * listenWsLinks counts every TCP socket where it enters (adapters/peer/ws-listen.ts, with
 * adapters/ws/socket-cap.ts), at twice its WebSocket caps: before, a socket that had not sent
 * its upgrade request was counted by nothing, so one host could hold any number of them (each
 * for up to requestTimeoutMs, then open more). Real sockets on 127.0.0.1, from other loopback
 * addresses (127.0.0.2...) as other hosts.
 */
import net from "node:net"
import { WebSocket } from "ws"
import { listenWsLinks, type PeerListener } from "../adapters/peer/ws-listen.js"

const held: Array<net.Socket | WebSocket> = []
let listener: PeerListener | undefined
afterEach(async () => {
  for (const s of held.splice(0)) s instanceof WebSocket ? s.terminate() : s.destroy()
  await listener?.close()
  listener = undefined
})

/** A raw socket from `from` that sends nothing; `closed` settles when the listener ends it. */
const idle = (port: number, from: string): { socket: net.Socket; closed: Promise<void> } => {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress: from })
  socket.on("error", () => {})
  held.push(socket)
  return { socket, closed: new Promise((r) => socket.once("close", () => r())) }
}

/** Waits for `n` sockets to be cut, failing well before the 10 s request deadline would close idle ones anyway. */
const cut = async (tries: ReadonlyArray<{ closed: Promise<void> }>, n: number): Promise<void> => {
  let done = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${done} of ${n} cut in 5000 ms`)), 5_000)
    for (const t of tries) void t.closed.then(() => { if (++done === n) (clearTimeout(timer), resolve()) })
  })
}

/** A WebSocket from `from`: "open" if it stays open a moment, else its close code or error. */
const dial = (port: number, from: string): Promise<number | string> => new Promise((resolve) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { localAddress: from })
  held.push(ws)
  ws.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
  ws.once("close", (code) => resolve(code))
  ws.once("open", () => setTimeout(() => ws.readyState === WebSocket.OPEN && resolve("open"), 100))
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

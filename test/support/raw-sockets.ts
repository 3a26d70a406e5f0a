/**
 * Raw TCP sockets and WebSockets from a chosen loopback address (127.0.0.2... as other hosts),
 * for the tests of per-address socket caps. Every socket made is kept in `held` for the test's
 * cleanup.
 */
import net from "node:net"
import { WebSocket } from "ws"

export const held: Array<net.Socket | WebSocket> = []

/** Ends every socket made so far. */
export const closeHeld = (): void => {
  for (const s of held.splice(0)) s instanceof WebSocket ? s.terminate() : s.destroy()
}

/** A raw socket from `from` that sends nothing; `closed` settles when the server ends it. */
export const idle = (port: number, from: string): { socket: net.Socket; closed: Promise<void> } => {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress: from })
  socket.on("error", () => {})
  held.push(socket)
  return { socket, closed: new Promise((r) => socket.once("close", () => r())) }
}

/** Waits for `n` of `tries` to be cut, failing well before a 10 s request deadline would close idle ones anyway. */
export const cut = async (tries: ReadonlyArray<{ closed: Promise<void> }>, n: number): Promise<void> => {
  let done = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${done} of ${n} cut in 5000 ms`)), 5_000)
    for (const t of tries) void t.closed.then(() => { if (++done === n) (clearTimeout(timer), resolve()) })
  })
}

/** A WebSocket from `from`: "open" if it stays open a moment, else its close code, HTTP status or error. */
export const dial = (port: number, from: string): Promise<number | string> => new Promise((resolve) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { localAddress: from })
  held.push(ws)
  ws.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
  ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
  ws.once("close", (code) => resolve(code))
  ws.once("open", () => setTimeout(() => ws.readyState === WebSocket.OPEN && resolve("open"), 100))
})

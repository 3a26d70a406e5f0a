/**
 * A bound on HTTP pipelining. Node's HTTP server parses every request a socket has sent before
 * its backpressure pauses the socket, and keeps each, with its response, until the response is
 * written: one client pipelining 2,400 GETs on each of a few hundred sockets it never read
 * (40 MB sent) ran the hub out of heap. Browsers do not pipeline; a socket with more than
 * `max` responses unfinished is destroyed.
 */
import type * as http from "node:http"
import type { Socket } from "node:net"

/** Requests one socket may have waiting for their responses before it is destroyed. */
export const MAX_PIPELINED_REQUESTS = 16

/** Bounds pipelining on `server` (see above); call once, before it serves. */
export const boundPipelining = (server: http.Server, max = MAX_PIPELINED_REQUESTS): void => {
  const open = new WeakMap<Socket, number>()
  // First, so that the app's handler of a request past the bound finds the socket gone.
  server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket
    const n = (open.get(socket) ?? 0) + 1
    open.set(socket, n)
    res.once("close", () => open.set(socket, (open.get(socket) ?? 1) - 1))
    if (n > max) socket.destroy()
  })
}

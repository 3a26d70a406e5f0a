/**
 * Input flow control of a socket whose frames the hub handles asynchronously (the CRDT
 * routes: an update is durable only after a disk write): core/inflow.ts over the socket's
 * pause and resume. Each frame is counted from its arrival until the hub is done with it.
 *
 * @example
 * ```ts
 * const inflow = socketInflow(ws)
 * ws.on("message", (data) => {
 *   const done = inflow.take(data.length)
 *   handle(data).finally(done)
 * })
 * ```
 */
import type { WebSocket } from "ws"
import { Inflow } from "../../core/inflow.js"
import type { PongClock } from "./pong-clock.js"

/** Bytes of frames one socket may have the hub working on before it is paused: 8 MiB. */
export const DEFAULT_MAX_INFLOW_BYTES = 8 << 20

/** `pongs` hears when the socket is held unread: its pong is not owed meanwhile (pong-clock.ts). */
export const socketInflow = (ws: WebSocket, max = DEFAULT_MAX_INFLOW_BYTES, pongs?: PongClock): Inflow =>
  new Inflow(() => {
    pongs?.paused(performance.now())
    ws.pause()
  }, () => {
    pongs?.resumed(performance.now())
    ws.resume()
  }, max)

/**
 * Input flow control for a socket whose frames the hub handles asynchronously (the CRDT
 * routes: an update is durable only after a disk write). Without it, a peer sending faster
 * than the disk makes the hub queue every frame it sends: memory grows until the process
 * dies. Each frame is counted from its arrival until the hub is done with it; past `max`
 * bytes the socket is paused (ws stops reading it, so TCP slows the sender), and it is
 * resumed once the count falls to half.
 *
 * @example
 * ```ts
 * const inflow = new Inflow(ws, 8 << 20)
 * ws.on("message", (data) => {
 *   const done = inflow.take(data.length)
 *   handle(data).finally(done)
 * })
 * ```
 */
import type { WebSocket } from "ws"

/** Bytes of frames one socket may have the hub working on before it is paused: 8 MiB. */
export const DEFAULT_MAX_INFLOW_BYTES = 8 << 20

export class Inflow {
  #pending = 0

  constructor(private readonly ws: WebSocket, private readonly max = DEFAULT_MAX_INFLOW_BYTES) {}

  /** Bytes of frames received and not yet done with. */
  get pending(): number {
    return this.#pending
  }

  /** Counts a frame of `bytes`; returns the function that says it is done with (idempotent). */
  take(bytes: number): () => void {
    this.#pending += bytes
    if (this.#pending > this.max && !this.ws.isPaused) this.ws.pause()
    let done = false
    return () => {
      if (done) return
      done = true
      this.#pending -= bytes
      if (this.ws.isPaused && this.#pending <= this.max / 2) this.ws.resume()
    }
  }
}

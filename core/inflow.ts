/**
 * Input flow control, one rule for the hub's connections and the CRDT routes: what a peer
 * sent is counted from its arrival until the hub is done with it (a submit through its group
 * commit, an update durable); past `max` bytes the peer's input is paused (a socket is then
 * not read, so TCP slows the sender), and resumed once the count falls to half. Without it a
 * peer sending faster than the disk makes the hub hold everything it sends.
 *
 * @example
 * ```ts
 * const inflow = new Inflow(() => ws.pause(), () => ws.resume(), 8 << 20)
 * ws.on("message", (data) => {
 *   const done = inflow.take(data.length)
 *   handle(data).finally(done)
 * })
 * ```
 */
export class Inflow {
  #pending = 0
  #paused = false

  constructor(private readonly pause: () => void, private readonly resume: () => void, private readonly max: number) {}

  /** Bytes taken and not yet done with. */
  get pending(): number {
    return this.#pending
  }

  /** Counts `bytes`; returns the function that says they are done with (idempotent). */
  take(bytes: number): () => void {
    this.#pending += bytes
    if (!this.#paused && this.#pending > this.max) {
      this.#paused = true
      this.pause()
    }
    let done = false
    return () => {
      if (done) return
      done = true
      this.#pending -= bytes
      if (this.#paused && this.#pending <= this.max / 2) {
        this.#paused = false
        this.resume()
      }
    }
  }
}

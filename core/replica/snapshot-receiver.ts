/**
 * A replica's side of a snapshot stream: assembles the chunks of one snapshot in a buffer that
 * grows to its announced size as bytes come (an announced size alone allocates at most 1 MiB),
 * hashes them as they arrive in order, acknowledges every `ackEvery` bytes (the hub's credit
 * window), and hands out the bytes only if they hash to what the stream began with. A chunk
 * out of place, a size over the limit, or a hash that does not match discards the stream: the
 * replica asks for the state again, it never installs a bad one.
 *
 * A stream cut by a disconnect is kept: after reconnecting, the replica tells the hub how far
 * it got (`resumeAck`), and if the hub streams the same snapshot again it continues there.
 */
import type { SnapshotBegin, SnapshotChunk } from "../protocol/messages.js"
import { StreamHash } from "../snapshot/stream-hash.js"

export interface SnapshotProgress {
  readonly seq: number
  readonly received: number
  readonly size: number
}

/** What a chunk did: the bytes received to acknowledge now (a number), nothing to say (undefined), or why the stream is bad (a string). */
export type ChunkOutcome = number | undefined | string

/** What a stream's buffer starts at; it doubles (up to the announced size) as bytes arrive. */
const FIRST_BUFFER_BYTES = 1 << 20

export class SnapshotReceiver {
  #buffer: Uint8Array
  #hash = new StreamHash()
  /** Bytes received in order from 0. */
  received = 0
  #lastAck = 0
  readonly #ackEvery: number

  constructor(
    readonly begin: SnapshotBegin,
    ackEvery: number,
  ) {
    this.#ackEvery = ackEvery
    // Grown as bytes arrive: an announced size is only a claim until the bytes come.
    this.#buffer = new Uint8Array(Math.min(begin.size, FIRST_BUFFER_BYTES))
  }

  get id(): number {
    return this.begin.snapshotId
  }

  get progress(): SnapshotProgress {
    return { seq: this.begin.seq, received: this.received, size: this.begin.size }
  }

  /** The same snapshot as `b` (a restarted stream this receiver can continue). */
  same(b: SnapshotBegin): boolean {
    return b.snapshotId === this.begin.snapshotId && b.seq === this.begin.seq && b.hash === this.begin.hash && b.size === this.begin.size
  }

  /**
   * Takes a chunk of this stream (the caller checked its snapshotId). Chunks below what was
   * received are duplicates of a resumed stream.
   */
  chunk(c: SnapshotChunk): ChunkOutcome {
    const end = c.offset + c.bytes.length
    if (end > this.begin.size) return `a chunk ends past ${this.begin.size} bytes`
    if (end <= this.received) {
      // The same snapshot streamed again from below what is here (the hub's read failed and
      // it began anew): its bytes are acknowledged as new ones are, or a sender waiting for
      // credit would wait for ever (it takes an acknowledgement as credit, never as a skip).
      if (end < this.#lastAck) this.#lastAck = c.offset
      if (end - this.#lastAck < this.#ackEvery) return undefined
      this.#lastAck = end
      return this.received
    }
    if (c.offset > this.received) return `a chunk at ${c.offset} skips from ${this.received}`
    const fresh = c.bytes.subarray(this.received - c.offset)
    if (end > this.#buffer.length) {
      const grown = new Uint8Array(Math.min(this.begin.size, Math.max(end, this.#buffer.length * 2)))
      grown.set(this.#buffer.subarray(0, this.received))
      this.#buffer = grown
    }
    this.#buffer.set(fresh, this.received)
    this.#hash.update(fresh)
    this.received = end
    if (this.received - this.#lastAck >= this.#ackEvery || this.received === this.begin.size) {
      this.#lastAck = this.received
      return this.received
    }
    return undefined
  }

  /** The end of the stream: the verified bytes, or why they cannot be used (a string). */
  finish(): Uint8Array | string {
    if (this.received !== this.begin.size) return `it ended at ${this.received} of ${this.begin.size} bytes`
    const actual = this.#hash.digest()
    if (actual !== this.begin.hash) return `its bytes hash to ${actual}, not ${this.begin.hash}`
    const bytes = this.#buffer
    this.#buffer = new Uint8Array(0)
    return bytes
  }
}

/**
 * Streams one stored snapshot to one subscriber: `snapshot-begin`, chunks of at most 64 KiB
 * read from the stored chunks, `snapshot-end`. Credit-based flow control: the replica
 * acknowledges what it has taken (`snapshot-ack`), and no more than `window` bytes past its
 * last acknowledgement are ever in flight, whatever the reader's speed or the snapshot's size.
 * A stream resumes (a replica whose stream a disconnect cut) only where it starts: `start(from)`,
 * from what the replica said before it subscribed. An acknowledgement is credit, never a skip,
 * and counts at most what this stream sent: `snapshotId` is the snapshot's seq, so an
 * acknowledgement of an earlier stream of the same snapshot (one the replica took, or dropped,
 * before its subscribe made the hub start this one) looks like one of this stream, and a skip
 * to it sent a replica that takes this stream from 0 a hole ('a chunk at 131072 skips from
 * 98304', 'it ended at 1024 of 234234 bytes': simulator seeds 175, 171). Acknowledgements are
 * the replica's word only: every chunk also waits for
 * `mayPush`, the follower's backpressure limits on what the connection really holds unread
 * (followers.ts), so a peer acknowledging bytes it never read gets the stream paused (and,
 * past the hard limit, closed) like any slow reader; `resume` continues it once drained.
 * Stored chunks come through a cache shared by every stream of the document, so a join storm
 * reads each chunk from storage about once.
 *
 * A stored chunk is found by the size the snapshot was written with (its chunk 0's length),
 * not the hub's setting today: a hub restarted with another `chunkBytes`, or a snapshot
 * written by `canon compact`, must stream the same bytes. Only the meta's chunks are read
 * (a write cut at the same seq may have left more), and every step sends bytes or fails:
 * a chunk shorter than its place is `storage-corrupt`, never a loop.
 */
import type { Connection } from "../ports/transport.js"
import type { ServerMessage } from "../protocol/messages.js"
import type { SnapshotMeta } from "../store/snapshot-store.js"
import { canonError } from "../errors.js"

/** Largest chunk on the wire. */
export const WIRE_CHUNK = 64 << 10

export type ChunkReader = (seq: number, index: number) => Promise<Uint8Array>

export class SnapshotSender {
  /** Next byte to send. */
  private offset = 0
  /** Bytes the replica has taken. */
  private acked = 0
  private pumping = false
  private finished = false
  private stopped = false
  /** Bytes per stored chunk as written (every one but the last has this size), once read. */
  private storedChunk: number | undefined

  constructor(
    private readonly docId: string,
    readonly meta: SnapshotMeta,
    private readonly read: ChunkReader,
    private readonly conn: Connection<ServerMessage>,
    private readonly window: number,
    /** Whether the connection may be sent more now (false: paused, or closed). */
    private readonly mayPush: () => boolean,
    /** Called once if the stream is stopped before it ends. */
    private readonly onStop: () => void,
    private readonly onDone: () => void,
    private readonly onError: (e: unknown) => void,
  ) {}

  get done(): boolean {
    return this.finished
  }

  /** Begins the stream; `from` > 0 resumes it where the replica says it got to. */
  start(from = 0): void {
    this.conn.send({ type: "snapshot-begin", docId: this.docId, snapshotId: this.meta.seq, seq: this.meta.seq, hash: this.meta.hash, size: this.meta.size })
    this.offset = this.acked = Math.min(Math.max(0, Math.floor(from)), this.meta.size)
    this.pump()
  }

  /**
   * The replica took `received` bytes of snapshot `snapshotId`: credit for the window. Never
   * past what this stream sent (more is another stream's: see the header), and never a skip.
   */
  ack(snapshotId: number, received: number): void {
    if (snapshotId !== this.meta.seq || this.finished) return
    const r = Math.min(Math.max(0, Math.floor(received)), this.offset)
    if (r > this.acked) this.acked = r
    this.pump()
  }

  /** The connection drained after a pause: go on. */
  resume(): void {
    this.pump()
  }

  stop(): void {
    if (this.stopped || this.finished) return
    this.stopped = true
    this.onStop()
  }

  private pump(): void {
    if (this.pumping || this.stopped || this.finished) return
    this.pumping = true
    this.run().then(
      () => { this.pumping = false },
      (e) => {
        this.pumping = false
        if (this.stopped) return
        this.stopped = true
        this.onError(e)
      },
    )
  }

  private async run(): Promise<void> {
    const size = this.meta.size
    while (!this.stopped && this.offset < size && this.offset - this.acked < this.window) {
      const stored = (this.storedChunk ??= this.meta.chunks <= 1 ? size : (await this.read(this.meta.seq, 0)).length)
      const index = Math.floor(this.offset / Math.max(1, stored))
      if (index >= this.meta.chunks) throw this.corrupt(`${this.meta.chunks} chunks of ${stored} bytes hold fewer than its ${size} bytes`)
      const chunk = await this.read(this.meta.seq, index)
      if (this.stopped) return
      const base = index * stored
      if (this.offset >= base + chunk.length) throw this.corrupt(`chunk ${index} holds ${chunk.length} bytes, not ${stored}`)
      // Send what of this stored chunk the window allows, in wire-sized pieces.
      while (this.offset < base + chunk.length && this.offset - this.acked < this.window) {
        if (!this.mayPush()) return
        const from = this.offset - base
        const bytes = chunk.subarray(from, Math.min(chunk.length, from + WIRE_CHUNK))
        this.conn.send({ type: "snapshot-chunk", docId: this.docId, snapshotId: this.meta.seq, offset: this.offset, bytes })
        this.offset += bytes.length
      }
    }
    if (!this.stopped && this.offset >= size && !this.finished) {
      this.finished = true
      this.conn.send({ type: "snapshot-end", docId: this.docId, snapshotId: this.meta.seq })
      this.onDone()
    }
  }

  private corrupt(what: string): Error {
    return canonError("storage-corrupt", `The stored snapshot of "${this.docId}" at seq ${this.meta.seq} cannot be streamed: ${what}.`)
  }
}

/**
 * A document's snapshots on the authority: when to take one, taking it in the background,
 * compacting the log behind it, loading from the newest verified one, and reading chunks for
 * snapshot streams.
 *
 * Policy, in bytes (entry counts say nothing about cost): a snapshot is taken when the log
 * written since the last one is larger than `max(minLogBytes, logRatio x its size)`, as
 * automerge-repo compacts when incremental changes outgrow the last snapshot. After it, the
 * log is compacted up to the snapshot minus a tail of about `min(tailBytes, snapshot size)`
 * of entries, kept so a replica a little behind catches up from entries instead of a whole
 * snapshot. The tail is capped at the snapshot's size because a replica further behind than
 * that many bytes of log gets fewer bytes from the snapshot than from the entries: a longer
 * tail would cost storage and buy nothing (bench snapshots, rows 3 and 3d).
 *
 * A snapshot job encodes the state as it was at its seq while the document goes on accepting
 * commands: the journal hands out, for each container written after the job began, its copy
 * as of then (`freezeState`, core/journal.ts). The job encodes one stored chunk per slice and yields
 * between slices, so neither the write lane nor the event loop is held for long; the chunks'
 * hash, computed as they are written, is the state hash at that seq (a checkpoint for free).
 */
import type { Checkpoint } from "../entry.js"
import type { Runtime } from "../ports/runtime.js"
import { StateEncoder } from "../snapshot/state-encoder.js"
import { StreamHash } from "../snapshot/stream-hash.js"
import type { SnapshotMeta, SnapshotStore } from "../store/snapshot-store.js"
import { decodeCanonical, decodeCanonicalSliced } from "../canonical.js"
import { canonError } from "../errors.js"
import { JournaledState, freezeState } from "../journal.js"

export interface SnapshotPolicy {
  /** Snapshot once this many bytes of log were written since the last one (at least). Default 256 KiB. */
  readonly minLogBytes?: number
  /** ... and more than this times the last snapshot's size. Default 1. */
  readonly logRatio?: number
  /**
   * Bytes of entries kept behind a snapshot when the log is compacted, at most the snapshot's
   * size (see above). Default 64 KiB; Infinity: never compact.
   */
  readonly tailBytes?: number
  /** Bytes per stored chunk. Default 256 KiB. */
  readonly chunkBytes?: number
}

/** A state as of one seq, while the live one moves on (see journal.ts `freezeState`). */
export interface Frozen {
  readonly root: unknown
  resolve(container: object): object
  release(): void
}

export interface Freezable {
  /** Without it the state is encoded in one go (correct, but the event loop waits). */
  freeze?(): Frozen
  readonly root: unknown
}

/** What a finished job produced. */
export interface SnapshotResult extends SnapshotMeta {
  /** False for a hash-only job (a checkpoint of a big state), which stores nothing. */
  readonly stored: boolean
}

const EMPTY = new Uint8Array(0)

const DEFAULTS = { minLogBytes: 256 << 10, logRatio: 1, tailBytes: 64 << 10, chunkBytes: 256 << 10 }

export class Snapshotter {
  /** The newest complete snapshot. */
  latest: SnapshotMeta | undefined
  /** Log bytes committed since `latest` (or since the document began). */
  private logBytes = 0
  /**
   * Log bytes committed since the last snapshot that compacted (the policy's measure): one a
   * reader asked for compacts nothing, so it does not put the policy's next one off either (a
   * reader asking every second would have kept the log from ever being compacted).
   */
  private uncompacted = 0
  private job: Promise<SnapshotResult> | undefined
  private readonly policy: Required<SnapshotPolicy>
  /** Stored chunks recently read, shared by every stream of this document. */
  private readonly cache = new Map<string, Promise<Uint8Array>>()

  constructor(
    private readonly docId: string,
    private readonly store: SnapshotStore,
    private readonly runtime: Runtime,
    policy: SnapshotPolicy | undefined,
    private readonly report: (code: string, message: string) => void,
  ) {
    this.policy = { ...DEFAULTS, ...policy }
  }

  /** Bytes of log to keep behind `meta` when compacting (Infinity: do not compact). */
  tailBytesBehind(meta: SnapshotMeta): number {
    const tail = this.policy.tailBytes
    return Number.isFinite(tail) ? Math.min(tail, meta.size) : tail
  }

  /**
   * The document was loaded with `bytes` of log after its newest snapshot (or since it began,
   * without one), and `behind` bytes of log between the compaction horizon and that snapshot.
   * The newest snapshot may be one a reader asked for, which compacted nothing: the log behind
   * it back to the horizon, less the tail the last compaction kept there, was never compacted,
   * and the policy counts it (counted from the newest snapshot alone, a reader asking for the
   * state once per load kept a document unloaded between visits from ever being compacted).
   */
  noteLoaded(bytes: number, behind = 0): void {
    this.logBytes = bytes
    const tail = this.latest === undefined ? 0 : this.tailBytesBehind(this.latest)
    this.uncompacted = bytes + (Number.isFinite(tail) ? Math.max(0, behind - tail) : 0)
  }

  /**
   * How far back from the newest snapshot toward the horizon a load need count the log
   * (`noteLoaded`'s `behind`): past this a compacting snapshot is due anyway. 0: not at all
   * (no snapshot, or the policy never compacts).
   */
  get loadCountBytes(): number {
    const latest = this.latest
    if (latest === undefined) return 0
    const tail = this.tailBytesBehind(latest)
    if (!Number.isFinite(tail)) return 0
    return tail + Math.max(this.policy.minLogBytes, this.policy.logRatio * latest.size)
  }

  /** The log behind `latest` is being compacted (it was taken without): the policy counts from it. */
  noteCompacting(): void {
    this.uncompacted = this.logBytes
  }

  /** Entries of `bytes` were committed: true when a snapshot (that compacts) is due. */
  noteCommitted(bytes: number): boolean {
    this.logBytes += bytes
    this.uncompacted += bytes
    if (this.job !== undefined) return false
    const threshold = Math.max(this.policy.minLogBytes, this.policy.logRatio * (this.latest?.size ?? 0))
    return this.uncompacted > threshold
  }

  /** Log bytes committed since the newest snapshot (or since the document began, without one). */
  get logBytesSince(): number {
    return this.logBytes
  }

  get running(): boolean {
    return this.job !== undefined
  }

  /**
   * Encodes the state at `seq` in the background; stores it if `persist`. Resolves with its
   * hash and size. One job at a time: a second call while one runs gets the running one.
   * `compacts`: the log behind it is to be compacted (the policy's), so the policy counts from it.
   */
  take(host: Freezable, seq: number, lastTime: number, persist: boolean, compacts = persist): Promise<SnapshotResult> {
    if (this.job !== undefined) return this.job
    const frozen: Frozen = (host instanceof JournaledState ? freezeState(host) : host.freeze?.()) ?? { root: host.root, resolve: (c) => c, release: () => {}, sync: true } as Frozen & { sync: true }
    const job = this.run(frozen, seq, lastTime, persist, compacts).finally(() => {
      frozen.release()
      if (this.job === job) this.job = undefined
    })
    this.job = job
    return job
  }

  private async run(frozen: Frozen, seq: number, lastTime: number, persist: boolean, compacts: boolean): Promise<SnapshotResult> {
    const size = this.policy.chunkBytes
    const enc = new StateEncoder(frozen.root, (c) => frozen.resolve(c))
    const hash = new StreamHash()
    const bytesBefore = this.logBytes
    const uncompactedBefore = this.uncompacted
    // Without a freeze the state must not change while it is encoded: no await until done.
    const sliced = !(frozen as { sync?: true }).sync
    let chunks = 0
    let written = 0
    const ready: Uint8Array[] = []
    // Stored chunks are exactly `size` bytes (but the last), so a byte offset names its chunk
    // (by chunk 0's length: this setting may differ when it is read, snapshot-sender.ts).
    let pending = new Uint8Array(0)
    const cut = (last: boolean): void => {
      let o = 0
      while (pending.length - o >= size || (last && o < pending.length)) {
        ready.push(pending.slice(o, o + size))
        o += size
      }
      pending = pending.slice(Math.min(o, pending.length))
    }
    const write = async (): Promise<void> => {
      while (written < ready.length) {
        if (persist) await this.store.putChunks(this.docId, seq, written, [ready[written]!])
        ready[written] = EMPTY // written: let it go
        written++
      }
    }
    for (let piece = enc.next(size); piece !== undefined; piece = enc.next(size)) {
      hash.update(piece)
      if (persist) {
        const joined = new Uint8Array(pending.length + piece.length)
        joined.set(pending)
        joined.set(piece, pending.length)
        pending = joined
        cut(false)
      }
      if (sliced) {
        await write()
        // Give the event loop back between slices: the frozen state is what gets encoded.
        await new Promise<void>((r) => this.runtime.setTimer(0, r))
      }
    }
    if (persist) cut(true)
    await write()
    chunks = written
    const meta: SnapshotMeta = { seq, hash: hash.digest(), size: hash.length, chunks: persist ? chunks : 0, lastTime }
    if (persist) {
      await this.store.putMeta(this.docId, meta)
      const previous = this.latest
      this.latest = meta
      this.logBytes = Math.max(0, this.logBytes - bytesBefore)
      if (compacts) this.uncompacted = Math.max(0, this.uncompacted - uncompactedBefore)
      if (previous !== undefined && previous.seq !== meta.seq) this.retire(previous.seq)
    }
    return { ...meta, stored: persist }
  }

  /** Streams reading each stored snapshot: an older one is deleted once none reads it. */
  private readonly readers = new Map<number, number>()
  private readonly retired = new Set<number>()

  /** A stream starts reading snapshot `seq`; call the returned function when it ends. */
  use(seq: number): () => void {
    this.readers.set(seq, (this.readers.get(seq) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.readers.get(seq) ?? 1) - 1
      if (n > 0) this.readers.set(seq, n)
      else {
        this.readers.delete(seq)
        if (this.retired.has(seq)) this.dropNow(seq)
      }
    }
  }

  private retire(seq: number): void {
    if ((this.readers.get(seq) ?? 0) > 0) this.retired.add(seq)
    else this.dropNow(seq)
  }

  private dropNow(seq: number): void {
    this.retired.delete(seq)
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${seq}:`)) this.cache.delete(k)
    const drop = this.store.drop(this.docId, seq).catch((e) => this.report("snapshot-drop-failed", `Deleting the old snapshot of "${this.docId}" at seq ${seq} failed (it is retried at the next snapshot): ${e instanceof Error ? e.message : String(e)}`))
    this.drops.add(drop)
    void drop.finally(() => this.drops.delete(drop))
  }

  /** Deletes of retired snapshots not over yet. */
  private readonly drops = new Set<Promise<unknown>>()

  /** A job or a delete is still writing. */
  get busy(): boolean {
    return this.job !== undefined || this.drops.size > 0
  }

  /** Resolves once no job or delete of this instance writes any more (see DocAuthority.settled). */
  async settled(): Promise<void> {
    while (this.busy) await Promise.allSettled([...(this.job !== undefined ? [this.job] : []), ...this.drops])
  }

  /** Chunk `index` of stored snapshot `seq`, through the shared cache. */
  readChunk(seq: number, index: number): Promise<Uint8Array> {
    const key = `${seq}:${index}`
    let p = this.cache.get(key)
    if (p === undefined) {
      p = this.store.chunk(this.docId, seq, index)
      this.cache.set(key, p)
      p.catch(() => this.cache.delete(key))
      // A few chunks per stream in flight; keep the most recent handful.
      if (this.cache.size > 32) this.cache.delete(this.cache.keys().next().value!)
    }
    return p
  }

  /**
   * Reads and verifies a stored snapshot: its chunks hash to its meta's hash and decode to a
   * state. A snapshot that fails is reported and the caller tries an older one.
   */
  async read(meta: SnapshotMeta, admit?: (meta: SnapshotMeta, bytes?: Uint8Array) => void | Promise<void>, pause?: () => Promise<void> | undefined): Promise<unknown> {
    const bytes = new Uint8Array(meta.size)
    const hash = new StreamHash()
    let at = 0
    for (let i = 0; i < meta.chunks; i++) {
      const chunk = await this.store.chunk(this.docId, meta.seq, i)
      if (at + chunk.length > meta.size) throw canonError("storage-corrupt", `The snapshot of "${this.docId}" at seq ${meta.seq} is longer than its ${meta.size} bytes.`)
      bytes.set(chunk, at)
      hash.update(chunk)
      at += chunk.length
    }
    if (at !== meta.size) throw canonError("storage-corrupt", `The snapshot of "${this.docId}" at seq ${meta.seq} has ${at} of its ${meta.size} bytes.`)
    const actual = hash.digest()
    if (actual !== meta.hash) throw canonError("storage-corrupt", `The snapshot of "${this.docId}" at seq ${meta.seq} hashes to ${actual}, not ${meta.hash}.`)
    await admit?.(meta, bytes)
    return pause === undefined ? decodeCanonical(bytes) : decodeCanonicalSliced(bytes, pause)
  }

  /**
   * The newest snapshot at or below `maxSeq` that verifies; older ones that fail are reported
   * and skipped. `admit` sees each one's meta before its bytes are read, then its verified
   * bytes before they are decoded, and may throw. With `pause`, decoded in pieces with it before each.
   */
  async loadNewest(maxSeq: number, admit?: (meta: SnapshotMeta, bytes?: Uint8Array) => void | Promise<void>, pause?: () => Promise<void> | undefined): Promise<{ meta: SnapshotMeta; state: unknown } | undefined> {
    for (const meta of await this.store.metas(this.docId)) {
      if (meta.seq > maxSeq) continue
      await admit?.(meta)
      try {
        const state = await this.read(meta, admit, pause)
        this.latest = meta
        return { meta, state }
      } catch (e) {
        // Only a snapshot found damaged is skipped: a read that failed (or a store closing) says
        // nothing of it, and the load fails (and is tried again) rather than take an older
        // snapshot, or none, and call the document corrupt.
        const code = (e as { code?: unknown } | null)?.code
        if (code !== "storage-corrupt" && code !== "decode-failed") throw e
        this.report("snapshot-invalid", `Skipping the snapshot of "${this.docId}" at seq ${meta.seq}: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    return undefined
  }

  /** The checkpoint a stored snapshot gives. */
  static checkpointOf(meta: SnapshotMeta): Checkpoint {
    return { seq: meta.seq, hash: meta.hash }
  }
}

/**
 * Documents nobody follows, kept loaded for a while: a reader back soon (a tab switched back,
 * a page reloaded, a subscribe after an unsubscribe) finds its document in memory instead of
 * making the hub read it again from storage, which costs O(document) each time. A reader
 * leaving and coming back in a loop therefore costs nothing.
 *
 * Bounded three ways, so keeping them never makes hub memory grow with what readers touch:
 * at most `count` documents and `bytes` of (encoded) state, each at most `ms` after it was
 * left; past a bound, the least recently left go first.
 *
 * The owner (the hub, the CRDT host) decides what letting go means: `release` is called
 * with a document that may have been used again meanwhile (the owner checks, and keeps
 * watching it if so), so an entry never has to be taken out exactly when a document is used.
 */
import type { Runtime, Timer } from "../ports/runtime.js"

export interface IdleDocumentLimits {
  /** Documents kept loaded while nobody follows them. Default 64; 0 unloads at once. */
  readonly count: number
  /** Their state in all, in encoded bytes (memory holds a few times more). Default 16 MiB. */
  readonly bytes: number
  /** How long one is kept after it was left, in ms. Default 30,000. */
  readonly ms: number
}

export const DEFAULT_IDLE_DOCUMENTS: IdleDocumentLimits = { count: 64, bytes: 16 << 20, ms: 30_000 }

/**
 * For whole CRDT documents: a loaded Yjs document takes about 10 times its encoded bytes in
 * memory, an Automerge one up to 35 times (measured), so fewer bytes of them are kept.
 */
export const DEFAULT_IDLE_CRDT_DOCUMENTS: IdleDocumentLimits = { count: 64, bytes: 2 << 20, ms: 30_000 }

interface Kept<D> {
  readonly doc: D
  readonly bytes: number
  readonly timer: Timer
}

export class IdleDocuments<D> {
  /** Oldest first (Map keeps insertion order; `keep` re-inserts). */
  private readonly kept = new Map<string, Kept<D>>()
  private totalBytes = 0

  private readonly limits: IdleDocumentLimits

  constructor(
    private readonly runtime: Runtime,
    limits: Partial<IdleDocumentLimits> | undefined,
    /** Lets the document go (the owner checks it is still idle and still the loaded instance). */
    private readonly release: (docId: string, doc: D) => void,
    defaults: IdleDocumentLimits = DEFAULT_IDLE_DOCUMENTS,
  ) {
    // Field by field: `{ count: undefined }` or NaN (an unset environment variable) keeps the default, never removes the bound.
    const pick = (k: keyof IdleDocumentLimits): number => {
      const v = limits?.[k]
      return typeof v === "number" && !Number.isNaN(v) ? v : defaults[k]
    }
    this.limits = { count: pick("count"), bytes: pick("bytes"), ms: pick("ms") }
  }

  /** Keeps `doc`, left just now, as the newest; lets the oldest go past the bounds. */
  keep(docId: string, doc: D, bytes: number): void {
    this.forget(docId)
    if (this.limits.count <= 0 || bytes > this.limits.bytes || !(this.limits.ms > 0)) return this.release(docId, doc)
    const timer = this.runtime.setTimer(this.limits.ms, () => {
      if (this.kept.get(docId)?.doc === doc) this.letGo(docId)
    })
    this.kept.set(docId, { doc, bytes, timer })
    this.totalBytes += bytes
    while (this.kept.size > this.limits.count || this.totalBytes > this.limits.bytes) {
      this.letGo(this.kept.keys().next().value!)
    }
  }

  /** The kept instance of `docId`, taken out (it is in use again), if any. */
  take(docId: string): D | undefined {
    const entry = this.kept.get(docId)
    this.forget(docId)
    return entry?.doc
  }

  /** Forgets `docId` (only if `which` says it is the one kept) without letting it go: it broke, or its owner unloads it itself. */
  forget(docId: string, which?: (kept: D) => boolean): void {
    const entry = this.kept.get(docId)
    if (entry === undefined || (which !== undefined && !which(entry.doc))) return
    entry.timer.cancel()
    this.kept.delete(docId)
    this.totalBytes -= entry.bytes
  }

  /** Lets every kept document go at once (room is needed now); returns how many. */
  letGoAll(): number {
    const ids = [...this.kept.keys()]
    for (const docId of ids) this.letGo(docId)
    return ids.length
  }

  /** Forgets every document (the owner is closing them all). */
  clear(): void {
    for (const docId of [...this.kept.keys()]) this.forget(docId)
  }

  get size(): number {
    return this.kept.size
  }

  get bytes(): number {
    return this.totalBytes
  }

  private letGo(docId: string): void {
    const entry = this.kept.get(docId)!
    this.forget(docId)
    this.release(docId, entry.doc)
  }
}

/**
 * Automerge sync over a PeerLink: Automerge's own sync protocol (`generateSyncMessage` /
 * `receiveSyncMessage`, one SyncState per link), each message sent raw. A replica holds its
 * document in an `AutomergeReplica` and can sync over several links at once (peers while the
 * hub is away); every change, local or from one link, is offered on the others.
 *
 * A peer is as untrusted as any client of the hub, so the changes of its sync messages go
 * through the steps the hub's documents take (adapters/automerge/admit.ts) before Automerge
 * sees them: the decoded work bounded before decoding (deflated parts inflated under a bound,
 * asynchronously: messages are handled one after another), only changes whose dependencies
 * are here (Automerge would hold the others and apply them later, unchecked), and what each
 * op does checked (depth, `__proto__`, preds, op counters). One 16 KB change of thousands of
 * nested maps would otherwise abort Automerge's WebAssembly for every document of the page.
 * A message that fails is dropped, reported, and that link's SyncState reset (the next round
 * starts over); a missing dependency only resets it (the new round fetches it).
 */
import * as A from "@automerge/automerge"
import type { PeerLink } from "../../core/crdt-docs/peer-link.js"
import { admitChanges, changesOf, inflateWithStreams, measureChunkAsync, type InflateAsync, type UntrustedChange } from "../automerge/admit.js"
import { OpIndex, Overlay } from "../automerge/validate.js"

export interface AutomergeSyncOptions {
  /** Largest sync message accepted. Default 4 MiB. */
  readonly maxMessageBytes?: number
  /** Most ops (or preds, or changes) one change or document chunk of a message may decode to, counted before decoding. Default 262,144. */
  readonly maxChangeOps?: number
  /** Most bytes the deflated parts of one chunk may inflate to. Default 16 MiB. */
  readonly maxInflatedBytes?: number
  /** Raw DEFLATE with a bound. Default: the platform's DecompressionStream. */
  readonly inflate?: InflateAsync
  readonly onError?: (error: { readonly code: string; readonly message: string }) => void
}

interface Attached {
  readonly link: PeerLink
  state: A.SyncState
  readonly unsubscribe: () => void
}

export class AutomergeReplica<T> {
  private readonly links = new Set<Attached>()
  private readonly listeners = new Set<(doc: A.Doc<T>) => void>()
  /** What checking a peer's change needs of the document: built on the first one, kept up to date after. */
  private index: OpIndex | undefined
  /** Messages are handled in arrival order, one at a time (measuring may wait for inflating). */
  private inbox: Promise<void> = Promise.resolve()
  /** Rounds started over because a change's dependency was missing (diagnostics). */
  resyncs = 0

  constructor(private docValue: A.Doc<T>, private readonly options: AutomergeSyncOptions = {}) {}

  get doc(): A.Doc<T> {
    return this.docValue
  }

  /** Changes the document locally and offers the change on every link. */
  change(fn: A.ChangeFn<T>): void {
    const before = this.docValue
    this.docValue = A.change(this.docValue, fn)
    if (this.docValue === before) return
    if (this.index !== undefined) {
      const local = A.getLastLocalChange(this.docValue)
      if (local !== undefined) {
        const o = new Overlay(this.index)
        o.stage(A.decodeChange(local))
        o.commit()
      }
    }
    this.changed()
  }

  /** Calls `fn` after every change (local or from a peer). */
  onChange(fn: (doc: A.Doc<T>) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Resolves once every message received so far is handled. */
  idle(): Promise<void> {
    return this.inbox
  }

  /** Syncs over `link` until the returned function is called. */
  attach(link: PeerLink): () => void {
    const a: Attached = {
      link,
      state: A.initSyncState(),
      unsubscribe: link.subscribe({
        message: (bytes) => {
          this.inbox = this.inbox.then(() => this.receive(a, bytes))
        },
        open: () => {
          a.state = A.initSyncState()
          this.offer(a)
        },
      }),
    }
    this.links.add(a)
    if (link.isOpen) this.offer(a)
    return () => {
      a.unsubscribe()
      this.links.delete(a)
    }
  }

  private offer(a: Attached): void {
    if (!a.link.isOpen) return
    const [state, message] = A.generateSyncMessage(this.docValue, a.state)
    a.state = state
    if (message !== null) a.link.send(message)
  }

  private refuse(a: Attached, code: string, message: string): void {
    a.state = A.initSyncState()
    this.options.onError?.({ code, message })
  }

  /** The changes of a peer's message, measured and decoded, or undefined (refused and reported). */
  private async changesIn(a: Attached, chunks: ReadonlyArray<Uint8Array>): Promise<UntrustedChange[] | undefined> {
    const maxOps = this.options.maxChangeOps ?? 1 << 18
    const maxInflatedBytes = this.options.maxInflatedBytes ?? 16 << 20
    const inflate = this.options.inflate ?? inflateWithStreams
    const out: UntrustedChange[] = []
    for (const chunk of chunks) {
      const m = await measureChunkAsync(chunk, { maxOps, maxInflatedBytes, inflate })
      if (!m.ok) {
        this.refuse(a, m.tooLarge ? "update-too-large" : "update-malformed", `A change from the peer ${m.tooLarge ? "decodes to more than the limit" : "is not Automerge's"} (${m.message.slice(0, 120)}).`)
        return undefined
      }
      try {
        out.push(...changesOf(chunk, m))
      } catch (e) {
        this.refuse(a, "update-malformed", `A change from the peer does not decode (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`)
        return undefined
      }
    }
    return out
  }

  private async receive(a: Attached, bytes: Uint8Array): Promise<void> {
    if (!this.links.has(a)) return
    const max = this.options.maxMessageBytes ?? 4 << 20
    if (bytes.length > max) return this.options.onError?.({ code: "update-too-large", message: `A sync message of ${bytes.length} bytes (at most ${max}).` })
    let message: A.DecodedSyncMessage
    try {
      message = A.decodeSyncMessage(bytes)
    } catch (e) {
      return this.refuse(a, "update-malformed", `A sync message that does not decode (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`)
    }
    let fresh: ReadonlyArray<UntrustedChange> = []
    let overlay: Overlay | undefined
    if (message.changes.length > 0) {
      const changes = await this.changesIn(a, message.changes)
      if (changes === undefined || !this.links.has(a)) return
      const backend = A.getBackend(this.docValue)
      overlay = new Overlay((this.index ??= OpIndex.of(this.docValue)))
      const admitted = admitChanges(overlay, changes, (hash) => backend.getChangeByHash(hash) != null)
      if (!admitted.ok && "missing" in admitted) {
        // Not an attack by itself (a bloom filter's false positive leaves one out): start the round over.
        this.resyncs++
        a.state = A.initSyncState()
        return this.offer(a)
      }
      if (!admitted.ok) return this.refuse(a, "update-malformed", `A change from the peer is not what Automerge makes (${admitted.verdict.message}).`)
      fresh = admitted.fresh
    }
    const before = A.getHeads(this.docValue).join()
    try {
      // Only the checked changes reach Automerge; the rest of the message records what the peer has.
      const checked = A.encodeSyncMessage({ ...message, changes: fresh.map((x) => x.bytes) })
      ;[this.docValue, a.state] = A.receiveSyncMessage(this.docValue, a.state, checked)
    } catch (e) {
      this.index = undefined
      return this.refuse(a, "update-malformed", `A sync message Automerge refused (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`)
    }
    overlay?.commit()
    if (A.getHeads(this.docValue).join() !== before) this.changed()
    else this.offer(a)
  }

  private changed(): void {
    for (const a of this.links) this.offer(a)
    for (const l of this.listeners) l(this.docValue)
  }
}

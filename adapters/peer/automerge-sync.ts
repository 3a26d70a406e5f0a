/**
 * Automerge sync over a PeerLink: Automerge's own sync protocol (`generateSyncMessage` /
 * `receiveSyncMessage`, one SyncState per link), each message sent raw. A replica holds its
 * document in an `AutomergeReplica` and can sync over several links at once (peers while the
 * hub is away); every change, local or from one link, is offered on the others.
 *
 * Messages from a peer are bounded in size; one that does not decode or that Automerge
 * refuses is dropped and that link's SyncState reset (the next round starts over). Automerge
 * holds changes whose dependencies have not arrived; the sync protocol asks for them.
 */
import * as A from "@automerge/automerge"
import type { PeerLink } from "../../core/crdt-docs/peer-link.js"

export interface AutomergeSyncOptions {
  /** Largest sync message accepted. Default 4 MiB. */
  readonly maxMessageBytes?: number
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

  constructor(private docValue: A.Doc<T>, private readonly options: AutomergeSyncOptions = {}) {}

  get doc(): A.Doc<T> {
    return this.docValue
  }

  /** Changes the document locally and offers the change on every link. */
  change(fn: A.ChangeFn<T>): void {
    this.docValue = A.change(this.docValue, fn)
    this.changed(undefined)
  }

  /** Calls `fn` after every change (local or from a peer). */
  onChange(fn: (doc: A.Doc<T>) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Syncs over `link` until the returned function is called. */
  attach(link: PeerLink): () => void {
    const a: Attached = {
      link,
      state: A.initSyncState(),
      unsubscribe: link.subscribe({
        message: (bytes) => this.receive(a, bytes),
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

  private receive(a: Attached, bytes: Uint8Array): void {
    const max = this.options.maxMessageBytes ?? 4 << 20
    if (bytes.length > max) return this.options.onError?.({ code: "update-too-large", message: `A sync message of ${bytes.length} bytes (at most ${max}).` })
    const before = A.getHeads(this.docValue).join()
    try {
      A.decodeSyncMessage(bytes)
      ;[this.docValue, a.state] = A.receiveSyncMessage(this.docValue, a.state, bytes)
    } catch (e) {
      a.state = A.initSyncState()
      return this.options.onError?.({ code: "update-malformed", message: `A sync message Automerge refused (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).` })
    }
    if (A.getHeads(this.docValue).join() !== before) this.changed(a)
    else this.offer(a)
  }

  private changed(from: Attached | undefined): void {
    for (const a of this.links) this.offer(a)
    void from
    for (const l of this.listeners) l(this.docValue)
  }
}

/**
 * Yjs sync over a PeerLink: the y-protocols exchange (step1: my state vector, step2: what
 * you lack, then each update as it happens), in the y-websocket message format, so the same
 * session syncs a replica with another replica (memory, WebSocket, BroadcastChannel links)
 * or with the hub's y-websocket endpoint (open-ydoc.ts).
 *
 * - On every (re)open both sides send step1 and answer the other's with step2: whatever one
 *   side gained meanwhile (its own offline edits, or edits it got from a third peer while
 *   the other was away) reaches the other. This is how a replica hands the hub, once it is
 *   back, what the hub lacks.
 * - Updates from a peer are V1 only (bounded decoding; see adapters/yjs-server/engine.ts), are
 *   decoded before they are applied, and one that throws is dropped (reported via onError).
 * - An update whose dependencies have not arrived is held by Yjs. Held bytes are bounded
 *   (`maxPendingBytes`): past it they are dropped and the handshake re-run, which fetches the
 *   missing data in one step2.
 */
import * as Y from "yjs"
import type { PeerLink } from "../../core/crdt-docs/peer-link.js"
import { decodeYMessage, encodeStep1, encodeStep2, encodeUpdate } from "../yjs-server/protocol.js"

export interface YSyncOptions {
  /** Held (dependency-waiting) update bytes allowed before they are dropped and the handshake re-run. Default 1 MiB. */
  readonly maxPendingBytes?: number
  /** Largest update accepted from the peer. Default 1 MiB. */
  readonly maxUpdateBytes?: number
  readonly onError?: (error: { readonly code: string; readonly message: string }) => void
}

interface PendingStore {
  pendingStructs: { update: Uint8Array } | null
  pendingDs: Uint8Array | null
}

export class YSyncSession {
  private readonly unsubscribe: () => void
  private syncedValue = false
  private readonly waiters = new Set<() => void>()
  /** Bytes dropped from the pending store and handshakes re-run because of it (diagnostics). */
  resyncs = 0

  constructor(readonly doc: Y.Doc, readonly link: PeerLink, private readonly options: YSyncOptions = {}) {
    doc.on("update", this.onLocal)
    this.unsubscribe = link.subscribe({
      message: (bytes) => this.receive(bytes),
      open: () => this.handshake(),
      close: () => (this.syncedValue = false),
    })
    if (link.isOpen) this.handshake()
  }

  /** Whether the peer's step2 arrived since the link last opened. */
  get synced(): boolean {
    return this.syncedValue
  }

  /** Resolves once synced (now, or at the next step2). */
  whenSynced(): Promise<void> {
    if (this.syncedValue) return Promise.resolve()
    return new Promise((r) => this.waiters.add(r))
  }

  private handshake(): void {
    this.syncedValue = false
    this.link.send(encodeStep1(Y.encodeStateVector(this.doc)))
  }

  private readonly onLocal = (update: Uint8Array, origin: unknown): void => {
    // Updates that came from this link do not go back to it.
    if (origin !== this) this.link.send(encodeUpdate(update))
  }

  private fail(code: string, message: string): void {
    this.options.onError?.({ code, message })
  }

  private receive(bytes: Uint8Array): void {
    let msg
    try {
      msg = decodeYMessage(bytes)
    } catch (e) {
      return this.fail("protocol-error", `An undecodable message from the peer (${e instanceof Error ? e.message : String(e)}).`)
    }
    switch (msg.type) {
      case "step1": {
        let diff: Uint8Array
        try {
          diff = Y.encodeStateAsUpdate(this.doc, msg.stateVector)
        } catch {
          return this.fail("protocol-error", "A state vector that does not decode.")
        }
        return this.link.send(encodeStep2(diff))
      }
      case "step2":
      case "update": {
        this.apply(msg.update)
        if (msg.type === "step2" && !this.syncedValue) {
          this.syncedValue = true
          for (const w of this.waiters) w()
          this.waiters.clear()
        }
        return
      }
      case "auth-denied":
        return this.fail("unauthorized", msg.reason)
      default:
        // awareness, query-awareness, unknown: not this session's business.
        return
    }
  }

  private apply(update: Uint8Array): void {
    const max = this.options.maxUpdateBytes ?? 1 << 20
    if (update.length > max) return this.fail("update-too-large", `An update of ${update.length} bytes from the peer (at most ${max}).`)
    try {
      Y.decodeUpdate(update)
    } catch (e) {
      return this.fail("update-malformed", `Not a Yjs V1 update (${e instanceof Error ? e.message : String(e)}).`)
    }
    try {
      Y.applyUpdate(this.doc, update, this)
    } catch (e) {
      return this.fail("update-failed", `An update from the peer could not be merged (${e instanceof Error ? e.message : String(e)}).`)
    }
    const store = this.doc.store as unknown as PendingStore
    const held = (store.pendingStructs?.update.length ?? 0) + (store.pendingDs?.length ?? 0)
    if (held > (this.options.maxPendingBytes ?? 1 << 20)) {
      // Drop what waits and ask again: the peer's step2 carries the missing data and these.
      store.pendingStructs = null
      store.pendingDs = null
      this.resyncs++
      this.handshake()
    }
  }

  /** Stops syncing (the doc and the link stay as they are). */
  destroy(): void {
    this.doc.off("update", this.onLocal)
    this.unsubscribe()
  }
}

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
 * - Updates from a peer are V1 only (bounded decoding; see adapters/yjs-server/engine.ts) and
 *   go through the checks every Yjs route shares (adapters/yjs/integrable.ts) before they
 *   touch the document: clocks, subdocuments, nesting depth, the key `__proto__`, block
 *   structure, items whose origins no writer could have had as neighbours. One that fails is
 *   dropped (reported via onError). A peer is as untrusted as any client of the hub: one
 *   update of thousands of nested maps would break `toJSON()` of this document for good.
 * - An update whose dependencies have not arrived is not held (Yjs would integrate it later,
 *   unchecked, once they do): it is dropped and the handshake re-run, whose step2 carries
 *   what was missing and the update itself.
 * - Decoding is bounded before it starts: bytes and structs (a struct can be 2 bytes), with a
 *   larger bound for the step2 answering this session's own step1 (a fresh replica gets the
 *   whole document in it). A step1 is answered within a budget (./answer-budget.ts), and a
 *   session that has no answer of its own asks back whoever asks it. Only a step1's count of
 *   clients is read on arrival: one listing more than the document's clients plus
 *   MAX_UNSEEN_STATE_VECTOR_CLIENTS is answered as an empty one (the whole document) and its
 *   sender asked back, its entries never read; the others' entries are read once the budget
 *   lets the step1 through (as the hub's y-websocket route, adapters/yjs-server/endpoint.ts).
 * - The document as a whole is bounded as the hub's are (`maxDocStructs`, default the hub's
 *   DEFAULT_MAX_DOC_STRUCTS): an update that could take it past is refused before it is
 *   decoded (`document-too-large`), counted from its bytes as a CRDT field counts
 *   (adapters/yjs/engine.ts: each struct and each deleted range may add 2). Without it a peer
 *   sending valid updates under its own clientID (each within the per-update bounds) grew a
 *   replica until the process died: ~12 MB of updates for a 1 GiB heap.
 * - The work a peer's updates cost is paid from a budget per session (a TokenBucket, the
 *   hub's CRDT work budget and weights: `updateWorkPerSecond`, `updateWorkBurst`). An update
 *   past it is refused (`rate-limited`) and, once the budget is back, the handshake re-run:
 *   its step2 brings what was refused (an honest burst arrives late, not never). The step2
 *   answering this session's step1 is always taken, and borrows: while the budget is in
 *   debt the session asks nobody for a step2.
 */
import * as Y from "yjs"
import type { PeerLink } from "../../core/crdt-docs/peer-link.js"
import { decodeYMessage, encodeStep1, encodeStep2, encodeUpdate, forEachStateVectorEntry, stateVectorToAnswer } from "../yjs-server/protocol.js"
import { canonError } from "../../core/errors.js"
import { AnswerBudget } from "./answer-budget.js"
import { TokenBucket, DEFAULT_LIMITS } from "../../core/authority/limits.js"
import { DEFAULT_MAX_DOC_STRUCTS } from "../yjs-server/engine.js"
import { MAX_UPDATE_STRUCTS, countV1Structs, notIntegrable, structCount, unsupportedStructs, type DecodedYUpdate } from "../yjs/integrable.js"

/** How long a step1 waits for its step2 before another may go out. */
const STEP2_WAIT_MS = 1_000

/** Default bound on a step2 answering this session's step1 (ws-listen accepts messages as large). */
export const DEFAULT_MAX_SYNC_BYTES = 64 << 20

export interface YSyncOptions {
  /** Largest update accepted from the peer. Default 1 MiB. */
  readonly maxUpdateBytes?: number
  /**
   * Largest step2 accepted in answer to this session's own step1: the whole document when it
   * starts empty, so it may be far larger than one update. Default 64 MiB.
   */
  readonly maxSyncBytes?: number
  /**
   * Most structs that step2 may hold, counted before it is decoded (decoding costs per
   * struct, and a struct can be 2 bytes). Default 1,048,576 (about 2 s); an update: 262,144.
   */
  readonly maxSyncStructs?: number
  /**
   * Most structs the document may hold: an update or step2 from the peer that could take it
   * past is refused (`document-too-large`), before it is decoded; local edits are not judged.
   * Counted at most (each struct of the update and each deleted range may add 2, as a CRDT
   * field counts), so a document past half the bound with many deletions may see a peer's
   * step2 refused: raise the bound, or split the data into more documents. Default
   * DEFAULT_MAX_DOC_STRUCTS (2^22), the hub's `maxDocStructs`: a document the hub would take.
   * A struct costs 200-500 bytes of heap (one-character items to empty binary ones), so a
   * document at the default may hold 1-2 GB: lower it where the heap is small.
   */
  readonly maxDocStructs?: number
  /**
   * Work the peer's updates may cost, in estimated µs per second (the hub's weights: 2 a
   * struct, 9 a deleted range, 1 per 128 bytes). Default 250,000, the hub's
   * `workPerSecond` for a client: a quarter of one core, about 125,000 new structs a second.
   */
  readonly updateWorkPerSecond?: number
  /** Work the peer's updates may cost at once, in estimated µs. Default 2,000,000 (the hub's `workBurst`): a paste of a million structs goes through unheld. */
  readonly updateWorkBurst?: number
  readonly onError?: (error: { readonly code: string; readonly message: string }) => void
}


export class YSyncSession {
  private readonly unsubscribe: () => void
  private syncedValue = false
  /** A step1 went out and its step2 has not come back: a missing dependency needs no other (for a while). */
  private awaitingStep2 = false
  /** When the last step1 went out (a BroadcastChannel may have had nobody to answer it). */
  private step1At = 0
  /** What whenSynced() hands out until the next step2 (one promise, however many callers). */
  private waiting: { readonly promise: Promise<void>; readonly resolve: () => void; readonly reject: (e: unknown) => void } | undefined
  private destroyed = false
  /**
   * Step1s are answered with everything the peer lacks: three at once, then one a second
   * (./answer-budget.ts). `unseen`: the vector listed past the bound and was replaced by an
   * empty one (the peer claims clients this document lacks).
   */
  private readonly answers = new AnswerBudget<{ readonly stateVector: Uint8Array; readonly unseen: boolean }>(3, 1_000, (req) => this.answer(req.stateVector, req.unseen))
  /** Updates dropped for a missing dependency, each answered by a handshake unless one was under way (diagnostics). */
  resyncs = 0
  /** The work budget of the peer's updates (see the header). */
  private readonly work: TokenBucket
  private readonly workRate: number
  /** A handshake waiting for the work budget (an update was refused, or a step2 was due while in debt). */
  private resyncTimer: ReturnType<typeof setTimeout> | undefined
  /** Updates refused for the work budget (diagnostics). */
  rateLimited = 0

  constructor(readonly doc: Y.Doc, readonly link: PeerLink, private readonly options: YSyncOptions = {}) {
    const positive = (name: string, value: number | undefined): void => {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new TypeError(`${name} must be a number above 0, not ${String(value)}.`)
    }
    positive("maxDocStructs", options.maxDocStructs)
    positive("updateWorkPerSecond", options.updateWorkPerSecond)
    positive("updateWorkBurst", options.updateWorkBurst)
    this.workRate = options.updateWorkPerSecond ?? DEFAULT_LIMITS.workPerSecond
    this.work = new TokenBucket(this.workRate, options.updateWorkBurst ?? DEFAULT_LIMITS.workBurst, performance.now())
    doc.on("update", this.onLocal)
    this.unsubscribe = link.subscribe({
      message: (bytes) => this.receive(bytes),
      open: () => this.handshake(),
      close: () => {
        this.syncedValue = false
        this.awaitingStep2 = false
      },
      // The link is gone for good: nothing of this session may stay on the document.
      end: () => this.destroy(),
    })
    if (link.isOpen) this.handshake()
  }

  /** Whether the peer's step2 arrived since the link last opened. */
  get synced(): boolean {
    return this.syncedValue
  }

  /** Resolves once synced (now, or at the next step2); rejects (`closed`) if destroyed first. */
  whenSynced(): Promise<void> {
    if (this.syncedValue) return Promise.resolve()
    if (this.destroyed) return Promise.reject(canonError("closed", "The sync session was destroyed before it synced."))
    if (this.waiting === undefined) {
      let resolve!: () => void, reject!: (e: unknown) => void
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)))
      // A caller that stopped waiting must not crash the process when destroy() rejects it.
      promise.catch(() => {})
      this.waiting = { promise, resolve, reject }
    }
    return this.waiting.promise
  }

  private handshake(): void {
    this.syncedValue = false
    this.awaitingStep2 = true
    this.step1At = performance.now()
    this.link.send(encodeStep1(Y.encodeStateVector(this.doc)))
  }

  private readonly onLocal = (update: Uint8Array, origin: unknown): void => {
    // Updates that came from this link do not go back to it.
    if (origin !== this) this.link.send(encodeUpdate(update))
  }

  private fail(code: string, message: string): false {
    this.options.onError?.({ code, message })
    return false
  }

  private receive(bytes: Uint8Array): void {
    let msg
    try {
      msg = decodeYMessage(bytes)
    } catch (e) {
      this.fail("protocol-error", `An undecodable message from the peer (${e instanceof Error ? e.message : String(e)}).`)
      return
    }
    switch (msg.type) {
      case "step1": {
        // Only the count here: the entries are read past the answer budget, if at all.
        const stateVector = stateVectorToAnswer(msg.stateVector, this.doc.store.clients.size)
        if (stateVector === undefined) {
          this.fail("protocol-error", "A state vector that does not decode.")
          return
        }
        return this.answers.request({ stateVector, unseen: stateVector !== msg.stateVector })
      }
      case "step2":
      case "update": {
        // The answer to this session's step1 (a step2 meant for another member of a
        // BroadcastChannel is an update like any other).
        const answer = msg.type === "step2" && this.awaitingStep2
        const applied = this.apply(msg.update, answer)
        // Only an answer taken ends the wait: a refused one (a bad member of a
        // BroadcastChannel answering first) leaves room for the others'.
        if (answer && applied) this.awaitingStep2 = false
        // Synced means the document holds what the peer had: not after an answer it refused.
        if (answer && applied && !this.syncedValue) {
          this.syncedValue = true
          this.waiting?.resolve()
          this.waiting = undefined
        }
        return
      }
      case "auth-denied":
        this.fail("unauthorized", msg.reason)
        return
      default:
        // awareness, query-awareness, unknown: not this session's business.
        return
    }
  }

  private answer(stateVector: Uint8Array, unseen: boolean): void {
    let diff: Uint8Array
    try {
      diff = Y.encodeStateAsUpdate(this.doc, stateVector)
    } catch {
      this.fail("protocol-error", "A state vector that does not decode.")
      return
    }
    this.link.send(encodeStep2(diff))
    // A peer that asks while this session has no answer of its own (its step1 went out when
    // nobody was on a BroadcastChannel) is asked back: its content would never come otherwise.
    // So is a peer that has what this document lacks (a BroadcastChannel has no join event: a
    // third member's offline edits would stay with it). Within the answer budget: two peers
    // stop once each has the other's step2. A vector past the bound lists thousands of clients
    // this document lacks (an honest one lists only clients with content).
    if (!this.syncedValue || unseen || this.lacksWhatTheyHave(stateVector)) this.askAgain()
  }

  /** A handshake now, or once the work budget is out of debt (its step2 would borrow more). */
  private askAgain(afterMs = 0): void {
    const debtMs = this.work.borrow(0, performance.now())
    const wait = Math.max(afterMs, debtMs)
    if (wait === 0) return this.handshake()
    this.resyncTimer ??= setTimeout(() => {
      this.resyncTimer = undefined
      if (!this.destroyed && this.link.isOpen) this.askAgain()
    }, wait)
  }

  /** Whether a peer's state vector names clocks this document does not have (read without building a map). */
  private lacksWhatTheyHave(stateVector: Uint8Array): boolean {
    let lacks = false
    try {
      forEachStateVectorEntry(stateVector, (client, clock) => {
        if (!lacks && clock > Y.getState(this.doc.store, client)) lacks = true
      })
    } catch {
      return false
    }
    return lacks
  }

  /** Whether the update is in the document now (or was already). */
  private apply(update: Uint8Array, answer: boolean): boolean {
    const max = answer ? (this.options.maxSyncBytes ?? DEFAULT_MAX_SYNC_BYTES) : (this.options.maxUpdateBytes ?? 1 << 20)
    if (update.length > max) return this.fail("update-too-large", `${answer ? "A step2" : "An update"} of ${update.length} bytes from the peer (at most ${max}).`)
    const maxStructs = answer ? (this.options.maxSyncStructs ?? 1 << 20) : MAX_UPDATE_STRUCTS
    const seen = { deleteRanges: 0 }
    const structs = countV1Structs(update, maxStructs, seen)
    if (typeof structs === "string") return this.fail("update-malformed", structs)
    if (structs === undefined) return this.fail("update-too-large", `${answer ? "A step2" : "An update"} of more than ${maxStructs} structs from the peer.`)
    // Paid before anything costly (the hub's weights, adapters/yjs-server/engine.ts `measure`).
    const work = 2 * structs + 9 * seen.deleteRanges + Math.ceil(update.length / 128)
    const now = performance.now()
    if (answer) this.work.borrow(work, now)
    else if (!this.work.take(work, now)) {
      this.rateLimited++
      // What was refused comes back in the step2 of a handshake once the budget allows it.
      const refillMs = Math.ceil((Math.min(work, this.options.updateWorkBurst ?? DEFAULT_LIMITS.workBurst) / this.workRate) * 1000)
      if (this.link.isOpen) this.askAgain(refillMs)
      return this.fail("rate-limited", `An update from the peer past this session's work budget (${this.workRate} µs a second, updateWorkPerSecond): refused; the session syncs again in ${refillMs} ms.`)
    }
    // The document's bound, before decoding: at most 2 structs for each struct and each deleted range.
    const maxDoc = this.options.maxDocStructs ?? DEFAULT_MAX_DOC_STRUCTS
    const held = structCount(this.doc)
    if (held + 2 * structs + 2 * seen.deleteRanges > maxDoc) {
      return this.fail("document-too-large", `${answer ? "A step2" : "An update"} from the peer of ${structs} structs and ${seen.deleteRanges} deleted ranges could take the document (${held} structs) past its bound of ${maxDoc} (maxDocStructs): refused; split the data into more documents, or raise maxDocStructs.`)
    }
    let decoded: DecodedYUpdate
    try {
      decoded = Y.decodeUpdate(update) as unknown as DecodedYUpdate
    } catch (e) {
      return this.fail("update-malformed", `Not a Yjs V1 update (${e instanceof Error ? e.message : String(e)}).`)
    }
    const unsupported = unsupportedStructs(decoded)
    if (unsupported !== undefined) return this.fail("update-malformed", unsupported)
    const cannot = notIntegrable(update, decoded, (client) => Y.getState(this.doc.store, client), this.doc)
    // A step2 answers this document's state vector: what it lacks, the peer lacks too (asking again would loop).
    if (cannot?.reason === "missing" && answer) return this.fail("update-missing-deps", `The peer's step2 is incomplete: ${cannot.message}`)
    if (cannot?.reason === "missing") {
      this.resyncs++
      if ((!this.awaitingStep2 || performance.now() - this.step1At > STEP2_WAIT_MS) && this.link.isOpen) this.askAgain()
      return false
    }
    if (cannot !== undefined) return this.fail("update-malformed", cannot.message)
    try {
      Y.applyUpdate(this.doc, update, this)
    } catch (e) {
      return this.fail("update-failed", `An update from the peer could not be merged (${e instanceof Error ? e.message : String(e)}).`)
    }
    return true
  }

  /** Stops syncing (the doc and the link stay as they are). */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    this.answers.close()
    clearTimeout(this.resyncTimer)
    this.resyncTimer = undefined
    this.doc.off("update", this.onLocal)
    this.unsubscribe()
    this.waiting?.reject(canonError("closed", "The sync session was destroyed before it synced."))
    this.waiting = undefined
  }
}

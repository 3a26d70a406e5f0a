/**
 * Automerge sync over a PeerLink: Automerge's own sync protocol (`generateSyncMessage` /
 * `receiveSyncMessage`, one SyncState per link), each message sent raw. A replica holds its
 * document in an `AutomergeReplica` and can sync over several links at once (peers while the
 * hub is away); every change, local or from one link, is offered on the others.
 *
 * A peer's sync message is checked from its bytes before it is decoded (lists and Bloom filters
 * bounded, adapters/automerge/admit.ts `admitSyncMessage`): decoding makes a JS object of every
 * entry, and the SyncState keeps what it names.
 *
 * A peer is as untrusted as any client of the hub, so the changes of its sync messages go
 * through the steps the hub's documents take (adapters/automerge/admit.ts) before Automerge
 * sees them: the decoded work bounded before decoding (deflated parts inflated under a bound,
 * asynchronously: messages are handled one after another), then what each op does checked
 * (depth, `__proto__`, preds, op counters). One 16 KB change of thousands of nested maps would
 * otherwise abort Automerge's WebAssembly for every document of the page. A message that
 * fails is dropped, reported, and that link's SyncState reset (the next round starts over).
 *
 * A change whose dependencies have not arrived (a Bloom filter's false positive left one out;
 * a BroadcastChannel is several peers behind one SyncState) cannot be checked yet, and
 * Automerge must not hold it: it would apply it later, unchecked. The replica holds it itself,
 * asks for the missing dependencies in the `need` of its next message, and checks and applies
 * it once they are here. Held changes are bounded (`maxHeldBytes`; past it they are dropped
 * and each peer that sent them is asked to send them again); a peer's invalid change drops
 * only itself and what depends on it. Requests for everything are answered within a budget
 * (./answer-budget.ts).
 *
 * The document as a whole is bounded as the hub's are (`maxDocOps`, `maxDocChanges`, the
 * hub's defaults): a peer's change that would take it past is refused (`document-too-large`)
 * with what depends on it, before Automerge sees it, counted from the replica's index (every
 * op, deletes too). And the work a link's messages cost is paid from a budget per link (a
 * TokenBucket, the hub's CRDT work budget and weights): a message is taken while the budget
 * is not in debt (it may go into debt: a fresh replica's first message holds the whole
 * document), and one that comes while it is is refused (`rate-limited`); the round starts
 * over once the debt is paid. Without them a peer sending valid changes grew a replica until
 * the process died.
 */
import * as A from "@automerge/automerge"
import type { PeerLink } from "../../core/crdt-docs/peer-link.js"
import { admitSyncMessage, changesOfAsync, inflateWithStreams, measureChunkAsync, type InflateAsync, type UntrustedChange } from "../automerge/admit.js"
import { MAX_ACTOR_BYTES, OpIndex, Overlay } from "../automerge/validate.js"
import { AnswerBudget } from "./answer-budget.js"
import { sameBytes } from "../../core/bytes.js"
import { DEFAULT_LIMITS, TokenBucket } from "../../core/authority/limits.js"
import { MAX_FIELD_CHANGES, MAX_FIELD_OPS } from "../automerge/engine.js"

export interface AutomergeSyncOptions {
  /** Largest sync message accepted (a fresh peer gets the whole document in one). Default 64 MiB. */
  readonly maxMessageBytes?: number
  /** Most ops (or preds, or changes) one sync message may decode to, all its chunks together, counted before decoding. Default 262,144. */
  readonly maxChangeOps?: number
  /** Most bytes the deflated parts of one chunk may inflate to. Default 64 MiB. */
  readonly maxInflatedBytes?: number
  /** Bytes of changes held until their dependencies arrive. Default 8 MiB. */
  readonly maxHeldBytes?: number
  /**
   * Most ops the document may hold (every op of every change, deletes too): a peer's change
   * that would take it past is refused (`document-too-large`) with every change depending on
   * it; local changes are not judged. Default 2^20, the hub's `maxDocOps` (DEFAULT_MAX_DOC_OPS,
   * a CRDT field's MAX_FIELD_OPS): about 560 MiB of Automerge memory and index; lower it where
   * the heap is small.
   */
  readonly maxDocOps?: number
  /** Most changes the document may hold, likewise. Default 2^18, the hub's `maxDocChanges`. */
  readonly maxDocChanges?: number
  /**
   * Work a link's messages may cost, in estimated µs per second (the hub's weights: 35 a
   * change, 15 an op, 0.3 a byte). Default 250,000, the hub's `workPerSecond` for a
   * client: a quarter of one core.
   */
  readonly workPerSecond?: number
  /** Work a link's messages may cost at once before one is refused, in estimated µs. Default 2,000,000 (the hub's `workBurst`). */
  readonly workBurst?: number
  /** Raw DEFLATE with a bound. Default: the platform's DecompressionStream. */
  readonly inflate?: InflateAsync
  readonly onError?: (error: { readonly code: string; readonly message: string }) => void
}

interface Attached {
  readonly link: PeerLink
  state: A.SyncState
  readonly unsubscribe: () => void
  /** The dependencies last asked for on this link (asked again only when they change). */
  asked: string
  /** Whether a message came on this link since it (re)opened. */
  heard: boolean
  /**
   * Held changes from this peer were dropped (past `maxHeldBytes`): its Automerge counts them
   * as sent and would never send them again. The next message says "no heads", which makes it
   * forget what it sent (once).
   */
  lost: boolean
  /**
   * Messages with no heads after the first: Automerge takes one as "the peer lost its data"
   * and resends everything (7 bytes in, the whole document out, ~200 ms of CPU for 256 KiB).
   * Two at once, then one per 5 s (./answer-budget.ts).
   */
  readonly resets: AnswerBudget<Uint8Array>
  /**
   * A change of this peer's was refused for the document's bound: Automerge keeps asking for
   * what it lacks and the peer, which counts it as sent, answers with nothing, so a message
   * without changes is not answered (that loop ran at microtask speed) until the link reopens.
   */
  full: boolean
  /** The work budget of this link's messages (see the header). */
  readonly work: TokenBucket
  /** A new round once the work budget is out of debt (a message was refused for it). */
  timer: ReturnType<typeof setTimeout> | undefined
}

export class AutomergeReplica<T> {
  private readonly links = new Set<Attached>()
  private readonly listeners = new Set<(doc: A.Doc<T>) => void>()
  /** What checking a peer's change needs of the document: built on the first one, kept up to date after. */
  private index: OpIndex | undefined
  /** Messages are handled in arrival order, one at a time (measuring may wait for inflating). */
  private inbox: Promise<void> = Promise.resolve()
  /** Peers' changes whose dependencies have not arrived, by hash, in arrival order. */
  private readonly held = new Map<string, { readonly change: UntrustedChange; readonly from: Attached }>()
  #heldBytes = 0
  /** Times the held changes passed `maxHeldBytes` and were dropped (diagnostics). */
  resyncs = 0

  constructor(private docValue: A.Doc<T>, private readonly options: AutomergeSyncOptions = {}) {
    for (const name of ["maxDocOps", "maxDocChanges", "workPerSecond", "workBurst"] as const) {
      const value = options[name]
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new TypeError(`${name} must be a number above 0, not ${String(value)}.`)
    }
  }

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

  /** Bytes of peers' changes held until their dependencies arrive (at most `maxHeldBytes`). */
  get heldBytes(): number {
    return this.#heldBytes
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
      asked: "",
      heard: false,
      lost: false,
      resets: new AnswerBudget<Uint8Array>(2, 5_000, (bytes) => this.enqueue(a, bytes, true)),
      work: new TokenBucket(this.options.workPerSecond ?? DEFAULT_LIMITS.workPerSecond, this.options.workBurst ?? DEFAULT_LIMITS.workBurst, performance.now()),
      timer: undefined,
      full: false,
      unsubscribe: link.subscribe({
        message: (bytes) => this.enqueue(a, bytes, false),
        open: () => {
          a.state = A.initSyncState()
          a.asked = ""
          a.heard = false
          a.full = false
          this.offer(a)
        },
        end: () => {
          a.resets.close()
          clearTimeout(a.timer)
          this.links.delete(a)
        },
      }),
    }
    this.links.add(a)
    if (link.isOpen) this.offer(a)
    return () => {
      a.unsubscribe()
      a.resets.close()
      clearTimeout(a.timer)
      this.links.delete(a)
    }
  }

  private enqueue(a: Attached, bytes: Uint8Array, budgeted: boolean): void {
    // One message's failure never stops the ones after it.
    this.inbox = this.inbox.then(() => this.receive(a, bytes, budgeted)).catch((e: unknown) => this.refuse(a, "internal-error", `A sync message failed here (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`))
  }

  private offer(a: Attached): void {
    if (!a.link.isOpen) return
    let message: A.SyncMessage | null
    try {
      ;[a.state, message] = A.generateSyncMessage(this.docValue, a.state)
    } catch (e) {
      // What the peer said left this SyncState unusable (admitSyncMessage refuses what is known to): start over.
      a.state = A.initSyncState()
      this.options.onError?.({ code: "internal-error", message: `Automerge could not answer the peer (${e instanceof Error ? e.message.slice(0, 120) : String(e)}); the round starts over.` })
      return
    }
    if (a.lost) {
      a.lost = false
      const m: A.DecodedSyncMessage = message !== null ? A.decodeSyncMessage(message) : { heads: [], need: [], have: [], changes: [] }
      a.link.send(A.encodeSyncMessage({ ...m, heads: [] }))
      return
    }
    const need = this.missing()
    const asked = need.join()
    if (need.length === 0 || (asked === a.asked && message === null)) {
      if (message !== null) a.link.send(message)
      return
    }
    // Ask for what the held changes lack (Automerge asks only for what it holds itself).
    a.asked = asked
    const m: A.DecodedSyncMessage = message !== null ? A.decodeSyncMessage(message) : { heads: A.getHeads(this.docValue), need: [], have: [], changes: [] }
    a.link.send(A.encodeSyncMessage({ ...m, need: [...new Set([...m.need, ...need])] }))
  }

  /** The dependencies of held changes that are neither here nor held, sorted. */
  private missing(): string[] {
    if (this.held.size === 0) return []
    const backend = A.getBackend(this.docValue)
    const out = new Set<string>()
    for (const { change } of this.held.values()) for (const d of change.deps) if (!this.held.has(d) && backend.getChangeByHash(d) == null) out.add(d)
    return [...out].sort()
  }

  private refuse(a: Attached, code: string, message: string): void {
    a.state = A.initSyncState()
    this.options.onError?.({ code, message })
  }

  /**
   * The changes of a peer's message, measured and decoded, or undefined (refused and
   * reported). The op budget is the message's, not each chunk's (8 copies of a 123-byte chunk
   * of 20,000 empty changes took 7.6 s); a chunk repeated in the message is read once; and
   * decoding yields to the event loop between slices of changes, so a large message costs
   * time, not a frozen page.
   */
  private async changesIn(a: Attached, chunks: ReadonlyArray<Uint8Array>): Promise<UntrustedChange[] | undefined> {
    let budget = this.options.maxChangeOps ?? 1 << 18
    const maxInflatedBytes = this.options.maxInflatedBytes ?? 64 << 20
    const inflate = this.options.inflate ?? inflateWithStreams
    const out: UntrustedChange[] = []
    const seen: Uint8Array[] = []
    // Decoding stops at its next pause once the link is detached or has ended: nobody wants the changes.
    const links = this.links
    const stop = { get aborted(): boolean { return !links.has(a) } }
    // A message is taken whole while the link's work budget is not in debt (see the header).
    const debtMs = a.work.borrow(0, performance.now())
    if (debtMs > 0) {
      this.refuse(a, "rate-limited", `A sync message from the peer past this link's work budget (${this.options.workPerSecond ?? DEFAULT_LIMITS.workPerSecond} µs a second, workPerSecond): refused; the round starts over in ${debtMs} ms.`)
      a.timer ??= setTimeout(() => {
        a.timer = undefined
        if (this.links.has(a)) this.offer(a)
      }, debtMs)
      return undefined
    }
    for (const chunk of chunks) {
      if (stop.aborted) return undefined
      if (seen.some((s) => sameBytes(s, chunk))) continue
      seen.push(chunk)
      const m = await measureChunkAsync(chunk, { maxOps: budget, maxInflatedBytes, inflate, maxActorBytes: MAX_ACTOR_BYTES })
      if (!m.ok) {
        this.refuse(a, m.tooLarge ? "update-too-large" : "update-malformed", `A ${m.tooLarge ? "sync message from the peer decodes to more than the limit" : "change from the peer is not Automerge's"} (${m.message.slice(0, 120)}).`)
        return undefined
      }
      budget -= Math.max(m.ops, m.changes)
      // Paid before decoding (the hub's weights, adapters/automerge-server/engine.ts weightOf).
      a.work.borrow(35 * m.changes + 15 * m.ops + Math.ceil(0.3 * chunk.length), performance.now())
      try {
        for (const c of await changesOfAsync(chunk, m, stop)) out.push(c)
      } catch (e) {
        if (stop.aborted) return undefined
        this.refuse(a, "update-malformed", `A change from the peer does not decode (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`)
        return undefined
      }
    }
    return out
  }

  private async receive(a: Attached, bytes: Uint8Array, budgeted: boolean): Promise<void> {
    if (!this.links.has(a)) return
    const max = this.options.maxMessageBytes ?? 64 << 20
    if (bytes.length > max) return this.options.onError?.({ code: "update-too-large", message: `A sync message of ${bytes.length} bytes (at most ${max}).` })
    // Checked from its bytes before it is decoded: decoding makes an object of every entry (admit.ts).
    const message = admitSyncMessage(bytes)
    if (typeof message === "string") return this.refuse(a, "update-malformed", `A sync message from the peer refused: ${message}.`)
    if (message.heads.length === 0 && a.heard && !budgeted) return a.resets.request(bytes)
    a.heard = true
    let take: UntrustedChange[] = []
    let overlay: Overlay | undefined
    if (message.changes.length > 0) {
      const changes = await this.changesIn(a, message.changes)
      if (changes === undefined || !this.links.has(a)) return
      const backend = A.getBackend(this.docValue)
      const known = (hash: string) => backend.getChangeByHash(hash) != null
      for (const c of changes) {
        if (known(c.hash) || this.held.has(c.hash)) continue
        this.held.set(c.hash, { change: c, from: a })
        this.#heldBytes += c.bytes.length
      }
      overlay = new Overlay((this.index ??= OpIndex.of(this.docValue)))
      take = this.takeReady(overlay, known)
      // What still waits for a dependency is bounded (what is taken now never counts).
      if (this.#heldBytes > (this.options.maxHeldBytes ?? 8 << 20)) {
        for (const { from } of this.held.values()) from.lost = true
        this.held.clear()
        this.#heldBytes = 0
        this.resyncs++
      }
    }
    const before = A.getHeads(this.docValue).join()
    try {
      // Only the checked changes reach Automerge; the rest of the message records what the peer has.
      const checked = A.encodeSyncMessage({ ...message, changes: take.map((x) => x.bytes) })
      ;[this.docValue, a.state] = A.receiveSyncMessage(this.docValue, a.state, checked)
    } catch (e) {
      this.index = undefined
      return this.refuse(a, "update-malformed", `A sync message Automerge refused (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).`)
    }
    overlay?.commit()
    if (A.getHeads(this.docValue).join() !== before) this.changed()
    else if (!a.full || message.changes.length > 0) this.offer(a)
    // Peers whose held changes were dropped are told now, not at their next turn.
    for (const l of this.links) if (l.lost) this.offer(l)
  }

  /**
   * The held changes whose dependencies are all here or taken before them, checked in causal
   * order and staged in `overlay`; they leave the held set. One that is not what Automerge
   * makes leaves it too, with every held change that depends on it, and is reported (its
   * peer's round starts over); the others are unaffected (another peer's bad change must not
   * drop what an honest one sent). Linear in the held changes and their dependencies, in
   * whatever order they came (a chain sent backwards made repeated passes quadratic: 20 s for
   * 4,000 changes).
   */
  private takeReady(overlay: Overlay, known: (hash: string) => boolean): UntrustedChange[] {
    /** Held hash -> how many of its dependencies are neither here nor taken yet. */
    const waiting = new Map<string, number>()
    /** Dependency hash -> the held changes waiting for it. */
    const dependents = new Map<string, string[]>()
    const ready: string[] = []
    for (const [hash, { change }] of this.held) {
      let n = 0
      for (const d of new Set(change.deps)) {
        if (known(d)) continue
        n++
        const list = dependents.get(d)
        if (list === undefined) dependents.set(d, [hash])
        else list.push(hash)
      }
      waiting.set(hash, n)
      if (n === 0) ready.push(hash)
    }
    const take: UntrustedChange[] = []
    const gone: string[] = []
    for (let i = 0; i < ready.length; i++) {
      const hash = ready[i]!
      const { change, from } = this.held.get(hash)!
      gone.push(hash)
      const tooLarge = this.pastBound(overlay, change)
      const verdict = tooLarge === undefined ? overlay.check(change.decoded) : undefined
      if (tooLarge !== undefined || verdict !== undefined) {
        // Reported, the peer's round kept: starting it over would have the peer send the change again, and again.
        if (tooLarge !== undefined) {
          from.full = true
          this.options.onError?.({ code: "document-too-large", message: tooLarge })
        }
        else this.refuse(from, "update-malformed", `A change from the peer is not what Automerge makes (${verdict!.message}).`)
        // What depends on it can never be applied: it goes too.
        for (let j = 0, bad = [hash]; j < bad.length; j++) {
          for (const w of dependents.get(bad[j]!) ?? []) {
            if (waiting.get(w) === -1) continue
            waiting.set(w, -1)
            gone.push(w)
            bad.push(w)
          }
        }
        continue
      }
      take.push(change)
      for (const w of dependents.get(hash) ?? []) {
        const n = waiting.get(w)! - 1
        waiting.set(w, n)
        if (n === 0) ready.push(w)
      }
    }
    for (const hash of gone) {
      const h = this.held.get(hash)
      if (h === undefined) continue
      this.#heldBytes -= h.change.bytes.length
      this.held.delete(hash)
    }
    return take
  }

  /** Why `change` may not join the document (and what `overlay` staged), if it may not: past `maxDocOps` or `maxDocChanges`. */
  private pastBound(overlay: Overlay, change: UntrustedChange): string | undefined {
    const index = this.index!
    const maxOps = this.options.maxDocOps ?? MAX_FIELD_OPS
    const maxChanges = this.options.maxDocChanges ?? MAX_FIELD_CHANGES
    const ops = index.ops.size + overlay.ops.size + change.decoded.ops.length
    const changes = index.historyMax.size + overlay.historyMax.size + 1
    const over = ops > maxOps ? `${maxOps} ops (maxDocOps)` : changes > maxChanges ? `${maxChanges} changes (maxDocChanges)` : undefined
    if (over === undefined) return undefined
    return `A change from the peer would take the document past its bound of ${over}: refused, with what depends on it; split the data into more documents, or raise the bound.`
  }

  private changed(): void {
    for (const a of this.links) this.offer(a)
    for (const l of this.listeners) l(this.docValue)
  }
}

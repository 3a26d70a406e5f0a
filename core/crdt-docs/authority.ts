/**
 * The authority of one whole CRDT document (a Yjs or Automerge document instead of a
 * machine). No total order is needed: updates merge in any order. The authority still gives
 * what the hub gives machines: every accepted update is durable before anyone hears of it,
 * updates arriving during a write go together in the next atomic batch (group commit), an
 * update that adds nothing is acknowledged without being stored, and the stored log is
 * compacted into the engine's compact state once the tail outweighs the base.
 *
 * Untrusted input: each update passes the engine's `check` (decode, bounds) before it is
 * queued. If the library still throws while applying, the live document may be half-changed
 * (both Yjs and Automerge can throw after a partial change): it is rebuilt from storage plus
 * the updates of the batch accepted before, and the failing update is refused. Updates read
 * back from storage are not untrusted input: they reach the engine only through `restore`
 * (`read`), never `check`, `prepare` or `apply`, so no limit for a peer's updates, however it
 * was lowered since, drops what the hub acknowledged; one that does not load fails the load
 * as `storage-corrupt`.
 *
 * Writer identities: an update adds data under writer identities (Yjs clientIDs, Automerge
 * actors; the engine's `writers`). The first principal to write under one, or to show it
 * first (`claim`: a Yjs awareness clientID), owns it, durably; an update of another principal that adds data under it is refused (`not-owner`), so nobody
 * writes as somebody else: no forged authorship, and no front-running a peer's next clock or
 * seq, which would drop that peer's own edits and leave it diverged for good. Relaying data
 * the hub already has is not writing. Only submits that name their principal are judged
 * (the endpoints do; a trusted caller of `submit` may not).
 *
 * Subscribers are the connections following the document (a y-websocket socket, an
 * automerge-repo peer, a Canon client link); each hears the updates of the others, never its
 * own (no echo), and the ephemeral payloads (awareness, presence) the others relay: on a
 * tick per document, the latest per key (a Yjs clientID, a sender), as Canon's presence
 * (core/authority/followers.ts), so however fast one sender renews its state, the others
 * hear it at most once a tick.
 */
import type { Applied, CheckResult, CrdtDocEngine, CrdtRejection, DocWarmUp, StopSignal } from "./engine.js"
import { Stopwatch } from "../stopwatch.js"
import type { CrdtDocStore, OwnerRecord } from "./store.js"
import type { CrdtWorkBudget, WorkInFlight } from "./work-budget.js"
import { steadyNow, type Runtime, type Timer } from "../ports/runtime.js"
import { canonError, errorText } from "../errors.js"
import { CRDT_GROWTH_FACTOR, SizeBound, tombstoneReserve } from "../authority/size-bound.js"

export interface CrdtSubscriber {
  /** Updates accepted and durable, in seq order. Never called for its own submissions. */
  onUpdates(updates: ReadonlyArray<Uint8Array>): void
  /**
   * An ephemeral payload another subscriber relayed (awareness, cursors), under `key` (what it
   * replaces: a later payload of the same key makes this one stale).
   */
  onEphemeral?(payload: Uint8Array, from: CrdtSubscriber, key: unknown): void
  /** The document is gone from memory (storage failed, hub shutting down): reconnect to reload. */
  onClose?(code: string, reason: string): void
}

export interface SubmitOutcome {
  /** Updates that added something (stored and fanned out). */
  readonly stored: number
  /** Updates that were already known (acknowledged, not stored). */
  readonly known: number
  /** Refused updates, by index in the submitted list. */
  readonly rejected: ReadonlyArray<CrdtRejection & { readonly index: number }>
}

export interface CrdtAuthorityOptions {
  /** Compact when the stored tail reaches this many bytes and at least the base's size. Default 64 KiB. */
  readonly compactAfterBytes?: number
  /**
   * Without a runtime (no clock to measure the tail's cost, `maybeCompact`): compact also when
   * the stored tail holds this many updates, whatever their bytes. Default 2,048. A load
   * merges the tail one update at a time, and a tiny update can cost as much to merge as a
   * large one (60,000 one-character Yjs inserts under a 2 MiB base, 1.2 MiB of tail, took 6 s
   * at every load; 20,000 Automerge ones 19 s).
   */
  readonly compactAfterUpdates?: number
  /**
   * Largest document, in stored bytes (its base and the updates after it, which bound what a
   * peer loads): an update that would take it past this is refused `update-too-large`
   * ("Document … is full"). Default 32 MiB (a document takes 10 to 35 times its bytes in the
   * hub's memory); Infinity: no bound. See core/authority/size-bound.ts.
   */
  readonly maxDocumentBytes?: number
}

/** CrdtAuthorityOptions.maxDocumentBytes by default. */
export const DEFAULT_MAX_CRDT_DOCUMENT_BYTES = 32 << 20

export interface CrdtAuthorityHooks {
  /** Storage failed: drop the document (the host closes its subscribers) and reload on next use. */
  readonly onBroken: (doc: CrdtDocAuthority<any>, error: unknown) => void
  /** Something worth a log line (an update the library threw on). */
  readonly onReport?: (r: { readonly docId: string; readonly code: string; readonly message: string }) => void
  /** The principals' shares of the hub's work (the host's, shared by its documents); none: unmetered. */
  readonly work?: CrdtWorkBudget
  /** The host's bound on heavy work in flight at once (shared by its documents); none: unbounded. */
  readonly inFlight?: WorkInFlight
  /** Timers for the relay tick and clocks for measuring `answer`; none: relayed at once, answers unmeasured. */
  readonly runtime?: Runtime
  /** The engine had no room for an update (`doc-unavailable`: its bound on what loaded documents hold): the host lets documents nobody follows go. */
  readonly onNoRoom?: () => void
}

/** How often a document relays the ephemeral payloads that changed (20 a second, as Canon's presence: cursors still look live). */
export const RELAY_TICK_MS = 50

interface Queued {
  /** The submitted updates, each with `check`'s verdict (`prepare` runs in `commit`, in arrival order). */
  readonly updates: ReadonlyArray<Uint8Array>
  readonly checks: ReadonlyArray<CheckResult>
  readonly origin: CrdtSubscriber | undefined
  /** The principal id that submitted (judged against writer ownership), if named. */
  readonly by: string | undefined
  /** Who pays its work (`workPayer`), if named, and what it was charged where it entered (µs): its apply's measured time past that is charged after it. */
  readonly payer: string | undefined
  readonly charged: number
  readonly rejected: Array<CrdtRejection & { readonly index: number }>
  /** Gives back its share of the host's heavy work in flight (idempotent). */
  readonly release: () => void
  readonly resolve: (o: SubmitOutcome) => void
  readonly reject: (e: unknown) => void
}

/** An engine's check that broke its promise never to throw (or reject) refuses the update. */
const refusedBy = (e: unknown): CheckResult => ({ ok: false, code: "update-malformed", message: `The update could not be checked (${e instanceof Error ? e.message.slice(0, 200) : String(e)}).` })

const checkSafely = <D>(engine: CrdtDocEngine<D>, update: Uint8Array): CheckResult => {
  try {
    return engine.check(update)
  } catch (e) {
    return refusedBy(e)
  }
}

const prepareSafely = async <D>(engine: CrdtDocEngine<D>, update: Uint8Array, stop: StopSignal): Promise<CheckResult> => {
  try {
    return await engine.prepare!(update, stop)
  } catch (e) {
    return refusedBy(e)
  }
}

/** The estimated work of the updates that passed `check` (what prepare and apply will do). */
const weightOf = (checks: ReadonlyArray<CheckResult>): number => checks.reduce((n, c) => n + (c.ok ? c.weight ?? 0 : 0), 0)

const DEFAULT_COMPACT_AFTER_BYTES = 64 * 1024
const DEFAULT_COMPACT_AFTER_UPDATES = 2_048
/** A tail that cost less than this to merge is never compacted for its cost (µs of the hub's time). */
const COMPACT_AFTER_MICROS = 250_000

/** Writer identities one principal may claim before writing (`claim`) while a document is loaded: a page load each (a new Y.Doc), for a long day. */
export const MAX_CLAIMS_PER_PRINCIPAL = 256
/** Identities a document holds past which nothing more is claimed before writing (each record is kept for good): ~1 MB of records. */
export const MAX_CLAIMED_WRITERS = 16_384

export class CrdtDocAuthority<D> {
  private readonly subscribers = new Set<CrdtSubscriber>()
  private queue: Queued[] = []
  /** Per payer, its last submit still waiting to enter the queue: the next one waits behind it. */
  private readonly entering = new Map<string, Promise<void>>()
  private writing: Promise<void> | undefined
  /** Set from a batch's first apply until it is stored: the document then holds what a crash would lose. */
  private unstored: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined
  private closed = false
  /** Set by `close`: settles once the engine has let the document go. */
  private disposed: Promise<void> | undefined
  /** Aborted when the document closes (or its host starts to): the engine's sliced work stops at its next pause. */
  private readonly stopping = new AbortController()
  private baseSeq: number
  private baseBytes: number
  private tailBytes: number
  /** The tail when a compaction last failed: tried again only once the tail has grown by another threshold (encode is O(document)). */
  private failedAtTail = -Infinity
  /** The tail's updates when a compaction last failed (as `failedAtTail`, counted in updates). */
  private failedAtUpdates = -Infinity
  /**
   * What merging the stored tail cost, in µs of the runtime's clock: its applies' measured
   * time (a load merges them again, one by one), or the merge of the load that read it.
   */
  private tailMicros = 0
  /** What the last compaction's encode took (µs): a compaction is due once the tail cost as much. */
  private encodeMicros = 0
  /** `tailMicros` when a compaction last failed. */
  private failedAtMicros = -Infinity
  /** An update of the last batch was refused for the document's size: a compaction may find room. */
  private compactDue = false
  private seqValue: number
  /** Keeps the stored document within maxDocumentBytes: the base and the tail, tightened by each compaction. */
  private readonly sizeBound: SizeBound
  /** Ephemeral payloads to relay on the next tick, the latest per key. */
  private readonly relayDue = new Map<unknown, { readonly payload: Uint8Array; readonly from: CrdtSubscriber }>()
  private relayTick: Timer | undefined
  /** The engine's work on the loaded document (warm): applies wait for it. Never rejects. */
  private warming: Promise<void> | undefined
  private warmStarted = false
  /** Writer identities claimed before they wrote (`claim`), bound durably by the next commit: judged as owned meanwhile. */
  private readonly claiming = new Map<string, string>()
  /** Claims each principal made since load (`claim` binds at most MAX_CLAIMS_PER_PRINCIPAL each). */
  private readonly claimsBy = new Map<string, number>()

  private constructor(
    readonly docId: string,
    readonly engine: CrdtDocEngine<D>,
    private readonly store: CrdtDocStore,
    private docValue: D,
    /** Writer identity -> owning principal id (stored ones, and those bound since load). */
    private readonly owners: Map<string, string>,
    state: { seq: number; baseSeq: number; baseBytes: number; tailBytes: number },
    private readonly hooks: CrdtAuthorityHooks,
    private readonly options: CrdtAuthorityOptions,
  ) {
    this.seqValue = state.seq
    this.baseSeq = state.baseSeq
    this.baseBytes = state.baseBytes
    this.tailBytes = state.tailBytes
    // A tail may compact into less: exact only without one.
    const max = options.maxDocumentBytes ?? DEFAULT_MAX_CRDT_DOCUMENT_BYTES
    this.sizeBound = new SizeBound(max, state.baseBytes + state.tailBytes, state.tailBytes === 0, engine.deletionGrowth !== undefined ? tombstoneReserve(max) : 0)
  }

  /**
   * Microseconds the load took the hub, measured on the runtime's steady clock (0 without a
   * runtime): the engine decoding the stored base and merging the tail (`load`, `restore`),
   * without the turns of the event loop a sliced restore lets through. The host charges it to
   * whoever opened the document.
   */
  loadMicros = 0

  /** Loads a document from storage (an empty one if it was never written). */
  static async load<D>(docId: string, engine: CrdtDocEngine<D>, store: CrdtDocStore, hooks: CrdtAuthorityHooks, options: CrdtAuthorityOptions = {}): Promise<CrdtDocAuthority<D>> {
    const runtime = hooks.runtime
    const clock = runtime === undefined ? undefined : () => steadyNow(runtime)
    const { doc, owners, seq, baseSeq, baseBytes, tailBytes, micros, tailMicros } = await CrdtDocAuthority.read(docId, engine, store, clock)
    const loaded = new CrdtDocAuthority(docId, engine, store, doc, owners, { seq, baseSeq, baseBytes, tailBytes }, hooks, options)
    loaded.loadMicros = micros
    // What merging the stored tail cost: the next compaction is judged by it.
    loaded.tailMicros = tailMicros
    return loaded
  }

  /**
   * Starts the engine's work on the loaded document (`warm`: the Automerge engine's index of
   * it, seconds for a large one), in slices, when the first update that passed `check`
   * arrives: only writing needs it, so a document only read (a reader's open loads it too)
   * costs none of it. Applies wait until it is done (commit), never racing it. It takes its
   * share of the host's bound on heavy work in flight, as an upload does, before the update's
   * own share (so it is never behind an update that waits for it), and documents warming at
   * once run one heavy job at a time next to the uploads. The payer of the submit that starts
   * it pays its estimate, as for its own updates: a writer reloading a 1M-op document
   * (pushing it out of the idle cache with small ones) and sending one change, in a loop,
   * had the hub do 7.7 s of index build per 0.8 s load it paid, and another user's command
   * waited up to 3.9 s (.scratch/s35/tenant2/a1-warm-cycle.mts). An honest first writer of
   * a large document pays it once per load, within its work burst (15 s).
   * Not done again for a rebuild (inside a commit, which holds its own share): apply then
   * does the work itself.
   */
  private warm(payer?: string): void {
    this.warmStarted = true
    let work: DocWarmUp | undefined
    try {
      work = this.engine.warm?.(this.docValue)
    } catch (e) {
      return this.warmFailed(e)
    }
    if (work === undefined) return
    if (payer !== undefined) this.hooks.work?.pay(payer, work.weight)
    const inFlight = this.hooks.inFlight
    this.warming = (async () => {
      const release = (await inFlight?.take(work.weight)) ?? (() => {})
      try {
        if (!this.closed) await work.run(this.stopping.signal)
      } finally {
        release()
      }
    })().catch((e) => this.warmFailed(e))
  }

  /** Not fatal: `apply` does the work itself. Unloading the document while it warms stops it, quietly. */
  private warmFailed(e: unknown): void {
    if (this.closed || this.stopping.signal.aborted) return
    this.hooks.onReport?.({ docId: this.docId, code: "warm-failed", message: errorText(e) })
  }

  /** The stored document, decoded; `micros`: the engine's time on it, by `clock` (steady ms; 0 without one). */
  private static async read<D>(docId: string, engine: CrdtDocEngine<D>, store: CrdtDocStore, clock?: () => number) {
    const stored = await store.load(docId)
    if (stored !== undefined && stored.meta.kind !== engine.kind) {
      throw new CrdtDocError("doc-kind-mismatch", `Document "${docId}" is a ${stored.meta.kind} document, not ${engine.kind}.`)
    }
    // The engine's time only: the read from storage is I/O, and a sliced restore's pauses are others' work.
    const meter = new Stopwatch(clock ?? (() => 0))
    // What the base's load took: the rest is the tail's merge.
    let baseMs = 0
    let doc: D
    if (stored?.base === undefined) doc = engine.empty()
    else {
      // Only what is stored is charged: a document never written costs its opener nothing but the read.
      meter.resume()
      try {
        doc = engine.load(stored.base)
      } finally {
        meter.pause()
      }
    }
    // The one place stored updates enter: trusted (this hub accepted them), so `restore`, never
    // the peer's way in (check, prepare, apply), whose limits an operator may have lowered since.
    if (stored !== undefined && stored.entries.length > 0) {
      baseMs = meter.ms
      meter.resume()
      try {
        await engine.restore(doc, stored.entries.map((e) => e.update), meter)
        meter.pause()
      } catch (e) {
        engine.dispose?.(doc)
        // The engine's own refusal (no room for it now) is not damage.
        if (e instanceof CrdtDocError) throw e
        const first = stored.entries[0]!.seq
        throw canonError("storage-corrupt", `The stored updates ${first}-${first + stored.entries.length - 1} of CRDT document "${docId}" do not load (${e instanceof Error ? e.message.slice(0, 200) : String(e)}); restore the document from a backup.`)
      }
    }
    return {
      doc,
      owners: stored?.owners ?? new Map<string, string>(),
      seq: stored?.meta.seq ?? 0,
      baseSeq: stored?.meta.baseSeq ?? 0,
      baseBytes: stored?.base?.length ?? 0,
      tailBytes: stored?.entries.reduce((n, e) => n + e.update.length, 0) ?? 0,
      micros: Math.round(meter.ms * 1000),
      tailMicros: Math.round((meter.ms - baseMs) * 1000),
    }
  }

  /** The live document. Read it (state vectors, sync messages); change it only through `submit`. */
  get doc(): D {
    return this.docValue
  }

  /** Seq of the last stored update. */
  get seq(): number {
    return this.seqValue
  }

  /** Stored bytes: the base and the updates after it. */
  get storedBytes(): { readonly base: number; readonly tail: number } {
    return { base: this.baseBytes, tail: this.tailBytes }
  }

  get subscriberCount(): number {
    return this.subscribers.size
  }

  /** Whether nothing is waiting to be queued, queued or being written (the host may unload an idle document). */
  get idle(): boolean {
    return this.writing === undefined && this.queue.length === 0 && this.entering.size === 0
  }

  subscribe(sub: CrdtSubscriber): void {
    if (this.closed) return sub.onClose?.("closed", `Document "${this.docId}" is closed; reconnect.`)
    this.subscribers.add(sub)
  }

  unsubscribe(sub: CrdtSubscriber): void {
    this.subscribers.delete(sub)
    // What a subscriber that left had due is stale (an endpoint relays its leaving at once).
    for (const [key, due] of this.relayDue) if (due.from === sub) this.relayDue.delete(key)
  }

  /**
   * Relays an ephemeral payload to every other subscriber (never stored) on the document's
   * next tick: of what is relayed under one `key` (by default the sender) in between, only the
   * latest goes. Each relay costs a send to every subscriber, so relaying per message let one
   * socket renewing a large state as fast as it could push every other socket past the slow
   * consumer bound (found by an attack). Without a runtime, relayed at once.
   */
  relay(payload: Uint8Array, from: CrdtSubscriber, key: unknown = from): void {
    if (this.closed) return
    const runtime = this.hooks.runtime
    if (runtime === undefined) return this.relayNow(payload, from, key)
    this.relayDue.delete(key)
    this.relayDue.set(key, { payload, from })
    this.relayTick ??= runtime.setTimer(RELAY_TICK_MS, () => {
      this.relayTick = undefined
      const due = [...this.relayDue]
      this.relayDue.clear()
      for (const [k, d] of due) this.deliver(d.payload, d.from, k)
    })
  }

  /**
   * Relays at once, and drops what `key` had due: a peer leaving (a removed awareness state)
   * is not held behind the tick, nor followed by its stale state.
   */
  relayNow(payload: Uint8Array, from: CrdtSubscriber, key: unknown = from): void {
    if (this.closed) return
    this.relayDue.delete(key)
    this.deliver(payload, from, key)
  }

  private deliver(payload: Uint8Array, from: CrdtSubscriber, key: unknown): void {
    for (const s of [...this.subscribers]) {
      if (s !== from) s.onEphemeral?.(payload, from, key)
    }
  }

  /**
   * Work an endpoint does on the live document for `payer` outside `submit`: encoding a sync
   * answer is O(document) for a few bytes asked. It runs once the payer is out of debt, and
   * its measured time is charged to the payer (work-budget.ts), so a principal asking again
   * and again waits, not the others. Rejects if the document closed meanwhile.
   */
  async answer<T>(payer: string, work: (doc: D) => T): Promise<T> {
    await this.hooks.work?.turn(payer)
    // Never from updates applied but not yet stored: a reader given them could hold data a
    // crash then loses, and send another principal's writes back as its own (not-owner).
    while (this.unstored !== undefined) await this.unstored.promise
    if (this.closed) throw new CrdtDocError("doc-unavailable", `Document "${this.docId}" is closed; reconnect.`)
    const started = this.now()
    try {
      return work(this.docValue)
    } finally {
      // Unmeasured without a runtime (no clock).
      if (this.hooks.runtime !== undefined) this.hooks.work?.pay(payer, Math.round((this.now() - started) * 1000))
    }
  }

  /**
   * While the document in memory holds updates applied but not yet stored: resolves once they
   * are (or the document closed). Undefined otherwise: what is read from it now, a crash cannot
   * take back. A sync answer made outside `answer` waits for it.
   */
  get storing(): Promise<void> | undefined {
    return this.unstored?.promise
  }

  /** The principal id that owns a writer identity (see the header), or has claimed it, if one does. */
  ownerOf(writer: string): string | undefined {
    return this.owners.get(writer) ?? this.claiming.get(writer)
  }

  /**
   * Binds writer identity `writer` to principal `by` before it writes, as its owner first shows
   * it (a Yjs awareness clientID): shown, it is public, and if the first writer owned it, anyone
   * who saw it could write first and strand the owner's offline edits (refused `not-owner`
   * forever). False when another principal owns or claimed it. Durable with the next commit.
   * Claims cost their sender nothing, so they are bounded: MAX_CLAIMS_PER_PRINCIPAL per
   * principal while the document is loaded, and none once the document holds MAX_CLAIMED_WRITERS
   * identities; an identity left unclaimed binds to its first writer, as before.
   */
  claim(writer: string, by: string): boolean {
    const holder = this.ownerOf(writer)
    if (holder !== undefined) return holder === by
    const made = this.claimsBy.get(by) ?? 0
    if (this.closed || made >= MAX_CLAIMS_PER_PRINCIPAL || this.owners.size + this.claiming.size >= MAX_CLAIMED_WRITERS) return true
    if (made === 0 && this.claimsBy.size >= MAX_CLAIMS_PER_PRINCIPAL * 4) this.claimsBy.delete(this.claimsBy.keys().next().value!)
    this.claimsBy.set(by, made + 1)
    this.claiming.set(writer, by)
    // An empty submit: its commit stores what is being claimed.
    this.enqueue([], [], undefined, by, undefined, 0, () => {}).catch(() => {})
    return true
  }

  /**
   * Merges untrusted updates: checked, applied, stored (group commit), then fanned out to the
   * other subscribers. Resolves once they are durable; never rejects for a bad update (that
   * is a rejection in the outcome), only when the document broke or closed. `by`, the
   * submitting principal's id, subjects the updates to writer ownership (see the header).
   * `payer` (workPayer) pays the updates' weight from its share of the hub's work (the host's
   * CrdtWorkBudget) where they enter, refused or not; while it is in debt, its next submits
   * wait before they are queued, in the order they came.
   */
  submit(updates: ReadonlyArray<Uint8Array>, origin?: CrdtSubscriber, by?: string, payer?: string): Promise<SubmitOutcome> {
    if (this.closed) return Promise.reject(new CrdtDocError("doc-unavailable", `Document "${this.docId}" is closed; reconnect.`))
    // Bounded and weighed where they enter, cheaply (the engine's `check`); the costly rest
    // (`prepare`) runs when their turn comes in the queue.
    const checks = updates.map((u) => checkSafely(this.engine, u))
    const work = payer === undefined ? undefined : this.hooks.work
    // The turn is taken before paying: this submit waits off earlier debt, not its own.
    const turn = work?.turn(payer!)
    const charged = checks.reduce((n, c) => n + (c.weight ?? 0), 0)
    work?.pay(payer!, charged)
    // After the turn, as its updates' weight: the build it starts delays its payer's next submits, not this one.
    if (!this.warmStarted && checks.some((c) => c.ok)) this.warm(payer)
    // Heavy work takes its share of the host's bound before it is queued, never inside the
    // queue: a document's queue never stands still waiting for work on other documents.
    const inFlight = this.hooks.inFlight
    const weight = weightOf(checks)
    const key = payer ?? ""
    const before = this.entering.get(key)
    if (turn === undefined && before === undefined && (inFlight === undefined || weight <= inFlight.light)) {
      return this.enqueue(updates, checks, origin, by, payer, charged, () => {})
    }
    // Waiting: the payer's later submits here wait behind this one (a socket's updates keep their order).
    let entered!: () => void
    const mine = new Promise<void>((r) => (entered = r))
    this.entering.set(key, mine)
    return (async () => {
      try {
        await before
        await turn
        const release = (await inFlight?.take(weight)) ?? (() => {})
        if (this.closed) {
          release()
          throw new CrdtDocError("doc-unavailable", `Document "${this.docId}" is closed; reconnect.`)
        }
        return this.enqueue(updates, checks, origin, by, payer, charged, release)
      } finally {
        if (this.entering.get(key) === mine) this.entering.delete(key)
        entered()
      }
    })()
  }

  private enqueue(updates: ReadonlyArray<Uint8Array>, checks: ReadonlyArray<CheckResult>, origin: CrdtSubscriber | undefined, by: string | undefined, payer: string | undefined, charged: number, release: () => void): Promise<SubmitOutcome> {
    return new Promise<SubmitOutcome>((resolve, reject) => {
      // However the item ends, its share of heavy work in flight is given back.
      this.queue.push({
        updates, checks, origin, by, payer, charged, rejected: [], release,
        resolve: (o) => (release(), resolve(o)),
        reject: (e) => (release(), reject(e)),
      })
      this.writing ??= this.drain()
    })
  }

  /**
   * The updates of `item` that pass their checks (the others are refused), with their
   * indexes: `check`'s verdicts, then `prepare` one update at a time (each may hold a whole
   * decoded document chunk).
   */
  private async checked(item: Queued): Promise<{ updates: Uint8Array[]; indexes: number[] }> {
    const updates: Uint8Array[] = []
    const indexes: number[] = []
    for (let index = 0; index < item.updates.length; index++) {
      // Closing: the batch is refused whole (commit), so the rest need not be decoded.
      if (this.stopping.signal.aborted) break
      let c = item.checks[index]!
      if (c.ok && this.engine.prepare !== undefined) c = await prepareSafely(this.engine, item.updates[index]!, this.stopping.signal)
      if (c.ok) {
        updates.push(item.updates[index]!)
        indexes.push(index)
      } else item.rejected.push({ code: c.code, message: c.message, index })
    }
    return { updates, indexes }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue
        this.queue = []
        await this.commit(batch)
      }
    } finally {
      this.writing = undefined
    }
  }

  /**
   * The updates of `item` that write only under writer identities nobody else owns (the others
   * are refused, `not-owner`), each with the identities it would bind to `item.by`.
   */
  private ownWriters(item: Queued, checked: { updates: Uint8Array[]; indexes: number[] }): { updates: Uint8Array[]; indexes: number[]; binds: Array<ReadonlyArray<string>> } {
    const by = item.by
    const writersOf = this.engine.writers
    if (by === undefined || writersOf === undefined) return { ...checked, binds: [] }
    const updates: Uint8Array[] = []
    const indexes: number[] = []
    const binds: Array<ReadonlyArray<string>> = []
    checked.updates.forEach((u, i) => {
      let writers: ReadonlyArray<string>
      try {
        writers = writersOf.call(this.engine, this.docValue, u)
      } catch (e) {
        item.rejected.push({ code: "update-malformed", message: `The update's writers could not be read (${e instanceof Error ? e.message.slice(0, 200) : String(e)}).`, index: checked.indexes[i]! })
        return
      }
      const taken = writers.find((w) => {
        const owner = this.ownerOf(w)
        return owner !== undefined && owner !== by
      })
      if (taken !== undefined) {
        // The owner is not named: a principal id may be personal data.
        item.rejected.push({ code: "not-owner", message: `The update writes as ${taken}, which another user owns; write as an identity of your own (a new Y.Doc, a new Automerge actor).`, index: checked.indexes[i]! })
        return
      }
      updates.push(u)
      indexes.push(checked.indexes[i]!)
      binds.push(writers.filter((w) => !this.owners.has(w)))
    })
    return { updates, indexes, binds }
  }

  /**
   * The updates of `item` the document has room for (the others are refused,
   * `update-too-large`), judged by their bytes before they touch the document: nothing undoes
   * an applied update. A refusal asks for a compaction, which measures the document again.
   * `charges`: what each kept update was charged, which the bound keeps once it is applied.
   */
  private fitting(item: Queued, owned: { updates: Uint8Array[]; indexes: number[]; binds: Array<ReadonlyArray<string>> }): typeof owned & { charges: number[] } {
    const kept: typeof owned & { charges: number[] } = { updates: [], indexes: [], binds: [], charges: [] }
    let pending = 0
    const batch = {}
    owned.updates.forEach((u, i) => {
      // A deletion may use the reserve, and is charged what it can add less what it frees
      // (adapters/yjs/deletion.ts, on the document before this batch): one that frees more
      // always fits, even past the bound, and near full has the document measured again.
      let growth: number | undefined, charge: number
      try {
        growth = this.engine.deletionGrowth?.(this.docValue, u, batch)
        charge = growth === undefined ? u.length * CRDT_GROWTH_FACTOR + (this.engine.extraGrowth?.(this.docValue, u, batch) ?? 0) : Math.max(0, growth)
      } catch (e) {
        // As for writers: an engine that cannot weigh an update refuses it, the others go on.
        item.rejected.push({ code: "update-malformed", message: `The update could not be weighed (${e instanceof Error ? e.message.slice(0, 200) : String(e)}).`, index: owned.indexes[i]! })
        return
      }
      const deletion = growth !== undefined
      if (growth !== undefined && growth <= 0 || this.sizeBound.fits(pending + charge, deletion)) {
        if (deletion && this.sizeBound.nearFull(pending + charge)) this.compactDue = true
        pending += charge
        kept.charges.push(charge)
        kept.updates.push(u)
        kept.indexes.push(owned.indexes[i]!)
        kept.binds.push(owned.binds[i] ?? [])
      } else {
        this.compactDue = true
        item.rejected.push({ code: "update-too-large", message: this.sizeBound.full(this.docId, "this update", deletion), index: owned.indexes[i]! })
      }
    })
    return kept
  }

  private async commit(batch: Queued[]): Promise<void> {
    const toStore: Uint8Array[] = []
    const bound: OwnerRecord[] = []
    const fanout: Array<{ origin: CrdtSubscriber | undefined; updates: Uint8Array[] }> = []
    const counts: Array<{ stored: number; known: number }> = []
    for (const item of batch) {
      const mine: Uint8Array[] = []
      let known = 0
      let results: ReadonlyArray<Applied> = []
      let updates: Uint8Array[], indexes: number[], binds: Array<ReadonlyArray<string>>, charges: number[]
      try {
        const checked = await this.checked(item)
        // Not before the document is warm (its index built): the update waits, it does not race,
        // and is weighed with what the engine learns of the document (the Automerge engine's
        // index: the strings of its objects, adapters/automerge/growth.ts).
        if (checked.updates.length > 0) await this.warming
        if (this.stopping.signal.aborted) return this.abandon(batch)
        ;({ updates, indexes, binds, charges } = this.fitting(item, this.ownWriters(item, checked)))
        if (updates.length > 0) {
          // Its time on the runtime's clock, the turns a sliced apply lets through left out.
          const meter = new Stopwatch(() => this.now())
          try {
            this.markUnstored()
            // One call per submit: Automerge's apply has a large fixed cost per call.
            meter.resume()
            results = await this.engine.apply(this.docValue, updates, this.stopping.signal, meter)
            meter.pause()
            if (this.stopping.signal.aborted) return this.abandon(batch)
          } catch (e) {
            // What the failed apply took counts (the rebuild after it is the document's recovery, not the payer's).
            meter.pause()
            if (this.stopping.signal.aborted) return this.abandon(batch)
            this.hooks.onReport?.({ docId: this.docId, code: "update-failed", message: errorText(e) })
            // The document may be half-changed: rebuild it, then find the culprit one by one.
            try {
              await this.rebuild(toStore)
              results = await this.applyEach(updates, toStore)
            } catch (error) {
              if (this.stopping.signal.aborted) return this.abandon(batch)
              return this.fail(batch, error)
            }
          }
          this.applied(item, meter.ms)
        }
      } finally {
        // What prepare decoded is let go with apply: the next heavy item may start.
        item.release()
      }
      results.forEach((result, i) => {
        // What the document took in, when the engine says (never a peer's bytes it skipped).
        const u = result instanceof Uint8Array ? result : updates[i]!
        if (result === true || result instanceof Uint8Array) {
          toStore.push(u)
          mine.push(u)
          // What it was charged, not three times its bytes: an update that also deletes can
          // grow the document by more (its deletions' charge), and such updates one after
          // another passed the bound before any was refused (test/crdt-doc-charge-kept).
          this.sizeBound.accept(charges[i]!, true)
          // Bound now, so the next submit of this batch is judged against it too.
          for (const w of binds[i] ?? []) {
            if (this.owners.has(w)) continue
            this.owners.set(w, item.by!)
            bound.push([w, item.by!])
          }
        } else if (result === false) known++
        else {
          item.rejected.push({ code: result.code, message: result.message, index: indexes[i]! })
          // Room for its resend (the client is told to retry) is made now, not when idle documents' time is up.
          if (result.code === "doc-unavailable") this.hooks.onNoRoom?.()
        }
      })
      counts.push({ stored: mine.length, known })
      if (mine.length > 0) fanout.push({ origin: item.origin, updates: mine })
    }
    for (const [w, by] of this.claiming) {
      if (this.owners.has(w)) continue
      this.owners.set(w, by)
      bound.push([w, by])
    }
    this.claiming.clear()
    if (toStore.length > 0 || bound.length > 0) {
      const from = this.seqValue + 1
      const seq = this.seqValue + toStore.length
      try {
        await this.store.append(this.docId, { kind: this.engine.kind, seq, baseSeq: this.baseSeq }, from, toStore, bound)
      } catch (error) {
        return this.fail(batch, error)
      }
      this.seqValue = seq
      for (const u of toStore) this.tailBytes += u.length
    }
    this.markStored()
    batch.forEach((item, i) => item.resolve({ ...counts[i]!, rejected: item.rejected }))
    for (const { origin, updates } of fanout) {
      for (const s of this.subscribers) {
        if (s !== origin) s.onUpdates(updates)
      }
    }
    // Not while closing: compaction is a whole-document encode, and the next load can do without it.
    if (!this.stopping.signal.aborted) await this.maybeCompact()
  }

  /**
   * The document is closing while this batch was still being decoded or applied (sliced work
   * the engine stopped): none of it is stored, so every submit of it is refused, to be sent
   * again after reconnecting. The document in memory may hold some of it, unstored: it closes
   * now, refusing what is queued too (a later update stored on top could depend on a change
   * that never was), and is dropped, never encoded.
   */
  private abandon(batch: Queued[]): void {
    try {
      for (const item of batch) item.reject(new CrdtDocError("doc-unavailable", `Document "${this.docId}" closed before this update was stored; send it again after reconnecting.`))
      this.close()
    } finally {
      // Whatever threw: waiting answers go on, and find the document closed.
      this.markStored()
    }
  }

  /** A batch is being applied to the document in memory ahead of its write: `answer` waits. */
  private markUnstored(): void {
    if (this.unstored !== undefined) return
    let resolve!: () => void
    const promise = new Promise<void>((r) => (resolve = r))
    this.unstored = { promise, resolve }
  }

  /** What the document holds is stored (or it closed, unanswerable): waiting answers go on. */
  private markStored(): void {
    const u = this.unstored
    this.unstored = undefined
    u?.resolve()
  }

  /**
   * For a host that is closing: stops the engine's sliced work on this document (decoding,
   * admitting, warming) at its next pause, for good, and nothing more is taken: the batch
   * being checked or applied is refused and the document closes (`abandon`). Only a batch
   * already being written to storage still finishes. `close` does it too.
   */
  stopWork(): void {
    this.stopping.abort()
  }

  private fail(batch: Queued[], error: unknown): void {
    try {
      for (const item of batch) item.reject(new CrdtDocError("doc-unavailable", `Storage failed for document "${this.docId}"; retry after reconnecting.`))
      for (const item of this.queue) item.reject(new CrdtDocError("doc-unavailable", `Storage failed for document "${this.docId}"; retry after reconnecting.`))
      this.queue = []
      this.hooks.onBroken(this, error)
    } finally {
      // Not left set by a hook that threw: every answer would then wait for good.
      this.markStored()
    }
  }

  /** Applies updates one by one; one that throws is refused and the document rebuilt without it. */
  private async applyEach(updates: ReadonlyArray<Uint8Array>, accepted: ReadonlyArray<Uint8Array>): Promise<Applied[]> {
    const out: Applied[] = []
    const kept = [...accepted]
    for (const u of updates) {
      try {
        const r = (await this.engine.apply(this.docValue, [u], this.stopping.signal))[0] ?? false
        out.push(r)
        if (r === true || r instanceof Uint8Array) kept.push(r === true ? u : r)
      } catch (e) {
        if (this.stopping.signal.aborted) throw e
        const message = errorText(e)
        out.push({ code: "update-failed", message: `The update could not be merged (${message.slice(0, 200)}); it was refused.` })
        await this.rebuild(kept)
      }
    }
    return out
  }

  private async rebuild(accepted: ReadonlyArray<Uint8Array>): Promise<void> {
    const fresh = await CrdtDocAuthority.read(this.docId, this.engine, this.store)
    try {
      if (accepted.length > 0) await this.engine.apply(fresh.doc, accepted, this.stopping.signal)
    } catch (e) {
      this.engine.dispose?.(fresh.doc)
      throw e
    }
    this.engine.dispose?.(this.docValue)
    this.docValue = fresh.doc
  }

  /**
   * An item's updates were applied in `ms` (its measured time, without the turns it let
   * through): what that passed its estimate is charged to its payer (the estimate was paid
   * where it entered), and the tail's cost grows by it. An 18-byte Yjs insert took 377 ms
   * (Yjs scans every sibling of the same origin) and was charged as one struct.
   */
  private applied(item: Queued, ms: number): void {
    if (this.hooks.runtime === undefined) return
    const micros = Math.round(ms * 1000)
    this.tailMicros += micros
    if (item.payer !== undefined && micros > item.charged) this.hooks.work?.pay(item.payer, micros - item.charged)
  }

  /**
   * Tail at least as big as the base (and past the threshold), or as costly to merge as the
   * last encode (by count, `compactAfterUpdates`, without a clock): encode the live doc as the
   * new base. Also when an update was refused for the
   * document's size and measuring it again may find room (size-bound.ts paces that).
   */
  private async maybeCompact(): Promise<void> {
    const threshold = this.options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES
    const due = this.compactDue
    this.compactDue = false
    if (due && this.sizeBound.mayMeasure(this.now()) && this.tailBytes >= this.failedAtTail + threshold) return this.compact()
    if (this.seqValue !== this.baseSeq) {
      if (this.hooks.runtime !== undefined) {
        // Measured: once the tail cost as much to merge as the last encode took (and at least
        // COMPACT_AFTER_MICROS), so a load's merge stays within about one encode, and the
        // encodes (O(document), charged to nobody) within what the writers' applies were
        // charged: by count alone, 2,048 cheap updates at the end of a 2M-struct text forced an
        // encode of 156-253 ms each (6 s of hub time per attacker MB).
        const due = Math.max(COMPACT_AFTER_MICROS, this.encodeMicros)
        if (this.tailMicros >= due && this.tailMicros >= this.failedAtMicros + due) return this.compact()
      } else {
        // No clock: by count (each stored update is one seq: the tail's are those past the base).
        const updates = this.seqValue - this.baseSeq
        const most = this.options.compactAfterUpdates ?? DEFAULT_COMPACT_AFTER_UPDATES
        if (updates >= most && updates >= this.failedAtUpdates + most) return this.compact()
      }
    }
    if (this.tailBytes < threshold || this.tailBytes < this.baseBytes || this.seqValue === this.baseSeq) return
    if (this.tailBytes < this.failedAtTail + threshold) return
    await this.compact()
  }

  /**
   * Writes the live document's compact state as the base and deletes the updates it covers,
   * in one atomic batch. Never merges stored updates (super-linear, keeps deleted content).
   * An engine whose `encode` throws (its state would not load back) keeps the previous base,
   * reported as `compact-failed`.
   */
  async compact(): Promise<void> {
    if (this.seqValue === this.baseSeq || this.closed) return
    let base: Uint8Array
    const measure = this.sizeBound.measure(this.now())
    const started = this.now()
    try {
      base = this.engine.encode(this.docValue)
    } catch (e) {
      // The engine would not vouch for its compact state (it does not load back): the previous
      // base and the stored updates stay as they are, and the document still loads from them.
      measure.failed()
      this.failedAtTail = this.tailBytes
      this.failedAtUpdates = this.seqValue - this.baseSeq
      this.failedAtMicros = this.tailMicros
      this.hooks.onReport?.({ docId: this.docId, code: "compact-failed", message: errorText(e) })
      return
    }
    const encoded = this.now()
    const oldBaseSeq = this.baseSeq
    const seq = this.seqValue
    try {
      await this.store.compact(this.docId, { kind: this.engine.kind, seq, baseSeq: seq }, oldBaseSeq, base)
    } catch (error) {
      // Nothing was lost (the batch is atomic); the document reloads from what is stored.
      measure.failed()
      return this.fail([], error)
    }
    this.baseSeq = seq
    this.baseBytes = base.length
    this.tailBytes = 0
    this.tailMicros = 0
    // The encode alone (not the write): the next compaction is due once the tail cost as much.
    this.encodeMicros = Math.round((encoded - started) * 1000)
    measure.done(base.length, this.now())
  }

  /** Milliseconds on the runtime's clock, monotonic where it has one (0 without a runtime: measures are then paced by changes only, `answer` is not charged). */
  private now(): number {
    return this.hooks.runtime?.monotonic?.() ?? this.hooks.runtime?.now() ?? 0
  }

  /** Waits until everything queued is written. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing
  }

  /** Drops the document from memory; subscribers hear `code`. Resolves once the engine has let it go. */
  close(code = "going-away", reason = "The hub is shutting down."): Promise<void> {
    if (this.closed) return this.disposed ?? Promise.resolve()
    this.closed = true
    this.stopping.abort()
    for (const item of this.queue) item.reject(new CrdtDocError("doc-unavailable", reason))
    this.queue = []
    this.relayTick?.cancel()
    this.relayTick = undefined
    this.relayDue.clear()
    const subs = [...this.subscribers]
    this.subscribers.clear()
    for (const s of subs) {
      // One subscriber that throws neither keeps the others open nor stops the close.
      try {
        s.onClose?.(code, reason)
      } catch (e) {
        this.hooks.onReport?.({ docId: this.docId, code: "subscriber-failed", message: errorText(e) })
      }
    }
    // A write in flight still finishes; the engine's memory goes once it has.
    this.disposed = (this.writing ?? Promise.resolve()).then(() => {}, () => {}).then(() => {
      try {
        this.engine.dispose?.(this.docValue)
      } catch (e) {
        this.hooks.onReport?.({ docId: this.docId, code: "dispose-failed", message: errorText(e) })
      }
    })
    return this.disposed
  }
}

/** A typed failure of a CRDT document operation (load, submit). */
export class CrdtDocError extends Error {
  constructor(readonly code: CrdtRejection["code"], message: string) {
    super(message)
    this.name = "CrdtDocError"
  }
}

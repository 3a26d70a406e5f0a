/**
 * The authority of one document: the single writer that puts commands in a total order.
 *
 * Group commit: submits arriving in the same task, or while a write is in flight, queue up
 * and go out together in the next batch. For each batch the authority validates and applies
 * every command (a rejected or invalid command still consumes its clientSeq), then writes
 * entries, head and idempotency records in one atomic batch, and only then acknowledges and
 * fans out. If the write fails, the in-memory document is no longer trustworthy: it is
 * discarded (`broken`) and the hub reloads it from storage on next use, so nothing
 * unacknowledged is ever served.
 *
 * Followers (catch-up, fan-out, backpressure, snapshot streams, presence) live in
 * followers.ts; snapshots and log compaction in snapshots.ts; exactly-once in client-table.ts.
 *
 * Every peer is untrusted: a command is bounded (encoded size and depth, so its entry always
 * fits in a frame) before it is applied, its clientSeq must be the client's next one (see
 * client-table.ts), and the state model refuses non-plain writes inside the command
 * (journal.ts). Background work (checkpoint timers, the commit loop, catch-up) never throws
 * into the process: a failure is reported and the document is dropped and reloaded.
 *
 * Lifetime: a document nobody follows, with no work in flight (no batch queued or being
 * written, no snapshot or compaction running) and so nothing unwritten, tells its hub
 * (`onIdle`) after `idleUnloadMs`; the hub unloads it and loads it again from storage on next
 * use (head, newest snapshot, log tail; client records are read from storage as needed).
 * An unloaded instance refuses to be used again: only one instance ever writes a document.
 */
import { decodeArgs, makeContext, runApply, type Machine } from "../machine.js"
import { JournaledState, forgetDrafts, freezeState, grownOf, writtenOf, type Journal } from "../journal.js"
import { applyLogged } from "../apply.js"
import { hashState } from "../hash.js"
import { decodeCanonical, encodeCanonical, setOwn, sizeBound } from "../canonical.js"
import type { Checkpoint, Entry, Outcome } from "../entry.js"
import type { Rejection } from "../errors.js"
import { CanonError, errorText } from "../errors.js"
import type { Connection, Timer } from "../ports/index.js"
import { steadyNow, type Runtime } from "../ports/runtime.js"
import type { ErrorMsg, ServerMessage, Submit } from "../protocol/messages.js"
import type { AuthorityStore } from "../store/authority-store.js"
import type { AuthorityHead, StoredOutcome } from "../store/records.js"
import { DEFAULT_MAX_COMMAND_BYTES, MAX_ARGS_DEPTH, boundedMessage, depthExceeds } from "../limits.js"
import { ClientTable, commandHash } from "./client-table.js"
import { Followers } from "./followers.js"
import type { TokenBucket } from "./limits.js"
import { Snapshotter, type SnapshotPolicy } from "./snapshots.js"
import type { SnapshotMeta } from "../store/snapshot-store.js"
import { hashBytes } from "../hash.js"
import { argsCodecOf, commandArgsCodec } from "../protocol/args-codec.js"
import * as Schema from "effect/Schema"
import { crdtCommandName, type CrdtFields } from "../crdt/fields.js"
import { fieldsOfRoot } from "../crdt/roots.js"
import type { Freezable } from "./snapshots.js"
import { DEFAULT_HARD_LIMIT } from "./guarded-connection.js"
import { Turns, pauseIn } from "./turns.js"
import { Stopwatch, outside } from "../stopwatch.js"
import { StateEncoder } from "../snapshot/state-encoder.js"
import { StreamHash } from "../snapshot/stream-hash.js"
import { heldRefusal, holdAt, type HeldVersion } from "./held-version.js"
import { peerText } from "./peer-text.js"
import { CRDT_GROWTH_FACTOR, DEFAULT_MAX_DOCUMENT_BYTES, SizeBound, removedBytes, tombstoneReserve } from "./size-bound.js"
import { journalHeap } from "../state/records.js"
import { fullText, hubMemoryFull, UNIT_HEAP_BYTES, type HeldWeight } from "./held-weight.js"
import { DOC_HEAP_BYTES, heapBytes, heapOfEncoded } from "../state/heap-estimate.js"
import { crdtRejection } from "../crdt/engine.js"
// Schema evolution (core/schema): several versions served at once, version changes in the log.
import { AS, HUB_CLIENT, MIGRATE, historyOf, isReserved, type MachineHistory } from "../schema/registry.js"
import { acceptCommand, alternateForms, applyMigration, entriesForVersion, formBytes, initialStateFor, markerOf, replayEntry, scanMarkers, versionAt, type Marker } from "../schema/serve.js"

/** Arguments of a command no longer in the machine travel as one canonical value. */
const ANY_AST = Schema.Unknown.ast

/**
 * Client states a document keeps in memory by default, in bytes: four clients at their
 * `maxOutcomeBytesPerClient`, about 250 that each keep ACKED_KEPT acknowledged outcomes, or
 * 20,000 that sent a few commands; others are read back from storage when they send. Each
 * clientId a document ever saw kept its state in memory while the document was loaded, with
 * up to 4 MiB of outcomes, so clientIds made up one after another grew it without bound.
 */
export const DEFAULT_MAX_CLIENT_STATE_BYTES = 16 << 20

export interface AuthorityOptions {
  /** Publish a checkpoint every this many entries. Default 256; Infinity turns checkpoints off. */
  readonly checkpointEvery?: number
  /** Publish a checkpoint of the head after the document is quiet this long (ms). Default 1000; Infinity: never. */
  readonly quietCheckpointMs?: number
  /** Entries per catch-up message. Default 512. */
  readonly catchUpPage?: number
  /**
   * Outcomes kept per client without an acknowledgement before the oldest are forgotten (a
   * retry of a forgotten one learns "applied at seq <= X"). Default 100,000.
   */
  readonly maxOutcomesPerClient?: number
  /**
   * What those outcomes may take in memory per client, in bytes (about: a rejection keeps its
   * sentence); past it the oldest are forgotten likewise. Default 4 MiB, which holds about
   * 65,000 outcomes or 16,000 short rejections: an honest client acknowledges what it is
   * answered and keeps about 2,000 (a send window and the acknowledged ones kept a while),
   * 4.5 MB if every one were a rejection of the longest sentence.
   */
  readonly maxOutcomeBytesPerClient?: number
  /**
   * What the states of the document's clients (marks and kept outcomes, all of them stored)
   * may take in memory together, in bytes; past it, after each commit, the least recently
   * used go from memory and are read back from storage on their next use. Nothing is
   * forgotten: it bounds memory, not what the document remembers. Default
   * DEFAULT_MAX_CLIENT_STATE_BYTES (16 MiB).
   */
  readonly maxClientStateBytes?: number
  /** Largest encoded arguments of one command, in bytes; larger is `command-too-large`. Default 256 KiB. */
  readonly maxCommandBytes?: number
  /**
   * Largest state of one document, in canonical bytes (what a snapshot of it takes, CRDT
   * fields included). A command that would take the document past it is rejected
   * `command-too-large` ("Document … is full"); commands that only remove always pass. Keeps
   * one writer from growing a document until the hub runs out of memory or replicas cannot
   * load it (their `maxSnapshotBytes`, 1 GiB by default). Default 256 MiB; Infinity: no bound.
   * See size-bound.ts for how it is kept without measuring the state after every command.
   */
  readonly maxDocumentBytes?: number
  /**
   * A subscriber whose connection has more than this buffered (bytes on WebSocket, messages
   * in memory) gets no more entries until it drains; they wait in the log. Default 1 MiB.
   */
  readonly highWaterMark?: number
  /**
   * Above this many bytes unread (messages, in memory) the connection is closed with
   * `slow-consumer`: by the followers, and on the hub by every send (its output gate,
   * guarded-connection.ts). Default 8 MiB.
   */
  readonly hardLimit?: number
  /** Entries messages are cut below this many bytes (the frame limit is 1 MiB). Default 512 KiB. */
  readonly maxMessageBytes?: number
  /** When to snapshot and compact the log (bytes-based; see snapshots.ts). */
  readonly snapshots?: SnapshotPolicy
  /** A replica more than this many entries behind gets a snapshot, if a newer one is stored. Default 2048. */
  readonly snapshotLagEntries?: number
  /** Bytes of a snapshot stream in flight past the replica's acknowledgement. Default 1 MiB; at least 128 KiB. */
  readonly snapshotWindowBytes?: number
  /**
   * A document nobody follows, with nothing in flight, tells its hub after it has been idle
   * this long (ms); the hub then keeps it loaded a while, within bounds (`HubOptions.idleDocuments`),
   * and loads it again from storage when next used after that. Default 250.
   * Infinity: documents stay loaded (the hub's memory then grows with every document read).
   */
  readonly idleUnloadMs?: number
  /**
   * Longest stretch, in ms of the runtime's clock, the hub's documents judge commands without
   * letting the event loop turn (turns.ts; one slice for all of them): past it a batch is cut,
   * what is judged is committed, and the rest waits a turn. A command's own time is the app's:
   * a batch of commands that each read the whole state held a hub for seconds (1,000 reads of
   * 20,000 keys: 29.6 s), every other document and socket with it. A load replays its log in
   * the same slices. Default 50.
   */
  readonly batchSliceMs?: number
}

/**
 * States whose canonical encoding is larger than this are hashed in the background (sliced,
 * see snapshots.ts) instead of inside the commit: checkpoints then come from snapshots and
 * from quiet periods, never from a pause of the event loop.
 */
const BIG_STATE_BYTES = 1 << 20

/** AuthorityOptions.batchSliceMs's default: what a browser counts as a long task. */
const DEFAULT_BATCH_SLICE_MS = 50

/** Bytes of a loaded state encoded between pauses (its size and hash are measured at load). */
const ENCODE_PIECE_BYTES = 64 * 1024

/** Turns of `options.batchSliceMs` (a hub's, shared by its documents; or a document's own, without a hub). */
export const sliceTurns = (runtime: Runtime, options: AuthorityOptions): Turns => new Turns(runtime, options.batchSliceMs ?? DEFAULT_BATCH_SLICE_MS)

/**
 * The commands' measured time since the newest snapshot past which another is taken: a load
 * replays the log since it, so what a load costs (charged to the client that made it) stays
 * about this, whoever wrote the log (snapshots by bytes alone let 2,000 commands of 20 ms
 * cost a reader 40 s).
 */
const REPLAY_BOUND_MICROS = 1_000_000

/** What a parked client's bucket must hold before its submits go back to the queue (see `unparkAfter`). */
const UNPARK_MICROS = 20_000

/** Every CRDT merge command's name begins so. */
const CRDT_COMMAND_PREFIX = crdtCommandName("")

/** An upper bound of an entry's bytes on the wire (compact arguments: their bytes, plus a little). */
export const entrySizeBound = (e: Entry): number => 32 + e.clientId.length * 3 + e.name.length * 3 + sizeBound(e.args)

/** `v` with every -0 in it made +0, or undefined when it holds none. */
const withoutNegativeZero = (v: unknown): unknown => {
  if (typeof v === "number") return Object.is(v, -0) ? 0 : undefined
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return undefined
  let out: unknown[] | Record<string, unknown> | undefined
  for (const [k, x] of Object.entries(v)) {
    const y = withoutNegativeZero(x)
    if (y === undefined) continue
    out ??= Array.isArray(v) ? [...v] : { ...v }
    setOwn(out as Record<string, unknown>, k, y)
  }
  return out
}

/** An upper bound of an outcome's bytes on the wire (a rejection carries its sentence). */
const outcomeSizeBound = (o: Outcome): number => 24 + ("rejection" in o ? (o.rejection.code.length + o.rejection.message.length) * 3 : 0)

/**
 * Cuts a list into runs whose summed `weigh` stays under `max` (a run has at least one item),
 * also ending a run after any item `cutAfter` says so. Every message that gathers a list
 * (entries, results) goes through it: gathered whole, a list can outgrow a frame.
 */
const cutRuns = <T>(items: ReadonlyArray<T>, max: number, weigh: (t: T) => number, cutAfter?: (t: T) => boolean): T[][] => {
  const out: T[][] = []
  let run: T[] = []
  let size = 0
  for (const item of items) {
    const n = weigh(item)
    if (run.length > 0 && size + n > max) {
      out.push(run)
      run = []
      size = 0
    }
    run.push(item)
    size += n
    if (cutAfter?.(item) === true) {
      out.push(run)
      run = []
      size = 0
    }
  }
  if (run.length > 0) out.push(run)
  return out
}

/**
 * Cuts entries into runs whose size bound stays under `max` (a run has at least one entry),
 * also ending a run after any seq in `cutAfter` (so each checkpoint rides with its own run).
 */
export const cutBySize = (entries: ReadonlyArray<Entry>, max: number, cutAfter?: ReadonlySet<number>): Entry[][] =>
  cutRuns(entries, max, entrySizeBound, cutAfter && ((e) => cutAfter.has(e.seq)))

/** Who sent a submit: the proved clientId and which incarnation of it (see identity.ts). */
export interface Sender {
  readonly clientId: string
  readonly incarnation: number
  /** The protocol version its connection speaks (2: compact submits and entries). Default 1. */
  readonly protocol?: number
}

interface Pending {
  readonly conn: Connection<ServerMessage>
  readonly sender: Sender
  readonly msg: Submit
  /** The machine version the submitter's session declared for this document. */
  readonly version: number
  /** Refuse these commands (still consuming their clientSeqs) instead of applying them. */
  readonly refuse: Rejection | undefined
  /** Called once the submit is through its group commit (or dropped): the hub's input flow control. Idempotent. */
  readonly release: (() => void) | undefined
  /** The rest of a submit a batch was cut in (its time was up, or its client's work): its checks at the start were passed. */
  readonly resumed?: true
}

/** What a batch left to judge: the rest of the submits it cut, first in the queue again. */
interface Left {
  readonly rest: Pending[]
  /** The submits of the connection whose command used the turn: last in the queue, so the others go first (per connection, in order). */
  readonly behind: Pending[]
  /** Submits of `batch` whose rest is in `rest` or `parked`: released with it, not now. */
  readonly carried: Set<Pending>
  /** The batch's time was up: the event loop turns before the next. */
  readonly sliced: boolean
  /** Milliseconds until the first client whose commands it parked is out of debt (0: none). */
  readonly waitMs: number
}
const NOTHING_LEFT: Left = { rest: [], behind: [], carried: new Set(), sliced: false, waitMs: 0 }

/** A bare clientId (tests, benches driving an authority directly) is its first incarnation. */
const asSender = (who: Sender | string): Sender => (typeof who === "string" ? { clientId: who, incarnation: 1 } : who)

/** What a document tells its hub: it broke (drop and reload it), or something worth a log line. */
export interface AuthorityHooks<S> {
  readonly onBroken: (doc: DocAuthority<S>, error: unknown) => void
  /** Nobody follows the document and nothing is in flight (see the header): it may be unloaded. */
  readonly onIdle?: (doc: DocAuthority<S>) => void
  readonly onReport?: (report: { readonly docId: string; readonly code: string; readonly message: string }) => void
  /**
   * A CRDT merge command was checked and merged (or refused) in `micros` of the runtime's
   * clock: what it cost, which its estimate (crdt-work.ts) may have missed (Yjs places an item
   * by scanning its neighbours in the document, which the update's bytes do not show).
   */
  readonly onCrdtWork?: (clientId: string, command: object, micros: number) => void
  /**
   * A command that is not a CRDT merge was judged in `micros` of the runtime's clock: app code,
   * whose cost the hub cannot read from its bytes (a command that reads the whole state), is
   * charged to its client after it ran.
   */
  readonly onCommandWork?: (clientId: string, micros: number) => void
  /**
   * Milliseconds until `clientId` is out of debt for the hub's work (0: it is not): its
   * commands that are not merges wait out of the queue until then (`parked`), behind nobody else's.
   */
  readonly workWait?: (clientId: string, atLeast?: number) => number
  /** The hub's turns of the event loop, shared by its documents (else the document's own, of `batchSliceMs`). */
  readonly turns?: Turns
  /**
   * A state of about `bytes` is to be sent to `clientId` (a snapshot it asked for, made at the
   * head; an older version's start and log; any stream of a stored snapshot): the milliseconds
   * it must wait (its client's budget is in debt; nothing charged), or 0 once charged. Without
   * it only the document's pacing holds (for the states made).
   */
  readonly onStateAsked?: (clientId: string, bytes: number) => number
  /**
   * The budget of `clientId`'s presence relays, shared by every document it follows (a
   * client on 100 documents does not get 100 budgets). Without it each document keeps one per client.
   */
  readonly presenceBudget?: (clientId: string) => TokenBucket
  /**
   * What the CRDT fields of the hub's loaded documents hold together (CrdtField `weight`),
   * against the hub's bound: a merge that would take it past is not judged now (`hub-full`),
   * nor a document loaded past it. Without it, only each field's own bound holds.
   */
  readonly fieldWeight?: HeldWeight
  /**
   * The hub's memory, in estimated bytes, which every loaded document shares (held-weight.ts):
   * here a machine state (core/state/heap-estimate.ts) and its client states; its fields count
   * through `fieldWeight`. A command that would take it past is not judged now (`hub-full`),
   * nor a document loaded past it unless it is alone.
   */
  readonly memory?: HeldWeight
  /** `fieldWeight` or `memory` had no room (a merge or command told `hub-full`, a load refused): the hub lets documents nobody follows go. */
  readonly onNoRoom?: () => void
}

export class DocAuthority<S = unknown> {
  private readonly host: JournaledState<S>
  /** Seq of the last entry applied in memory (ahead of `committed` while a batch is written). */
  private seq: number
  /** Seq of the last durable entry: all that is ever served. */
  private committed: number
  private lastTime: number
  private checkpoint: Checkpoint | undefined
  private readonly followers: Followers
  private readonly snapshotter: Snapshotter
  /** Entries at or below this may be gone from the log (compacted). */
  private horizon: number
  /** Canonical size of the state when last measured: decides how checkpoints are hashed. */
  private stateBytes = 0
  /** What the plain state holds in memory, about: counted at load and when the gauge is near full, else added up from what commands wrote. */
  private stateHeap = 0
  /** When `stateHeap` may next be counted whole: a count is O(state), so ten times its duration after the last. */
  private heapCountAfter = -Infinity
  /** `stateHeap` is a count of the state with nothing written since: another document's refusal need not count it again. */
  private heapExact = true
  /** `stateHeap` was counted with a command that is then undone: counted again after the undo. */
  private heapStale = false
  /** The last whole count of the plain state (or the load's estimate): `holdsGrowth` counts again once the sum passes twice it. */
  private countedHeap = 0
  /** Keeps the state within maxDocumentBytes (size-bound.ts). */
  private readonly sizeBound: SizeBound
  /** Commits wait here for a snapshot to begin between batches (memory equals what is committed). */
  private snapshotDue = false
  /**
   * The next snapshot compacts the log behind it: the policy's (the log outgrew its threshold).
   * One a reader asked for, or a measure of the size, does not: a reader asking again and
   * again would bring forward the moment an older app or a replica a little behind has no log
   * to be served from (`snapshotNow` compacts too, on purpose).
   */
  private compactDue = false
  private readonly snapshotWaiters: Array<{ atLeast: number; resolve: (m: SnapshotMeta) => void; reject: (e: unknown) => void }> = []
  private queue: Pending[] = []
  private flushing = false
  private quietTimer: Timer | undefined
  /** Set when a storage write failed: the hub must drop and reload this document. */
  broken = false
  /** Set when the hub unloaded it: this instance must never write again. */
  private unloaded = false
  /** Set by close() (unload() closes too): what is in flight may finish, but nothing new is timed. */
  private closed = false
  /** Background writes outside the commit loop (compaction, a quiet checkpoint) in flight. */
  private writing = 0
  private idleTimer: Timer | undefined
  /**
   * The submits of connections whose client is in debt for the hub's work, in order, out of the
   * queue (a queue walked by every batch, with 20,000 of them in it, took an honest writer's
   * round trip from 0.17 ms to 18.9 ms); a connection's later submits join them.
   */
  private readonly parked = new Map<Connection<ServerMessage>, Pending[]>()
  /** Puts parked submits back in the queue once their client is out of debt (at `workDue`). */
  private workTimer: Timer | undefined
  private workDue = Infinity
  /** Slices of judging (AuthorityOptions.batchSliceMs): the hub's, or this document's own. */
  private readonly turns: Turns
  /** This document holds its turn's grant: its next command is judged whatever the turn's room. */
  private granted = false
  /**
   * What its load took, in µs of the runtime's clock: replaying its log and migrating its
   * state (app code, as its commands were: a reader loading a log of slow commands again and
   * again made the hub replay them for free), and decoding its snapshot and encoding its state
   * (a reader re-joining a document of 500,000 cards after each unload cost the hub 4 to 6 s a
   * time, uncharged). The hub charges it to the client whose subscribe loaded it.
   */
  loadMicros = 0
  /** The commands' measured time since the newest snapshot, in µs (see REPLAY_BOUND_MICROS). */
  private workSinceSnapshot = 0
  private readonly idleMs: number
  /** The state at seq 0 in a snapshot's encoding, made when first asked for. */
  private zero: { readonly bytes: Uint8Array; readonly hash: string } | undefined
  private readonly checkpointEvery: number
  private readonly quietMs: number
  private readonly maxCommandBytes: number
  private readonly clientTable: ClientTable
  /**
   * Connections told `sequence-reset`: their client renumbers its outbox and subscribes again,
   * and until that subscribe comes nothing more of theirs is taken. A submit already on its
   * way was numbered before the renumbering: taken, its command would be applied under its old
   * number and again under its new one (the simulator's rollback world, seed 50).
   */
  private readonly fenced = new WeakSet<Connection<ServerMessage>>()
  /** Connections told `hub-full`: the clientSeq they must send again before anything more of theirs is judged. */
  private readonly awaitingResend = new WeakMap<Connection<ServerMessage>, number>()
  /** The acknowledgement a subscribe sends through the write lane: it lifts its connection's fence, in order. */
  private readonly subscribeAcks = new WeakSet<Submit>()
  private readonly maxMessageBytes: number
  /** The machine's version history, if it has one (core/schema/versions.ts). */
  private readonly history: MachineHistory | undefined
  /** Version changes in the log, ascending. */
  private readonly markers: Marker[]
  /** CRDT fields of the document, if its machine has any (core/crdt/fields.ts). */
  private readonly crdt: CrdtFields | undefined
  /** Set when the upgrade to `machine`'s version failed at load: the document stays at an older one (held-version.ts). */
  private readonly held: HeldVersion | undefined
  /** The version of the machine the document is at and applies commands with: `machine`, or the held one. */
  private readonly served: Machine<S>

  private constructor(
    readonly docId: string,
    readonly machine: Machine<S>,
    private readonly store: AuthorityStore,
    private readonly runtime: Runtime,
    state: S,
    head: AuthorityHead,
    options: AuthorityOptions,
    private readonly hooks: AuthorityHooks<S>,
    snapshotter: Snapshotter,
    horizon: number,
    stateBytes: number,
    markers: Marker[] = [],
    held?: HeldVersion,
    /** The plain state's key in the hub's memory gauge (its fields count under the authority itself); what its load held, replaced. */
    private readonly heldState: object = {},
    /** What its load held for the state (an upper bound): taken as it is when it fits, instead of counting the state again. */
    built?: number,
  ) {
    this.history = historyOf(machine)
    this.markers = markers
    this.held = held
    this.served = held !== undefined ? (this.history!.at(held.version) as Machine<S>) : machine
    this.host = new JournaledState(state)
    // The served version's fields (a document held at an older version has that version's).
    this.crdt = this.served.crdtRuntime?.fieldsOf(this.served.crdt!, this.host)
    // Loaded, its fields hold their weight whether or not anyone writes to them: one that does
    // not fit beside the loaded ones is not served now (its followers try again, as for a
    // storage failure), unless alone (one stored under a larger bound is never lost).
    // So is its plain state in the hub's memory (one loaded alone always is).
    const gauge = this.crdt !== undefined ? hooks.fieldWeight : undefined
    const weight = gauge !== undefined ? this.crdt!.weight() : 0
    const memory = hooks.memory
    const fieldBytes = gauge?.shared === memory && memory !== undefined ? weight * UNIT_HEAP_BYTES : 0
    // Counted whole only when the load's estimate does not fit (with fields it weighed their bytes in the snapshot too).
    const asBuilt = memory !== undefined && built !== undefined && this.crdt === undefined && memory.fits(this.heldState, built + DOC_HEAP_BYTES)
    this.stateHeap = this.countedHeap = memory === undefined ? 0 : asBuilt ? built! : heapBytes(state)
    this.heapExact = !asBuilt
    const refused = gauge !== undefined && gauge.total > 0 && !gauge.within(this, weight)
      ? `The hub holds ${gauge.total} ops and structs in the CRDT fields of its loaded documents and takes at most ${gauge.max}; "${docId}" (${weight})`
      : memory !== undefined && !memory.alone(this.heldState) && !this.roomFor(memory, this.stateHeap + DOC_HEAP_BYTES + fieldBytes)
        ? `${hubMemoryFull(memory)}; "${docId}" (about ${Math.ceil((this.stateHeap + fieldBytes) / 2 ** 20)} MiB)`
        : undefined
    if (refused !== undefined) {
      hooks.onNoRoom?.()
      throw new CanonError({ code: "hub-full", message: `${refused} is served once others are unloaded.` })
    }
    gauge?.set(this, weight)
    memory?.set(this.heldState, this.stateHeap + DOC_HEAP_BYTES)
    memory?.onRecount(this.heldState, () => {
      // Never inside one of its commands: another document's refusal runs between them.
      if (this.heapExact || this.elapsed() < this.heapCountAfter) return
      this.stateHeap = this.countHeap()
      this.heapExact = true
      memory.set(this.heldState, this.heldBytesWith(this.stateHeap))
    })
    this.snapshotter = snapshotter
    this.horizon = horizon
    this.stateBytes = stateBytes
    // With CRDT fields the measure has only the plain root: the snapshot and the log since bound it.
    const maxBytes = options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES
    // The reserve only where a field makes tombstones (Yjs): nothing else could ever use it.
    this.sizeBound = new SizeBound(maxBytes, this.crdt === undefined ? stateBytes : this.stateSize, this.crdt === undefined, this.crdt?.makesTombstones() === true ? tombstoneReserve(maxBytes) : 0)
    this.seq = head.seq
    this.committed = head.seq
    this.lastTime = head.lastTime
    this.checkpoint = head.checkpoint
    this.checkpointEvery = options.checkpointEvery ?? 256
    this.turns = hooks.turns ?? sliceTurns(runtime, options)
    this.quietMs = options.quietCheckpointMs ?? 1000
    this.clientTable = new ClientTable(docId, store, {
      window: options.maxOutcomesPerClient ?? 100_000,
      clientBytes: options.maxOutcomeBytesPerClient ?? 4 << 20,
      memoryBytes: options.maxClientStateBytes ?? DEFAULT_MAX_CLIENT_STATE_BYTES,
    })
    this.maxCommandBytes = options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES
    this.maxMessageBytes = options.maxMessageBytes ?? 512 << 10
    this.idleMs = options.idleUnloadMs ?? 250
    const self = this
    this.followers = new Followers({
      docId, runtime,
      committed: () => self.committed,
      horizon: () => self.horizon,
      checkpoint: () => self.checkpoint,
      latestSnapshot: () => self.snapshotter.latest,
      snapshotAtLeast: (seq) => self.snapshotAtLeast(seq),
      useSnapshot: (seq) => self.snapshotter.use(seq),
      readChunk: (seq, i) => self.snapshotter.readChunk(seq, i),
      entries: (after, limit) => store.entries(docId, after, limit),
      entriesMessages: (entries, cps, compact, elide) => self.entriesMessages(entries, cps, compact, elide),
      version: () => self.served.version,
      lastMarker: () => self.markers[self.markers.length - 1]?.seq ?? 0,
      entriesForVersion: (entries, version) => self.entriesForVersion(entries, version),
      initialState: (version) => (self.history === undefined ? undefined : initialStateFor(self.history, version)),
      stateAtZero: () => self.stateAtZero(),
      followersGone: () => self.watchIdle(),
      chargeState: (clientId, bytes) => self.hooks.onStateAsked?.(clientId, bytes) ?? 0,
      presenceBudget: (clientId) => self.hooks.presenceBudget?.(clientId),
      stateBytes: () => self.stateSize,
      report: (code, message) => self.hooks.onReport?.({ docId, code, message }),
      isBroken: () => self.broken,
    }, {
      page: options.catchUpPage ?? 512,
      highWater: options.highWaterMark ?? 1 << 20,
      hardLimit: options.hardLimit ?? DEFAULT_HARD_LIMIT,
      snapshotLag: options.snapshotLagEntries ?? 2048,
      // Replicas acknowledge every 128 KiB (core/replica/doc.ts): a smaller window would wait for acks forever.
      snapshotWindow: Math.max(128 << 10, options.snapshotWindowBytes ?? 1 << 20),
    })
  }

  /**
   * Entries as messages under the size limit; each checkpoint rides with the run it ends.
   * `compact` (protocol 2): arguments as their schema-driven bytes, computed once per entry;
   * `elide`: the receiver's own commands, sent without name and arguments.
   */
  private entriesMessages(entries: ReadonlyArray<Entry>, checkpoints: ReadonlyArray<Checkpoint>, compact = false, elide?: ReadonlySet<number>): ServerMessage[] {
    const bySeq = new Map(checkpoints.map((c) => [c.seq, c]))
    // Cut as sent: a compact form may be larger than the canonical one (a union adds its index).
    const list = compact ? entries.map((e) => (elide?.has(e.seq) ? e : this.compactEntry(e))) : entries
    return cutBySize(list, this.maxMessageBytes, new Set(bySeq.keys())).map((run) => {
      const cp = bySeq.get(run[run.length - 1]!.seq)
      return {
        type: "entries", docId: this.docId, entries: run,
        ...(cp !== undefined ? { checkpoint: cp } : {}),
        ...(compact ? { compact: true as const } : {}),
        ...(elide !== undefined && elide.size > 0 ? { elide } : {}),
      }
    })
  }

  /**
   * Entries converted for a session at an older version (plain form, no checkpoints: those
   * hash the newest version's state), cut at the first entry it cannot be shown.
   */
  private entriesForVersion(entries: ReadonlyArray<Entry>, version: number): { messages: ServerMessage[]; barrier: number | undefined } {
    const h = this.history
    if (h === undefined || !h.has(version)) return { messages: [], barrier: entries[0]?.seq }
    const r = entriesForVersion(h, entries, version, (seq) => versionAt(this.markers, this.served.version, seq), this.maxCommandBytes)
    return { messages: r.entries.length === 0 ? [] : this.entriesMessages(r.entries, [], false), barrier: r.barrier }
  }

  /** Entries in protocol 2's form, made once each (fan-out to many, catch-up pages). */
  private readonly compacted = new WeakMap<Entry, Entry>()

  private compactEntry(e: Entry): Entry {
    let c = this.compacted.get(e)
    if (c === undefined) {
      // A logged command the machine no longer has (it changed without a version bump): its
      // arguments go as a canonical value (commandArgsCodec).
      c = { ...e, args: commandArgsCodec(this.served.commands, e.name).encode(e.args) }
      this.compacted.set(e, c)
    }
    return c
  }

  /** Milliseconds on a clock that does not step, for timing merges (the runtime's wall clock may jump). */
  private elapsed(): number {
    return steadyNow(this.runtime)
  }

  /** A compact (protocol 2) command's arguments, expanded to their encoded form by its schema. */
  private expand(name: string, args: unknown, version = this.machine.version): { args: unknown } | { rejection: Rejection } {
    // A session at an older version encodes by that version's schemas; built-ins are canonical values.
    const machine = this.history !== undefined && this.history.has(version) ? this.history.at(version) : this.machine
    if (this.history !== undefined && isReserved(name) && machine.commands[name] === undefined && args instanceof Uint8Array) {
      try {
        return { args: argsCodecOf(ANY_AST).decode(args) }
      } catch (e) {
        return { rejection: { code: "invalid-args", message: boundedMessage(`The arguments of "${name}" cannot be read: ${errorText(e)}`) } }
      }
    }
    const schema = machine.commands[name]?.args
    if (schema === undefined) {
      return { rejection: { code: "unknown-command", message: `Machine "${this.machine.name}" v${this.machine.version} has no command "${name}".` } }
    }
    if (!(args instanceof Uint8Array)) return { rejection: { code: "invalid-args", message: `The arguments of "${name}" are not in their compact form.` } }
    try {
      return { args: argsCodecOf(schema.ast).decode(args) }
    } catch (e) {
      return { rejection: { code: "invalid-args", message: boundedMessage(`The arguments of "${name}" cannot be read: ${errorText(e)}`) } }
    }
  }

  /** Loads a document from storage (replaying its log) or creates it empty. */
  static async load<S>(
    docId: string,
    machine: Machine<S>,
    store: AuthorityStore,
    runtime: Runtime,
    options: AuthorityOptions,
    hooks: AuthorityHooks<S>,
  ): Promise<DocAuthority<S>> {
    // What the document holds while it is built, held in the hub's memory gauge under the key
    // its plain state then takes (concurrent loads see each other's); given back if it fails.
    const heldState = {}
    try {
      return await DocAuthority.build(docId, machine, store, runtime, options, hooks, heldState)
    } catch (e) {
      hooks.memory?.release(heldState)
      throw e
    }
  }

  private static async build<S>(
    docId: string,
    machine: Machine<S>,
    store: AuthorityStore,
    runtime: Runtime,
    options: AuthorityOptions,
    hooks: AuthorityHooks<S>,
    heldState: object,
  ): Promise<DocAuthority<S>> {
    const stored = await store.head(docId)
    if (stored !== undefined && stored.machine !== machine.name) {
      throw new CanonError({ code: "machine-mismatch", message: `Document "${docId}" belongs to machine "${stored.machine}", not "${machine.name}".` })
    }
    if (stored !== undefined && stored.version > machine.version) {
      throw new CanonError({
        code: "machine-mismatch",
        message: `Document "${docId}" was written by machine "${machine.name}" v${stored.version}; this hub runs v${machine.version}. Run the newer hub (a document is never read by an older machine).`,
      })
    }
    const history = historyOf(machine)
    if (stored !== undefined && history !== undefined && !history.has(stored.version)) {
      throw new CanonError({ code: "machine-mismatch", message: `Document "${docId}" was written by machine "${machine.name}" v${stored.version}, a version this hub's history does not have (${history.oldest}..${history.newest}).` })
    }
    if (stored !== undefined && stored.version < machine.version && history === undefined) {
      hooks.onReport?.({ docId, code: "machine-upgraded", message: `Document "${docId}" was written by "${machine.name}" v${stored.version}; replaying its log with v${machine.version}.` })
    }
    let head: AuthorityHead = stored ?? { machine: machine.name, version: machine.version, seq: 0, lastTime: 0, checkpoint: undefined }
    const report = (code: string, message: string) => hooks.onReport?.({ docId, code, message })
    const snapshotter = new Snapshotter(docId, store.snapshots, runtime, options.snapshots, report)
    const horizon = await store.snapshots.horizon(docId)
    // The newest snapshot that verifies, then the log after it.
    // No head: nothing was ever written; a snapshot of the empty document (taken for a replica
    // that asked) may be of an older version's initial state.
    // Held in the hub's memory as it is built, or not built: a snapshot's bytes before they
    // are read, what they decode to (weighed from the bytes) before they are decoded, what the
    // log replayed after it adds, page by page. Counted whole once built (the constructor).
    const memory = hooks.memory
    const hold = (bytes: number): void => {
      if (memory === undefined) return
      const fits = () => memory.fits(heldState, bytes)
      if (!memory.alone(heldState) && !fits() && (memory.recountOthers(heldState, fits), !fits())) {
        hooks.onNoRoom?.()
        throw new CanonError({ code: "hub-full", message: `${hubMemoryFull(memory)}; "${docId}" (at least ${Math.ceil(bytes / 2 ** 20)} MiB) is served once others are unloaded.` })
      }
      memory.set(heldState, bytes)
    }
    // Decoding, replaying and encoding go in slices, as commands are judged (batchSliceMs): a
    // snapshot of 500,000 cards decoded in one block held the hub 1.9 s at each load.
    const turns = hooks.turns ?? sliceTurns(runtime, options)
    // The load's own work on the runtime's clock, slices summed (not the waits between them nor
    // storage's): the hub charges it to whoever made the document load, with the replay's.
    const work = new Stopwatch(() => steadyNow(runtime))
    const piece = pauseIn(turns)
    const pause = (): Promise<void> | undefined => {
      const turn = piece()
      return turn === undefined ? undefined : outside(work, () => turn)
    }
    let snapshotHeap = 0
    const newest = stored === undefined ? undefined : await snapshotter.loadNewest(head.seq, async (meta, bytes) => {
      if (bytes !== undefined) work.resume()
      if (memory !== undefined) hold(bytes === undefined ? meta.size : (snapshotHeap = await heapOfEncoded(bytes, pause)) + meta.size)
    }, pause)
    work.pause()
    // A snapshot at seq 0 is never loaded: the state there is the first epoch's initial state,
    // and one stored may be of another version's (taken for a replica that asked by an older
    // hub, before anything was written: the first write starts the log at the version of the
    // hub that wrote it, with no marker). Nor is it the newest snapshot: the next one is taken.
    const base = newest !== undefined && newest.meta.seq > 0 ? newest : undefined
    if (newest !== undefined && base === undefined) snapshotter.latest = undefined
    if (base === undefined && horizon > 0) {
      throw new CanonError({ code: "storage-corrupt", message: `Document "${docId}" was compacted up to seq ${horizon} but no stored snapshot of it verifies.` })
    }
    let at = base?.meta.seq ?? 0
    const page = options.catchUpPage ?? 512
    // With a history, each entry applies with its epoch's version, and each marker migrates.
    // From the compaction horizon: the entries below it are gone (the snapshot holds them).
    const markers = history === undefined ? [] : await scanMarkers(store, docId, horizon, head.seq, page * 8)
    let epoch = versionAt(markers, head.version, at)
    const start = (history?.at(epoch) ?? machine) as Machine<S>
    const host = new JournaledState<S>(base !== undefined ? (base.state as S) : start.initial())
    // CRDT fields load from the snapshot's `$crdt` before anything reads the root: those of its
    // version (a later one may add fields, which join at its migration).
    start.crdtRuntime?.fieldsOf(start.crdt!, host)
    // Bytes of log since the newest snapshot: the snapshot policy goes on counting from them
    // (a document unloaded and loaded again between writes would otherwise never snapshot).
    const logSince = { bytes: 0 }
    // A logged entry the machine refuses on replay was accepted by another build of it (its
    // logic changed without a version): the state differs from what was acknowledged. Told once.
    let refused: { readonly seq: number; readonly rejection: Rejection; count: number } | undefined
    // What is built so far: the last count (the snapshot's, weighed from its bytes) and what was
    // written since, as the state model adds it up (nothing removed is subtracted). Counted
    // whole again before a refusal once that has doubled since (a log rewriting one note a
    // thousand times adds up to far more than it holds; a count is O(state), so only then).
    let counted = base !== undefined ? snapshotHeap : 0
    let grownAtCount = grownOf(host)
    const holdBuilt = (): void => {
      if (memory === undefined) return
      const estimate = counted + grownOf(host) - grownAtCount
      if (estimate >= 2 * counted && !memory.alone(heldState) && !memory.fits(heldState, estimate)) {
        counted = heapBytes(host.root)
        grownAtCount = grownOf(host)
      }
      hold(counted + grownOf(host) - grownAtCount)
    }
    // Replayed in slices too: a log of slow commands (app code) is as slow to replay, and a
    // page of them would hold the event loop.
    // Granted a turn (turns.ts): one entry goes whatever the turn's room.
    let granted = false
    // The replay's time, on the runtime's clock: the hub charges it to whoever made it load.
    const replay = new Stopwatch(() => steadyNow(runtime))
    while (at < head.seq) {
      const entries = await store.entries(docId, at, Math.min(page * 8, head.seq - at), logSince)
      if (entries.length === 0) break
      for (const e of entries) {
        while (!granted && turns.over()) granted = await turns.next()
        granted = false
        replay.resume()
        if (history === undefined) {
          const r = applyLogged(host, docId, machine, e)
          if (r !== undefined) refused === undefined ? (refused = { seq: e.seq, rejection: r, count: 1 }) : refused.count++
        } else epoch = replayEntry(host, docId, history, epoch, e)
        replay.pause()
        at = e.seq
      }
      holdBuilt()
    }
    if (refused !== undefined) {
      hooks.onReport?.({ docId, code: "replay-refused", message: boundedMessage(`Replaying "${docId}", ${refused.count} logged entr${refused.count === 1 ? "y was" : "ies were"} refused by "${machine.name}" v${machine.version}, the first at seq ${refused.seq} (${refused.rejection.code}: ${refused.rejection.message}): the machine no longer applies what it accepted; its state differs from what was acknowledged.`) })
    }
    if (at !== head.seq) {
      throw new CanonError({ code: "storage-corrupt", message: `Document "${docId}" has head ${head.seq} but its log ends at ${at}.` })
    }
    // The stored checkpoint at the head must describe the state we rebuilt. If it does not,
    // the machine is not deterministic (or changed): say so, and publish the truth so
    // replicas resync.
    let checked = head
    let upgraded = false
    let held: HeldVersion | undefined
    if (history !== undefined && at === head.seq && epoch < machine.version) {
      // A hub upgrade: the version change is an entry of the log, with the migrated state's
      // checkpoint, in one atomic batch (a crash before it changes nothing).
      const seq = head.seq + 1
      const time = Math.max(head.lastTime, runtime.now())
      const marker: Entry = { seq, time, clientId: HUB_CLIENT, clientSeq: 0, name: MIGRATE, args: { from: epoch, to: machine.version } }
      replay.resume()
      try {
        applyMigration(host, docId, history, marker)
      } catch (e) {
        // The app's migration failed on this state: the document stays at its version, unwritten (held-version.ts).
        held = holdAt(docId, machine, epoch, e)
        hooks.onReport?.({ docId, code: "migration-failed", message: held.error.message })
      } finally {
        // App code too, run again at every load while it fails: charged with the replay.
        replay.pause()
      }
      if (held === undefined) {
        // What the migration built, before its commit is awaited (loads migrating at once see each other's).
        holdBuilt()
        const cp = { seq, hash: hashState(host.root) }
        checked = { machine: machine.name, version: machine.version, seq, lastTime: time, checkpoint: cp }
        await store.commit(docId, { head: checked, entries: [marker], checkpoints: [cp] })
        markers.push(markerOf(marker)!)
        at = seq
        upgraded = true
        hooks.onReport?.({ docId, code: "machine-upgraded", message: `Document "${docId}" moved from "${machine.name}" v${epoch} to v${machine.version} at seq ${seq}.` })
        epoch = machine.version
      }
    }
    head = checked
    // Measured once here: big states are hashed in the background from now on. A state that
    // is a verified snapshot at the head is its bytes (strict canonical decoding), whose size
    // and hash its meta holds: encoding it again would cost a copy of the state and a pause.
    // (With CRDT fields the snapshot holds more than the state: measured as before.)
    // (The fields the root has now: a `$migrate` may have added some, or a machine's first ones.)
    const fields = fieldsOfRoot(host.root)
    const atSnapshot = fields === undefined && base !== undefined && base.meta.seq === head.seq ? base.meta : undefined
    work.resume()
    let stateBytes: number
    let loadedHash: string
    if (atSnapshot !== undefined) (stateBytes = atSnapshot.size), (loadedHash = atSnapshot.hash)
    else if (fields !== undefined) (stateBytes = encodeCanonical(host.root).length), (loadedHash = hashState(host.root))
    else {
      // In pieces (nothing else reads the state before it is handed out): one encode of 500,000 cards took 0.7 s.
      const encoder = new StateEncoder(host.root)
      const hash = new StreamHash()
      stateBytes = 0
      for (let bytes = encoder.next(ENCODE_PIECE_BYTES); bytes !== undefined; bytes = encoder.next(ENCODE_PIECE_BYTES)) {
        hash.update(bytes)
        stateBytes += bytes.length
        await pause()
      }
      loadedHash = hash.digest()
    }
    work.pause()
    if (options.checkpointEvery === Infinity) {
      // Checkpoints are off.
    } else if (head.seq > 0 && head.checkpoint?.seq === head.seq) {
      const hash = loadedHash
      if (hash !== head.checkpoint.hash) {
        hooks.onReport?.({
          docId,
          code: "checkpoint-mismatch",
          message: `Replaying "${docId}" to seq ${head.seq} gives hash ${hash}, but ${head.checkpoint.hash} was stored: the machine's commands are not deterministic, or changed without a version bump. Replicas will resync to the replayed state.`,
        })
        checked = { ...head, checkpoint: { seq: head.seq, hash } }
      }
    } else if (head.seq > 0) {
      checked = { ...head, checkpoint: { seq: head.seq, hash: loadedHash } }
    }
    // And the log behind the newest snapshot, back to the horizon: that snapshot may be one a
    // reader asked for, which compacted nothing (the policy counts from the last that did).
    const countBehind = base === undefined ? 0 : snapshotter.loadCountBytes
    const behind = countBehind > 0 && horizon < base!.meta.seq ? await store.logBytes(docId, horizon, base!.meta.seq, countBehind) : 0
    snapshotter.noteLoaded(logSince.bytes, behind)
    // (Its constructor may count the state's memory: O(state), and the load's.)
    work.resume()
    const doc = new DocAuthority(docId, machine, store, runtime, host.root, checked, options, hooks, snapshotter, horizon, stateBytes, markers, held, heldState, counted + grownOf(host) - grownAtCount)
    work.pause()
    doc.workSinceSnapshot = Math.round(replay.ms * 1000)
    doc.loadMicros = Math.round((replay.ms + work.ms) * 1000)
    // Leftovers of writes cut by a crash: chunks of unfinished snapshots, older snapshots.
    // Awaited: a snapshot begun while the sweep runs has chunks without a meta yet, which the
    // sweep would take for leftovers (test/snapshot-load-race.test.ts). Without a crash
    // there is nothing to sweep and this costs a few range reads.
    try {
      await doc.tidy()
    } catch (e) {
      // Built but never handed out: what it holds in the gauges goes back.
      doc.close()
      throw e
    }
    // A snapshot right after a version change lets replicas at the new version skip the old history.
    if (upgraded) doc.snapshotNow().catch((e) => doc.report("snapshot-failed", `The snapshot after upgrading "${docId}" failed: ${errorText(e)}`))
    // Loaded and not followed yet (a subscribe cancels this): unloaded if nobody comes.
    doc.watchIdle()
    return doc
  }

  /** Seq of the last durable entry. */
  get headSeq(): number {
    return this.committed
  }

  /** Nothing was ever committed, nor is anything being written: its machine is not settled yet. */
  get unwritten(): boolean {
    return this.committed === 0 && this.seq === 0 && this.queue.length === 0 && this.parked.size === 0 && !this.flushing && this.writing === 0 && !this.unloaded && !this.broken
  }

  /** The current (committed) state. Read-only. Of version `version`, which a failed upgrade leaves older than `machine`'s. */
  get state(): S {
    return this.host.root
  }

  /** The version of the machine the document's state is at: `machine.version` unless its upgrade failed (`migrationFailure`). */
  get version(): number {
    return this.served.version
  }

  /** Why the upgrade to `machine.version` failed when this document was loaded (it stays at `version`), if it did. */
  get migrationFailure(): CanonError | undefined {
    return this.held?.error
  }

  /** The refusal of a session at machine version `version` (a newer one than a held document's), or undefined. */
  refusal(version: number): CanonError | undefined {
    return heldRefusal(this.held, version)
  }

  get subscriberCount(): number {
    return this.followers.size
  }

  /** Entries at or below this seq may be gone from the stored log. */
  get compactedThrough(): number {
    return this.horizon
  }

  /** The newest stored snapshot. */
  get latestSnapshot(): SnapshotMeta | undefined {
    return this.snapshotter.latest
  }

  stateHash(): string {
    return hashState(this.host.root)
  }

  /** Takes a snapshot now (between batches) and compacts behind it; resolves when stored. */
  async snapshotNow(): Promise<SnapshotMeta> {
    this.compactDue = true
    const meta = await this.snapshotAtLeast(this.committed)
    // Still due: no snapshot that compacts was taken for it (the newest was at the head
    // already, or one a reader asked for answered): compacted behind that one now.
    if (this.compactDue) {
      this.compactDue = false
      if (this.snapshotter.latest?.seq === meta.seq) this.snapshotter.noteCompacting()
      await this.compactTracked(meta)
    }
    return meta
  }

  // ---- followers ----

  /** `departed`: what `unsubscribe` returned for the connection's earlier subscription (the leaves it is owed). */
  subscribe(conn: Connection<ServerMessage>, who: Sender | string, fromSeq: number, ackedClientSeq: number, resume?: { readonly snapshotId: number; readonly received: number }, version = this.machine.version, departed?: ReadonlySet<string>): void {
    this.assertLoaded()
    const refused = heldRefusal(this.held, version)
    if (refused !== undefined) return conn.send({ type: "error", code: refused.code, message: refused.message, docId: this.docId })
    const sender = asSender(who)
    // The follower first: the submit below reads its version.
    this.followers.add(conn, sender.clientId, fromSeq, resume, sender.protocol ?? 1, version, departed)
    this.idleTimer?.cancel()
    this.idleTimer = undefined
    // The ack goes through the write lane like a submit without commands.
    const ack: Submit = { type: "submit", docId: this.docId, commands: [], ackedClientSeq }
    this.subscribeAcks.add(ack)
    this.submit(conn, sender, ack)
  }

  /**
   * `reopen`: the connection stays, and may subscribe again (the client's unsubscribe); then
   * returns the clients it may have been shown, to pass to its next `subscribe` (Followers `remove`).
   */
  unsubscribe(conn: Connection<ServerMessage>, reopen = false): ReadonlySet<string> | undefined {
    return this.followers.remove(conn, reopen)
  }

  /** Sets this connection's presence and tells the document's other followers. */
  setPresence(conn: Connection<ServerMessage>, state: unknown): void {
    this.followers.setPresence(conn, state)
  }

  /** The replica desynced: it gets the whole state as a snapshot stream, then the log. */
  fetchState(conn: Connection<ServerMessage>): void {
    if (!this.followers.wantState(conn)) {
      conn.send({ type: "error", code: "not-subscribed", message: `Subscribe to "${this.docId}" before fetching its state.`, docId: this.docId })
    }
  }

  /** Flow control (or the resume point) of a snapshot stream. */
  snapshotAck(conn: Connection<ServerMessage>, snapshotId: number, received: number): void {
    this.followers.snapshotAck(conn, snapshotId, received)
  }

  /**
   * Runs background work (timers, deferred sends) so that a failure is reported and drops the
   * document for a reload, and never escapes into the process.
   */
  private guard(what: string, fn: () => void): void {
    try {
      fn()
    } catch (e) {
      this.fail(what, e)
    }
  }

  private fail(what: string, e: unknown): void {
    if (this.broken) return
    this.broken = true
    const message = errorText(e)
    this.hooks.onReport?.({ docId: this.docId, code: "background-failed", message: `${what} of "${this.docId}" failed: ${message}` })
    this.hooks.onBroken(this, e)
  }

  report(code: string, message: string): void {
    this.hooks.onReport?.({ docId: this.docId, code, message })
  }

  // ---- snapshots ----

  /** A stored snapshot at or after `atLeast`: the latest if it will do, else a new one. */
  private snapshotAtLeast(atLeast: number): Promise<SnapshotMeta> {
    const latest = this.snapshotter.latest
    if (latest !== undefined && latest.seq >= atLeast) return Promise.resolve(latest)
    return new Promise((resolve, reject) => {
      this.snapshotWaiters.push({ atLeast, resolve, reject })
      this.snapshotDue = true
      if (!this.flushing) this.beginSnapshot()
    })
  }

  /** Starts a snapshot of the committed state. Only between batches: memory equals what is committed. */
  private beginSnapshot(): void {
    if (this.flushing || this.snapshotter.running || this.broken) return
    this.snapshotDue = false
    const compact = this.compactDue
    this.compactDue = false
    const seq = this.committed
    // A load replays from here on.
    this.workSinceSnapshot = 0
    const latest = this.snapshotter.latest
    if (latest !== undefined && latest.seq === seq) {
      // Nothing committed since the last one: it is the snapshot of now.
      this.noteSize(latest.size)
      for (const w of this.snapshotWaiters.splice(0)) w.resolve(latest)
      if (compact) {
        this.snapshotter.noteCompacting()
        this.compactTracked(latest).catch((e) => this.compactFailed(latest, e))
      }
      return
    }
    // The snapshot measures the state (CRDT fields included) as it is now.
    const measure = this.sizeBound.measure(this.elapsed())
    this.track(this.snapshotter.take(this.snapshotSource(), seq, this.lastTime, true, compact).then(
      (meta) => {
        measure.done(meta.size, this.elapsed())
        if (this.crdt === undefined) this.stateBytes = meta.size
        // With CRDT fields a snapshot's byte hash is not the state hash (fields.ts).
        if (this.crdt === undefined && (this.checkpoint === undefined || this.checkpoint.seq < meta.seq)) this.setCheckpoint({ seq: meta.seq, hash: meta.hash }, true)
        for (const w of this.snapshotWaiters.splice(0)) {
          if (meta.seq >= w.atLeast) w.resolve(meta)
          else this.snapshotWaiters.push(w)
        }
        if (this.snapshotWaiters.length > 0) this.snapshotDue = true
        if (this.snapshotDue && !this.flushing) this.beginSnapshot()
        // Its own failure is its own: the snapshot is stored (its waiters, the size measure have it).
        if (compact) this.compactTracked(meta).catch((e) => this.compactFailed(meta, e))
      },
    ).catch((e) => {
      const message = errorText(e)
      this.report("snapshot-failed", `A snapshot of "${this.docId}" at seq ${seq} failed: ${message}`)
      measure.failed()
      for (const w of this.snapshotWaiters.splice(0)) w.reject(e)
    }))
  }

  /** Writes begun and not over: commits, snapshots with the compaction behind them, checkpoints. */
  private readonly inFlight = new Set<Promise<unknown>>()

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p)
    const done = () => this.inFlight.delete(p)
    p.then(done, done)
  }

  /**
   * Resolves once nothing this instance began still writes. The hub loads a document again
   * (after it broke) only then: two instances writing one document's storage would take each
   * other's snapshot in progress for a crash's leftovers (test/snapshot-broken-race.test.ts).
   */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0 || this.snapshotter.busy) {
      await Promise.allSettled([...this.inFlight, this.snapshotter.settled()])
    }
  }

  /**
   * What a snapshot encodes: the state, and with CRDT fields the state plus `$crdt` (each
   * field's bytes, encoded now, between batches, when memory equals what is committed).
   */
  private snapshotSource(): Freezable {
    const crdt = this.crdt
    if (crdt === undefined) return this.host
    const host = this.host
    return {
      get root() {
        return crdt.snapshotOf(host.root)
      },
      freeze() {
        const f = freezeState(host)
        return { root: crdt.snapshotOf(f.root), resolve: f.resolve, release: f.release }
      },
    }
  }

  private compactFailed(meta: SnapshotMeta, e: unknown): void {
    this.report("snapshot-failed", `Compacting "${this.docId}" behind its snapshot at seq ${meta.seq} failed (the next snapshot that compacts does it): ${errorText(e)}`)
  }

  /** compactBehind, counted as a write in flight. */
  private compactTracked(meta: SnapshotMeta): Promise<void> {
    this.writing++
    const p = this.compactBehind(meta).finally(() => this.writing--)
    this.track(p)
    return p
  }

  /** Deletes entries behind a new snapshot, keeping a tail for cheap catch-up (Snapshotter.tailBytesBehind). */
  private async compactBehind(meta: SnapshotMeta): Promise<void> {
    const tail = this.snapshotter.tailBytesBehind(meta)
    if (!Number.isFinite(tail)) return
    const upTo = await this.store.horizonFor(this.docId, meta.seq, tail)
    if (upTo <= this.horizon) return
    // Readers see the new horizon once it is recorded, before the entries go: catch-up switches to a snapshot.
    await this.store.snapshots.compact(this.docId, upTo, undefined, (h) => { if (h > this.horizon) this.horizon = h })
  }

  /** Removes what crashes left behind; failures are reported and retried at the next load. */
  private async tidy(): Promise<void> {
    try {
      const latest = this.snapshotter.latest
      // A seq-0 snapshot of a document with entries is never loaded (see `load`): nothing needs it.
      for (const m of await this.store.snapshots.metas(this.docId)) {
        if ((latest !== undefined && m.seq < latest.seq) || (m.seq === 0 && this.committed > 0)) await this.store.snapshots.drop(this.docId, m.seq)
      }
      await this.store.snapshots.dropOrphans(this.docId)
      // Sweeping: checkpoints below the horizon a store kept from before compaction deleted them.
      if (this.horizon > 0) await this.store.snapshots.compact(this.docId, this.horizon, undefined, undefined, true)
    } catch (e) {
      this.report("tidy-failed", `Cleaning up after an earlier crash failed for "${this.docId}": ${errorText(e)}`)
    }
  }

  private setCheckpoint(cp: Checkpoint, store: boolean): void {
    this.checkpoint = cp
    // Kept for `canon inspect`; losing it in a crash costs nothing but a later check.
    if (store) {
      this.writing++
      this.track(this.store.putCheckpoint(this.docId, cp).catch(() => {}).finally(() => this.writing--))
    }
    this.followers.publishCheckpoint(cp)
  }

  // ---- submit / group commit ----

  submit(conn: Connection<ServerMessage>, who: Sender | string, msg: Submit, refuse?: Rejection, release?: () => void): void {
    if (this.unloaded) release?.()
    this.assertLoaded()
    const version = this.followers.get(conn)?.version ?? this.machine.version
    // Commands of a version the document could not be migrated to are refused, never applied to an older state.
    const held = heldRefusal(this.held, version)
    const pending: Pending = { conn, sender: asSender(who), msg, version, refuse: refuse ?? (held && { code: "command-failed", message: held.message }), release }
    // Behind what of its connection waits for its client's debt.
    const parked = this.parked.get(conn)
    if (parked !== undefined) return void parked.push(pending)
    this.queue.push(pending)
    this.kick()
  }

  /** A command's time since `started`, charged to its client (one that ends early too: a retry, a refused number, hub-full). */
  private chargeTime(clientId: string, started: number): void {
    this.hooks.onCommandWork?.(clientId, (this.elapsed() - started) * 1000)
  }

  /** Flushes what is queued, unless a flush is running (it takes what comes meanwhile). */
  private kick(): void {
    if (!this.flushing) this.track(this.flush().catch((e) => this.fail("committing", e)))
  }

  private async flush(): Promise<void> {
    this.flushing = true
    try {
      // Submits of the same task (frames of one socket read, or of one burst) join this batch:
      // one write and one fsync instead of a first batch of one and a second of the rest.
      await undefined
      while (this.queue.length > 0 && !this.broken) {
        const taken = this.queue
        let batch = taken
        this.queue = []
        let left = NOTHING_LEFT
        try {
          const unreadable = await this.clientTable.load(batch.map((p) => p.sender.clientId))
          if (this.broken) return
          if (unreadable.size > 0) batch = this.refuseUnreadable(batch, unreadable)
          left = await this.commitBatch(batch)
          // Committed: client states in memory past their bound may go (read back on next use),
          // and the drafts its commands read through (charged to them, not to the state).
          if (!this.broken) this.clientTable.shed()
          forgetDrafts(this.host)
          // What the fields hold, exactly (merges were added up from upper bounds).
          if (this.crdt !== undefined && !this.closed) this.hooks.fieldWeight?.set(this, this.crdt.weight())
          // And the plain state's estimate, with the client states it keeps.
          if (!this.closed) this.hooks.memory?.set(this.heldState, this.heldBytesWith(this.stateHeap))
        } finally {
          for (const p of taken) if (!left.carried.has(p)) p.release?.()
          // What the batch did not judge goes first again, before what came meanwhile, but for
          // the connection that used the turn, which goes last with what came of it meanwhile:
          // a writer of slow commands does not hold the others of its document behind its queue
          // (ten fresh clients queueing 4 s each held a writer 39 s). A document that broke
          // releases its queue as it stops.
          if (left.behind.length > 0) {
            const last = left.behind[0]!.conn
            this.queue = [...left.rest, ...this.queue.filter((p) => p.conn !== last), ...left.behind, ...this.queue.filter((p) => p.conn === last)]
          } else if (left.rest.length > 0) this.queue = left.rest.concat(this.queue)
        }
        // Between batches memory equals what is committed: the moment a snapshot may begin.
        if (this.snapshotDue) {
          this.flushing = false
          this.beginSnapshot()
          this.flushing = true
        }
        if (left.waitMs > 0) this.unparkAfter(left.waitMs)
        // A grant not used in this batch lapses with it.
        this.granted = false
        if (left.sliced) this.granted = await this.turns.next()
      }
    } finally {
      this.flushing = false
      // A broken document writes no more: what waits is dropped, and its connections read again.
      if (this.broken) this.dropWaiting()
      if (this.snapshotDue) this.beginSnapshot()
    }
  }

  /** Parks the rest of `conn`'s submits until its client is out of debt (see `parked`). */
  private park(conn: Connection<ServerMessage>, p: Pending): void {
    const list = this.parked.get(conn)
    if (list === undefined) this.parked.set(conn, [p])
    else list.push(p)
  }

  /** In `ms` (or earlier, if already due), the parked submits of clients out of debt go back to the front of the queue. */
  private unparkAfter(ms: number): void {
    const due = steadyNow(this.runtime) + ms
    if (this.closed || this.workTimer !== undefined && this.workDue <= due) return
    this.workTimer?.cancel()
    this.workDue = due
    this.workTimer = this.runtime.setTimer(Math.max(1, ms), () => {
      this.workTimer = undefined
      this.workDue = Infinity
      if (this.closed) return
      const back: Pending[] = []
      let wait = Infinity
      for (const [conn, list] of this.parked) {
        // Back once its client can pay for some work, not the first microsecond out of debt:
        // each return costs a walk, a write and a reply (at one command a return, 0.6 of the hub
        // went to a client of 0.25).
        const w = this.hooks.workWait?.(list[0]!.sender.clientId, UNPARK_MICROS) ?? 0
        if (w > 0) wait = Math.min(wait, w)
        else {
          this.parked.delete(conn)
          back.push(...list)
        }
      }
      if (wait < Infinity) this.unparkAfter(wait)
      if (back.length === 0) return
      this.queue = back.concat(this.queue)
      this.kick()
    })
  }

  /** What waits (queued or parked) goes, its connections read again. */
  private dropWaiting(): void {
    for (const p of this.queue.splice(0)) p.release?.()
    for (const list of this.parked.values()) for (const p of list) p.release?.()
    this.parked.clear()
  }

  /** A client whose records cannot be read gets an error for its submits; nobody else notices. */
  private refuseUnreadable(batch: Pending[], unreadable: Map<string, unknown>): Pending[] {
    const kept: Pending[] = []
    for (const p of batch) {
      const e = unreadable.get(p.sender.clientId)
      if (e === undefined) {
        kept.push(p)
        continue
      }
      const message = errorText(e)
      this.hooks.onReport?.({ docId: this.docId, code: "client-unreadable", message })
      this.followers.sendReply(p.conn, { type: "error", code: (e as { code?: string }).code ?? "storage-failed", message: boundedMessage(peerText(e, `The hub's storage failed reading this client's records of "${this.docId}".`)), docId: this.docId })
    }
    return kept
  }

  /**
   * Checks a command's size and depth before anything runs: an entry must always fit in a
   * frame (with its clientId, name and seq) and under the decoder's depth limit, or every
   * subscriber's catch-up would fail on it forever. Returns the canonical bytes of the args,
   * also with a size rejection: a retry of a command logged under a larger bound (a hub
   * restarted with a lower one) is still known by its hash, and answered as the retry it is.
   */
  private bound(name: string, args: unknown): { readonly bytes: Uint8Array; readonly rejection?: Rejection } | { readonly bytes?: undefined; readonly rejection: Rejection } {
    if (depthExceeds(args, MAX_ARGS_DEPTH)) {
      return { rejection: { code: "command-too-large", message: `The arguments of "${name}" nest deeper than ${MAX_ARGS_DEPTH} levels.` } }
    }
    let bytes: Uint8Array
    try {
      bytes = encodeCanonical(args)
    } catch (e) {
      return { rejection: { code: "invalid-args", message: boundedMessage(`The arguments of "${name}" are not plain data: ${errorText(e)}`) } }
    }
    if (bytes.length > this.maxCommandBytes) {
      return { bytes, rejection: { code: "command-too-large", message: `The arguments of "${name}" take ${bytes.length} bytes; this hub accepts at most ${this.maxCommandBytes}. Keep large blobs out of commands.` } }
    }
    return { bytes }
  }

  private async commitBatch(batch: Pending[]): Promise<Left> {
    const seqBefore = this.committed
    const entries: Entry[] = []
    const journals: Journal[] = []
    const replies = new Map<Connection<ServerMessage>, Outcome[]>()
    // Sequence errors go after the results of the same connection: a client settles its
    // genuine retries before it renumbers what follows them.
    const errors = new Map<Connection<ServerMessage>, ErrorMsg[]>()
    /** Connections told `hub-full` in this batch: nothing more of theirs is judged in it. */
    const unjudged = new Set<Connection<ServerMessage>>()
    const checkpoints: Checkpoint[] = []
    // Protocol 2 submitters' new entries, by connection: they come back elided.
    const own = new Map<Connection<ServerMessage>, Set<number>>()
    const table = this.clientTable
    // The batch is cut when the hub's turn is used (turns.ts): what it did not judge goes back
    // to the queue, first (`rest`), but for the connection that used the turn, which goes last
    // (`behind`). A client in debt for the hub's work (AuthorityHooks.workWait) has the rest of
    // its connection's submits parked (`parked`). Each connection's submits keep their order.
    const rest: Pending[] = []
    const behind: Pending[] = []
    /** The connection of the last command judged, and once the turn is used, the one that used it. */
    let lastBy: Connection<ServerMessage> | undefined
    let slicedBy: Connection<ServerMessage> | undefined
    const carried = new Set<Pending>()
    // Connections parked in this batch: the rest of theirs in it is parked too.
    const waiting = new Set<Connection<ServerMessage>>()
    let sliced = false
    let waitMs = Infinity

    try {
      for (const p of batch) {
        const { conn, sender, msg, version, refuse } = p
        if (waiting.has(conn) || sliced) {
          if (waiting.has(conn)) this.park(conn, p)
          else (conn === slicedBy ? behind : rest).push(p)
          carried.add(p)
          continue
        }
        if (unjudged.has(conn)) continue
        const awaited = p.resumed ? undefined : this.awaitingResend.get(conn)
        if (awaited !== undefined) {
          if (msg.commands[0]?.clientSeq !== awaited) continue
          this.awaitingResend.delete(conn)
        }
        if (!p.resumed && this.fenced.has(conn)) {
          if (!this.subscribeAcks.has(msg)) continue
          this.fenced.delete(conn)
        }
        const { clientId, incarnation } = sender
        table.ack(clientId, incarnation, msg.ackedClientSeq)
        let out = replies.get(conn)
        for (let i = 0; i < msg.commands.length; i++) {
          const cmd = msg.commands[i]!
          const started = this.elapsed()
          // Asked before every command (the first begins a turn); a document that waited for
          // its turn holds the turn's grant for one command, so none is starved (turns.ts).
          const over = this.turns.over()
          if (over && !this.granted) {
            sliced = true
            slicedBy = lastBy
          }
          // A merge was paid for as it entered (crdt-work.ts); other commands are charged after
          // they ran, and wait while their client is in debt.
          const wait = sliced || cmd.name.startsWith(CRDT_COMMAND_PREFIX) ? 0 : this.hooks.workWait?.(clientId) ?? 0
          if (wait > 0) {
            waiting.add(conn)
            waitMs = Math.min(waitMs, wait)
          }
          if (sliced || wait > 0) {
            const remainder: Pending = { ...p, msg: i === 0 ? msg : { ...msg, commands: msg.commands.slice(i) }, resumed: true }
            if (wait > 0) this.park(conn, remainder)
            else (conn === slicedBy ? behind : rest).push(remainder)
            carried.add(p)
            break
          }
          this.granted = false
          lastBy = conn
          if (out === undefined) replies.set(conn, (out = []))
          const expanded = msg.compact === true ? this.expand(cmd.name, cmd.args, version) : { args: cmd.args }
          let args = "args" in expanded ? expanded.args : undefined
          const bounded = "rejection" in expanded ? expanded : this.bound(cmd.name, args)
          // With a history: decoded at the session's version and upcast; hashed in the form it was written in.
          const sent = "bytes" in bounded ? bounded.bytes : undefined
          // Compact arguments are applied as the log holds them (canonical: a record's keys
          // sorted), as replays and protocol 1 readers see them, not in the order a sender
          // wrote them (an apply that walks a record's keys would differ from its readers').
          if (msg.compact === true && sent !== undefined && bounded.rejection === undefined) args = decodeCanonical(sent)
          let accepted = this.history !== undefined && bounded.rejection === undefined ? acceptCommand(this.served, version, cmd.name, args) : undefined
          if (accepted?.ok === true && accepted.log.args !== args) {
            // What is logged is the upcast form, which may be far larger than what was sent: it is bounded too.
            const logged = this.bound(accepted.log.name, accepted.log.args)
            if (logged.rejection !== undefined) accepted = { ok: false, rejection: { code: logged.rejection.code, message: `Upcast to v${this.served.version}: ${logged.rejection.message}` }, hashed: accepted.hashed }
          }
          const hashed = accepted?.hashed
          const hash = sent !== undefined ? (hashed === undefined || hashed.name === cmd.name && hashed.args === args ? commandHash(cmd.name, sent) : commandHash(hashed.name, formBytes(hashed))) : 0
          // Protocol 3: the number a renumbered command was made under (core/authority/client-table.ts).
          const madeAs = Number.isSafeInteger(cmd.madeAs) && cmd.madeAs! > 0 && cmd.madeAs !== cmd.clientSeq ? cmd.madeAs : undefined
          let where = table.classify(clientId, incarnation, cmd.clientSeq, hash, this.committed, madeAs)
          if ((where.kind === "conflict" || where.kind === "new" && madeAs !== undefined) && hashed !== undefined) {
            // A retry in another version's form (sent before an upgrade, or downcast by a newer client),
            // under a number another command holds or renumbered to the next one.
            // A `$as` command's form is of the version it names, not the session's.
            const formVersion = cmd.name === AS && typeof (args as { v?: unknown } | null)?.v === "number" ? (args as { v: number }).v : version
            for (const alt of alternateForms(this.served, formVersion, hashed)) {
              const w = table.classify(clientId, incarnation, cmd.clientSeq, commandHash(alt.name, formBytes(alt)), this.committed, madeAs)
              if (w.kind === "duplicate") {
                where = w
                break
              }
            }
          }
          if ((where.kind === "conflict" || where.kind === "new" && madeAs !== undefined) && hashed === undefined && sent !== undefined) {
            // A retry an app built before ed45355 first sent with -0 in a literal or enum
            // argument: its compact form then carried +0, the form the hub hashed.
            const old = withoutNegativeZero(args)
            if (old !== undefined) {
              const w = table.classify(clientId, incarnation, cmd.clientSeq, commandHash(cmd.name, encodeCanonical(old)), this.committed, madeAs)
              if (w.kind === "duplicate") where = w
            }
          }
          if (where.kind === "duplicate") {
            // A retry: the original outcome, never a second application. Its reading and
            // hashing are charged too (retries of 8 KiB commands, resent again and again, kept a
            // hub 89% busy for free).
            if (where.record !== undefined) table.record(clientId, incarnation, cmd.clientSeq, where.record)
            out.push(where.outcome)
            this.chargeTime(clientId, started)
            continue
          }
          if (where.kind !== "new") {
            const list = errors.get(conn) ?? []
            errors.set(conn, list)
            list.push(where.kind === "gap"
              ? { type: "error", code: "sequence-gap", docId: this.docId, seq: where.expected, message: `Command ${cmd.clientSeq} skips numbers: the next command of client ${clientId} on "${this.docId}" must be ${where.expected}.` }
              : { type: "error", code: "sequence-reset", docId: this.docId, seq: where.resumeAt, message: `Command ${cmd.clientSeq} of client ${clientId} is not the command this document processed under that number (another device, or lost storage): number new commands from ${where.resumeAt}, and subscribe again before sending them.` })
            if (where.kind === "conflict") this.fenced.add(conn)
            this.chargeTime(clientId, started)
            // The rest of this submit is numbered on top of the refused one: refuse it too.
            break
          }
          let stored: StoredOutcome
          let outcome: Outcome
          const decodedArgs = refuse !== undefined
            ? { ok: false as const, rejection: refuse }
            : bounded.rejection !== undefined ? { ok: false as const, rejection: bounded.rejection } : accepted ?? decodeArgs(this.served, cmd.name, args)
          // A CRDT update is checked against its field before it merges (crdt/engine.ts).
          const crdtField = decodedArgs.ok ? decodedArgs.cmd.crdt?.field : undefined
          const crdtRefusal = crdtField !== undefined && decodedArgs.ok ? this.crdt?.check(crdtField, decodedArgs.args, clientId) : undefined
          // What a merge can add to the memory the hub's loaded fields hold together
          // (held-weight.ts). Past the bound it is not judged: no room now is neither the
          // command's fault nor for good, and a rejection would drop the edit for good (the
          // client tombstones what is refused). Nothing is recorded; the client is told to send
          // it again later (`hub-full`, retried as a storage failure is), with the rest of its
          // submits in this batch. One that could never fit, more than the whole bound, is refused.
          const gauge = this.hooks.fieldWeight
          const weighs = crdtRefusal === undefined && decodedArgs.ok && crdtField !== undefined && gauge !== undefined ? this.crdt!.weighs(crdtField, decodedArgs.args) : 0
          // What holds no content (a refused change's tombstone, a deletion) may use a reserve past the bound, as it may the size bound's.
          // A merge that holds no content (CrdtField `fills`: a refused change's tombstone, or a deletion); asked once, here.
          const fills = crdtRefusal === undefined && decodedArgs.ok && crdtField !== undefined && this.crdt!.fills(crdtField, decodedArgs.args)
          const reserve = weighs > 0 && fills ? gauge!.reserve : 0
          const decoded = crdtRefusal !== undefined ? { ok: false as const, rejection: crdtRefusal }
            : weighs > 0 && weighs > gauge!.max ? { ok: false as const, rejection: crdtRejection("crdt-too-large", `The update can add ${weighs} ops and structs, more than the CRDT fields of this hub's documents may hold together (${gauge!.max}, maxHostFieldWeight); split it.`).rejection }
            : decodedArgs
          if (decoded.ok && weighs > 0 && !gauge!.fits(this, gauge!.of(this) + weighs, reserve)) {
            const list = errors.get(conn) ?? []
            errors.set(conn, list)
            list.push({ type: "error", code: "hub-full", docId: this.docId, message: this.hostFull(gauge!, gauge!.of(this) + weighs) })
            unjudged.add(conn)
            // Until it sends this number again (after its backoff), nothing more of this
            // connection is judged, nor answered: a later submit, answered `sequence-gap`,
            // had the client send its whole outbox again at once, every time.
            this.awaitingResend.set(conn, cmd.clientSeq)
            this.hooks.onNoRoom?.()
            break
          }
          if (!decoded.ok) {
            const rejection = { code: decoded.rejection.code, message: boundedMessage(decoded.rejection.message) }
            stored = { hash, rejection }
            outcome = { clientSeq: cmd.clientSeq, rejection }
          } else {
            const seq = this.seq + 1
            const time = Math.max(this.lastTime, this.runtime.now())
            // A CRDT update grows its field outside the journal (nothing undoes a merge), by
            // about its own bytes: it is weighed before it merges. One with no content
            // (CrdtField `fills`: a refused change's tombstone, or a deletion) may use the
            // document's reserve (size-bound.ts): a tombstone refused, every later change of its
            // writer would be refused for needing it; a deletion refused, a full document could
            // never be trimmed by its writers. One that leaves the document near full has it
            // measured again (a deletion freed room the bound does not know of).
            const merged = crdtField !== undefined && sent !== undefined ? sent.length * CRDT_GROWTH_FACTOR : 0
            const journal = this.host.begin()
            const writtenBefore = writtenOf(this.host)
            const grownBefore = grownOf(this.host)
            const tombstone = merged > 0 && fills
            // A deletion is charged what it can add less what it frees (adapters/yjs/deletion.ts):
            // one that frees more always fits, even past the bound, which it brings back down.
            const growth = tombstone ? this.crdt!.growth(crdtField!, decoded.args) : undefined
            // An update with content is weighed by its bytes, and what it can add beyond them on
            // top (a Yjs update's deletions, an Automerge change's scattered ops: CrdtField extraGrowth).
            const charge = growth ?? (merged > 0 ? merged + this.crdt!.extraGrowth(crdtField!, decoded.args) : 0)
            let rejected: Rejection | undefined = merged > 0 && !this.sizeBound.fits(charge, tombstone)
              ? this.full(tombstone)
              : runApply(this.host, decoded.cmd, cmd.name, decoded.args, makeContext(this.docId, seq, time, clientId))
            // Held at once: the next merge of this batch is judged against it.
            if (rejected === undefined && weighs > 0) gauge?.set(this, gauge.of(this) + weighs)
            this.host.end()
            if (rejected !== undefined) this.host.undo(journal)
            else {
              const grew = writtenOf(this.host) - writtenBefore - removedBytes(journal)
              // A merge was weighed before it merged and cannot be undone: it is accepted as it is.
              if (merged > 0) {
                // Never less: what it frees is found by a measure (near full, one is asked for now).
                this.sizeBound.accept(grew + Math.max(0, charge), true)
                if (tombstone && this.sizeBound.nearFull(0) && this.sizeBound.mayMeasure(this.elapsed())) this.snapshotDue = true
              } else rejected = this.overSize(journal, grew)
              // Past the hub's memory: undone and not judged, as a merge past the fields' bound is
              // (below the document's own bound, a state of small objects takes 10 times its bytes).
              const grown = grownOf(this.host) - grownBefore
              if (rejected === undefined && merged === 0 && grown > 0 && this.hooks.memory !== undefined && !this.holdsGrowth(this.hooks.memory, grown, journals, journal)) {
                this.host.undo(journal)
                if (this.heapStale) (this.stateHeap = this.countHeap()), (this.heapExact = true)
                this.heapStale = false
                const list = errors.get(conn) ?? []
                errors.set(conn, list)
                list.push({ type: "error", code: "hub-full", docId: this.docId, message: `${hubMemoryFull(this.hooks.memory)}: this client sends its commands again later (or ask the operator to raise it).` })
                unjudged.add(conn)
                this.awaitingResend.set(conn, cmd.clientSeq)
                this.hooks.onNoRoom?.()
                // It ran: its time is charged, or resending it for ever would cost the hub for free.
                this.chargeTime(clientId, started)
                break
              }
            }
            if (rejected !== undefined) {
              const rejection = { code: rejected.code, message: boundedMessage(rejected.message) }
              stored = { hash, rejection }
              outcome = { clientSeq: cmd.clientSeq, rejection }
            } else {
              journals.push(journal)
              this.seq = seq
              this.lastTime = time
              const log = accepted?.ok === true ? accepted.log : { name: cmd.name, args }
              entries.push({ seq, time, clientId, clientSeq: cmd.clientSeq, name: log.name, args: log.args })
              if (msg.compact === true) {
                let mine = own.get(conn)
                if (mine === undefined) own.set(conn, (mine = new Set()))
                mine.add(seq)
              }
              if (seq % this.checkpointEvery === 0 && this.stateBytes <= BIG_STATE_BYTES) checkpoints.push(this.measure(seq))
              stored = { hash, seq }
              outcome = { clientSeq: cmd.clientSeq, seq }
            }
          }
          table.record(clientId, incarnation, cmd.clientSeq, madeAs === undefined ? stored : { ...stored, madeAs })
          out.push(outcome)
          const micros = (this.elapsed() - started) * 1000
          this.workSinceSnapshot += micros
          if (crdtField !== undefined) this.hooks.onCrdtWork?.(clientId, cmd, micros)
          else this.hooks.onCommandWork?.(clientId, micros)
        }
      }
      // Submits of a connection parked here that came meanwhile (while its client records were
      // read) follow its parked ones, in order: left in the queue, they were judged after what
      // it sent later (command 5 refused sequence-gap, then 4 applied).
      if (waiting.size > 0 && this.queue.length > 0) this.queue = this.queue.filter((q) => !waiting.has(q.conn) || (this.park(q.conn, q), false))
    } catch (e) {
      // The second wall: the state model refuses bad writes inside commands, so this means a
      // bug. Nothing of this batch was written or acknowledged; memory is rolled back.
      this.rollback(journals, seqBefore)
      this.fail("applying a batch", e)
      return NOTHING_LEFT
    }

    let written = 0
    if (entries.length > 0 || table.changed) {
      const bytes = await this.persist(entries, checkpoints, journals, seqBefore)
      if (bytes === undefined) return NOTHING_LEFT
      written = bytes
    }
    if (written > 0 && this.snapshotter.noteCommitted(written)) this.snapshotDue = this.compactDue = true
    if (entries.length > 0 && this.workSinceSnapshot >= REPLAY_BOUND_MICROS) this.snapshotDue = this.compactDue = true

    // Durable: fan out to live subscribers, then acknowledge. Entries first: a submitter that
    // follows the document confirms from them, so its receipt does not wait for the results.
    let confirmedByEntries = new Set<Connection<ServerMessage>>()
    if (entries.length > 0) {
      confirmedByEntries = this.followers.fanOut(seqBefore, entries, checkpoints, this.committed, own)
      this.armQuietCheckpoint()
    }
    for (const [conn, outcomes] of replies) {
      // A protocol 2 submitter that got its elided entries has its new seqs from them.
      const mine = confirmedByEntries.has(conn) ? own.get(conn) : undefined
      const rest = mine === undefined ? outcomes : outcomes.filter((o) => !("seq" in o && mine.has(o.seq)))
      for (const run of cutRuns(rest, this.maxMessageBytes, outcomeSizeBound)) this.followers.sendReply(conn, { type: "results", docId: this.docId, outcomes: run })
    }
    for (const [conn, list] of errors) for (const m of list) this.followers.sendReply(conn, m)
    // A CRDT library threw half-way through a merge (that command was rejected and nothing
    // of it is logged): reload the document from storage, never serve a broken field.
    if (this.crdt?.brokenField !== undefined) this.fail("merging a CRDT update", new Error(`CRDT field "${this.crdt.brokenField}" broke`))
    return { rest, behind, carried, sliced, waitMs: waiting.size > 0 ? waitMs : 0 }
  }

  /**
   * Undefined when the command just applied (its `journal`, `written` bytes) keeps the document
   * within maxDocumentBytes; else its rejection, the command undone. The bound is only an upper
   * one: before refusing, a state small enough to encode here is measured, command included
   * (when size-bound.ts allows a measure); a larger one is measured by the next snapshot.
   */
  private overSize(journal: Journal, written: number): Rejection | undefined {
    const bound = this.sizeBound
    const changed = journal.length > 0 || written > 0
    if (bound.fits(written)) return void bound.accept(written, changed)
    const startedAt = this.elapsed()
    // Small enough to encode here, this command included: the bound says so (never less than
    // the size; the last measure may be stale, review finding: 25 MB encoded in a commit).
    if (this.crdt === undefined && bound.bound + written <= BIG_STATE_BYTES && bound.mayMeasure(startedAt, changed)) {
      const withIt = encodeCanonical(this.host.root).length
      const fits = withIt <= bound.max
      if (fits) bound.accept(written, changed)
      else this.host.undo(journal)
      this.stateBytes = fits ? withIt : encodeCanonical(this.host.root).length
      bound.measure(startedAt).done(this.stateBytes, this.elapsed())
      return fits ? undefined : bound.rejection(this.docId)
    }
    this.host.undo(journal)
    return this.full()
  }

  /** Why a merge is not judged now: the hub's bound on what its documents' fields hold. */
  private hostFull(gauge: HeldWeight, weight: number): string {
    const mine = gauge.shared === undefined || !gauge.within(this, weight)
    return `${fullText(gauge, this, weight, `The hub holds ${gauge.total} ops and structs in the CRDT fields of its loaded documents and takes at most ${gauge.max}`)}: this client sends its edits again later (or ask the operator to raise ${mine ? "maxHostFieldWeight" : "it"}).`
  }

  /**
   * Whether the hub's memory holds the plain state grown by a command that added `grown` bytes
   * of memory (grownOf; held if so). Added up without what commands remove (an
   * object may have moved elsewhere); counted whole before a refusal, unless the last count is
   * less than ten times its duration behind (a count is O(state): commands at a full hub must
   * not each pay for one, and a small state is counted again at once).
   */
  private holdsGrowth(memory: HeldWeight, grown: number, journals: ReadonlyArray<Journal>, journal: Journal): boolean {
    let heap = this.stateHeap + grown
    // Past twice the last count, counted now whatever the count's pause (the writer pays it:
    // its command's time): a sum that never subtracts what writes replaced grew by 30 MiB per
    // 240 KB overwrite and, within the pause, held the gauge full of nothing while others'
    // writes were refused (.scratch/s35/tenant/a2-gauge-cooldown.mts). So the sum stays
    // within twice what the state holds, and counts stay O(1) a byte written.
    const doubled = heap > 2 * this.countedHeap + DOC_HEAP_BYTES
    if (doubled || !memory.fits(this.heldState, this.heldBytesWith(heap))) {
      const count = doubled || this.elapsed() >= this.heapCountAfter
      if (count) {
        // With this command's writes, and what the batch's journals hold until it is stored (a
        // count of the state does not see them): if they do not fit, the state is counted again
        // without this command's.
        heap = this.countHeap() + journalHeap(journal)
        for (const j of journals) heap += journalHeap(j)
        // With what the batch's journals hold: a batch of large replacements is not counted again at each command.
        this.countedHeap = heap
      }
      // And the other documents, whose estimates are upper bounds too.
      if (!this.roomFor(memory, this.heldBytesWith(heap))) return (this.heapStale = count), false
    }
    this.stateHeap = heap
    this.heapExact = false
    memory.set(this.heldState, this.heldBytesWith(heap))
    return true
  }

  /** What the document holds in the hub's memory with its plain state at `heap`: its client states and what any loaded document takes. */
  private heldBytesWith(heap: number): number {
    return heap + this.clientTable.memoryBytes + DOC_HEAP_BYTES
  }

  /** Whether the hub's memory has room for the plain state to hold `bytes`, the other documents counted again first if not (theirs are upper bounds). */
  private roomFor(memory: HeldWeight, bytes: number): boolean {
    const fits = () => memory.fits(this.heldState, bytes)
    if (fits()) return true
    memory.recountOthers(this.heldState, fits)
    return fits()
  }

  /** The plain state's estimate counted whole; the next count waits ten times as long as this one took. */
  private countHeap(): number {
    const started = this.elapsed()
    const heap = (this.countedHeap = heapBytes(this.host.root))
    const ended = this.elapsed()
    this.heapCountAfter = Math.max(this.heapCountAfter, ended + 10 * (ended - started))
    return heap
  }

  /** The rejection of a command that does not fit; the next snapshot measures the state if that may find room. */
  private full(tombstone = false): Rejection {
    if (this.sizeBound.mayMeasure(this.elapsed())) this.snapshotDue = true
    return this.sizeBound.rejection(this.docId, tombstone)
  }

  /** The state measures `size` canonical bytes now (CRDT fields included, or none). */
  private noteSize(size: number): void {
    this.sizeBound.measure(this.elapsed()).done(size, this.elapsed())
  }

  private rollback(journals: Journal[], seqBefore: number): void {
    for (let i = journals.length - 1; i >= 0; i--) this.host.undo(journals[i]!)
    this.seq = seqBefore
  }

  /** Writes a batch atomically; resolves with the bytes of entries written, or undefined if it failed. */
  private async persist(entries: Entry[], checkpoints: ReadonlyArray<Checkpoint>, journals: Journal[], seqBefore: number): Promise<number | undefined> {
    const checkpoint = checkpoints[checkpoints.length - 1]
    const head: AuthorityHead = {
      machine: this.machine.name,
      // A held document is written at its own version: the next load still sees it unmigrated.
      version: this.served.version,
      seq: this.seq,
      lastTime: this.lastTime,
      checkpoint: checkpoint ?? this.checkpoint,
    }
    let bytes: number
    try {
      bytes = await this.store.commit(this.docId, { head, entries, ...this.clientTable.drain(), checkpoints })
    } catch (e) {
      // Roll the memory back so nothing reads an unpersisted state before the reload.
      this.rollback(journals, seqBefore)
      this.fail("writing a batch", e)
      return undefined
    }
    this.committed = this.seq
    if (checkpoint !== undefined) this.checkpoint = checkpoint
    return bytes
  }

  /** The state's hash at `seq` (the live state must be at seq), noting its size. */
  private measure(seq: number): Checkpoint {
    const bytes = encodeCanonical(this.host.root)
    this.stateBytes = bytes.length
    if (this.crdt === undefined) this.noteSize(bytes.length)
    return { seq, hash: this.crdt !== undefined ? hashState(this.host.root) : hashBytes(bytes) }
  }

  private armQuietCheckpoint(): void {
    this.quietTimer?.cancel()
    // A commit that lands after close (the hub waits for it) must not leave a timer that writes to a closed store.
    if (this.closed || !Number.isFinite(this.quietMs)) return
    this.quietTimer = this.runtime.setTimer(this.quietMs, () => this.guard("the quiet checkpoint", () => {
      this.quietTimer = undefined
      if (this.broken) return
      if (this.flushing) return this.armQuietCheckpoint()
      if (this.checkpoint?.seq === this.committed) return
      if (this.stateBytes <= BIG_STATE_BYTES || this.crdt !== undefined) return this.setCheckpoint(this.measure(this.committed), true)
      // A big state: hash it in the background (a snapshot would do, but stores it too).
      if (this.snapshotter.running) return this.armQuietCheckpoint()
      const seq = this.committed
      const measure = this.sizeBound.measure(this.elapsed())
      this.snapshotter.take(this.host, seq, this.lastTime, false).then(
        (r) => {
          measure.done(r.size, this.elapsed())
          this.stateBytes = r.size
          if (this.checkpoint === undefined || this.checkpoint.seq < r.seq) this.setCheckpoint({ seq: r.seq, hash: r.hash }, true)
        },
        (e) => {
          measure.failed()
          this.report("checkpoint-failed", `Hashing "${this.docId}" at seq ${seq} failed: ${errorText(e)}`)
        },
      ).finally(() => {
        // A snapshot asked for while this hash ran.
        if (this.snapshotDue && !this.flushing) this.beginSnapshot()
      })
    }))
  }

  /** Stops timers and forgets followers (the hub closes their connections). */
  close(): void {
    this.closed = true
    this.hooks.fieldWeight?.release(this)
    this.hooks.memory?.release(this.heldState)
    // Their connections read again (a submit's release is once only; a flush may still write them).
    for (const p of this.queue) p.release?.()
    for (const list of this.parked.values()) for (const p of list) p.release?.()
    this.quietTimer?.cancel()
    this.idleTimer?.cancel()
    this.idleTimer = undefined
    this.workTimer?.cancel()
    if (this.hooks.turns === undefined) this.turns.close()
    this.followers.clear()
  }

  // ---- lifetime ----

  /**
   * Roughly what keeping it loaded costs, in encoded bytes: the state as last measured or the
   * newest snapshot (which holds CRDT fields too, where the measure has only the plain root),
   * plus the log committed since that snapshot.
   */
  get stateSize(): number {
    return Math.max(this.stateBytes, this.snapshotter.latest?.size ?? 0) + this.snapshotter.logBytesSince
  }

  /** What keeping it loaded costs in memory, about: `stateSize` and the outcomes its clients are owed. */
  get heldBytes(): number {
    return this.stateSize + this.clientTable.memoryBytes
  }

  /** Nobody follows it and nothing is in flight: unloading it loses nothing (see the header). */
  get idle(): boolean {
    return this.followers.size === 0 && !this.flushing && this.queue.length === 0 && this.parked.size === 0 && !this.snapshotter.running && !this.snapshotDue &&
      this.snapshotWaiters.length === 0 && this.writing === 0 && !this.broken && !this.unloaded &&
      // An unload would forget when asked-for states may next be made.
      steadyNow(this.runtime) >= this.followers.pacedUntil
  }

  /**
   * Nobody follows it: tells the hub once it has been idle for `idleUnloadMs` (work still in
   * flight then is waited for, a new follower cancels it). The hub calls it again for a kept
   * idle document it hands out, since that use may end without a follower.
   */
  watchIdle(): void {
    if (this.hooks.onIdle === undefined || this.idleTimer !== undefined || !Number.isFinite(this.idleMs)) return
    if (this.followers.size > 0 || this.broken || this.closed) return
    this.idleTimer = this.runtime.setTimer(this.idleMs, () => {
      this.idleTimer = undefined
      if (this.idle) this.hooks.onIdle?.(this)
      else this.watchIdle()
    })
  }

  /** The hub let it go: its followers, timers and memory go; a later use loads it again. */
  unload(): void {
    this.unloaded = true
    this.close()
  }

  private assertLoaded(): void {
    if (this.unloaded) throw new CanonError({ code: "closed", message: `Document "${this.docId}" was unloaded by its hub: get it again from the hub (hub.doc) instead of keeping it.` })
  }

  /** The state at seq 0 (nothing committed), encoded like a snapshot; undefined while a first batch is applied. */
  private stateAtZero(): { readonly bytes: Uint8Array; readonly hash: string } | undefined {
    if (this.zero === undefined && this.seq === 0) {
      const bytes = encodeCanonical(this.snapshotSource().root)
      this.zero = { bytes, hash: hashBytes(bytes) }
    }
    return this.zero
  }
}

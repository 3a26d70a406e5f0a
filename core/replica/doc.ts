/**
 * A document as the app sees it: the live view, `submit`, `subscribe`, and events. It wires
 * a ReplicaState (the in-memory rebase logic) to the replica's storage and to the client's
 * connection.
 *
 * Writes of one document go through one lane, in order (core/replica/doc-lane.ts): with a
 * storage, the store's (core/store/stored-lane.ts: a command's outbox record is written before
 * the command is sent); without, a lane in memory that only keeps the order.
 *
 * @example
 * ```ts
 * const doc = await client.open(Todo, "groceries")
 * doc.subscribe((state) => render(state))
 * doc.on("rejected", ({ command, rejection }) => toast(rejection.message))
 * const { seq } = await doc.submit("add", { id: "t1", title: "Milk" })
 * ```
 */
import type { Entry } from "../entry.js"
import { decodeCanonical, encodeCanonical, isBytes } from "../canonical.js"
import { CommandRejected, canonError, type CanonError, type Rejection, errorText } from "../errors.js"
import { invalidArgs, unknownCommand, type ArgsOf, type CommandName, type Machine, type StateOf } from "../machine.js"
import * as Result from "effect/Result"
import type { ClientMessage, ServerMessage } from "../protocol/messages.js"
import type { Runtime, Timer } from "../ports/runtime.js"
import type { ReplicaStore } from "../store/replica-store.js"
import { DEFAULT_MAX_COMMAND_BYTES, ENTRY_ARGS_READ_DEPTH, MAX_ARGS_DEPTH, MAX_PRESENCE_HELD_BYTES, depthExceeds } from "../limits.js"
import { ReplicaState, type Desync, type PendingCommand } from "./replica-state.js"
import { SnapshotReceiver } from "./snapshot-receiver.js"
import type { CrdtHandles } from "../crdt/outbox.js"
import type { ReplicaFields } from "../crdt/replica.js"
import { commandArgsCodec, type ArgsCodec } from "../protocol/args-codec.js"
import { DEFAULT_MAX_FRAME_BYTES, REFUSAL_CODES } from "../protocol/codec-shared.js"
// Only the registry: a machine with a version history carries its code (core/schema/versions.ts).
import { AS, BATCH, historyOf, type CompatSession } from "../schema/registry.js"
import { MemoryLane, type DocLane, type LaneHost, type QueuedChange } from "./doc-lane.js"
import { SUBMIT_BYTES, SUBMIT_CHUNK, submitParts } from "./submit-parts.js"

/** The highest clientSeq a hub may have this replica number commands up to: far below 2^53, where numbers collide. */
const MAX_CLIENT_SEQ = 2 ** 52

/**
 * What a confirmed command resolves with: its entry's seq. `upperBound` is set in one rare
 * case: the hub no longer kept the command's outcome (it waited unacknowledged behind more
 * than the hub's window of commands), so it only knows the command was applied at a seq no
 * higher than `seq` (or settled without an entry); it is never applied again.
 */
export interface Confirmation {
  readonly seq: number
  readonly upperBound?: true
}

/** Resolves when the authority confirms the command; rejects with CommandRejected. */
export interface Receipt extends Promise<Confirmation> {
  /**
   * Assigned at submit; -1 when the command was refused locally (invalid arguments, too
   * large). It changes only if the hub tells this client its numbering must resume higher.
   */
  readonly clientSeq: number
  /**
   * Resolves once the command is in the durable outbox (and may be sent), with undefined; or,
   * if it never will be, with the error the receipt rejects with: the CanonError
   * `storage-failed` (its document closed while the storage failed), or the CommandRejected
   * of a command refused locally (clientSeq -1: invalid arguments, too large, update-required).
   * It never rejects.
   */
  readonly persisted: Promise<CanonError | CommandRejected | undefined>
}

/** The events `Doc.on` takes: every key of DocEvents, checked by the compiler (none missing, none extra). */
const DOC_EVENTS = ["change", "rejected", "confirmed", "resent", "desync", "synced", "rewound", "error", "snapshot", "presence", "closed", "updateRequired"] as const
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
// An error here: DOC_EVENTS and DocEvents disagree.
type DocEventsChecked = Assert<Same<(typeof DOC_EVENTS)[number], keyof DocEvents<unknown>>>

export interface DocEvents<S> {
  change: (state: S) => void
  /**
   * A command of this replica was refused (also for commands recovered after a restart): what
   * it carried is lost. Every command that leaves the outbox is told once: `confirmed`,
   * `rejected` or `resent`. `command`: its name, in every event; one an earlier app version
   * wrote and the upgrade kept (its outbox) is named as it was written there.
   */
  rejected: (event: { readonly clientSeq: number; readonly command: string; readonly rejection: Rejection }) => void
  /**
   * A command of this replica was refused, but what it carried goes again in other commands:
   * nothing is lost. A CRDT field's merge refused only for needing one refused before it
   * (core/crdt/README.md, "Only what the hub refused is lost"); the commands that carry it
   * are told in turn.
   */
  resent: (event: { readonly clientSeq: number; readonly command: string; readonly rejection: Rejection }) => void
  /** A command of this replica was confirmed. */
  confirmed: (event: { readonly clientSeq: number; readonly command: string; readonly seq: number; readonly upperBound?: true }) => void
  /** The confirmed state's hash differs from the authority's checkpoint; a resync follows. */
  desync: (event: Desync) => void
  /** Caught up with the authority. */
  synced: (event: { readonly seq: number }) => void
  /**
   * The hub's document is behind what this replica had confirmed (the hub was restored from
   * an older backup): entries `to + 1` to `from`, this replica's confirmed commands among
   * them, are gone from it. The replica now shows the hub's state at `to`.
   */
  rewound: (event: { readonly from: number; readonly to: number }) => void
  /** The hub refused something about this document, or storage failed. */
  error: (event: { readonly code: string; readonly message: string }) => void
  /** A snapshot is streaming in (bytes received, below its size), or was verified and installed (received == size, said once). */
  snapshot: (event: { readonly seq: number; readonly received: number; readonly size: number }) => void
  /** Another client's presence changed (`state` null: it left or went away). */
  presence: (event: { readonly clientId: string; readonly state: unknown }) => void
  /** `close` was called: no more events follow. */
  closed: (event: { readonly docId: string }) => void
  /**
   * The document has changes from `seq` on that this app version cannot show (core/schema):
   * the doc is read-only until the app is updated; its pending commands are kept and sent.
   * Told once per document; the hub's refusal is also an `error` event (code
   * `update-required`), on every connection that hears it.
   */
  updateRequired: (event: { readonly seq: number; readonly message: string }) => void
}

/**
 * What a value of a client's presence is counted as against MAX_PRESENCE_HELD_BYTES: about
 * the memory it takes once decoded, not its bytes on the wire (an empty byte string is 2 bytes
 * there and about 190 in memory, an empty object 2 and about 64). Counting stops once past
 * `room` (a frame of a million nulls took 0.4 s to count whole).
 */
const heldBytes = (v: unknown, room: number): number => {
  if (typeof v === "string") return 16 + 2 * v.length
  if (typeof v !== "object" || v === null) return 16
  if (isBytes(v)) return 192 + v.length
  let n = 64
  if (Array.isArray(v)) for (let i = 0; i < v.length && n <= room; i++) n += 8 + heldBytes(v[i], room - n)
  else for (const k in v) {
    if (n > room) break
    n += 2 * k.length + heldBytes((v as Record<string, unknown>)[k], room - n)
  }
  return n
}

/** A client's presence against the room left (MAX_PRESENCE_HELD_BYTES): its state, its clientId and its entry in the map; past `room`, some number past it. */
const presenceBytes = (clientId: string, state: unknown, room: number): number => {
  const own = 96 + 2 * clientId.length
  return own + heldBytes(state, room - own)
}

/** Settled commands after which an ack goes out on its own (else it rides the next submit). */
const ACK_EVERY = 64

/**
 * Commands (and bytes) sent and not yet answered, per document. A long offline outbox goes
 * out as the hub answers it: the hub stops reading a connection past its command rate or
 * its input flow control, and a whole backlog sent at once would make the connection's other
 * messages (another document's subscribe, a fetch-state) wait behind all of it.
 */
const SEND_WINDOW = 4 * SUBMIT_CHUNK
const SEND_WINDOW_BYTES = 4 * SUBMIT_BYTES

/**
 * Sends of a document's outbox again a hub may cause on one connection while it holds more
 * than a send window unread (honest hubs read: a chain of CRDT refusals asks again after each,
 * a restore or a desync once).
 */
const MAX_RESENDS_ASKED = 16

/**
 * `storage-failed`: the hub failing to read its storage for this document (a catch-up it retries
 * itself is `catch-up-failed`). Before this connection is synced that is its load: the
 * subscribe goes again, with the outbox (the hub answers submits of a document it does not
 * serve `not-subscribed` and forgets them). After, the client's records, read to judge its
 * submits: the hub refused those unjudged and forgot them, and the outbox goes again. After
 * STORAGE_RETRY_MS, doubling to STORAGE_RETRY_MAX_MS, on the same connection: without it a
 * passing disk error left the document unserved, or its commands unanswered, with receipts
 * waiting, until the next connection. A store found damaged (`storage-corrupt`) is a refusal.
 */
const STORAGE_RETRY_MS = 1_000
const STORAGE_RETRY_MAX_MS = 60_000

/** A command past this size (sizeOf) never fits in a submit frame (DEFAULT_MAX_FRAME_BYTES, less room for the message around it). */
const UNSENDABLE_BYTES = DEFAULT_MAX_FRAME_BYTES - (64 << 10)

/**
 * A command's name as the app knows it: a command an earlier app version wrote, kept through
 * the upgrade as `$as` (replica-upgrade.ts), is told by the name it was written under, never
 * by the reserved wrapper's.
 */
const appName = (p: PendingCommand): string => (p.name === AS && (p.encoded as { name?: string } | null)?.name) || p.name

/**
 * A command's bytes in a submit, about: its arguments' canonical size (measured at submit;
 * once for a command restored from the outbox), its name and framing (a compact form is no
 * larger by more than a few bytes, and a submit is kept to half a frame).
 */
const sizeOf = (p: PendingCommand): number => (p.size ??= weigh(p.name, encodeCanonical(p.encoded).length))
/** A command of this name with arguments of `bytes` bytes, as sizeOf counts it. */
const weigh = (name: string, bytes: number): number => 16 + name.length * 3 + bytes

interface Deferred {
  resolve(v: Confirmation): void
  reject(e: unknown): void
  /** Settles `receipt.persisted`: stored (no argument), or never will be (the error). */
  persisted(lost?: CanonError): void
  /** The receipt handed out: its clientSeq follows a renumbering. */
  receipt?: { clientSeq: number }
}

export interface DocOptions {
  /** Write the confirmed state whole every this many confirmed entries. Default 1000. */
  readonly snapshotEvery?: number
  /**
   * Largest encoded arguments of one command (canonical bytes); larger is refused locally
   * with `command-too-large`. Default 256 KiB, the hub's default: keep them equal.
   */
  readonly maxCommandBytes?: number
  /** Largest snapshot this client accepts from a hub (it holds it in memory to verify it). Default 1 GiB. */
  readonly maxSnapshotBytes?: number
  /**
   * Commands of one document sent and not yet answered (at most 2 MiB of them); more go as
   * answers come. Default 1024: a long offline outbox never queues in front of the
   * connection's other messages.
   */
  readonly sendWindow?: number
}

/** What a document opens with: from the replica store (core/store/replica-open.ts), or a new one's. */
export interface DocInit<S> {
  readonly state: S
  readonly confirmedSeq: number
  readonly nextClientSeq: number
  /** The seq of the stored snapshot (what a write of the state whole replaces from). */
  readonly snapshotSeq: number
  /** Commands not confirmed or rejected yet, in clientSeq order, as the store restored them (stored, not yet applied). */
  readonly outbox: ReadonlyArray<PendingCommand>
  /** Ask the authority for its state on connecting (the stored one was migrated here). */
  readonly fetchState?: boolean
  /** CRDT changes waiting to go again (core/crdt/replica.ts), as the store kept them. */
  readonly queued?: ReadonlyArray<QueuedChange>
  /** Stored changes this build cannot send, taken out of the store: told as `error`s once connected (the app listens by then). */
  readonly lost?: ReadonlyArray<{ readonly code: string; readonly message: string }>
}

/** An own command the authority applied at `seq` (at most `seq` when `upperBound`). */
type OwnConfirmation = { readonly command: PendingCommand; readonly seq: number; readonly upperBound?: true; readonly earlier?: true }

/**
 * A snapshot stream is acknowledged every this many bytes: two wire chunks (128 KiB). The
 * hub's window is at least this (its floor), so the stream never waits for an acknowledgement
 * that will not come. Each acknowledgement is a socket write, which on loopback costs the
 * sender the receiver's TCP work too: every 64 KiB it was an eighth of a replica's CPU for a
 * 100 MB stream (bench snapshots, row 4b).
 */
const SNAPSHOT_ACK_EVERY = 128 << 10

/** Codes of a refused subscribe (core/authority/hub.ts refuseSubscribe): the hub does not serve the document on this connection. */
const SUBSCRIBE_REFUSALS: ReadonlyArray<string> = [...REFUSAL_CODES, "machine-mismatch", "too-many-docs", "migration-failed", "invalid-doc-id", "storage-corrupt"]

export class Doc<M extends Machine<any, any>> {
  readonly #rs: ReplicaState<StateOf<M>>
  readonly #deferreds = new Map<PendingCommand, Deferred>()
  /** Listeners by event, each set made on the first `on`. */
  readonly #listeners: { [K in keyof DocEvents<unknown>]?: Set<Function> } = {}
  /**
   * Set when the hub said this app version cannot follow the document past `seq` (read-only),
   * on this connection: a hub's word lasts its connection (it tells again on the next).
   */
  #updateNeeded: { readonly seq: number; readonly message: string } | undefined
  /** The app heard `updateRequired` (once per document). */
  #updateTold = false
  /** Fetch the authority's state on the next connection (the stored state was migrated from an older version). */
  #fetchStateOnConnect: boolean
  /** Stored changes lost at open (DocInit.lost), told on the first connect. */
  #lost: Array<{ readonly code: string; readonly message: string }>
  /**
   * Compat mode (core/schema/compat.ts): the hub runs an older version of the machine than the app.
   * Entries are upcast here, the state a snapshot brings is migrated here, checkpoints (of
   * the older version's state) are not compared, and commands are sent downcast; the first
   * one without a downcast waits, with everything after it, until the hub is upgraded.
   */
  #compat: CompatSession | undefined
  #nextClientSeq: number
  #toPersist: PendingCommand[] = []
  readonly #lane: DocLane<OwnConfirmation>
  /** Entries received and not yet integrated (lazy rebase). */
  #incoming: Entry[] = []
  #incomingScheduled = false
  /** Settled commands whose outbox removal is not durable yet. */
  readonly #settling = new Set<number>()
  /**
   * Own commands the hub answered with "applied at seq X" (or "at seq <= X"), settled once
   * confirmedSeq reaches X: the entry there may be under another number (a renumbered
   * command). Until then no renumbering moves them. An answer of an earlier connection
   * (`earlier`) keeps the number but settles nothing: at X it is dropped.
   */
  readonly #settleAt = new Map<PendingCommand, OwnConfirmation>()
  readonly #maxCommandBytes: number
  readonly #maxSnapshotBytes: number
  /** The snapshot stream being received (kept across a disconnect, to resume). */
  #receiver: SnapshotReceiver | undefined
  #snapshotFailures = 0
  #send: ((m: ClientMessage) => void) | undefined
  /** Ends this connection for what its hub did (the client's). */
  #end: ((reason: string) => void) | undefined
  /** What the connection holds that its hub has not read yet (Connection.bufferedAmount). */
  #buffered: () => number = () => Infinity
  /** Sends of the outbox again that the hub caused on this connection since it was last seen reading (see #resendAsked). */
  #resendsAsked = 0
  /** The protocol version of the current connection (2: compact submits and entries). */
  #protocol = 1
  #lastAckSent = -1
  /** The highest clientSeq sent on this connection (see `#pump`). */
  #sentThrough = 0
  readonly #sendWindow: number
  #ownPresence: unknown = null
  #presenceQueued = false
  readonly #others = new Map<string, unknown>()
  /**
   * What each of #others was counted as when it came, and their sum (MAX_PRESENCE_HELD_BYTES):
   * kept, not counted again, as the app may change the objects it is given.
   */
  readonly #othersHeld = new Map<string, number>()
  #othersBytes = 0
  #resyncing = false
  /**
   * A state asked for after a refused merge is not installed yet: refusals until it comes ask
   * for none (it is taken after them). One per refusal made the hub hold this replica off its
   * live entries again and again (each request waits its turn for a snapshot).
   */
  #refusalFetch = false
  #notifyScheduled = false
  #isSynced = false
  /** The confirmed seq this connection last subscribed again from for a gap, until the hub answers (-1: none). */
  #gapFollowedAt = -1
  /** A sequence-reset moved nothing: the outbox goes again once caught up (#renumber). */
  #resendSynced = false
  /**
   * The hub has answered this connection's subscribe (or speaks no protocol 4). Compat mode
   * sends nothing before: a hub newer than what this app declared says so first (hub-newer).
   */
  #heard = true
  /** The subscribe or the outbox again after the hub's storage failed (STORAGE_RETRY_MS), and the failures since a command last settled on this connection. */
  #storageRetry: Timer | undefined
  #storageFailures = 0
  readonly #runtime: Runtime
  #closed = false
  /** Set while the hub refuses this client (see `refused`). */
  #refusal: CanonError | undefined
  /** CRDT fields: local changes on their way to merge commands (core/crdt/replica.ts). */
  readonly #crdt: ReplicaFields | undefined
  /** Told at close, with the promise of the document's last writes. */
  readonly #onClosed: (written: Promise<void>) => void

  /** @internal use `CanonClient.open` */
  constructor(
    readonly machine: M,
    readonly docId: string,
    readonly clientId: string,
    store: ReplicaStore | undefined,
    runtime: Runtime,
    init: DocInit<StateOf<M>>,
    options: DocOptions,
    onClosed: (written: Promise<void>) => void = () => {},
  ) {
    this.#onClosed = onClosed
    this.#runtime = runtime
    this.#rs = new ReplicaState(docId, machine, clientId, () => runtime.now(), init.state, init.confirmedSeq)
    this.#maxCommandBytes = options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES
    this.#maxSnapshotBytes = options.maxSnapshotBytes ?? 1 << 30
    this.#nextClientSeq = init.nextClientSeq
    const doc = this
    const host: LaneHost<OwnConfirmation> = {
      docId, machine, runtime,
      get closed() { return doc.#closed },
      pendingAt: (clientSeq) => this.#rs.pendingAt(clientSeq),
      flushOutbox: () => this.#flushOutbox(),
      // These commands' outbox records are stored (or need not be): they may be sent.
      outboxStored: (batch) => {
        let live = false
        for (const p of batch) {
          p.persisted = true
          p.moving = false
          this.#deferreds.get(p)?.persisted()
          live ||= this.#rs.pendingAt(p.clientSeq) === p
        }
        if (live) this.#pump()
      },
      // Confirmed entries and the outbox removals of `removed` are stored (or need not be): the app hears of `tell`.
      confirmedStored: (removed, tell) => {
        for (const cs of removed) this.#settling.delete(cs)
        // Tell the authority it may forget these outcomes: on the next submit, or on its own
        // once enough have piled up (a frame per confirmation would double the traffic).
        const acked = this.#ackedClientSeq()
        if (this.#send !== undefined && acked - this.#lastAckSent >= ACK_EVERY && this.#toPersist.length === 0) {
          this.#lastAckSent = acked
          this.#send({ type: "submit", docId: this.docId, commands: [], ackedClientSeq: acked })
        }
        this.#tellConfirmed(tell)
      },
      tell: (tell) => this.#tellConfirmed(tell),
      error: (message) => this.#error("storage-failed", message),
    }
    this.#lane = store?.lane(host, { ...init, snapshotEvery: options.snapshotEvery ?? 1000 }) ?? new MemoryLane(host)
    this.#sendWindow = Math.max(1, options.sendWindow ?? SEND_WINDOW)
    this.#fetchStateOnConnect = init.fetchState === true
    this.#lost = [...(init.lost ?? [])]
    // Restored by the store (core/store/replica-open.ts): only a storage brings an outbox.
    for (const p of init.outbox) this.#rs.push(p)
    this.#crdt = this.#rs.crdt?.connect({
      submit: (name, args) => this.submit(name as CommandName<M>, args as ArgsOf<M, CommandName<M>>),
      error: (e) => this.#emit("error", e),
      online: () => this.#send !== undefined,
      replacing: () => this.#resyncing,
      maxCommandBytes: this.#maxCommandBytes,
      queued: init.queued,
    })
  }

  /**
   * The CRDT fields' live objects (a `Y.Text`, an Automerge handle), for binding to editors.
   * Edit them directly: each change becomes the field's merge command. If a field is reloaded
   * (a resync), its handle is a new object: read `doc.crdt.<field>` again on `snapshot` events.
   */
  get crdt(): CrdtHandles<M> {
    return (this.#crdt?.handles ?? {}) as CrdtHandles<M>
  }

  /**
   * The view: confirmed state plus pending local commands. A live read-only proxy: it always
   * shows the latest state, and any write throws `state-read-only` (change it with `submit`).
   * For a plain, independent copy (to keep, to structuredClone, to post to a worker) use
   * `snapshot()`.
   */
  get state(): StateOf<M> {
    this.#flushIncoming()
    return this.#rs.view
  }

  /** Integrates the entries received since the last read, submit or flush, in one rebase. */
  #flushIncoming(): void {
    this.#incomingScheduled = false
    if (this.#incoming.length === 0 || this.#closed) return
    const entries = this.#incoming
    this.#incoming = []
    this.#integrate(entries, undefined, new Map())
  }

  /** A deep plain copy of the view, detached from the document. O(size of the state). */
  snapshot(): StateOf<M> {
    this.#flushIncoming()
    return decodeCanonical(encodeCanonical(this.#rs.host.root)) as StateOf<M>
  }

  get confirmedSeq(): number {
    this.#flushIncoming()
    return this.#rs.confirmedSeq
  }

  /**
   * Local commands not yet confirmed or rejected, and the merge commands a CRDT field's edits are
   * still to become (one per field: counted from the moment the edit returns).
   */
  get pendingCount(): number {
    this.#flushIncoming()
    return this.#rs.pending.length + (this.#crdt?.pending.length ?? 0)
  }

  /**
   * Pending commands, oldest first. `stored`: its outbox record is written (without a storage: true once
   * submitted), so it survives a reload or crash; an app may warn before unload while one is not.
   * Last, a CRDT field's edits not in a command yet: one per field, clientSeq -1, not stored.
   */
  get pending(): ReadonlyArray<{ readonly clientSeq: number; readonly name: string; readonly stored: boolean }> {
    this.#flushIncoming()
    return this.#rs.pending.map((p) => ({ clientSeq: p.clientSeq, name: appName(p), stored: p.persisted })).concat(this.#crdt?.pending ?? [])
  }

  /**
   * Set when this app version cannot follow the document any more (the hub has changes from
   * `seq` on that it cannot show): the doc is read-only and its pending commands are kept
   * and sent. Update the app (a newer machine version) and open the document again. It lasts
   * the connection that told it; the hub tells it again on the next.
   */
  get updateRequired(): { readonly seq: number; readonly message: string } | undefined {
    return this.#updateNeeded
  }

  /** The hub runs an older version and a pending command has no downcast to it: it waits (with those after it) for the hub's upgrade. */
  get schemaTooNew(): boolean {
    return this.#compat?.blocked === true
  }

  /** The machine the current connection speaks for this document (older than the app's in compat mode). */
  get #sessionMachine(): M {
    return (this.#compat?.machine ?? this.machine) as M
  }

  /** True once caught up with the authority on the current connection. */
  get synced(): boolean {
    return this.#isSynced
  }

  /** Hash of the confirmed state (what checkpoints compare). */
  confirmedHash(): string {
    this.#flushIncoming()
    return this.#rs.confirmedHash()
  }

  /**
   * Applies the command locally at once and sends it to the authority. The receipt resolves
   * with the entry's seq once confirmed, or rejects with `CommandRejected`, or with a
   * `CanonError` if the document closes first (`closed`) or the hub refuses this client
   * (`refused`); in both the command stays in the outbox.
   */
  submit<K extends CommandName<M>>(name: K, args: ArgsOf<M, K>): Receipt {
    if (this.#closed) throw canonError("closed", `Document "${this.docId}" is closed.`)
    const cmd = this.machine.compiled.get(name)
    const refuse = (rejection: Rejection): Receipt => {
      const error = new CommandRejected({ ...rejection, command: name, clientSeq: -1 })
      const p = Promise.reject(error)
      p.catch(() => {})
      // Never stored: `persisted` says so with the same error (an app showing "saved" on it would lie).
      return Object.assign(p, { clientSeq: -1, persisted: Promise.resolve(error) })
    }
    if (cmd === undefined || name === AS || name === BATCH) return refuse(unknownCommand(this.machine, name))
    if (this.#updateNeeded !== undefined) return refuse({ code: "update-required", message: this.#updateNeeded.message })
    let encoded: ReturnType<typeof cmd.encode>
    let plain: unknown
    let size: number
    let decoded: ReturnType<typeof cmd.decode>
    // Values that are not plain data (a getter or proxy that throws, a cycle) are refused as
    // arguments, never thrown: the schema's encoder and the canonical encoder both may throw.
    try {
      encoded = cmd.encode(args)
      if (Result.isFailure(encoded)) return refuse(invalidArgs(name, encoded.failure))
      // The same bounds the hub applies, checked here first so an oversized command never
      // reaches the outbox (it could never be sent).
      if (depthExceeds(encoded.success, MAX_ARGS_DEPTH)) {
        return refuse({ code: "command-too-large", message: `The arguments of "${name}" nest deeper than ${MAX_ARGS_DEPTH} levels.` })
      }
      // A copy, as plain data: the schema's encoder may hand back the app's own objects (an
      // Unknown field), which the app may change after this returns; nothing after reads them.
      // Bytes alone (a CRDT field's merge, made by the library) go as they are: the field's
      // bookkeeping knows its updates by identity.
      const bytes = encodeCanonical(encoded.success)
      size = bytes.length
      plain = encoded.success instanceof Uint8Array ? encoded.success : decodeCanonical(bytes)
      // Apply what the authority will apply: the arguments as decoded from their wire form.
      decoded = cmd.decode(plain)
    } catch (e) {
      return refuse({ code: "invalid-args", message: `The arguments of "${name}" are not plain data: ${errorText(e)}` })
    }
    if (size > this.#maxCommandBytes) {
      return refuse({ code: "command-too-large", message: `The arguments of "${name}" take ${size} bytes; at most ${this.#maxCommandBytes} fit in a command. Keep large blobs out of commands.` })
    }
    if (Result.isFailure(decoded)) return refuse(invalidArgs(name, decoded.failure))

    this.#flushIncoming()
    const clientSeq = this.#nextClientSeq++
    const pending: PendingCommand = { clientSeq, name, args: decoded.success, encoded: plain, cmd, journal: undefined, localRejection: undefined, persisted: false, size: weigh(name, size) }
    let deferred!: Deferred
    let persistedResolve!: (lost?: CanonError) => void
    const persisted = new Promise<CanonError | undefined>((r) => (persistedResolve = r))
    const promise = new Promise<Confirmation>((resolve, reject) => {
      deferred = { resolve, reject, persisted: persistedResolve }
    })
    // Fire-and-forget callers must not crash the process on a rejection: mark it handled.
    promise.catch(() => {})
    this.#deferreds.set(pending, deferred)
    if (this.#refusal !== undefined) deferred.reject(this.#refusal)
    this.#rs.push(pending)
    this.#toPersist.push(pending)
    if (this.#toPersist.length === 1) queueMicrotask(() => this.#flushOutbox())
    this.#scheduleNotify()
    // Plain data properties (a getter through Object.defineProperties cost a third of submit);
    // a renumbering updates clientSeq (#renumber).
    return (deferred.receipt = Object.assign(promise, { clientSeq, persisted }))
  }

  /**
   * Sets this client's presence on the document (a cursor, a name and colour, the card being
   * edited): plain data, at most 4 KiB, never logged, gone when the client leaves. Calls in
   * one tick send once; throttle high-rate sources (mouse moves) in the app. Throws a
   * CanonError `state-unencodable` if `state` is not plain data.
   */
  setPresence(state: unknown): void {
    // A copy made now, as plain data: a value that is not (a function, a cycle, a getter that
    // throws) is the caller's error here, not a throw later inside a send.
    try {
      this.#ownPresence = decodeCanonical(encodeCanonical(state ?? null))
    } catch (e) {
      throw canonError("state-unencodable", `Presence must be plain data: ${errorText(e)}`)
    }
    if (this.#presenceQueued) return
    this.#presenceQueued = true
    queueMicrotask(() => {
      this.#presenceQueued = false
      this.#send?.({ type: "presence-set", docId: this.docId, state: this.#ownPresence })
    })
  }

  /** The presence of the other clients on this document, by clientId. */
  get presence(): ReadonlyMap<string, unknown> {
    return this.#others
  }

  /** Calls `fn` with the view after each batch of changes. Returns the unsubscribe function. */
  subscribe(fn: (state: StateOf<M>) => void): () => void {
    return this.on("change", fn)
  }

  /**
   * Calls `fn` on each `event` (DocEvents lists them). Returns the unsubscribe function. An
   * event a document does not have throws a TypeError naming the events.
   *
   * @example
   * ```ts
   * const off = doc.on("rejected", ({ command, rejection }) => console.warn(command, rejection.message))
   * ```
   */
  on<K extends keyof DocEvents<StateOf<M>>>(event: K, fn: DocEvents<StateOf<M>>[K]): () => void {
    // A misspelt event would otherwise never fire, silently (plain JavaScript callers).
    if (!(DOC_EVENTS as ReadonlyArray<unknown>).includes(event)) throw new TypeError(`A document has no event "${String(event)}" (${DOC_EVENTS.join(", ")}).`)
    const set = (this.#listeners[event] ??= new Set())
    set.add(fn)
    return () => set.delete(fn)
  }

  #emit<K extends keyof DocEvents<StateOf<M>>>(event: K, arg: Parameters<DocEvents<StateOf<M>>[K]>[0]): void {
    for (const fn of this.#listeners[event] ?? []) {
      try {
        fn(arg)
      } catch {
        // A listener's bug must not break replication.
      }
    }
  }

  #error(code: string, message: string): void {
    this.#emit("error", { code, message })
  }

  #scheduleNotify(): void {
    if (this.#notifyScheduled) return
    this.#notifyScheduled = true
    queueMicrotask(() => {
      this.#notifyScheduled = false
      this.#emit("change", this.#rs.view)
    })
  }

  /**
   * Resolves once what was submitted before the call is in the outbox's storage (with a
   * storage), and every write queued before it is done: await it before a page may close.
   * Commands of this turn and CRDT edits (also those coalescing behind a merge in flight) included:
   * those become a merge command at once, so call it when the guarantee is needed (a page
   * hiding), not after every keystroke (typing online would send a command per key).
   *
   * @example
   * doc.crdt.body.insert(0, "hello")
   * await doc.whenStored() // the edit survives a reload now
   */
  async whenStored(): Promise<void> {
    // CRDT edits not in a command yet (before the outbox's microtask, or coalescing behind a
    // merge in flight) become one, after a microtask: called from the handle's own change
    // callback (Yjs observe, Automerge onChange), the edit reaches the buffer after it returns.
    await this.#crdt?.flush()
    // Commands still waiting for their outbox write (queued on a microtask) go now; with none,
    // no write is asked for (one would retry a failed write early, and tell its failure twice).
    if (this.#toPersist.length > 0) this.#flushOutbox()
    return this.#lane.idle
  }

  #flushOutbox(): void {
    this.#lane.outbox(this.#takeToPersist())
  }

  /** The commands submitted since the last outbox write, for the next one. */
  #takeToPersist(): PendingCommand[] {
    const queued = this.#toPersist
    this.#toPersist = []
    return queued
  }


  #ackedClientSeq(): number {
    // Pending commands and the outbox queue are in clientSeq order.
    let low = Math.min(this.#nextClientSeq, this.#rs.pending[0]?.clientSeq ?? Infinity, this.#lane.firstUnstored() ?? Infinity, this.#toPersist[0]?.clientSeq ?? Infinity)
    for (const cs of this.#settling) if (cs < low) low = cs
    return low - 1
  }

  #sendSubmit(commands: ReadonlyArray<PendingCommand>): void {
    const acked = this.#ackedClientSeq()
    const compact = this.#protocol >= 2
    // Compat mode: each command as the hub's version, up to the first that has no single
    // downcast; it waits, with the commands after it, for the hub's upgrade (schemaTooNew).
    const messages = this.#compat?.submits(this.docId, commands, acked, this.#protocol, (message) => this.#error("schema-too-new", message))
      ?? submitParts(commands, (p) => (compact ? weigh(p.name, this.#compactArgs(p).length) : sizeOf(p))).map((part): ClientMessage => ({
        type: "submit",
        docId: this.docId,
        // Protocol 2: arguments in their schema-driven bytes (args-codec.ts).
        // Protocol 3: a renumbered command says the number it was made under (CommandRequest.madeAs).
        commands: part.map((p) => ({ clientSeq: p.clientSeq, name: p.name, args: compact ? this.#compactArgs(p) : p.encoded, ...(this.#protocol > 2 && { madeAs: p.madeAs }) })),
        ackedClientSeq: acked,
        ...(compact && { compact: true as const }),
      }))
    if (messages.length > 0) this.#lastAckSent = acked
    for (const m of messages) this.#send?.(m)
  }

  /** A pending command's arguments in protocol 2's compact form (made once per command). */
  #compactArgs(p: PendingCommand): Uint8Array {
    return (p.compact ??= this.#codecOf(p.name).encode(p.encoded))
  }

  /** The compact codec of a command's arguments, as the connection's machine has it (args-codec.ts). */
  #codecOf(name: string): ArgsCodec {
    return commandArgsCodec(this.#sessionMachine.commands, name)
  }

  /**
   * Entries of a compact (protocol 2) message in their plain form: arguments expanded by
   * their schema, and this replica's own elided entries filled in from its pending commands.
   * Undefined if one cannot be (a bug or a hostile hub): the caller follows again.
   */
  #expandEntries(entries: ReadonlyArray<Entry>, elide: ReadonlySet<number> | undefined): Entry[] | undefined {
    const out: Entry[] = new Array(entries.length)
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      // Elided on the wire (the codec marks it): the pending command fills it in.
      if (e.elided === true) {
        const p = this.#rs.pendingAt(e.clientSeq)
        // The entry's fields in their order, less the mark (the codec's: seq to args).
        const { elided: _, ...plain } = e
        // Compat mode: the hub logged the form it was sent (core/schema/compat.ts).
        const own = p === undefined ? undefined : this.#compat !== undefined ? this.#compat.ownEntry(e, p) : { ...plain, name: p.name, args: p.encoded }
        if (own === undefined) return undefined
        out[i] = own
        continue
      }
      // Marked to be by a transport that does not encode (in memory: the entry still holds its plain arguments).
      if (elide?.has(e.seq) === true) {
        out[i] = e
        continue
      }
      if (!(e.args instanceof Uint8Array)) return undefined
      try {
        // No deeper than a hub takes: the replica stores an entry inside a record (limits.ts).
        out[i] = { ...e, args: this.#codecOf(e.name).decode(e.args, ENTRY_ARGS_READ_DEPTH) }
      } catch {
        return undefined
      }
    }
    return out
  }

  // ---- connection (called by the client) ----

  /** @internal the connection is up: subscribe from the confirmed seq and resend the outbox. */
  connected(send: (m: ClientMessage) => void, protocol = 1, sessionVersion?: number, end?: (reason: string) => void, buffered: () => number = () => Infinity): void {
    this.#send = send
    this.#end = end
    this.#buffered = buffered
    this.#resendsAsked = 0
    this.#updateNeeded = undefined
    this.#protocol = protocol
    this.#heard = protocol < 4
    this.#compat = sessionVersion !== undefined && sessionVersion < this.machine.version ? historyOf(this.machine)!.compat(sessionVersion, this.machine) : undefined
    this.#refusal = undefined
    this.#isSynced = false
    this.#resyncing = false
    this.#refusalFetch = false
    this.#gapFollowedAt = -1
    this.#resendSynced = false
    this.#storageFailures = 0
    // An answer settles only on the connection that brought it: the hub now may be another
    // one (restored from an older backup), whose seq X holds another command. It still keeps
    // the command's number till X: the same hub may have forgotten the command since (its
    // outcome dropped), and moved, it would apply again. The resend brings the current answer.
    for (const [p, c] of this.#settleAt) this.#settleAt.set(p, { ...c, earlier: true })
    const sub = this.#subscribeMessage()
    this.#lastAckSent = (sub as { ackedClientSeq: number }).ackedClientSeq
    this.#snapshotFailures = 0
    for (const e of this.#lost.splice(0)) this.#emit("error", e)
    // A snapshot stream cut by the disconnect: tell the hub how far it got, before
    // subscribing, so a new stream of the same snapshot starts there.
    const r = this.#receiver
    if (r !== undefined && r.received > 0) this.#ackSnapshot(r.id, r.received)
    send(sub)
    if (this.#fetchStateOnConnect) {
      // The confirmed state was migrated here from an older version: take the authority's.
      this.#resyncing = true
      this.#fetchState()
    } else if (this.#crdt?.stale === true) {
      // A refused merge is still in its field: the state asked for on the last connection died with it.
      this.#refusalFetch = true
      this.#fetchState()
    }
    if (this.#ownPresence !== null) send({ type: "presence-set", docId: this.docId, state: this.#ownPresence })
    this.#resend()
    this.#crdt?.kick()
  }

  /**
   * The outbox again on this connection, for something the hub sent (a renumbering, a state
   * installed, a lost position). Free while none of it is in flight on this connection; else
   * each is a whole send window while the copies before it may still wait in the socket, so
   * a hub asking again and again without reading would grow the client's memory without bound:
   * past MAX_RESENDS_ASKED while the connection holds more than a send window unread, the
   * connection ends, and the next comes after the backoff. A hub seen to have read down to a
   * window is not piling copies up: the count starts again.
   */
  #resendAsked(): void {
    // (Numbers, not seqs: a renumbering moves the pending commands past what was sent.)
    const inFlight = this.#rs.pending.length > 0 && this.#sentThrough > 0
    if (this.#buffered() <= SEND_WINDOW_BYTES) this.#resendsAsked = 0
    else if (inFlight && ++this.#resendsAsked > MAX_RESENDS_ASKED) {
      return this.#end?.(`The hub asked for the outbox of "${this.docId}" again more than ${MAX_RESENDS_ASKED} times on one connection.`)
    }
    this.#resend()
  }

  /** Sends the pending commands again from the first, as the window allows (a new connection, a renumbering). */
  #resend(): void {
    this.#sentThrough = 0
    this.#pump()
  }

  /**
   * Sends stored commands not yet sent on this connection, in order, while fewer than the
   * window (and SEND_WINDOW_BYTES) are unanswered; called again as answers settle them.
   */
  #pump(): void {
    const pending = this.#rs.pending
    // Nothing unsent (the usual case, on every entries message): no walk over what is in flight.
    // Compat mode sends once the hub has answered (#heard): a newer hub says so first, and the
    // commands then go undowncast, on the next connection.
    if (this.#send === undefined || this.#compat !== undefined && !this.#heard || (pending[pending.length - 1]?.clientSeq ?? 0) <= this.#sentThrough) return
    let i = 0
    let bytes = 0
    for (; i < pending.length && pending[i]!.clientSeq <= this.#sentThrough; i++) bytes += sizeOf(pending[i]!)
    const batch: PendingCommand[] = []
    for (let inFlight = i; i < pending.length && inFlight < this.#sendWindow; i++, inFlight++) {
      const p = pending[i]!
      // A command no frame carries (stored by a run that allowed larger ones) would end the
      // connection at every try: refused here (the number it leaves is taken back by the hub's
      // `sequence-gap`). One a frame carries goes, even over today's `maxCommandBytes`: the
      // last run may have sent it, and only the hub knows whether it applied it.
      if (sizeOf(p) > UNSENDABLE_BYTES) {
        if (batch.length > 0) break
        const message = `"${appName(p)}" takes about ${sizeOf(p)} bytes, more than a message to the hub carries (it was stored by a run that allowed larger commands). Keep large blobs out of commands.`
        return this.#integrate([], new Set([p.clientSeq]), new Map([[p.clientSeq, { code: "command-too-large", message }]]))
      }
      // Not stored yet: it and those after it wait (sent, they would be a hole after a crash).
      if (!p.persisted || p.moving === true || (inFlight > 0 && bytes + sizeOf(p) > SEND_WINDOW_BYTES)) break
      bytes += sizeOf(p)
      batch.push(p)
    }
    if (batch.length === 0) return
    this.#sentThrough = batch[batch.length - 1]!.clientSeq
    this.#sendSubmit(batch)
  }

  /**
   * @internal the hub refused this client for a reason retrying cannot fix: every receipt
   * waiting for the hub (and any made until the next welcome) rejects; the outbox is kept.
   */
  refused(code: string, message: string): void {
    // Without a storage the outbox is this process's memory: it is not on the device for later.
    this.#refusal = canonError("refused", `${code}: ${message} The command is kept in the outbox ${this.#lane instanceof MemoryLane ? "in memory only (no storage)" : "on this device"}.`)
    // Kept in the map: `persisted` still resolves when the outbox write is done.
    for (const d of this.#deferreds.values()) d.reject(this.#refusal)
  }

  /** @internal the connection is gone. */
  disconnected(): void {
    this.#send = undefined
    this.#storageRetry?.cancel()
    this.#storageRetry = undefined
    this.#isSynced = false
    // Offline, local CRDT changes go to the durable outbox at once.
    this.#crdt?.kick()
    // Who is here is unknown while offline: the hub resends it on reconnect.
    for (const clientId of [...this.#others.keys()]) {
      this.#others.delete(clientId)
      this.#emit("presence", { clientId, state: null })
    }
    this.#othersHeld.clear()
    this.#othersBytes = 0
  }

  /** @internal a message about this document. */
  receive(msg: ServerMessage): void {
    this.#receive(msg)
    // An error is no answer: a subscribe the hub served gets hub-newer or its catch-up first,
    // and one it did not (its load failed) is sent again, with the outbox behind it.
    if (!this.#heard && msg.type !== "error") {
      this.#heard = true
      this.#pump()
    }
  }

  #receive(msg: ServerMessage): void {
    if (this.#closed) return
    // Anything else is about what came before it: integrate that first.
    if (msg.type !== "entries") this.#flushIncoming()
    switch (msg.type) {
      case "entries": {
        let entries = msg.compact === true ? this.#expandEntries(msg.entries, msg.elide) : msg.entries
        // Compat mode: the hub moved past the version this app declared (upgraded since it
        // refused the app's, or another of a rolling deploy): the next connection offers the
        // app's own version, or this one would stay a compat session without checkpoints.
        const c = this.#compat
        if (entries !== undefined && c?.movedOn(entries)) return this.#newerHub()
        // Compat mode: entries of the hub's version, upcast to the app's.
        if (entries !== undefined && c !== undefined) entries = c.upcast(entries, msg.entries, (e) => (e.clientId === this.clientId ? this.#rs.pendingAt(e.clientSeq) : undefined))
        if (entries === undefined) {
          this.#error("protocol-error", `Unreadable entries of "${this.docId}"; following again.`)
          this.#flushIncoming()
          this.#follow()
          return
        }
        this.#checkpoint(msg.checkpoint)
        // Lazy rebase: everything that arrives before the next read, submit or microtask is
        // integrated with one undo and one redo of the pending commands.
        for (const e of entries) this.#incoming.push(e)
        if (!this.#incomingScheduled) {
          this.#incomingScheduled = true
          queueMicrotask(() => this.#flushIncoming())
        }
        return
      }
      case "results": {
        const settle = new Set<number>()
        const rejected = new Map<number, Rejection>()
        const acceptedEarlier: { command: PendingCommand; seq: number; upperBound?: true }[] = []
        for (const o of msg.outcomes) {
          const p = this.#rs.pendingAt(o.clientSeq)
          if (p === undefined) continue
          if ("rejection" in o) {
            settle.add(o.clientSeq)
            rejected.set(o.clientSeq, o.rejection)
          } else {
            // `seqAtMost`: the hub forgot this outcome: the command is settled, at a seq no higher than this.
            const c: OwnConfirmation = "seqAtMost" in o ? { command: p, seq: o.seqAtMost, upperBound: true } : { command: p, seq: o.seq }
            if (c.seq <= this.#rs.confirmedSeq) {
              // Confirmed inside a state transfer: no entry will come for it.
              settle.add(o.clientSeq)
              acceptedEarlier.push(c)
            } else {
              // Its entry is on its way; meanwhile no renumbering may move it (a store restored
              // from a backup resends a command applied since, then a new one the hub renumbers:
              // moved, it went again under a new number and was applied twice).
              this.#settleAt.set(p, c)
            }
          }
        }
        if (settle.size === 0) return
        this.#integrate([], settle, rejected, acceptedEarlier)
        return
      }
      case "checkpoint":
        this.#checkpoint(msg)
        return
      case "synced":
        this.#isSynced = true
        // An answer to a subscribe: a gap after it is a new one (#gapFollowedAt).
        this.#gapFollowedAt = -1
        this.#emit("synced", { seq: msg.seq })
        if (this.#resendSynced) {
          this.#resendSynced = false
          this.#resendAsked()
        }
        return
      case "state":
        // A hub from before snapshot streams sends the state in one frame.
        this.#install(msg.seq, msg.state)
        return
      case "snapshot-begin": {
        const r = this.#receiver
        if (r !== undefined && r.same(msg)) {
          // The same snapshot again after a reconnect: continue where it stopped (the hub
          // started it where connected() said; bytes below are duplicates). The ack is credit
          // to this hub; an older one (it took an ack past its offset as a resume point) skips to it.
          if (r.received > 0) this.#ackSnapshot(msg.snapshotId, r.received)
          return
        }
        if (msg.size > this.#maxSnapshotBytes) {
          this.#receiver = undefined
          this.#error("snapshot-too-large", `A snapshot of ${msg.size} bytes is over maxSnapshotBytes (${this.#maxSnapshotBytes}).`)
          return
        }
        this.#receiver = new SnapshotReceiver(msg, SNAPSHOT_ACK_EVERY)
        this.#emit("snapshot", this.#receiver.progress)
        return
      }
      case "snapshot-chunk": {
        const r = this.#receiver
        if (r === undefined || r.id !== msg.snapshotId) return
        const out = r.chunk(msg)
        if (typeof out === "string") return this.#badSnapshot(out)
        if (out !== undefined) {
          this.#ackSnapshot(msg.snapshotId, out)
          // received == size is said once, by the install: all bytes in is not yet verified.
          if (r.received < r.begin.size) this.#emit("snapshot", r.progress)
        }
        return
      }
      case "snapshot-end": {
        const r = this.#receiver
        if (r === undefined || r.id !== msg.snapshotId) return
        this.#receiver = undefined
        // An answer to a subscribe, used or not (a state this app cannot migrate): a gap after it is a new one.
        this.#gapFollowedAt = -1
        const done = r.finish()
        if (typeof done === "string") return this.#badSnapshot(done)
        this.#install(r.begin.seq, done, r.begin.hash)
        return
      }
      case "error": {
        const { code, seq } = msg
        // Answers to submits sent before this document's subscribe was refused: that refusal, told already.
        if (code === "not-subscribed" && this.#refusal !== undefined) return
        // Protocol 4: served at an older version than the hub runs. Compat mode connects again
        // with the app's own; an app that old has nothing to do.
        if (code === "hub-newer") return this.#compat === undefined ? undefined : this.#newerHub()
        if (code === "update-required" && seq !== undefined) {
          // Declared older than this app, for a hub that was older: the hub is newer than that
          // now (upgraded since, or another of a rolling deploy). The next connection offers
          // this app's own version; it is not told to update.
          if (this.#compat !== undefined) return this.#newerHub()
          this.#updateNeeded = { seq, message: msg.message }
          if (!this.#updateTold) this.#emit("updateRequired", this.#updateNeeded)
          this.#updateTold = true
        }
        if (code === "sequence-reset" || code === "sequence-gap") {
          // Numbered from `seq`, can the pending commands be?
          if (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 1 && seq + this.#rs.pending.length <= MAX_CLIENT_SEQ)) {
            // Renumbered there, commands would collide past 2^53 (and overwrite each other in the
            // outbox) or take numbers no submit can carry: changing nothing keeps every command.
            this.#error("protocol-error", `The hub asked to number the commands of "${this.docId}" from ${seq}; ${this.#rs.pending.length} pending command(s) can only be numbered from 1 to ${MAX_CLIENT_SEQ}. Ignored.`)
            return
          }
          if (code === "sequence-reset") {
            if (seq !== undefined) return this.#renumber(seq, false)
          } else if (seq !== undefined && (this.#rs.pending[0]?.clientSeq ?? 0) > seq) {
            // No command here holds the numbers the hub is missing: they were taken by commands
            // that died unstored (a store written before that was fixed). Close the hole, or
            // this outbox is refused for good.
            this.#renumber(seq, true)
          } else {
            // The hub lost track of where this client is (it should never happen on an ordered
            // link): follow again from the confirmed seq, which resends the outbox in order.
            this.#follow()
            this.#resendAsked()
          }
        }
        // The hub will not serve this document on this connection (its subscribe was refused):
        // receipts waiting for it settle, as for a refused client; the outbox is kept.
        if (SUBSCRIBE_REFUSALS.includes(code)) this.refused(code, msg.message)
        // `hub-full`: the hub had no room for a CRDT merge now (its bound on what loaded fields hold) and judged nothing of it: sent again likewise.
        if ((code === "storage-failed" || code === "hub-full") && this.#send !== undefined) {
          return this.#error(code, `${msg.message} Trying again in ${this.#retryAfterStorageFailure() / 1000} s.`)
        }
        this.#error(code, msg.message)
        return
      }
      case "presence": {
        const { clientId, state } = msg
        this.#othersBytes -= this.#othersHeld.get(clientId) ?? 0
        const had = this.#others.delete(clientId)
        this.#othersHeld.delete(clientId)
        const bytes = state === null ? 0 : presenceBytes(clientId, state, MAX_PRESENCE_HELD_BYTES - this.#othersBytes)
        // Past what a document holds, a client is not shown (gone, if it was).
        const held = state !== null && this.#othersBytes + bytes <= MAX_PRESENCE_HELD_BYTES
        if (held) {
          this.#others.set(clientId, state)
          this.#othersHeld.set(clientId, bytes)
          this.#othersBytes += bytes
        }
        // A client never shown here is not told as gone (a hub tells a newcomer of leaves it may have heard of).
        if (held || had) this.#emit("presence", { clientId, state: held ? state : null })
        return
      }
      default:
        return
    }
  }

  /** Declared older than this app for a hub that was older, the hub is newer than that now: the next connection offers the app's own version. */
  #newerHub(): void {
    this.#end?.(`The hub now runs a newer version of "${this.docId}": reconnecting as this app's.`)
  }

  /** An authority's checkpoint, checked unless in compat mode (the older version's state: not comparable). */
  #checkpoint(c: { readonly seq: number; readonly hash: string } | undefined): void {
    if (c !== undefined && this.#compat === undefined) this.#handleDesync(this.#rs.checkpoint(c.seq, c.hash))
  }

  /** Subscribes again (not synced yet), and sends the outbox again, after a backoff (STORAGE_RETRY_MS): the wait, ms. */
  #retryAfterStorageFailure(): number {
    const wait = Math.min(STORAGE_RETRY_MAX_MS, STORAGE_RETRY_MS * 2 ** Math.min(this.#storageFailures++, 6))
    const send = this.#send
    this.#storageRetry?.cancel()
    this.#storageRetry = this.#runtime.setTimer(wait, () => {
      this.#storageRetry = undefined
      if (this.#closed || this.#send !== send) return
      if (!this.#isSynced) this.#follow()
      // What was sent meanwhile was refused unjudged (or not-subscribed) and forgotten. Asked
      // for by the hub's word, as any resend it causes: a hub sending failures without reading
      // must not pile copies up (#resendAsked).
      this.#resendAsked()
    })
    return wait
  }

  /** Asks the hub for its state of the document. */
  #fetchState(): void {
    this.#send?.({ type: "fetch-state", docId: this.docId })
  }

  /** Tells the hub how far the snapshot stream `snapshotId` has come. */
  #ackSnapshot(snapshotId: number, received: number): void {
    this.#send?.({ type: "snapshot-ack", docId: this.docId, snapshotId, received })
  }

  /** A snapshot stream that cannot be installed: discarded, and the state asked for again. */
  #badSnapshot(reason: string): void {
    this.#receiver = undefined
    this.#snapshotFailures++
    this.#error("snapshot-invalid", `A snapshot of "${this.docId}" was discarded: ${reason}. Fetching it again.`)
    // A hub that keeps sending bad snapshots is not asked forever on the same connection.
    if (this.#snapshotFailures <= 3) this.#fetchState()
    else this.#refusalFetch = false
  }

  /**
   * Replaces the confirmed state with the authority's at `seq` (a verified snapshot, or an old
   * hub's state frame); pending commands stay on top and are sent again (some may be inside
   * that state: their duplicates' outcomes say so).
   */
  #install(seq: number, bytes: Uint8Array, verifiedHash?: string): void {
    let rewound: number | undefined
    try {
      if (this.#compat !== undefined) {
        // Compat mode: the hub's state is of its older version (and its hash is of that form).
        bytes = this.#compat.migrate(bytes, this.docId, seq)
        verifiedHash = undefined
      }
      // Decoded before anything changes: bytes that are no state of this machine change nothing.
      // (An older version's start at seq 0, asked for by a provisional or desynced replica, is not a rewind.)
      if (seq < this.confirmedSeq && !this.#fetchStateOnConnect && !this.#resyncing) rewound = this.confirmedSeq
      this.#rs.reset(seq, bytes, verifiedHash)
    } catch (e) {
      // The app's own migration failed on the hub's state (compat mode): asking again brings
      // the same state, so the app is told what failed, once, and the state stays as it was.
      if ((e as CanonError).code === "migration-failed") return this.#error("migration-failed", errorText(e))
      // A hash only says the bytes are the ones the hub meant: a broken or hostile hub's
      // state is refused here, never thrown into the connection.
      return this.#badSnapshot(`its state cannot be read (${errorText(e)})`)
    }
    this.#snapshotFailures = 0
    this.#resyncing = false
    this.#refusalFetch = false
    this.#fetchStateOnConnect = false
    this.#lane.install(seq, bytes)
    this.#emit("snapshot", { seq, received: bytes.length, size: bytes.length })
    if (rewound !== undefined) this.#emit("rewound", { from: rewound, to: seq })
    this.#resendAsked()
    this.#settleReached()
    this.#scheduleNotify()
  }

  /**
   * The hub says this client's commands on this document must be numbered from `from`: the
   * same clientId was used by another device, or this one lost its storage (pending commands
   * below it were never applied under their numbers), or with `down`, the numbers below the
   * first pending command were taken by commands that died unstored. Pending commands are
   * renumbered (ReplicaState.renumber), their new outbox stored, and sent again. `down`: the
   * numbers went down, so the stored next number does too (it ran past the stored commands).
   */
  #renumber(from: number, down: boolean): void {
    const moves = this.#rs.renumber(from, down, this.#settleAt)
    for (const m of moves) {
      // Not stored under its new number yet, so not sent under it (the lane says when it is).
      m.command.moving = true
      // A command recovered from the outbox after a restart has no receipt.
      const d = this.#deferreds.get(m.command)
      if (d) d.receipt!.clientSeq = m.to
    }
    // Pending commands stay in clientSeq order: the last holds the highest.
    this.#nextClientSeq = Math.max(down ? from : Math.max(this.#nextClientSeq, from), (this.#rs.pending.at(-1)?.clientSeq ?? 0) + 1)
    if (moves.length > 0) this.#lane.renumber(moves, from, down, this.#toPersist)
    // After a sequence-reset the hub takes nothing more of this document on this connection
    // until it is subscribed to again (what was on its way is dropped there): subscribe first.
    if (!down) this.#follow()
    // From the first command again: the first is moved, so nothing goes until the lane has
    // stored the moves (outboxStored pumps); commands kept in place may wait behind them.
    // Nothing moved: the first is answered and kept (#settleAt), and sent again now it would be
    // refused again, each time restarting a catch-up that a slow hub then never finished (a
    // review: stuck for good). It goes once caught up, past its answer's seq.
    if (moves.length === 0 && !down) this.#resendSynced = true
    else if (this.#send !== undefined && moves.length > 0) this.#resendAsked()
  }

  /** Follows the document again from the confirmed seq (entries were missed or unreadable). */
  #follow(): void {
    this.#send?.(this.#subscribeMessage())
    // The hub starts its follower afresh (sim seed 275): a state asked for and not installed yet is asked again.
    if (this.#resyncing || this.#refusalFetch) this.#fetchState()
  }

  #subscribeMessage(): ClientMessage {
    const m = this.#sessionMachine
    return { type: "subscribe", docId: this.docId, machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq: this.#rs.confirmedSeq, ackedClientSeq: this.#ackedClientSeq() }
  }

  #integrate(entries: ReadonlyArray<Entry>, settle: ReadonlySet<number> | undefined, rejected: ReadonlyMap<number, Rejection>, accepted: ReadonlyArray<OwnConfirmation> = []): void {
    const wantSnapshot = this.#lane.wantSnapshot(entries.length)
    const rejectedCommands = new Map<number, PendingCommand>()
    for (const cs of rejected.keys()) {
      const p = this.#rs.pendingAt(cs)
      if (p !== undefined) rejectedCommands.set(cs, p)
    }
    // Compat mode: own commands come back in the hub's form, which may differ (a lossy downcast).
    this.#rs.sameForm = this.#compat?.sameForm
    const r = this.#rs.integrate(entries, settle, wantSnapshot)
    if (r.gap && this.#gapFollowedAt !== this.#rs.confirmedSeq) {
      // Missed entries (a snapshot stream discarded, say): follow again from where we are, once
      // per position. Every entries message already on its way shows the same gap, and each
      // subscribe restarts the hub's follower and its snapshot stream (simulator seed 340).
      this.#gapFollowedAt = this.#rs.confirmedSeq
      this.#follow()
    }
    const settled = [...r.confirmed.map((c) => c.command.clientSeq), ...(settle ?? [])]
    // The hub judged commands of this client: its storage answers again.
    if (settled.length > 0 || rejectedCommands.size > 0) this.#storageFailures = 0
    if (r.applied.length === 0 && settled.length === 0) return
    for (const cs of settled) this.#settling.add(cs)
    // A refused CRDT merge is already in its field and cannot be taken out: reload the
    // fields from the authority's state (pending merges are merged again on top); what
    // was refused only for needing it goes again (ReplicaFields.refused).
    // Merges refused only for needing a refused one, whose content goes again: their receipts
    // reject, but the app is told `resent`, not of a loss that did not happen.
    const covered = new Set<PendingCommand>()
    const crdt = this.#crdt
    let merges = false
    try {
      merges = crdt?.refused([...rejectedCommands].map(([cs, p]) => [p, rejected.get(cs)!] as const), covered) === true
    } finally {
      // What takes the refused merges' place is stored in the write that takes them out: a
      // crash between two writes would lose it. (Written even if a field threw.)
      const replacing = crdt !== undefined && rejectedCommands.size > 0 ? { commands: this.#takeToPersist(), queued: crdt.takeQueued(), refused: [...rejectedCommands.keys()] } : undefined
      this.#lane.confirm(this.#rs.confirmedSeq, r.applied, settled, r.snapshot, [...r.confirmed, ...accepted], replacing)
    }
    if (merges && !this.#refusalFetch && !this.#resyncing) {
      this.#refusalFetch = true
      this.#fetchState()
    }
    for (const [clientSeq, rejection] of rejected) {
      const p = rejectedCommands.get(clientSeq)
      const command = p === undefined ? "" : appName(p)
      // A command recovered after a restart has no receipt (and a rejection of no pending command, none).
      const d = this.#deferreds.get(p!)
      this.#deferreds.delete(p!)
      d?.reject(new CommandRejected({ code: rejection.code, message: rejection.message, command, clientSeq }))
      this.#emit(covered.has(p!) ? "resent" : "rejected", { clientSeq, command, rejection })
    }
    this.#settleReached()
    this.#handleDesync(r.desync)
    this.#scheduleNotify()
    // Answers free the send window.
    this.#pump()
    // A merge confirmed: the changes coalesced meanwhile may go.
    this.#crdt?.kick()
  }


  /** Commands answered "applied at seq X" (or "at seq <= X") settle once the confirmed state has reached X. */
  #settleReached(): void {
    const due: OwnConfirmation[] = []
    for (const [p, c] of this.#settleAt) {
      // Not pending: its entry confirmed it. (Deleting the entry being visited is safe in a Map.)
      const live = this.#rs.pendingAt(p.clientSeq) === p
      if (!live || c.seq <= this.#rs.confirmedSeq) {
        this.#settleAt.delete(p)
        if (live && !c.earlier) due.push(c)
      }
    }
    if (due.length > 0) this.#integrate([], new Set(due.map((d) => d.command.clientSeq)), new Map(), due)
  }

  /** The outbox removals of these are stored: the app hears of them. */
  #tellConfirmed(tell: ReadonlyArray<OwnConfirmation>): void {
    for (const { command, seq, upperBound } of tell) {
      const d = this.#deferreds.get(command)
      this.#deferreds.delete(command)
      const confirmation: Confirmation = upperBound ? { seq, upperBound } : { seq }
      d?.resolve(confirmation)
      this.#emit("confirmed", { clientSeq: command.clientSeq, command: appName(command), ...confirmation })
    }
  }

  #handleDesync(desync: Desync | undefined): void {
    // A state migrated here (an app upgrade) is expected to differ until the authority's
    // arrives, which was already asked for: not a desync.
    if (desync === undefined || this.#fetchStateOnConnect) return
    this.#emit("desync", desync)
    if (!this.#resyncing && this.#send !== undefined) {
      this.#resyncing = true
      this.#fetchState()
    }
  }

  /** Stops following the document. Pending commands stay in the outbox for next time. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#crdt?.close()
      // Commands submitted in this tick wait for a microtask to be written: write them now,
      // so that the lane returned below holds them ("pending commands stay in the outbox").
      this.#flushOutbox()
      this.#closed = true
      // A retry armed by a write that failed earlier: what it would write, the flush above carries.
      this.#lane.close()
      // Its receipts would never settle (a caller awaiting one would wait forever); the commands
      // stay, if stored: one not stored yet is told once the last write settled.
      const closed = canonError("closed", `Document "${this.docId}" closed first; the command stays in the outbox (sent on reopening, with storage).`)
      for (const [p, d] of this.#deferreds) if (p.persisted) d.reject(closed)
      void this.#lane.idle.then(() => {
        for (const [p, d] of this.#deferreds) {
          const lost = p.persisted ? closed : canonError("storage-failed", `Document "${this.docId}" closed before "${appName(p)}" was stored (the storage failed): it is lost.`)
          d.reject(lost)
          if (!p.persisted) d.persisted(lost)
        }
      })
      this.#send?.({ type: "unsubscribe", docId: this.docId })
      this.#send = undefined
      this.#storageRetry?.cancel()
      this.#onClosed(this.#lane.idle)
      this.#emit("closed", { docId: this.docId })
    }
    return this.#lane.idle
  }

  /** True after `close`. */
  get isClosed(): boolean {
    return this.#closed
  }
}

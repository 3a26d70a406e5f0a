/**
 * The hub: accepts connections from a transport and routes each document's messages to its
 * authority (one per document, loaded on first use). Documents are independent: a broken or
 * slow document does not hold up any other. A document nobody follows is kept loaded a
 * while once idle, within bounds (idle-documents.ts, `idleDocuments`), then unloaded and
 * loaded again on next use, so the hub holds the documents being followed and a bounded few
 * more, not every document ever read.
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
 * const server = network.listen(hub)   // any server transport
 * ```
 */
import type { Machine } from "../machine.js"
import type { KVStore } from "../ports/storage.js"
import type { Connection, ConnectionAcceptor, ConnectionInfo, ConnectionListener } from "../ports/transport.js"
import { setDeadline, steadyNow, type Runtime, type Timer } from "../ports/runtime.js"
import type { ClientMessage, Hello, ServerMessage, Submit, VersionRange } from "../protocol/messages.js"
import { errorText } from "../errors.js"
import { peerText } from "./peer-text.js"
import { SUPPORTED_PROTOCOL, checkMachine, chooseVersion, type Refusal } from "../protocol/negotiate.js"
import { AuthorityStore } from "../store/authority-store.js"
import { checkMaxDocumentBytes } from "./size-bound.js"
import { DocAuthority, sliceTurns, type AuthorityOptions, type Sender } from "./doc-authority.js"
import type { Turns } from "./turns.js"
import { ANONYMOUS, type Authenticate, type Authorize, type Principal } from "./auth.js"
import { TokenBucket, hubLimits, type HubLimits } from "./limits.js"
import { SharedWork } from "./shared-work.js"
import { PRESENCE_CLIENT_BURST_BYTES, PRESENCE_CLIENT_BYTES_PER_SECOND } from "./followers.js"
import { CrdtWorkGauge } from "./crdt-work.js"
import { HeldWeight, UNIT_HEAP_BYTES } from "./held-weight.js"
import { IdleDocuments, type IdleDocumentLimits } from "./idle-documents.js"
import { Inflow } from "../inflow.js"
import { IdentityRegistry } from "./identity.js"
import { DEFAULT_HARD_LIMIT, guardConnection } from "./guarded-connection.js"
import { encodeCanonical, sizeBound } from "../canonical.js"
import { boundedMessage, clientIdProblem, docIdProblem, quoted } from "../limits.js"
import { CrdtDocHost, type CrdtDocEvent } from "../crdt-docs/host.js"
import type { CrdtAuthorityOptions } from "../crdt-docs/authority.js"
import type { CrdtDocEngine } from "../crdt-docs/engine.js"
import type { CrdtWorkLimits } from "../crdt-docs/work-budget.js"

const encodedSize = (v: unknown): number => {
  try {
    return encodeCanonical(v).length
  } catch {
    return Infinity
  }
}

/** Clients whose command buckets the hub remembers across their connections. */
const MAX_CLIENT_BUCKETS = 65_536

/**
 * What the CRDT fields of a hub's loaded documents may hold together by default (CrdtField
 * `weight`: Automerge ops and changes, Yjs structs and values, bytes one per 128 in both),
 * 2^21, two fields at their bound: a field
 * of 2^20 ops held 350 MB of the hub's memory, stored in 800 bytes (a run of one value), so 2
 * documents of 3 such fields held 1.9 GB (a review); at 2^22 the hub held 1.4 GB (1.1 GB of
 * V8's heap), which beside the whole documents' bounds (`maxHostStructs`, `maxHostOps`) left
 * too little of Node's 4.3 GB heap.
 */
export const DEFAULT_MAX_HOST_FIELD_WEIGHT = 1 << 21

/**
 * What a hub's loaded documents may hold in memory together by default, estimated (2 GiB):
 * half of the V8 heap Node gives a 64-bit process on a machine of 16 GB or more. `canon serve`
 * and `npm start` pass half of the heap the process really has.
 */
export const DEFAULT_MAX_HELD_BYTES = 2 ** 31

export interface HubOptions extends AuthorityOptions {
  readonly machines: ReadonlyArray<Machine<any, any>>
  /**
   * The most the CRDT fields of the loaded documents may hold together, in ops and changes
   * (Automerge), structs and values (Yjs), and bytes one per 128: a merge that would take them past is not judged now (its
   * client is told `hub-full` and sends it again later). Default DEFAULT_MAX_HOST_FIELD_WEIGHT (2^21).
   */
  readonly maxHostFieldWeight?: number
  /**
   * The most the hub's loaded documents may hold in memory together, in estimated bytes:
   * machine states (core/state/heap-estimate.ts) and their client states, their CRDT fields,
   * whole Yjs and Automerge documents (each unit of their own bounds as UNIT_HEAP_BYTES). A
   * command or merge that would take them past is not judged now (`hub-full`, sent again
   * later), an update of a whole document refused `doc-unavailable` (retried), and a document
   * that does not fit is not loaded until others go, unless it is alone. Each kind's own bound
   * still holds too. A document's client states count but are never refused for it (a commit
   * may pass the bound by them): each document bounds them itself (`maxClientStateBytes`).
   * Default DEFAULT_MAX_HELD_BYTES (2 GiB): keep it well under Node's heap
   * (`v8.getHeapStatistics().heap_size_limit`), which an out-of-memory hub crashes at.
   * @example new Hub({ machines, storage, runtime: systemRuntime, maxHeldBytes: 1 << 30 })
   */
  readonly maxHeldBytes?: number
  readonly storage: KVStore
  readonly runtime: Runtime
  /**
   * fsync every commit batch before acknowledging it. Default true: acknowledged means
   * durable, also across a power loss. `false` trades that for throughput (see README).
   */
  readonly sync?: boolean
  /** A connection that has not said hello after this long is closed (`handshake-timeout`). Default 10,000 ms. */
  readonly handshakeTimeoutMs?: number
  /** Protocol versions to accept. Default: all this build speaks. */
  readonly protocol?: VersionRange
  readonly authenticate?: Authenticate
  readonly authorize?: Authorize
  /** Per-connection limits; unspecified ones keep their defaults (limits.ts). */
  readonly limits?: Partial<HubLimits>
  /** Diagnostics: documents that broke, connections refused. */
  readonly onEvent?: (event: HubEvent) => void
  /**
   * Whole CRDT documents (core/crdt-docs): the engines to serve (e.g. `yjsDocEngine()` from
   * `canon/yjs-server`). They share this hub's storage, sync setting and auth hooks; their
   * protocol endpoints mount on the WsServer (`routes`).
   */
  readonly crdt?: CrdtAuthorityOptions & {
    readonly engines: ReadonlyArray<CrdtDocEngine<any>>
    /**
     * Each principal's share of the decoding work (defaults DEFAULT_CRDT_WORK: 15 s of estimated
     * work at once, a quarter of a core sustained), and of document loads from storage (50 a
     * second after a burst of 200, each charged its measured time as work: CrdtDocHost `open`).
     */
    readonly work?: Partial<CrdtWorkLimits>
  }
  /**
   * Documents nobody follows stay loaded a while, so a reader back soon is not a reload from
   * storage: at most `count` of them (default 64), `bytes` of state in all (default 16 MiB),
   * each `ms` after it was left (default 30,000). Whole CRDT documents have bounds of their
   * own: these if given, else the same but 2 MiB (they take 10 to 35 times their bytes in
   * memory). `{ count: 0 }` unloads a document as soon as it is idle.
   */
  readonly idleDocuments?: Partial<IdleDocumentLimits>
}

export type HubEvent =
  | { readonly type: "doc-broken"; readonly docId: string; readonly error: unknown }
  | { readonly type: "doc-load-failed"; readonly docId: string; readonly error: unknown }
  | { readonly type: "protocol-error"; readonly message: string }
  /** The hub's storage failed while it served a connection (not a document's load: doc-load-failed); the connection was closed and the client comes back. */
  | { readonly type: "storage-failed"; readonly message: string }
  | { readonly type: "refused"; readonly code: string; readonly message: string }
  | { readonly type: "limit"; readonly code: string; readonly message: string }
  /** Something a document noticed and survived: a background failure (then it reloads), a checkpoint that did not match on load. */
  | { readonly type: "doc-report"; readonly docId: string; readonly code: string; readonly message: string }
  /** A message could not be sent on a connection (the connection is closed). */
  | { readonly type: "send-failed"; readonly message: string }
  /** From a whole CRDT document or one of its endpoints (core/crdt-docs). */
  | { readonly type: "crdt"; readonly event: CrdtDocEvent }

interface Session {
  readonly conn: Connection<ServerMessage>
  readonly info: ConnectionInfo | undefined
  clientId: string | undefined
  /** Set once the clientId is proved. */
  sender: Sender | undefined
  principal: Principal | undefined
  readonly docs: Set<string>
  /** Snapshot resume points a client sent before subscribing, by docId. */
  readonly resume: Map<string, { readonly snapshotId: number; readonly received: number }>
  chain: Promise<void>
  closed: boolean
  /** Closes the connection if no hello is proved in time; cancelled by the hello or the close. */
  handshakeTimer: Timer | undefined
  readonly messages: TokenBucket
  /** The client's, once its hello is proved (shared by its connections, see `bucketsOf`). */
  commands: TokenBucket
  /** The client's work, in µs of the hub's time: CRDT merges estimated, other commands measured (shared the same way). */
  work: TokenBucket
  /** The client's document loads (shared the same way). */
  loads: TokenBucket
  /** Estimated bytes of its submits not yet through their group commit (input flow control, see `admit`). */
  readonly inflow: Inflow
  /** Messages read and not yet handled (see `receive`). */
  readonly waiting: Inflow
  /** Reasons the connection is not read now (input flow control, a rate hold); read again at 0. */
  pauses: number
  /** Set while commands over the rate hold the connection paused: resumes when the bucket is out of debt. */
  rateHold: Timer | undefined
  /**
   * Messages read while the connection is held for its rate (a socket read delivers every
   * frame it holds; the pause stops the next read), and the rest of a submit whose CRDT work
   * the client cannot pay for yet: handled in order when the hold ends.
   */
  readonly held: Array<Held>
  /**
   * A submit carrying CRDT merges is with its document: the connection is not read, and what
   * it already sent waits in `held`, until those merges are done. What a merge cost past its
   * estimate is charged when it is done (crdt-work.ts), and must hold the next merge: merges
   * queued to the document together would all run before the first one was measured.
   */
  merging: boolean
  /** When the rate hold ends (runtime ms): the later of its buckets' debts. */
  rateHoldUntil: number
  /** Loads paid in debt, waiting for the rate hold to end (or the connection to close): see `payLoad`. */
  readonly holdWaiters: Array<() => void>
  /** Subscribes the hub refused on this connection (see `refuseSubscribe`). */
  refusedSubscribes: number
  /**
   * By docId, the clients the connection may have been shown on a document it unsubscribed
   * from (DocAuthority `unsubscribe`): what was sent it there may still be on its way, and
   * reach a Doc opened again on the connection, so its next subscription is owed their leaves.
   * Kept here, not by the document, which may be unloaded meanwhile; at most
   * maxDocsPerConnection documents, the oldest dropped, and gone with the connection.
   */
  readonly departed: Map<string, ReadonlySet<string>>
}

declare const paid: unique symbol
/**
 * A document load paid for: `startLoad`, the one place the hub reads a document from storage,
 * takes one. Only `payLoad` (from a client's loads bucket) and the app's own `doc()` calls make
 * one, so no path of a client's loads a document without paying for it.
 */
type PaidLoad = { readonly [paid]: true }
const PAID = {} as PaidLoad

/** A message read while its connection was held, or the rest of a submit (counted as it was read, its merges weighed). */
interface Held {
  readonly msg: ClientMessage
  readonly counted: boolean
  readonly weights?: ReadonlyArray<number>
}

/** What a client may send, shared by its connections. */
interface ClientBuckets {
  readonly commands: TokenBucket
  readonly work: TokenBucket
  readonly loads: TokenBucket
  /** Bytes of states it is sent (snapshot streams and asked-for states: followers.ts `mustPay`), whatever document. */
  readonly stateAsks: TokenBucket
  /** Bytes of the presence relays of its changes and of its connections' catch-ups, whatever document (followers.ts `clientBudget`). */
  readonly presence: TokenBucket
}

/** A submit counted in its session's `inflow`: released once, by its document or by the hub. */
interface Ticket {
  /** Handed to a document, which releases it after the submit's group commit. */
  handed: boolean
  readonly release: () => void
}

/**
 * The value for `key`, made by `make` if absent, moved to the newest end of `map` (insertion
 * order); past MAX_CLIENT_BUCKETS entries the least recently touched is forgotten.
 */
const touch = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  let value = map.get(key)
  if (value !== undefined) map.delete(key)
  else value = make()
  map.set(key, value)
  if (map.size > MAX_CLIENT_BUCKETS) map.delete(map.keys().next().value!)
  return value
}

export class Hub implements ConnectionAcceptor {
  private readonly store: AuthorityStore
  private readonly machines: ReadonlyMap<string, Machine<any>>
  private readonly docs = new Map<string, Promise<DocAuthority<any>>>()
  /** Loaded documents nobody follows, kept a while (their entries in `docs` stay). */
  private readonly idleDocs: IdleDocuments<{ readonly doc: DocAuthority<any>; readonly loading: Promise<DocAuthority<any>> }>
  /** Broken documents whose old instance still writes, by docId (see `doc`). */
  private readonly settling = new Map<string, Promise<void>>()
  private readonly sessions = new Set<Session>()
  /** Command and CRDT work buckets by clientId, least recently connected first. */
  private readonly clientBuckets = new Map<string, ClientBuckets>()
  /** New-identity buckets by address or principal (see `mayRegister`), least recently used first. */
  private readonly registrants = new Map<string, TokenBucket>()
  /** The buckets of clients with sessions open, and how many (see `bucketsHeld`). */
  private readonly live = new Map<string, { readonly buckets: ClientBuckets; sessions: number }>()
  /** Work buckets by address or principal, which every client behind it pays from too (`sharedWorkPerSecond`). */
  private readonly sharedWork = new Map<string, SharedWork>()
  private closed = false
  private readonly limits: HubLimits
  private readonly identities: IdentityRegistry
  private crdtHost: CrdtDocHost | undefined
  private readonly crdtWork: CrdtWorkGauge
  /** Slices of judging and replaying, one for all the hub's documents (turns.ts). */
  private readonly turns: Turns
  /** What the CRDT fields of the loaded documents hold together (`maxHostFieldWeight`). */
  private readonly fieldWeight: HeldWeight
  /** What every loaded document holds in memory together, estimated (`maxHeldBytes`). */
  private readonly memory: HeldWeight

  constructor(private readonly options: HubOptions) {
    checkMaxDocumentBytes(options.maxDocumentBytes, "maxDocumentBytes")
    checkMaxDocumentBytes(options.crdt?.maxDocumentBytes, "crdt.maxDocumentBytes")
    this.store = new AuthorityStore(options.storage, { sync: options.sync ?? true })
    this.identities = new IdentityRegistry(this.store)
    this.machines = new Map(options.machines.map((m) => [m.name, m]))
    this.crdtWork = new CrdtWorkGauge(options.machines)
    this.turns = sliceTurns(options.runtime, options)
    this.fieldWeight = new HeldWeight(options.maxHostFieldWeight ?? DEFAULT_MAX_HOST_FIELD_WEIGHT)
    this.memory = new HeldWeight(options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES)
    this.fieldWeight.shareWith(this.memory, UNIT_HEAP_BYTES)
    for (const engine of options.crdt?.engines ?? []) engine.shareMemory?.(this.memory)
    this.limits = hubLimits(options.limits)
    this.idleDocs = new IdleDocuments(options.runtime, options.idleDocuments, (docId, kept) => this.unloadIdle(docId, kept.doc, kept.loading))
  }

  /** Whole CRDT documents (needs the `crdt` option): what the y-websocket / automerge-repo endpoints serve. */
  get crdtDocs(): CrdtDocHost {
    const { crdt, storage, sync, authenticate, authorize } = this.options
    if (crdt === undefined) throw new TypeError("This hub has no CRDT engines: pass `crdt: { engines: [...] }` to new Hub().")
    this.crdtHost ??= new CrdtDocHost({
      ...crdt, storage, sync: sync ?? true, runtime: this.options.runtime,
      ...(this.options.idleDocuments !== undefined ? { idleDocuments: this.options.idleDocuments } : {}),
      ...(authenticate !== undefined ? { authenticate } : {}), ...(authorize !== undefined ? { authorize } : {}),
      onEvent: (event) => this.report({ type: "crdt", event }),
      onNoRoom: () => this.idleDocs.letGoAll(),
    })
    return this.crdtHost
  }

  /**
   * The buckets of a proved client, shared by its connections: one per connection let a
   * client reset its rate by reconnecting (a fresh burst each time). The newest 65,536
   * clients are remembered; one forgotten starts with full buckets again.
   */
  private bucketsOf(clientId: string): ClientBuckets {
    return touch(this.clientBuckets, clientId, () => this.live.get(clientId)?.buckets ?? this.newBuckets())
  }

  /**
   * The buckets of a client with a session open: never forgotten while it is (others' hellos
   * push a client that only sends commands out of `clientBuckets`; forgotten, its commands'
   * time was charged to nothing).
   */
  private bucketsHeld(clientId: string): ClientBuckets | undefined {
    return this.live.get(clientId)?.buckets ?? this.clientBuckets.get(clientId)
  }

  /**
   * Whether a new client identity may be recorded for `registrant` (an address, or a principal
   * with an authenticate hook): each is kept for good. The newest 65,536 registrants are
   * remembered, as the clients' buckets are.
   */
  private mayRegister(registrant: string): boolean {
    const now = steadyNow(this.options.runtime)
    return touch(this.registrants, registrant, () => new TokenBucket(this.limits.newClientsPerSecond, this.limits.newClientBurst, now)).take(1, now)
  }

  /**
   * Spends `n` of a client's `bucket` (rate `rate` per second): a transport that can pause is
   * held while the bucket is in debt (a paused transport delivers at most what it had
   * buffered, so the debt stays bounded); one that cannot, or a bucket that never refills
   * (rate 0: a burst, then refusals), says false past it: the caller refuses.
   */
  private spend(session: Session, bucket: TokenBucket, n: number, now: number, rate: number, why?: string): boolean {
    if (session.conn.pause === undefined || rate <= 0) return bucket.take(n, now)
    const wait = bucket.borrow(n, now)
    if (wait > 0) this.holdForRate(session, wait, why)
    return true
  }

  private newBuckets(): ClientBuckets {
    const now = steadyNow(this.options.runtime)
    return {
      commands: new TokenBucket(this.limits.commandsPerSecond, this.limits.commandBurst, now),
      work: new TokenBucket(this.limits.workPerSecond, this.limits.workBurst, now),
      loads: new TokenBucket(this.limits.loadsPerSecond, this.limits.loadBurst, now),
      stateAsks: new TokenBucket(this.limits.stateBytesPerSecond, this.limits.stateBurstBytes, now),
      presence: new TokenBucket(PRESENCE_CLIENT_BYTES_PER_SECOND, PRESENCE_CLIENT_BURST_BYTES, now),
    }
  }

  /** Reports to the app's onEvent; a throwing listener must not take the hub down. */
  private report(event: HubEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch {
      // the app's diagnostics are its own business
    }
  }

  accept(raw: Connection<ServerMessage>, info?: ConnectionInfo): ConnectionListener<ClientMessage> {
    const now = steadyNow(this.options.runtime)
    // The output gate (guarded-connection.ts): everything the hub, its documents and their
    // followers send this peer goes through it, past which `raw` is never used. A peer that
    // stops reading is closed (slow-consumer) past the hard limit, whatever it asked for, and
    // a send that throws (a message the transport cannot encode) closes that connection only:
    // documents fan out to many connections and must never see the exception.
    const conn = guardConnection(raw, {
      hardLimit: this.options.hardLimit ?? DEFAULT_HARD_LIMIT,
      onError: (e) => this.report({ type: "send-failed", message: e instanceof Error ? e.message : String(e) }),
      // Any close (the hub's, a document's or the gate's slow-consumer, a failed send):
      // transports do not report a close they were asked for, so the session is forgotten here.
      onClosed: (code) => {
        if (code === "slow-consumer") this.report({ type: "limit", code, message: `A connection held more than ${this.options.hardLimit ?? DEFAULT_HARD_LIMIT} bytes unread; closed.` })
        this.drop(session)
      },
    })
    // Its own until its hello is proved (then its client's); the others are the client's only.
    const { commands, work, loads } = this.newBuckets()
    const session: Session = {
      conn, info, clientId: undefined, sender: undefined, principal: undefined, docs: new Set(), resume: new Map(), chain: Promise.resolve(), closed: false, handshakeTimer: undefined,
      messages: new TokenBucket(this.limits.messagesPerSecond, this.limits.messageBurst, now),
      commands, work, loads,
      inflow: new Inflow(() => this.pause(session), () => this.resume(session), this.limits.maxInflightBytes),
      waiting: new Inflow(() => this.pause(session), () => this.resume(session), this.limits.maxQueuedMessages),
      pauses: 0, rateHold: undefined, rateHoldUntil: 0, held: [], merging: false, holdWaiters: [], refusedSubscribes: 0, departed: new Map(),
    }
    if (this.closed) {
      conn.close("going-away", "The hub is shutting down.")
      return { onMessage: () => {}, onClose: () => {} }
    }
    this.sessions.add(session)
    const deadline = this.options.handshakeTimeoutMs ?? 10_000
    // Cancelled by the proved hello or the close: a pending timer would keep a process (and
    // a test runner) alive for the whole deadline after the hub closed.
    // A hello waiting unread after a stall of the hub's process is not late (setDeadline).
    session.handshakeTimer = setDeadline(this.options.runtime, deadline, () => {
      session.handshakeTimer = undefined
      if (session.closed || session.sender !== undefined) return
      this.report({ type: "limit", code: "handshake-timeout", message: `No hello within ${deadline} ms.` })
      this.closeSession(session, "handshake-timeout", `Say hello within ${deadline} ms of connecting.`)
    })
    return {
      onMessage: (msg) => this.receive(session, msg),
      onClose: () => {
        this.drop(session)
      },
    }
  }

  /** A message read from the connection: checked and handled, or kept while the connection is held for its rate. */
  private receive(session: Session, read: ClientMessage, counted = false, weights?: ReadonlyArray<number>): void {
    if (session.closed) return
    if (session.rateHold !== undefined || session.merging) {
      session.held.push({ msg: read, counted, weights })
      return
    }
    const msg = this.withinLimits(session, read, counted, weights)
    // Refused, or a submit whose merges all wait in `held` for the client's debt.
    if (msg === undefined || msg.type === "submit" && msg.commands.length === 0 && read.type === "submit" && read.commands.length > 0) return
    // (A transport that cannot pause would deliver on into `held` without bound: no gate there.)
    const merges = msg.type === "submit" && session.conn.pause !== undefined && this.crdtWork.carriesMerges(msg)
    if (merges) {
      session.merging = true
      this.pause(session)
    }
    // Handling is async (a load, a document's queue): what waits for it is bounded, or a peer
    // sending faster than the hub works would fill the hub's memory (see maxQueuedMessages).
    if (session.conn.pause === undefined && session.waiting.pending >= this.limits.maxQueuedMessages) {
      const message = `More than ${this.limits.maxQueuedMessages} messages waiting for the hub; wait for answers before sending more.`
      this.report({ type: "limit", code: "rate-limited", message })
      this.sendError(session, "rate-limited", message)
      return this.closeSession(session, "rate-limited", message)
    }
    const handled = session.waiting.take(1)
    const ticket = msg.type === "submit" ? this.admit(session, msg, merges) : undefined
    // The connection is not read past a hello until it is proved: what follows is then
    // counted on the client's buckets, shared by its connections, not on fresh ones.
    const proving = msg.type === "hello" && session.sender === undefined
    if (proving) this.pause(session)
    // One connection's messages are handled in order, even across async document loads.
    session.chain = session.chain.then(() => this.handle(session, msg, ticket)).catch((e) => this.fail(session, e))
    if (proving) session.chain = session.chain.finally(() => this.resume(session))
    if (ticket !== undefined) session.chain = session.chain.finally(() => ticket.handed || ticket.release())
    session.chain = session.chain.finally(handled)
  }

  /**
   * Input flow control: a submit's commands wait in memory until their group commit, and a
   * writer may send faster than the disk takes them. Past `maxInflightBytes` of them the hub
   * stops reading the connection (on a transport that can pause; TCP then slows the writer)
   * until they are down to half.
   */
  private admit(session: Session, msg: Submit, merges: boolean): Ticket {
    let bytes = 16
    for (const c of msg.commands) bytes += 16 + c.name.length * 3 + sizeBound(c.args)
    const done = session.inflow.take(bytes)
    if (!merges) return { handed: false, release: done }
    let released = false
    return {
      handed: false,
      release: () => {
        done()
        if (released) return
        released = true
        session.merging = false
        this.release(session)
      },
    }
  }

  /** A hold or a merge gate ended: what was read meanwhile goes first, in order (it may hold the connection again). */
  private release(session: Session): void {
    while (session.rateHold === undefined && !session.merging && !session.closed && session.held.length > 0) {
      const { msg, counted, weights } = session.held.shift()!
      this.receive(session, msg, counted, weights)
    }
    this.resume(session)
  }

  private pause(session: Session): void {
    if (session.pauses++ === 0) session.conn.pause?.()
  }

  private resume(session: Session): void {
    if (--session.pauses === 0 && !session.closed) session.conn.resume?.()
  }

  /**
   * Commands past the rate: the connection is not read until the bucket is out of debt, so a
   * replica catching up after a long offline spell is slowed, not closed and made to send its
   * outbox again. Messages read before the pause took effect extend the hold.
   */
  private holdForRate(session: Session, ms: number, why = `Commands past ${this.limits.commandsPerSecond} per second`): void {
    const until = steadyNow(this.options.runtime) + ms
    if (session.rateHold === undefined) {
      this.pause(session)
      this.report({ type: "limit", code: "rate-held", message: `${why}: this connection is not read for ${ms} ms.` })
    } else if (until <= session.rateHoldUntil) {
      return // the other bucket's debt holds it longer
    } else session.rateHold.cancel()
    session.rateHoldUntil = until
    session.rateHold = this.options.runtime.setTimer(ms, () => {
      session.rateHold = undefined
      this.endHoldWaits(session)
      this.release(session)
    })
  }

  /** Resolves when the connection's rate hold ends, or it closes (at once if it is not held). */
  private holdEnded(session: Session): Promise<void> {
    if (session.rateHold === undefined || session.closed) return Promise.resolve()
    return new Promise((resolve) => session.holdWaiters.push(resolve))
  }

  private endHoldWaits(session: Session): void {
    for (const resolve of session.holdWaiters.splice(0)) resolve()
  }

  /**
   * CRDT updates pay for their estimated work (crdt-work.ts) from the client's work bucket as
   * the frame arrives, command by command. On a transport that can pause, the merge that
   * overdraws the bucket goes through and the connection is held until the debt is paid; the
   * rest of its submit waits for that in `held` (a submit of a thousand merges is not merged
   * in one go on the strength of an empty debt). One that cannot pause is closed when a merge
   * comes while the bucket is in debt. Returns the part of the submit to handle now, or
   * undefined when the connection must close.
   */
  private chargeCrdtWork(session: Session, msg: Submit, now: number, known?: ReadonlyArray<number>): Submit | undefined {
    // Weighed once, as the frame arrives: the rest of a split submit keeps its weights.
    const weights = this.limits.workPerSecond > 0 ? known ?? this.crdtWork.weigh(msg) : undefined
    if (weights === undefined) return msg
    const bucket = session.work
    const pausable = session.conn.pause !== undefined
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] === 0) continue
      if (bucket.inDebt(now)) {
        if (!pausable) return undefined
        session.held.unshift({ msg: { ...msg, commands: msg.commands.slice(i) }, counted: true, weights: weights.slice(i) })
        this.holdForWork(session, now)
        return { ...msg, commands: msg.commands.slice(0, i) }
      }
      bucket.borrow(weights[i]!, now)
    }
    this.holdForWork(session, now)
    return msg
  }

  /** A client in debt for the hub's work (`work` bucket, its address's included) is not read until it is paid: whether it is held. */
  private holdForWork(session: Session, now: number): boolean {
    const owed = this.limits.workPerSecond > 0 && session.conn.pause !== undefined && !session.closed ? session.work.borrow(0, now) : 0
    if (owed > 0) this.holdForRate(session, owed, `Work past ${this.limits.workPerSecond} µs of the hub's time per second`)
    return owed > 0
  }

  /** Rate and size limits, checked as messages arrive (before any queueing). */
  private withinLimits(session: Session, msg: ClientMessage, counted: boolean, weights?: ReadonlyArray<number>): ClientMessage | undefined {
    const now = steadyNow(this.options.runtime)
    const over = (code: string, message: string, close: boolean): undefined => {
      this.report({ type: "limit", code, message })
      this.sendError(session, code, message, "docId" in msg ? msg.docId : undefined)
      if (close) this.closeSession(session, code, message)
      return undefined
    }
    // The rest of a submit held for its CRDT work was counted as it was read.
    if (counted && msg.type === "submit") return this.chargeCrdtWork(session, msg, now, weights) ?? over("rate-limited", this.crdtRateMessage(), true)
    if (!session.messages.take(1, now)) {
      return over("rate-limited", `More than ${this.limits.messagesPerSecond} messages per second; slow down and reconnect.`, true)
    }
    if (msg.type === "submit") {
      if (msg.commands.length > this.limits.maxCommandsPerSubmit) {
        return over("too-many-commands", `A submit may carry at most ${this.limits.maxCommandsPerSubmit} commands; this one had ${msg.commands.length}.`, false)
      }
      if (!this.spend(session, session.commands, msg.commands.length, now, this.limits.commandsPerSecond)) {
        return over("rate-limited", `More than ${this.limits.commandsPerSecond} commands per second; slow down and reconnect.`, true)
      }
      // Commands are charged their time after they ran (`onCommandWork`): a client in debt for
      // them is not read further; what it sent waits in its document (`workWait`).
      this.holdForWork(session, now)
      return this.chargeCrdtWork(session, msg, now) ?? over("rate-limited", this.crdtRateMessage(), true)
    }
    // (A subscribe that loads a document pays for the load where it happens: `acquire`.)
    return msg
  }

  /** Charges `micros` of the hub's time to `clientId`'s work bucket. */
  private chargeWork(clientId: string, micros: number): void {
    if (micros > 0) this.bucketsHeld(clientId)?.work.borrow(micros, steadyNow(this.options.runtime))
  }

  private crdtRateMessage(): string {
    return `CRDT updates worth more than ${this.limits.workPerSecond} µs of the hub's work per second; slow down and reconnect.`
  }

  private async handshake(session: Session, hello: Hello): Promise<void> {
    const refuse = (r: Refusal & { protocol?: VersionRange }) => {
      this.report({ type: "refused", code: r.code, message: r.message })
      session.conn.send({ type: "refused", ...r, message: boundedMessage(r.message) })
      this.closeSession(session, r.code, r.message)
    }
    const hubRange = this.options.protocol ?? SUPPORTED_PROTOCOL
    const version = chooseVersion(hello.protocol, hubRange)
    if (version === undefined) {
      return refuse({
        code: "protocol-unsupported",
        protocol: hubRange,
        message: `This hub speaks protocol ${hubRange.min}..${hubRange.max}; the client speaks ${hello.protocol.min}..${hello.protocol.max}. Update whichever is older.`,
      })
    }
    for (const m of hello.machines) {
      const refusal = checkMachine(m, this.machines)
      if (refusal !== undefined) return refuse(refusal)
    }
    let principal: Principal = ANONYMOUS
    if (this.options.authenticate) {
      const result: { id?: unknown; refuse?: unknown } = await this.options.authenticate(hello, session.info)
      if (typeof result.id !== "string") {
        return refuse({ code: "unauthorized", message: typeof result.refuse === "string" ? result.refuse : "Authentication failed." })
      }
      principal = result as Principal
    }
    const idProblem = clientIdProblem(hello.clientId)
    if (idProblem !== undefined) return refuse({ code: "unauthorized", message: idProblem })
    const registrant = this.options.authenticate !== undefined ? `principal:${principal.id}` : `address:${session.info?.limitKey ?? session.info?.remoteAddress ?? ""}`
    const proof = await this.identities.prove(hello.clientId, hello.secret, principal.id, this.options.authenticate !== undefined, () => this.mayRegister(registrant))
    if (session.closed) return
    if (!proof.ok && proof.rateLimited) {
      // Not a refusal (those are final for a client): it comes back after its backoff.
      this.report({ type: "limit", code: "rate-limited", message: `New clients past ${this.limits.newClientsPerSecond} per second from ${registrant}.` })
      this.sendError(session, "rate-limited", proof.message)
      return this.closeSession(session, "rate-limited", proof.message)
    }
    if (!proof.ok) return refuse({ code: "unauthorized", message: proof.message })
    session.clientId = hello.clientId
    session.sender = { clientId: hello.clientId, incarnation: proof.incarnation, protocol: version }
    // What the connection sent before its hello was proved was counted on buckets of its own
    // (a transport that cannot pause reads on): it is the client's spending too.
    const shared = this.bucketsOf(hello.clientId)
    const live = this.live.get(hello.clientId)
    if (live !== undefined) live.sessions++
    else this.live.set(hello.clientId, { buckets: shared, sessions: 1 })
    // Its work is paid from its address's (or principal's) too: fresh client ids are cheap.
    if (this.limits.sharedWorkPerSecond > 0) {
      const now = steadyNow(this.options.runtime)
      shared.work.parent = touch(this.sharedWork, registrant, () => new SharedWork(this.limits.sharedWorkPerSecond, this.limits.sharedWorkBurst, now))
    }
    const now = steadyNow(this.options.runtime)
    const wait = Math.max(0, ...[shared.commands.absorb(session.commands, now), shared.work.absorb(session.work, now), shared.loads.absorb(session.loads, now)].filter(Number.isFinite))
    ;({ commands: session.commands, work: session.work, loads: session.loads } = shared)
    // (A bucket whose rate is 0 never refills: a burst, then refusals, never a hold for ever.)
    if (wait > 0 && session.conn.pause !== undefined) this.holdForRate(session, wait, "Past the client's rate before its hello was proved")
    session.handshakeTimer?.cancel()
    session.handshakeTimer = undefined
    session.principal = principal
    session.conn.send({ type: "welcome", protocol: version, clientId: hello.clientId })
  }

  private async allowed(session: Session, docId: string, access: "read" | "write"): Promise<boolean> {
    const authorize = this.options.authorize
    // Only true allows, as on the CRDT routes: a hook that returns something else by mistake
    // (a string, an object) denies.
    return authorize === undefined || (await authorize(session.principal ?? ANONYMOUS, docId, access)) === true
  }

  private async handle(session: Session, msg: ClientMessage, ticket?: Ticket): Promise<void> {
    if (session.closed) return
    if (msg.type === "hello") {
      if (session.clientId !== undefined) return this.protocolError(session, "A second hello on one connection.")
      return this.handshake(session, msg)
    }
    const sender = session.sender
    if (sender === undefined) {
      this.protocolError(session, session.clientId === undefined ? `${quoted(msg.type)} before "hello": say hello first.` : `${quoted(msg.type)} before the hello was answered.`)
      return
    }
    if ("docId" in msg && msg.docId !== undefined) {
      const problem = docIdProblem(msg.docId)
      if (problem !== undefined) {
        if (msg.type === "subscribe") return this.refuseSubscribe(session, "invalid-doc-id", problem)
        this.sendError(session, "invalid-doc-id", problem)
        return
      }
    }
    switch (msg.type) {
      case "subscribe": {
        const machine = this.machines.get(msg.machine)
        if (machine === undefined) return this.refuseSubscribe(session, "machine-unknown", `This hub has no machine ${quoted(msg.machine)}.`, msg.docId)
        const mismatch = checkMachine({ name: msg.machine, version: msg.version, fingerprint: msg.fingerprint }, this.machines)
        if (mismatch !== undefined) return this.refuseSubscribe(session, mismatch.code, mismatch.message, msg.docId)
        if (!session.docs.has(msg.docId) && session.docs.size >= this.limits.maxDocsPerConnection) {
          this.report({ type: "limit", code: "too-many-docs", message: msg.docId })
          return this.refuseSubscribe(session, "too-many-docs", `One connection may follow at most ${this.limits.maxDocsPerConnection} documents; close some first.`, msg.docId)
        }
        if (!(await this.allowed(session, msg.docId, "read"))) return this.refuseSubscribe(session, "unauthorized", `You may not read document ${quoted(msg.docId)}.`, msg.docId)
        const load = (): Promise<DocAuthority<any> | undefined> => this.acquire(session, msg.docId, machine).catch((error) => {
          this.report({ type: "doc-load-failed", docId: msg.docId, error })
          const code = (error as { code?: string }).code ?? "storage-failed"
          this.sendError(session, code, peerText(error, `The hub's storage failed reading ${quoted(msg.docId)}.`), msg.docId)
          return undefined
        })
        let doc = await load()
        if (doc === undefined || session.closed) return
        if (doc.machine !== machine && (await this.claimUnwritten(session, doc))) {
          doc = await load()
          if (doc === undefined || session.closed) return
        }
        if (doc.machine !== machine) return this.refuseSubscribe(session, "machine-mismatch", `Document ${quoted(msg.docId)} is a "${doc.machine.name}", not a ${quoted(msg.machine)}.`, msg.docId)
        // A document whose upgrade failed serves the versions up to its own, and refuses newer ones.
        const held = doc.refusal(msg.version)
        if (held !== undefined) return this.refuseSubscribe(session, held.code, held.message, msg.docId)
        session.docs.add(msg.docId)
        const resume = session.resume.get(msg.docId)
        session.resume.delete(msg.docId)
        const departed = session.departed.get(msg.docId)
        session.departed.delete(msg.docId)
        doc.subscribe(session.conn, sender, msg.fromSeq, msg.ackedClientSeq, resume, msg.version, departed)
        return
      }
      case "submit":
      case "fetch-state":
      case "unsubscribe": {
        const notSubscribed = () => this.sendError(session, "not-subscribed", `Subscribe to ${quoted(msg.docId)} before ${quoted(msg.type)}.`, msg.docId)
        if (!session.docs.has(msg.docId) || !this.docs.has(msg.docId)) return notSubscribed()
        // Asked before the document is taken from the map: no instance is held across the
        // app's hook (one unloaded meanwhile must never be written to).
        const refuse = msg.type === "submit" && msg.commands.length > 0 && !(await this.allowed(session, msg.docId, "write"))
          ? { code: "unauthorized" as const, message: `You may not change document ${quoted(msg.docId)}.` }
          : undefined
        const loaded = session.docs.has(msg.docId) && !session.closed ? this.docs.get(msg.docId) : undefined
        if (loaded === undefined) return notSubscribed()
        const doc = await loaded
        if (msg.type === "submit") {
          if (ticket !== undefined) ticket.handed = true
          doc.submit(session.conn, sender, msg, refuse, ticket?.release)
        }
        else if (msg.type === "fetch-state") doc.fetchState(session.conn)
        else {
          const departed = doc.unsubscribe(session.conn, true)
          session.docs.delete(msg.docId)
          session.departed.delete(msg.docId)
          if (departed !== undefined) {
            session.departed.set(msg.docId, departed)
            for (const docId of session.departed.keys()) {
              if (session.departed.size <= this.limits.maxDocsPerConnection) break
              session.departed.delete(docId)
            }
          }
        }
        return
      }
      case "presence-set": {
        const loaded = session.docs.has(msg.docId) ? this.docs.get(msg.docId) : undefined
        if (loaded === undefined) return
        if (encodedSize(msg.state) > this.limits.maxPresenceBytes) {
          this.sendError(session, "presence-too-large", `Presence is limited to ${this.limits.maxPresenceBytes} bytes; send less (a cursor, a name, a colour).`, msg.docId)
          return
        }
        ;(await loaded).setPresence(session.conn, msg.state)
        return
      }
      case "snapshot-ack": {
        const loaded = session.docs.has(msg.docId) ? this.docs.get(msg.docId) : undefined
        if (loaded === undefined) {
          // Sent before subscribing: where a resumed stream of that snapshot should start.
          if (session.resume.size < this.limits.maxDocsPerConnection) session.resume.set(msg.docId, { snapshotId: msg.snapshotId, received: msg.received })
          return
        }
        ;(await loaded).snapshotAck(session.conn, msg.snapshotId, msg.received)
        return
      }
      default:
        this.protocolError(session, `Unknown message type ${quoted(String((msg as { type: unknown }).type))}.`)
    }
  }

  /**
   * A document nobody has written yet is loaded with its first subscriber's machine, but that
   * does not settle it: a subscriber with another machine that may write it takes it when none
   * of those following it may (they are told `machine-mismatch`), so a reader cannot lock a
   * document's writers out before it is created. Returns whether it was let go for a reload.
   */
  private async claimUnwritten(session: Session, doc: DocAuthority<any>): Promise<boolean> {
    const docId = doc.docId
    if (!doc.unwritten || !(await this.allowed(session, docId, "write"))) return false
    const followers = [...this.sessions].filter((s) => s !== session && s.docs.has(docId))
    for (const s of followers) if (await this.allowed(s, docId, "write")) return false
    // Checked again after the hooks: a write, an unload or a reload may have come meanwhile.
    const current = this.docs.get(docId)
    if (!doc.unwritten || current === undefined || (await current) !== doc || session.closed) return false
    this.docs.delete(docId)
    for (const s of this.sessions) {
      if (s === session || !s.docs.has(docId)) continue
      s.docs.delete(docId)
      this.sendError(s, "machine-mismatch", `Document ${quoted(docId)} is being created as another machine by a client that may write it; it is not a "${doc.machine.name}".`, docId)
    }
    doc.unload()
    return true
  }

  /**
   * A subscribe refused (a machine or version this hub does not serve, a document the client
   * may not read or one past maxDocsPerConnection...). Protocol 2 gave the document a channel
   * as the frame was decoded, on both ends, and a channel is never given back (a client that
   * subscribes to the document again uses it: codec-shared.ts), so a connection's refused
   * subscribes are bounded (`maxRefusedSubscribes`): past it the connection is closed
   * `rate-limited`, and the client comes back with a fresh session.
   */
  private refuseSubscribe(session: Session, code: string, message: string, docId?: string): void {
    this.sendError(session, code, message, docId)
    if (++session.refusedSubscribes <= this.limits.maxRefusedSubscribes) return
    const why = `More than ${this.limits.maxRefusedSubscribes} subscribes refused on one connection; reconnect.`
    this.report({ type: "limit", code: "rate-limited", message: why })
    this.sendError(session, "rate-limited", why)
    this.closeSession(session, "rate-limited", why)
  }

  /**
   * An error to a session, through its output gate like everything else: the sentence cut to
   * what the wire carries, whatever it quotes (client strings in it are `quoted` already).
   */
  private sendError(session: Session, code: string, message: string, docId?: string): void {
    session.conn.send({ type: "error", code, message: boundedMessage(message), ...(docId !== undefined ? { docId } : {}) })
  }

  /** Closes the connection; the guarded connection's close forgets the session (see `accept`). */
  private closeSession(session: Session, code: string, reason: string): void {
    session.conn.close(code, reason)
  }

  /**
   * What the hub holds right now: open documents, connections, and messages read and not yet
   * handled, in all and on the busiest connection (at most `limits.maxQueuedMessages`, plus
   * what one read delivers past the pause).
   */
  stats(): { readonly documents: number; readonly connections: number; readonly queuedMessages: number; readonly mostQueuedMessages: number } {
    let queued = 0
    let most = 0
    for (const s of this.sessions) {
      queued += s.waiting.pending
      most = Math.max(most, s.waiting.pending)
    }
    return { documents: this.docs.size, connections: this.sessions.size, queuedMessages: queued, mostQueuedMessages: most }
  }

  /**
   * The authority of a document, loading it on first use. A document nobody follows is
   * unloaded a while after it is idle (`idleDocuments`): get it again rather than keep the
   * instance (an unloaded one refuses submits and subscribes). The app's own calls are not
   * charged to any client; a client's subscribe goes through `acquire`.
   */
  doc<S>(docId: string, machine: Machine<S>): Promise<DocAuthority<S>> {
    return (this.loaded(docId) ?? this.startLoad(docId, machine, PAID)) as Promise<DocAuthority<S>>
  }

  /**
   * The authority of a document for a client's subscribe. A document not in memory is read
   * from storage, which costs the hub far more than the message: the client pays a token of
   * its loads bucket for it here, as the load happens, whatever made it needed (a first use,
   * an idle unload, a claim that let an unwritten document go: `claimUnwritten`). Undefined
   * when the client cannot pay (it is closed) or the connection closed meanwhile.
   */
  private async acquire(session: Session, docId: string, machine: Machine<any>): Promise<DocAuthority<any> | undefined> {
    let token: PaidLoad | undefined
    for (;;) {
      const p = this.loaded(docId)
      if (p !== undefined) return p
      // Paid, and nothing awaited since the document was found missing: load it now.
      if (token !== undefined) {
        const loading = this.startLoad(docId, machine, token)
        // Its load (the log's replay, app code; the snapshot's decoding) is work done for this client: charged as its commands are.
        loading.then((doc) => {
          if (this.limits.workPerSecond > 0 && session.clientId !== undefined) this.chargeWork(session.clientId, doc.loadMicros)
        }, () => {})
        return loading
      }
      token = await this.payLoad(session, docId)
      if (token === undefined) return undefined
    }
  }

  /**
   * A load paid from the client's loads bucket (`loadsPerSecond`, `loadBurst`, shared by its
   * connections). On a transport that can pause, past the bucket the connection is held until
   * the debt is paid and the load waits for it, so loads happen at the client's rate; one that
   * cannot pause is closed `rate-limited`.
   */
  private async payLoad(session: Session, docId: string): Promise<PaidLoad | undefined> {
    const rate = this.limits.loadsPerSecond
    if (rate > 0) {
      const why = `Document loads past ${rate} per second`
      const now = steadyNow(this.options.runtime)
      if (session.conn.pause === undefined) {
        if (!session.loads.take(1, now)) {
          const message = `${why}; follow fewer new documents at once, slow down and reconnect.`
          this.report({ type: "limit", code: "rate-limited", message })
          this.sendError(session, "rate-limited", message, docId)
          this.closeSession(session, "rate-limited", message)
          return undefined
        }
      } else {
        const wait = session.loads.borrow(1, now)
        if (wait > 0) {
          this.holdForRate(session, wait, why)
          await this.holdEnded(session)
        }
      }
    }
    // A load replays its log, charged to the loader (`acquire`): one in debt for it waits first.
    if (this.holdForWork(session, steadyNow(this.options.runtime))) await this.holdEnded(session)
    return session.closed ? undefined : PAID
  }

  /** The document's authority if it is loaded or loading (a kept idle one is in use again). */
  private loaded(docId: string): Promise<DocAuthority<any>> | undefined {
    const p = this.docs.get(docId)
    // A kept idle document in use again: it tells again when idle, if this use ends without a follower.
    this.idleDocs.take(docId)?.doc.watchIdle()
    return p
  }

  /** Reads a document from storage: the only place the hub does, and only paid for (`PaidLoad`). */
  private startLoad(docId: string, machine: Machine<any>, _paid: PaidLoad): Promise<DocAuthority<any>> {
    // A broken instance still writing (a snapshot, the compaction behind it) finishes first:
    // one writer per document's storage.
    const before = this.settling.get(docId) ?? Promise.resolve()
    const loading: Promise<DocAuthority<any>> = before.then(() => DocAuthority.load(docId, machine, this.store, this.options.runtime, this.options, {
      onBroken: (doc, error) => this.broken(doc, error),
      onReport: (r) => this.report({ type: "doc-report", ...r }),
      // What a merge cost past its estimate: the client's next merge waits for it.
      onCrdtWork: (clientId, command, micros) => {
        if (this.limits.workPerSecond > 0) this.chargeWork(clientId, this.crdtWork.excess(command, micros, this.limits.workBurst))
      },
      // Any other command's time, measured, in full (a debt may go deeper than the burst: capped,
      // commands of 10 s each took 0.63 of the hub against a rate of 0.25): its client's next
      // commands wait while it is in debt.
      onCommandWork: (clientId, micros) => {
        if (this.limits.workPerSecond > 0) this.chargeWork(clientId, micros)
      },
      turns: this.turns,
      workWait: (clientId, atLeast = 0) => this.limits.workPerSecond > 0 ? this.bucketsHeld(clientId)?.work.until(atLeast, steadyNow(this.options.runtime)) ?? 0 : 0,
      presenceBudget: (clientId) => this.bucketsOf(clientId).presence,
      fieldWeight: this.fieldWeight,
      memory: this.memory,
      // The CRDT host's lets go of this hub's idle documents too (its onNoRoom, above).
      onNoRoom: () => void (this.crdtHost?.letGoIdle() ?? this.idleDocs.letGoAll()),
      // A state streamed to a client (asked for, or a stored snapshot) is paid by it: in debt, it waits (nothing charged).
      onStateAsked: (clientId, bytes) => {
        if (this.limits.stateBytesPerSecond <= 0) return 0
        const bucket = this.bucketsOf(clientId).stateAsks
        const now = steadyNow(this.options.runtime)
        if (bucket.inDebt(now)) return bucket.borrow(0, now)
        bucket.borrow(bytes, now)
        return 0
      },
      // Idle: nobody follows it, nothing in flight. Kept a while; a later use after that loads it again from storage.
      onIdle: (doc) => {
        if (this.docs.get(docId) === loading) this.idleDocs.keep(docId, { doc, loading }, doc.heldBytes)
      },
    }))
    this.docs.set(docId, loading)
    loading.catch(() => this.docs.delete(docId))
    return loading
  }

  /** A kept idle document's time is up (or room is needed): unloaded, unless it was used again meanwhile. */
  private unloadIdle(docId: string, doc: DocAuthority<any>, loading: Promise<DocAuthority<any>>): void {
    if (this.docs.get(docId) !== loading) return
    if (!doc.idle) return doc.watchIdle()
    this.docs.delete(docId)
    doc.unload()
  }

  private broken(doc: DocAuthority<any>, error: unknown): void {
    this.report({ type: "doc-broken", docId: doc.docId, error })
    this.docs.delete(doc.docId)
    this.idleDocs.forget(doc.docId, (kept) => kept.doc === doc)
    doc.close()
    const settled = doc.settled()
    this.settling.set(doc.docId, settled)
    void settled.then(() => this.settling.get(doc.docId) === settled && this.settling.delete(doc.docId))
    // Clients reconnect and resubscribe; the document reloads from what storage holds.
    for (const s of [...this.sessions]) {
      if (s.docs.has(doc.docId)) s.conn.close("storage-failed", `Storage failed for document "${doc.docId}"; reconnect to reload it.`)
    }
  }

  private protocolError(session: Session, message: string): void {
    this.report({ type: "protocol-error", message })
    this.sendError(session, "protocol-error", message)
    this.closeSession(session, "protocol-error", message)
  }

  private fail(session: Session, e: unknown): void {
    // The detail is the operator's (onEvent): a hook's or a disk's error text can name hosts,
    // paths or credentials, and the peer can do nothing with it.
    const detail = errorText(e)
    // The hub's disk failing is not the peer's fault: it reconnects and tries again.
    if ((e as { code?: unknown })?.code === "storage-failed") {
      this.report({ type: "storage-failed", message: detail })
      return this.closeSession(session, "storage-failed", "The hub's storage failed; reconnect and try again.")
    }
    this.report({ type: "protocol-error", message: `Internal error: ${detail}` })
    const told = "Internal error on the hub (its operator has the details); reconnect."
    this.sendError(session, "protocol-error", told)
    this.closeSession(session, "protocol-error", told)
  }

  private drop(session: Session): void {
    if (session.closed) return
    session.closed = true
    session.handshakeTimer?.cancel()
    session.handshakeTimer = undefined
    session.rateHold?.cancel()
    session.rateHold = undefined
    this.endHoldWaits(session)
    session.held.length = 0
    // Read again, so the close handshake completes (a paused socket never reads the peer's close frame).
    if (session.pauses > 0) session.conn.resume?.()
    this.sessions.delete(session)
    const live = session.sender !== undefined ? this.live.get(session.sender.clientId) : undefined
    if (live !== undefined && --live.sessions === 0) this.live.delete(session.sender!.clientId)
    for (const docId of session.docs) {
      void this.docs.get(docId)?.then((d) => d.unsubscribe(session.conn), () => {})
    }
  }

  /** Closes every connection and document. Storage is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true
    for (const s of [...this.sessions]) this.closeSession(s, "going-away", "The hub is shutting down.")
    const closing: Array<Promise<void>> = [...this.settling.values()]
    for (const p of this.docs.values()) {
      const d = await p.catch(() => undefined)
      d?.close()
      if (d !== undefined) closing.push(d.settled())
    }
    this.docs.clear()
    this.idleDocs.clear()
    // Hellos being proved record nothing more; those writing finish.
    closing.push(this.identities.close())
    // What documents still write (a snapshot) ends before the caller closes the storage or opens it again.
    await Promise.allSettled(closing)
    await this.crdtHost?.close()
    // Nothing of the documents runs on: no slice sets a timer after close.
    this.turns.close()
  }
}

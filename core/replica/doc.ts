/**
 * A document as the app sees it: the live view, `submit`, `subscribe`, and events. It wires
 * a ReplicaState (the in-memory rebase logic) to the replica's storage and to the client's
 * connection.
 *
 * Durability order: a command's outbox record is written before the command is sent; a
 * confirmation removes it and advances the confirmed seq in one write. Writes of one
 * document go through one lane, in order.
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
import { decodeCanonical, encodeCanonical, sizeBound } from "../canonical.js"
import { CommandRejected, canonError, type Rejection } from "../errors.js"
import { schemaMessage, type ArgsOf, type CommandName, type Machine, type StateOf } from "../machine.js"
import * as Result from "effect/Result"
import type { ClientMessage, ServerMessage } from "../protocol/messages.js"
import type { ReplicaStore } from "../store/replica-store.js"
import { ReplicaState, type Desync, type PendingCommand } from "./replica-state.js"

/** Resolves when the authority confirms the command; rejects with CommandRejected. */
export interface Receipt extends Promise<{ readonly seq: number }> {
  /** Assigned at submit; -1 when the command was refused locally (invalid arguments). */
  readonly clientSeq: number
  /** Resolves once the command is in the durable outbox (and may be sent). */
  readonly persisted: Promise<void>
}

export interface DocEvents<S> {
  change: (state: S) => void
  /** A command of this replica was refused (also for commands recovered after a restart). */
  rejected: (event: { readonly clientSeq: number; readonly command: string; readonly rejection: Rejection }) => void
  /** A command of this replica was confirmed. */
  confirmed: (event: { readonly clientSeq: number; readonly command: string; readonly seq: number }) => void
  /** The confirmed state's hash differs from the authority's checkpoint; a resync follows. */
  desync: (event: Desync) => void
  /** Caught up with the authority. */
  synced: (event: { readonly seq: number }) => void
  /** The hub refused something about this document, or storage failed. */
  error: (event: { readonly code: string; readonly message: string }) => void
  /** Another client's presence changed (`state` null: it left or went away). */
  presence: (event: { readonly clientId: string; readonly state: unknown }) => void
  /** `close` was called: no more events follow. */
  closed: (event: { readonly docId: string }) => void
}

/** Settled commands after which an ack goes out on its own (else it rides the next submit). */
const ACK_EVERY = 64

/** Commands per submit message. */
const SUBMIT_CHUNK = 256
/** Bytes (upper bound) per submit message: half the default 1 MiB frame limit. */
const SUBMIT_BYTES = 512 << 10

interface Deferred {
  resolve(v: { seq: number }): void
  reject(e: unknown): void
  persisted(): void
}

export interface DocOptions {
  /** Write the confirmed state whole every this many confirmed entries. Default 1000. */
  readonly snapshotEvery?: number
}

export class Doc<M extends Machine<any, any>> {
  private readonly rs: ReplicaState<StateOf<M>>
  private readonly deferreds = new Map<number, Deferred>()
  private readonly listeners: { [K in keyof DocEvents<unknown>]: Set<Function> } = {
    change: new Set(), rejected: new Set(), confirmed: new Set(), desync: new Set(), synced: new Set(), error: new Set(), presence: new Set(), closed: new Set(),
  }
  private nextClientSeq: number
  private toPersist: PendingCommand[] = []
  private lane: Promise<void> = Promise.resolve()
  /** Settled commands whose outbox removal is not durable yet. */
  private readonly settling = new Set<number>()
  private send: ((m: ClientMessage) => void) | undefined
  private lastAckSent = -1
  private ownPresence: unknown = null
  private presenceQueued = false
  private readonly others = new Map<string, unknown>()
  private resyncing = false
  private notifyScheduled = false
  private isSynced = false
  private closed = false
  // What the lane has written: the next write builds on these.
  private laneNext: number
  private laneConfirmed: number
  private laneSnapshotSeq: number
  private sinceSnapshot = 0
  private readonly snapshotEvery: number

  /** @internal use `CanonClient.open` */
  constructor(
    readonly machine: M,
    readonly docId: string,
    readonly clientId: string,
    private readonly store: ReplicaStore | undefined,
    now: () => number,
    init: { state: StateOf<M>; confirmedSeq: number; nextClientSeq: number; snapshotSeq: number; outbox: ReadonlyArray<{ clientSeq: number; name: string; args: unknown }> },
    options: DocOptions,
    private readonly onClosed: () => void = () => {},
  ) {
    this.rs = new ReplicaState(docId, machine, clientId, now, init.state, init.confirmedSeq)
    this.nextClientSeq = init.nextClientSeq
    this.laneNext = init.nextClientSeq
    this.laneConfirmed = init.confirmedSeq
    this.laneSnapshotSeq = init.snapshotSeq
    this.snapshotEvery = options.snapshotEvery ?? 1000
    for (const o of init.outbox) {
      const cmd = machine.compiled.get(o.name)
      const decoded = cmd?.decode(o.args)
      if (cmd === undefined || decoded === undefined || Result.isFailure(decoded)) {
        // Stored by an older machine and no longer valid here: the authority will say so.
        const fallback = machine.compiled.values().next().value!
        this.rs.push({ clientSeq: o.clientSeq, name: o.name, args: undefined, encoded: o.args, cmd: { ...fallback, apply: () => undefined }, journal: undefined, localRejection: undefined, persisted: true })
        continue
      }
      this.rs.push({ clientSeq: o.clientSeq, name: o.name, args: decoded.success, encoded: o.args, cmd, journal: undefined, localRejection: undefined, persisted: true })
    }
  }

  /**
   * The view: confirmed state plus pending local commands. A live read-only proxy: it always
   * shows the latest state, and any write throws `state-read-only` (change it with `submit`).
   * For a plain, independent copy (to keep, to structuredClone, to post to a worker) use
   * `snapshot()`.
   */
  get state(): StateOf<M> {
    return this.rs.view
  }

  /** A deep plain copy of the view, detached from the document. O(size of the state). */
  snapshot(): StateOf<M> {
    return decodeCanonical(encodeCanonical(this.rs.host.root)) as StateOf<M>
  }

  get confirmedSeq(): number {
    return this.rs.confirmedSeq
  }

  /** Local commands not yet confirmed or rejected. */
  get pendingCount(): number {
    return this.rs.pending.length
  }

  /** clientSeqs of pending commands, oldest first. */
  get pending(): ReadonlyArray<{ readonly clientSeq: number; readonly name: string }> {
    return this.rs.pending.map((p) => ({ clientSeq: p.clientSeq, name: p.name }))
  }

  /** True once caught up with the authority on the current connection. */
  get synced(): boolean {
    return this.isSynced
  }

  /** Hash of the confirmed state (what checkpoints compare). */
  confirmedHash(): string {
    return this.rs.confirmedHash()
  }

  /**
   * Applies the command locally at once and sends it to the authority. The receipt resolves
   * with the entry's seq once confirmed, or rejects with `CommandRejected`.
   */
  submit<K extends CommandName<M>>(name: K, args: ArgsOf<M, K>): Receipt {
    if (this.closed) throw canonError("closed", `Document "${this.docId}" is closed.`)
    const cmd = this.machine.compiled.get(name)
    const refuse = (rejection: Rejection): Receipt => {
      const p = Promise.reject(new CommandRejected({ ...rejection, command: name, clientSeq: -1 }))
      p.catch(() => {})
      return Object.assign(p, { clientSeq: -1, persisted: Promise.resolve() })
    }
    if (cmd === undefined) return refuse({ code: "unknown-command", message: `Machine "${this.machine.name}" has no command "${name}".` })
    const encoded = cmd.encode(args)
    if (Result.isFailure(encoded)) return refuse({ code: "invalid-args", message: `Invalid arguments for "${name}": ${schemaMessage(encoded.failure)}` })
    if (sizeBound(encoded.success) > SUBMIT_BYTES) {
      return refuse({ code: "invalid-args", message: `The arguments of "${name}" are too large to send (over ${SUBMIT_BYTES} bytes); keep big blobs out of commands.` })
    }

    const clientSeq = this.nextClientSeq++
    const pending: PendingCommand = { clientSeq, name, args, encoded: encoded.success, cmd, journal: undefined, localRejection: undefined, persisted: false }
    let deferred!: Deferred
    let persistedResolve!: () => void
    const persisted = new Promise<void>((r) => (persistedResolve = r))
    const promise = new Promise<{ seq: number }>((resolve, reject) => {
      deferred = { resolve, reject, persisted: persistedResolve }
    })
    // Fire-and-forget callers must not crash the process on a rejection: mark it handled.
    promise.catch(() => {})
    this.deferreds.set(clientSeq, deferred)
    this.rs.push(pending)
    this.toPersist.push(pending)
    if (this.toPersist.length === 1) queueMicrotask(() => this.flushOutbox())
    this.scheduleNotify()
    return Object.assign(promise, { clientSeq, persisted })
  }

  /**
   * Sets this client's presence on the document (a cursor, a name and colour, the card being
   * edited): plain data, at most 4 KiB, never logged, gone when the client leaves. Calls in
   * one tick send once; throttle high-rate sources (mouse moves) in the app.
   */
  setPresence(state: unknown): void {
    this.ownPresence = state ?? null
    if (this.presenceQueued) return
    this.presenceQueued = true
    queueMicrotask(() => {
      this.presenceQueued = false
      this.send?.({ type: "presence-set", docId: this.docId, state: this.ownPresence })
    })
  }

  /** The presence of the other clients on this document, by clientId. */
  get presence(): ReadonlyMap<string, unknown> {
    return this.others
  }

  /** Calls `fn` with the view after each batch of changes. Returns the unsubscribe function. */
  subscribe(fn: (state: StateOf<M>) => void): () => void {
    return this.on("change", fn)
  }

  on<K extends keyof DocEvents<StateOf<M>>>(event: K, fn: DocEvents<StateOf<M>>[K]): () => void {
    this.listeners[event].add(fn)
    return () => this.listeners[event].delete(fn)
  }

  private emit<K extends keyof DocEvents<StateOf<M>>>(event: K, arg: Parameters<DocEvents<StateOf<M>>[K]>[0]): void {
    for (const fn of this.listeners[event]) {
      try {
        fn(arg)
      } catch {
        // A listener's bug must not break replication.
      }
    }
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return
    this.notifyScheduled = true
    queueMicrotask(() => {
      this.notifyScheduled = false
      this.emit("change", this.rs.view)
    })
  }

  private enqueue(write: (store: ReplicaStore) => Promise<void>, then: () => void): void {
    const store = this.store
    if (store === undefined) {
      this.lane = this.lane.then(then)
      return
    }
    this.lane = this.lane
      .then(() => write(store))
      .then(then, (e) => this.emit("error", { code: "storage-failed", message: `Writing document "${this.docId}" failed: ${e instanceof Error ? e.message : String(e)}` }))
  }

  /** Settled lane: resolves when every write queued so far is done. */
  whenStored(): Promise<void> {
    return this.lane
  }

  private flushOutbox(): void {
    const batch = this.toPersist
    this.toPersist = []
    if (batch.length === 0) return
    const next = batch[batch.length - 1]!.clientSeq + 1
    this.enqueue(
      (store) => store.appendOutbox(this.docId, { machine: this.machine.name, version: this.machine.version, confirmedSeq: this.laneConfirmed, nextClientSeq: next }, batch.map((p) => ({ clientSeq: p.clientSeq, name: p.name, args: p.encoded }))),
      () => {
        this.laneNext = next
        const live: PendingCommand[] = []
        const stillPending = new Set(this.rs.pending)
        for (const p of batch) {
          p.persisted = true
          this.deferreds.get(p.clientSeq)?.persisted()
          if (stillPending.has(p)) live.push(p)
        }
        if (this.send !== undefined && live.length > 0) {
          this.sendSubmit(live)
        }
      },
    )
  }

  private ackedClientSeq(): number {
    let low = this.nextClientSeq
    for (const p of this.rs.pending) if (p.clientSeq < low) low = p.clientSeq
    for (const cs of this.settling) if (cs < low) low = cs
    for (const p of this.toPersist) if (p.clientSeq < low) low = p.clientSeq
    return low - 1
  }

  private sendSubmit(commands: ReadonlyArray<PendingCommand>): void {
    const acked = this.ackedClientSeq()
    this.lastAckSent = acked
    // Well under the hub's per-submit and frame limits, so a long offline outbox goes out in pieces.
    let part: PendingCommand[] = []
    let size = 0
    const flush = () => {
      if (part.length === 0) return
      this.send?.({ type: "submit", docId: this.docId, commands: part.map((p) => ({ clientSeq: p.clientSeq, name: p.name, args: p.encoded })), ackedClientSeq: acked })
      part = []
      size = 0
    }
    for (const p of commands) {
      const n = 16 + p.name.length * 3 + sizeBound(p.encoded)
      if (part.length >= SUBMIT_CHUNK || (part.length > 0 && size + n > SUBMIT_BYTES)) flush()
      part.push(p)
      size += n
    }
    flush()
  }

  // ---- connection (called by the client) ----

  /** @internal the connection is up: subscribe from the confirmed seq and resend the outbox. */
  connected(send: (m: ClientMessage) => void): void {
    this.send = send
    this.isSynced = false
    this.resyncing = false
    const acked = this.ackedClientSeq()
    this.lastAckSent = acked
    send({ type: "subscribe", docId: this.docId, machine: this.machine.name, version: this.machine.version, fingerprint: this.machine.fingerprint, fromSeq: this.rs.confirmedSeq, ackedClientSeq: acked })
    if (this.ownPresence !== null) send({ type: "presence-set", docId: this.docId, state: this.ownPresence })
    this.resend()
  }

  private resend(): void {
    const ready = this.rs.pending.filter((p) => p.persisted)
    if (ready.length > 0) this.sendSubmit(ready)
  }

  /** @internal the connection is gone. */
  disconnected(): void {
    this.send = undefined
    this.isSynced = false
    // Who is here is unknown while offline: the hub resends it on reconnect.
    for (const clientId of [...this.others.keys()]) {
      this.others.delete(clientId)
      this.emit("presence", { clientId, state: null })
    }
  }

  /** @internal a message about this document. */
  receive(msg: ServerMessage): void {
    if (this.closed) return
    switch (msg.type) {
      case "entries": {
        if (msg.checkpoint !== undefined) this.handleDesync(this.rs.checkpoint(msg.checkpoint.seq, msg.checkpoint.hash))
        this.integrate(msg.entries, undefined, new Map())
        return
      }
      case "results": {
        const settle = new Set<number>()
        const rejected = new Map<number, Rejection>()
        const acceptedEarlier: { clientSeq: number; seq: number }[] = []
        for (const o of msg.outcomes) {
          if (!this.rs.pending.some((p) => p.clientSeq === o.clientSeq)) continue
          if ("rejection" in o) {
            settle.add(o.clientSeq)
            rejected.set(o.clientSeq, o.rejection)
          } else if (o.seq <= this.rs.confirmedSeq) {
            // Confirmed inside a state transfer: no entry will come for it.
            settle.add(o.clientSeq)
            acceptedEarlier.push(o)
          }
        }
        if (settle.size === 0) return
        const names = new Map(this.rs.pending.filter((p) => settle.has(p.clientSeq)).map((p) => [p.clientSeq, p.name]))
        this.integrate([], settle, rejected)
        for (const { clientSeq, seq } of acceptedEarlier) this.settleConfirmed(clientSeq, names.get(clientSeq) ?? "", seq)
        return
      }
      case "checkpoint":
        this.handleDesync(this.rs.checkpoint(msg.seq, msg.hash))
        return
      case "synced":
        this.isSynced = true
        this.emit("synced", { seq: msg.seq })
        return
      case "state": {
        this.resyncing = false
        this.rs.reset(msg.seq, msg.state)
        this.enqueue(
          (store) => store.confirm(this.docId, {
            meta: { machine: this.machine.name, version: this.machine.version, confirmedSeq: msg.seq, nextClientSeq: this.laneNext },
            entries: [],
            settled: [],
            snapshot: { seq: msg.seq, state: msg.state, dropFrom: this.laneSnapshotSeq + 1, dropTo: this.laneConfirmed },
          }),
          () => {
            this.laneConfirmed = msg.seq
            this.laneSnapshotSeq = msg.seq
            this.sinceSnapshot = 0
          },
        )
        // Some pending commands may be inside that state: their duplicates' outcomes say so.
        this.resend()
        this.scheduleNotify()
        return
      }
      case "error":
        this.emit("error", { code: msg.code, message: msg.message })
        return
      case "presence":
        if (msg.state === null) this.others.delete(msg.clientId)
        else this.others.set(msg.clientId, msg.state)
        this.emit("presence", { clientId: msg.clientId, state: msg.state })
        return
      default:
        return
    }
  }

  private integrate(entries: ReadonlyArray<Entry>, settle: ReadonlySet<number> | undefined, rejected: ReadonlyMap<number, Rejection>): void {
    const wantSnapshot = this.store !== undefined && this.sinceSnapshot + entries.length >= this.snapshotEvery
    const rejectedNames = new Map<number, string>()
    if (rejected.size > 0) for (const p of this.rs.pending) if (rejected.has(p.clientSeq)) rejectedNames.set(p.clientSeq, p.name)
    const r = this.rs.integrate(entries, settle, wantSnapshot)
    if (r.gap) {
      // Missed entries (should not happen on an ordered link): follow again from where we are.
      this.send?.({ type: "subscribe", docId: this.docId, machine: this.machine.name, version: this.machine.version, fingerprint: this.machine.fingerprint, fromSeq: this.rs.confirmedSeq, ackedClientSeq: this.ackedClientSeq() })
    }
    const settled = [...r.confirmed.map((c) => c.command.clientSeq), ...(settle ?? [])]
    if (r.applied.length === 0 && settled.length === 0) return
    for (const cs of settled) this.settling.add(cs)
    const confirmedSeq = this.rs.confirmedSeq
    const snapshot = r.snapshot
    const applied = r.applied
    this.sinceSnapshot = snapshot !== undefined ? 0 : this.sinceSnapshot + applied.length
    this.enqueue(
      // Built when the lane gets here, on top of what the writes before it stored.
      (store) => store.confirm(this.docId, {
        meta: { machine: this.machine.name, version: this.machine.version, confirmedSeq, nextClientSeq: this.laneNext },
        entries: applied,
        settled,
        ...(snapshot !== undefined ? { snapshot: { seq: confirmedSeq, state: snapshot, dropFrom: this.laneSnapshotSeq + 1, dropTo: this.laneConfirmed } } : {}),
      }),
      () => {
        this.laneConfirmed = confirmedSeq
        if (snapshot !== undefined) this.laneSnapshotSeq = confirmedSeq
        for (const cs of settled) this.settling.delete(cs)
        // Tell the authority it may forget these outcomes: on the next submit, or on its own
        // once enough have piled up (a frame per confirmation would double the traffic).
        const acked = this.ackedClientSeq()
        if (this.send !== undefined && acked - this.lastAckSent >= ACK_EVERY && this.toPersist.length === 0) {
          this.lastAckSent = acked
          this.send({ type: "submit", docId: this.docId, commands: [], ackedClientSeq: acked })
        }
      },
    )
    for (const { command, seq } of r.confirmed) this.settleConfirmed(command.clientSeq, command.name, seq)
    for (const [clientSeq, rejection] of rejected) {
      const command = rejectedNames.get(clientSeq) ?? ""
      const d = this.deferreds.get(clientSeq)
      this.deferreds.delete(clientSeq)
      d?.reject(new CommandRejected({ code: rejection.code, message: rejection.message, command, clientSeq }))
      this.emit("rejected", { clientSeq, command, rejection })
    }
    this.handleDesync(r.desync)
    this.scheduleNotify()
  }

  private settleConfirmed(clientSeq: number, command: string, seq: number): void {
    const d = this.deferreds.get(clientSeq)
    this.deferreds.delete(clientSeq)
    d?.resolve({ seq })
    this.emit("confirmed", { clientSeq, command, seq })
  }

  private handleDesync(desync: Desync | undefined): void {
    if (desync === undefined) return
    this.emit("desync", desync)
    if (!this.resyncing && this.send !== undefined) {
      this.resyncing = true
      this.send({ type: "fetch-state", docId: this.docId })
    }
  }

  /** Stops following the document. Pending commands stay in the outbox for next time. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.send?.({ type: "unsubscribe", docId: this.docId })
      this.send = undefined
      this.onClosed()
      this.emit("closed", { docId: this.docId })
    }
    return this.lane
  }

  /** True after `close`. */
  get isClosed(): boolean {
    return this.closed
  }
}

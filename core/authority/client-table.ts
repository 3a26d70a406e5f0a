/**
 * Exactly-once, forever: what one document remembers about each client that submits to it.
 *
 * - A **mark** per client, kept forever: the highest clientSeq processed (`last`), what the
 *   client acknowledged (`acked`), and what fell out of the window. ClientSeqs are contiguous:
 *   a command is either the next one (`last + 1`), a retry (`<= last`), or a gap, which is
 *   refused, so nobody can skip a client's numbers ahead (a clientSeq of 2^52 once locked a
 *   victim out for good).
 * - **Outcome runs**, append-only: the outcomes of one client's clientSeqs processed in one
 *   commit are one record keyed by the first clientSeq. Runs are deleted once the client
 *   acknowledges them and ACKED_KEPT newer outcomes follow, or pushed out when more than
 *   `window` outcomes wait unacknowledged. A retry whose outcome was pushed out learns
 *   "applied at seq <= X" (never a false rejection). Acknowledged outcomes are kept a while
 *   because a client never resends what it acknowledged unless its storage went back in time
 *   (restored from a backup, copied to a second device): its outbox then holds commands the
 *   hub applied, and only their hashes tell them from the new commands it numbers after them.
 * - Each outcome keeps a 32-bit hash of its command and the client **incarnation** that sent
 *   it. A "retry" that carries a different command, or comes from another incarnation (the
 *   same user's new device reusing a clientId without its storage), is not a retry: the
 *   client is told where its numbering must resume instead of being answered with somebody
 *   else's outcome.
 *
 * State is loaded per client on first use (never the whole table at document load), and
 * changes are drained into the document's next atomic commit batch.
 *
 * What the table holds in memory is bounded in bytes per client as well as in outcomes
 * (`OutcomeLimits`): a rejection keeps its sentence, which can name what the client sent (an
 * unknown command's name), so unacknowledged rejections of 3 wire bytes each once held about
 * 430 bytes apiece, 100,000 per client and document (a review: 169 MB of hub memory from
 * 1.3 MB of frames). Past its bytes a client's oldest outcomes go as past its window, and a
 * kept sentence is a string of its own (a reason sliced from a 64 KiB argument kept all of
 * it). Only the client's own: a bound for the whole document, the client holding the most
 * giving up first, let many small clients make an honest client the largest, and its
 * rejected command was then answered "applied at seq <= X" (which a replica takes as
 * confirmed), or its acknowledged outcomes kept for a restored backup were dropped and a
 * resend applied twice (two reviews). What many clientIds hold together is bounded in memory
 * instead (`shed`): every state is stored with each commit, so past `memoryBytes` the least
 * recently used leave memory and are read back on their next use, forgetting nothing.
 */
import type { Outcome } from "../entry.js"
import type { AuthorityStore } from "../store/authority-store.js"
import type { ClientMark, OutcomeRun, StoredOutcome } from "../store/records.js"
import { textDecoder, textEncoder } from "../bytes.js"

/** How a command's clientSeq relates to what the document has processed for its client. */
export type Classified =
  | { readonly kind: "new" }
  /** A retry: its outcome. `record`: the next number was a renumbered command applied before; record this there. */
  | { readonly kind: "duplicate"; readonly outcome: Outcome; readonly record?: StoredOutcome }
  /** Not a retry of what is stored at that clientSeq: renumber from `resumeAt`. */
  | { readonly kind: "conflict"; readonly resumeAt: number }
  /** Numbers were skipped: the next one must be `expected`. */
  | { readonly kind: "gap"; readonly expected: number }

interface Run {
  readonly first: number
  readonly incarnation: number
  readonly outcomes: StoredOutcome[]
  /** Fresh, but stored under its key already (a merged run, written again merged): dropped, its key is deleted too. */
  rewritten?: boolean
}

interface ClientState {
  readonly mark: ClientMark
  /** What its runs in memory hold, as `outcomeBytes` estimates it. */
  bytes: number
  /** Runs not yet acknowledged or evicted, in clientSeq order. */
  readonly runs: Run[]
  /** Runs made since the last drain (each also in `runs`). */
  fresh: Run[]
  dirty: boolean
  /** Loaded from a format-1 record: delete it in the next commit. */
  legacy: boolean
  /**
   * The kept outcomes of renumbered commands, by the number each was made under, its hash and
   * its incarnation (`movedKey`): one command, whose latest outcome is kept (a later one answers
   * the same as the first). A lookup or a drop costs the same however many a client has kept.
   */
  readonly moved: Map<string, StoredOutcome>
}

const movedKey = (madeAs: number, hash: number, incarnation: number): string => `${madeAs}:${hash}:${incarnation}`

/**
 * About what one kept outcome takes in memory, on the high side: its object and array slot, a
 * rejection's object and strings, a renumbered command's entry in `moved` (measured on V8:
 * about 50 bytes a seq, 175 a short rejection, 222 a seq with `madeAs`).
 */
export const outcomeBytes = (o: StoredOutcome): number =>
  ("seq" in o ? 64 : 160 + 2 * (o.rejection.code.length + o.rejection.message.length)) + (o.madeAs === undefined ? 0 : 192)

/**
 * A rejection whose sentence is a string of its own: V8 keeps a slice (`reason.slice(0, 200)`
 * of an argument) as a view of its whole parent, which a kept outcome would keep alive.
 */
const owned = (o: StoredOutcome): StoredOutcome =>
  "seq" in o ? o : { ...o, rejection: { code: o.rejection.code, message: textDecoder.decode(textEncoder.encode(o.rejection.message)) } }

/**
 * Outcomes of one run at most: a client's newest run is never forgotten, so a batch of 20,000
 * commands made one run its bytes could not bound.
 */
export const MAX_RUN_OUTCOMES = 256

const runBytes = (outcomes: ReadonlyArray<StoredOutcome>): number => {
  let n = 0
  for (const o of outcomes) n += outcomeBytes(o)
  return n
}

const runsBytes = (runs: ReadonlyArray<Run>): number => {
  let n = 0
  for (const r of runs) n += runBytes(r.outcomes)
  return n
}

/** How much the table keeps unacknowledged (see the header). */
export interface OutcomeLimits {
  /** Outcomes per client. */
  readonly window: number
  /** Bytes per client (`outcomeBytes`). */
  readonly clientBytes: number
  /**
   * Bytes of client states kept in memory for the document (`memoryBytes`); past it, `shed`
   * lets the least recently used stored ones go (read back on their next use). Default: no bound.
   */
  readonly memoryBytes?: number
}

/** What one client's state takes in memory beside its outcomes, about (its mark, arrays, map and entry). */
export const CLIENT_STATE_BYTES = 512

/** What one run takes in memory beside its outcomes, about (its object and array: a review measured 110 bytes). */
export const RUN_BYTES = 128

/** What a client's state takes in memory, about (`memoryBytes`). */
const stateMemory = (s: ClientState): number => s.bytes + CLIENT_STATE_BYTES + s.runs.length * RUN_BYTES

/**
 * Runs read back with at least this many are merged (contiguous ones of one incarnation, up to
 * MAX_RUN_OUTCOMES each) and written merged in the next commit: a client answered one command
 * at a time keeps a run per outcome, 1,000 of them acknowledged (ACKED_KEPT), and a state let
 * go from memory (`shed`) was read back 1,000 rows at a time, every command.
 */
const MERGE_RUNS_FROM = 16

/** The changes of one batch, for `AuthorityStore.commit`. */
export interface ClientChanges {
  readonly marks: Array<readonly [string, ClientMark]>
  readonly runs: Array<readonly [string, OutcomeRun]>
  readonly dropRuns: Array<readonly [string, number]>
  readonly dropLegacy: string[]
}

// Read once, not per byte: globals are slow inside a vm context (see core/bytes.ts).
const imul = Math.imul

/** 32-bit FNV-1a over a command's name and its canonical argument bytes. */
export const commandHash = (name: string, args: Uint8Array): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = imul(h, 0x01000193)
  }
  h ^= 0xff
  h = imul(h, 0x01000193)
  for (let i = 0; i < args.length; i++) {
    h ^= args[i]!
    h = imul(h, 0x01000193)
  }
  return h >>> 0
}

const runEnd = (r: Run): number => r.first + r.outcomes.length - 1

/** Adds a renumbered command's outcome to its client's `moved` index. */
const index = (s: ClientState, incarnation: number, outcome: StoredOutcome): void => {
  if (outcome.madeAs !== undefined) s.moved.set(movedKey(outcome.madeAs, outcome.hash, incarnation), outcome)
}

/** A stored outcome as the answer to a command under `clientSeq`. */
const answer = (clientSeq: number, o: StoredOutcome): Outcome => ("seq" in o ? { clientSeq, seq: o.seq } : { clientSeq, rejection: o.rejection })

/**
 * Acknowledged outcomes kept per client (their hashes and seqs): a store restored from a
 * backup at most this many commands old resends its outbox and is answered with the original
 * outcomes. Older than that, its resends cannot be told from new commands: they are renumbered
 * and applied again.
 */
export const ACKED_KEPT = 1_000

/**
 * Contiguous runs of one incarnation merged, up to MAX_RUN_OUTCOMES outcomes each: `merged`
 * are the runs that took others in (to write), `gone` the first clientSeqs of those taken in
 * (to delete). Answers stay the same: a run is only where outcomes are kept.
 */
const mergeRuns = (read: ReadonlyArray<Run>): { runs: Run[]; merged: Run[]; gone: number[] } => {
  const runs: Run[] = []
  const merged = new Set<Run>()
  const gone: number[] = []
  for (const r of read) {
    const last = runs[runs.length - 1]
    if (last !== undefined && last.incarnation === r.incarnation && runEnd(last) + 1 === r.first && last.outcomes.length + r.outcomes.length <= MAX_RUN_OUTCOMES) {
      last.outcomes.push(...r.outcomes)
      last.rewritten = true
      merged.add(last)
      gone.push(r.first)
    } else runs.push(r)
  }
  return { runs, merged: [...merged], gone }
}

export class ClientTable {
  private readonly clients = new Map<string, ClientState>()
  /** What the states in `clients` take in memory, about (stateMemory summed). */
  private memory = 0
  private readonly loading = new Map<string, Promise<void>>()
  private drops: Array<readonly [string, number]> = []
  private readonly dirty = new Set<string>()
  private readonly limits: OutcomeLimits

  constructor(
    private readonly docId: string,
    private readonly store: AuthorityStore,
    /** Outcomes kept per client without an ack before the oldest are forgotten, or all the limits. */
    limits: number | OutcomeLimits,
  ) {
    this.limits = typeof limits === "number" ? { window: limits, clientBytes: Infinity } : limits
  }

  /** What the kept outcomes take in memory, about (`outcomeBytes`). */
  get bytes(): number {
    let n = 0
    for (const s of this.clients.values()) n += s.bytes
    return n
  }

  /** What the client states in memory take, about: their outcomes, runs (RUN_BYTES) and CLIENT_STATE_BYTES each. */
  get memoryBytes(): number {
    return this.memory
  }

  /** Client states in memory. */
  get loadedClients(): number {
    return this.clients.size
  }

  /**
   * Past `limits.memoryBytes`, lets client states go from memory, least recently used first,
   * until it is under: each clientId a document ever saw kept a state, and each up to
   * `clientBytes` of outcomes, so many clientIds grew a document's memory without bound.
   * Only states whose every change is stored (call it between batches, after the commit:
   * memory then equals storage), so nothing is forgotten: the next use reads it back (`load`),
   * and every answer stays what it was.
   */
  shed(): void {
    const max = this.limits.memoryBytes
    if (max === undefined || this.memory <= max) return
    for (const [clientId, s] of this.clients) {
      if (this.memory <= max) break
      if (s.dirty || s.fresh.length > 0 || this.dirty.has(clientId) || this.loading.has(clientId)) continue
      this.clients.delete(clientId)
      this.memory -= stateMemory(s)
    }
  }

  /** Runs `change` on a loaded client's state, keeping `memory` (the states' total) up to date. */
  private changing<T>(clientId: string, change: (s: ClientState) => T): T {
    const s = this.state(clientId)
    const before = stateMemory(s)
    try {
      return change(s)
    } finally {
      this.memory += stateMemory(s) - before
    }
  }

  /** Puts a state read from storage in memory. */
  private put(clientId: string, s: ClientState): void {
    this.clients.set(clientId, s)
    this.memory += stateMemory(s)
  }

  /**
   * Loads the state of these clients (once each). Call before `classify`/`record`/`ack`.
   * Returns the clients whose records could not be read (a corrupted record): their commands
   * are refused, everybody else's go on.
   */
  async load(clientIds: Iterable<string>): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>()
    const waits: Promise<void>[] = []
    for (const id of new Set(clientIds)) {
      if (this.clients.has(id)) {
        this.used(id)
        continue
      }
      let p = this.loading.get(id)
      if (p === undefined) {
        p = this.loadOne(id).finally(() => this.loading.delete(id))
        this.loading.set(id, p)
      }
      waits.push(p.catch((e) => void failed.set(id, e)))
    }
    await Promise.all(waits)
    return failed
  }

  private async loadOne(clientId: string): Promise<void> {
    const stored = await this.store.mark(this.docId, clientId)
    if (stored !== undefined) {
      // Acknowledged runs are kept too (ACKED_KEPT): read whatever may be stored.
      const open = stored.last > stored.evictedThrough
      const read: Run[] = open ? (await this.store.runs(this.docId, clientId)).map((r) => ({ ...r, outcomes: [...r.outcomes] })) : []
      const { runs, merged, gone } = read.length >= MERGE_RUNS_FROM ? mergeRuns(read) : { runs: read, merged: [], gone: [] }
      const s: ClientState = { mark: stored, bytes: runsBytes(runs), runs, fresh: merged, dirty: merged.length > 0, legacy: false, moved: new Map() }
      for (const run of runs) for (const o of run.outcomes) index(s, run.incarnation, o)
      this.put(clientId, s)
      // Written merged in the next commit (each merged run under its first run's key, overwriting it).
      if (merged.length > 0) {
        for (const first of gone) this.drops.push([clientId, first])
        this.dirty.add(clientId)
      }
      return
    }
    const legacy = await this.store.legacyClient(this.docId, clientId)
    if (legacy === undefined) {
      this.put(clientId, { mark: { last: 0, acked: 0, evictedThrough: 0, evictedBound: 0, incarnation: 0 }, bytes: 0, runs: [], fresh: [], dirty: false, legacy: false, moved: new Map() })
      return
    }
    // Format 1 kept no command hashes or incarnations: its outcomes answer retries as they are
    // (hash 0 and incarnation 0 match anything, see `classify`).
    const runs: Run[] = []
    let maxSeq = 0
    for (const o of legacy.outcomes) {
      const stored: StoredOutcome = "seq" in o ? { hash: 0, seq: o.seq } : { hash: 0, rejection: "rejection" in o ? o.rejection : { code: "outcome-expired", message: "" } }
      if ("seq" in o) maxSeq = Math.max(maxSeq, o.seq)
      const last = runs[runs.length - 1]
      if (last !== undefined && runEnd(last) + 1 === o.clientSeq) last.outcomes.push(stored)
      else runs.push({ first: o.clientSeq, incarnation: 0, outcomes: [stored] })
    }
    const firstKept = runs[0]?.first ?? legacy.last + 1
    const mark: ClientMark = {
      last: legacy.last,
      acked: legacy.acked,
      evictedThrough: Math.max(legacy.acked, firstKept - 1),
      // Format 1 did not record the seqs it forgot: the highest seq it still knew bounds nothing
      // below, so use it only as a floor.
      evictedBound: maxSeq,
      incarnation: 0,
    }
    this.put(clientId, { mark, bytes: runsBytes(runs), runs, fresh: [...runs], dirty: true, legacy: true, moved: new Map() })
    this.dirty.add(clientId)
  }

  private state(clientId: string): ClientState {
    const s = this.clients.get(clientId)
    if (s === undefined) throw new Error(`Client ${clientId} was not loaded before use.`)
    return s
  }

  /** Marks `clientId` the most recently used (`shed` goes oldest first: Map keeps insertion order). */
  private used(clientId: string): void {
    const s = this.clients.get(clientId)
    if (s === undefined) return
    this.clients.delete(clientId)
    this.clients.set(clientId, s)
  }

  /** The high-water mark of a loaded client. */
  mark(clientId: string): Readonly<ClientMark> {
    return this.state(clientId).mark
  }

  /**
   * The client's `incarnation` stored every outcome up to `acked`: forget them. Only what it
   * recorded: the acknowledgement stops below another incarnation's outcome (a device of the
   * same clientId whose answer was lost), which stays for that device's retry. Forgotten, the
   * retry would count as a client that lost its storage, be renumbered and apply twice.
   */
  ack(clientId: string, incarnation: number, acked: number): void {
    this.changing(clientId, (s) => this.acked(clientId, s, incarnation, acked))
  }

  private acked(clientId: string, s: ClientState, incarnation: number, acked: number): void {
    let upTo = Math.min(acked, s.mark.last)
    if (upTo <= s.mark.acked) return
    // From the first run past the last acknowledgement (those before it were walked then):
    // this walk is paid for by what it acknowledges.
    for (let i = this.firstEndingAfter(s, s.mark.acked); i < s.runs.length; i++) {
      const r = s.runs[i]!
      if (r.first > upTo) break
      if (r.incarnation !== 0 && r.incarnation !== incarnation) {
        upTo = r.first - 1
        break
      }
    }
    if (upTo <= s.mark.acked) return
    s.mark.acked = upTo
    this.touch(clientId, s)
    this.forgetAcked(clientId, s)
  }

  /** Drops acknowledged runs that ACKED_KEPT newer outcomes follow. */
  private forgetAcked(clientId: string, s: ClientState): void {
    const upTo = Math.min(s.mark.acked, s.mark.last - ACKED_KEPT)
    while (s.runs.length > 0 && runEnd(s.runs[0]!) <= upTo) this.dropRun(clientId, s, s.runs.shift()!)
  }

  private dropRun(clientId: string, s: ClientState, run: Run): void {
    s.bytes -= runBytes(run.outcomes)
    // Runs go oldest first: a later outcome of the same command replaced this one, or goes later.
    for (const o of run.outcomes) {
      const key = o.madeAs === undefined ? undefined : movedKey(o.madeAs, o.hash, run.incarnation)
      if (key !== undefined && s.moved.get(key) === o) s.moved.delete(key)
    }
    const i = s.fresh.indexOf(run)
    if (i >= 0) s.fresh.splice(i, 1)
    if (i < 0 || run.rewritten === true) this.drops.push([clientId, run.first])
  }

  /**
   * Where `clientSeq` stands. `committed` bounds the answer if a stored outcome is missing.
   * `madeAs`: the number the command was made under, if it was renumbered (protocol 3).
   */
  classify(clientId: string, incarnation: number, clientSeq: number, hash: number, committed: number, madeAs?: number): Classified {
    const s = this.state(clientId)
    const m = s.mark
    if (clientSeq === m.last + 1) {
      // A renumbered command this document applied before it was renumbered (the answer lost,
      // then an earlier command of a restored outbox refused): answered, never applied again;
      // its outcome is recorded under this number too, so the numbering goes on without a gap.
      const before = madeAs === undefined ? undefined : this.madeUnder(s, incarnation, madeAs, hash)
      return before === undefined ? { kind: "new" } : { kind: "duplicate", outcome: answer(clientSeq, before), record: { ...before, madeAs } }
    }
    if (clientSeq > m.last + 1) return { kind: "gap", expected: m.last + 1 }
    // A client resends what it acknowledged only if its storage went back in time: the command
    // stored under that number says whether this is the same one; forgotten, it cannot be told.
    const acked = clientSeq <= m.acked
    if (!acked && clientSeq <= m.evictedThrough) return { kind: "duplicate", outcome: { clientSeq, seqAtMost: m.evictedBound } }
    const found = this.lookup(s, clientSeq)
    if (found === undefined && !acked) return { kind: "duplicate", outcome: { clientSeq, seqAtMost: committed } }
    if (found !== undefined) {
      const { run, outcome } = found
      const sameSender = run.incarnation === 0 || run.incarnation === incarnation
      const sameCommand = outcome.hash === 0 || outcome.hash === hash
      if (sameSender && sameCommand) return { kind: "duplicate", outcome: answer(clientSeq, outcome) }
    }
    // Another command holds the number. A store restored from a backup resends its outbox as
    // it was: a command the hub renumbered since comes under the number it was made under,
    // and is found by it.
    const moved = this.madeUnder(s, incarnation, madeAs ?? clientSeq, hash)
    return moved !== undefined ? { kind: "duplicate", outcome: answer(clientSeq, moved) } : { kind: "conflict", resumeAt: m.last + 1 }
  }

  /**
   * The kept outcome of this incarnation's command `hash` made under number `madeAs`: taken
   * under that number, or renumbered since (`moved`).
   */
  private madeUnder(s: ClientState, incarnation: number, madeAs: number, hash: number): StoredOutcome | undefined {
    if (hash === 0) return undefined
    const at = this.lookup(s, madeAs)
    if (at !== undefined && at.run.incarnation === incarnation && at.outcome.hash === hash && at.outcome.madeAs === undefined) return at.outcome
    return s.moved.get(movedKey(madeAs, hash, incarnation))
  }

  /** The index of the first run that ends past `clientSeq`. */
  private firstEndingAfter(s: ClientState, clientSeq: number): number {
    let lo = 0
    let hi = s.runs.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (runEnd(s.runs[mid]!) <= clientSeq) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private lookup(s: ClientState, clientSeq: number): { run: Run; outcome: StoredOutcome } | undefined {
    // Runs are disjoint and in order: the first ending at or past it holds it, if any does.
    const r = s.runs[this.firstEndingAfter(s, clientSeq - 1)]
    return r === undefined || r.first > clientSeq ? undefined : { run: r, outcome: r.outcomes[clientSeq - r.first]! }
  }

  /** Records the outcome of the next command (`clientSeq === last + 1`). */
  record(clientId: string, incarnation: number, clientSeq: number, kept: StoredOutcome): void {
    this.changing(clientId, (s) => this.recorded(clientId, s, incarnation, clientSeq, kept))
  }

  private recorded(clientId: string, s: ClientState, incarnation: number, clientSeq: number, kept: StoredOutcome): void {
    const m = s.mark
    if (clientSeq !== m.last + 1) throw new Error(`Recording clientSeq ${clientSeq} after ${m.last}.`)
    const outcome = owned(kept)
    const tail = s.fresh[s.fresh.length - 1]
    if (tail !== undefined && tail.incarnation === incarnation && runEnd(tail) + 1 === clientSeq && tail.outcomes.length < MAX_RUN_OUTCOMES) tail.outcomes.push(outcome)
    else {
      const run: Run = { first: clientSeq, incarnation, outcomes: [outcome] }
      s.runs.push(run)
      s.fresh.push(run)
    }
    index(s, incarnation, outcome)
    s.bytes += outcomeBytes(outcome)
    m.last = clientSeq
    m.incarnation = incarnation
    this.touch(clientId, s)
    this.forgetAcked(clientId, s)
    this.evict(clientId, s)
  }

  private touch(clientId: string, s: ClientState): void {
    s.dirty = true
    this.dirty.add(clientId)
  }

  /** Forgets whole runs that fell out of the window or the client's bytes (the client is not acknowledging). */
  private evict(clientId: string, s: ClientState): void {
    const floor = s.mark.last - this.limits.window
    while (s.runs.length > 1 && (runEnd(s.runs[0]!) <= floor || s.bytes > this.limits.clientBytes)) this.evictOldest(clientId, s)
  }

  /** Forgets the client's oldest run; a retry of one of its commands learns "applied at seq <= X". */
  private evictOldest(clientId: string, s: ClientState): void {
    const m = s.mark
    const run = s.runs.shift()!
    for (const o of run.outcomes) if ("seq" in o && o.seq > m.evictedBound) m.evictedBound = o.seq
    m.evictedThrough = runEnd(run)
    this.dropRun(clientId, s, run)
  }

  /** Everything changed since the last drain, for the next commit batch. */
  drain(): ClientChanges {
    const out: ClientChanges = { marks: [], runs: [], dropRuns: this.drops, dropLegacy: [] }
    this.drops = []
    for (const clientId of this.dirty) {
      const s = this.clients.get(clientId)!
      s.dirty = false
      out.marks.push([clientId, { ...s.mark }])
      for (const r of s.fresh) out.runs.push([clientId, { first: r.first, incarnation: r.incarnation, outcomes: r.outcomes.slice() }])
      s.fresh = []
      if (s.legacy) {
        s.legacy = false
        out.dropLegacy.push(clientId)
      }
    }
    this.dirty.clear()
    return out
  }

  /** True when `drain` would return something. */
  get changed(): boolean {
    return this.drops.length > 0 || this.dirty.size > 0
  }
}

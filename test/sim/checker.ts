/**
 * The simulator's invariants (DESIGN.md), checked per document once the network has healed.
 * Every failure starts with the name of the invariant it breaks:
 *
 * - convergence: every replica's confirmed state hash equals the authority's, at its seq;
 *   a fresh replica replaying the whole log reaches it too;
 * - durability: the log is contiguous and as long as the authority's head; a fresh Hub
 *   loading the document from storage has the same seq and hash; with compaction the log
 *   judged is every entry ever made durable (shadow-log.ts), the stored tail after the
 *   horizon is its end, and no entry is deleted unless a complete snapshot covers it;
 * - exactly-once: no (clientId, clientSeq) twice in the log, no command confirmed twice;
 * - acknowledged: a command the app was told is confirmed at seq N is the entry at N, with the
 *   same name and the same arguments (canonical bytes);
 * - outbox: every command that reached the outbox, and every command of a process still
 *   running, was confirmed or rejected, and the app was told which;
 * - determinism: a deterministic document never desyncs; ctx.random differs per entry;
 * - bad input: the hostile client's commands were refused with a clear code, or harmless;
 * - identity: nothing enters the log under a client's id that the client did not submit;
 * - storage: a failed replica write is reported to the app; documents reopen; a failed hub
 *   write is not remembered after the disk recovers;
 * - serving: the hub never answers an honest replica with an error of its own making;
 * - globals: Object.prototype and friends are untouched (checked while running and at the end);
 * - crash: nothing escaped the engine (throws in timers, unhandled rejections, internal errors);
 * - frames: neither the hub nor an honest replica sends a message over the frame limit
 *   (the transport would refuse it again at every reconnect);
 * - liveness: the world settles (no livelock; every check-phase operation finishes).
 * - versions (the mixed fleet, versioned.ts): a command is logged in the form its version
 *   converts to at its entry's epoch; a replica of the authority's version converges to it;
 *   an older one that is still following has the document as its version sees it (the log
 *   converted down); one told update-required is read-only and keeps every command it has
 *   not heard back about in its outbox (after an upgrade they are sent and applied once);
 *   v3's state migration throws on a state holding some titles (versioned.ts blockingTitle):
 *   a hub load that keeps the document at its stored version (held) found such a title there,
 *   no `$migrate` comes after a state holding one, and while the document is held an app
 *   newer than its version was told `migration-failed`, holds a state its version's view of
 *   the log had, keeps its outbox, and a fresh one is refused the same way.
 * Storage, serving, globals, crash, frames and liveness are noticed while the world runs
 * (simulation.ts, guard.ts) and arrive here in the ledger's errors.
 */
import type { Doc, Entry, Machine } from "../../core/index.js"
import { argsKey, type HostileClients, type RawCommand, type RawConn } from "./hostile.js"
import type { SimProcess } from "./process.js"
import { TodoPlus, type TodoState } from "./machines.js"
import { MIGRATION_REFUSES, NEWEST, blockingTitle, epochs, logForm, viewAt } from "./versioned.js"
import { HUB_CLIENT, MIGRATE } from "../../core/schema/versions.js"

export interface Submitted {
  readonly docId: string
  readonly clientId: string
  readonly clientSeq: number
  readonly name: string
  readonly replica: string
  /** The incarnation that submitted it. */
  readonly proc: SimProcess
  /** Hash and length of the canonical bytes of the encoded arguments. */
  readonly argsKey: string | undefined
  persisted: boolean
  /** The receipt settled (confirmed or rejected). */
  settled: boolean
  /** Versioned documents: the app version that submitted it, and its encoded arguments. */
  readonly version?: number
  readonly args?: unknown
}

export interface Ledger {
  /** Commands the app submitted, by ledgerKey. */
  readonly submitted: Map<string, Submitted>
  /** Confirmations the app saw (receipt or event), with their seq. */
  readonly confirmed: Map<string, number>
  /** Rejections the app saw, with their code. */
  readonly rejected: Map<string, string>
  /** Refusals the app was told left nothing lost (`resent`: what the command carried goes again), with their code. */
  readonly resent: Map<string, string>
  /** Failures noticed while running. */
  readonly errors: string[]
  readonly desyncs: Array<{ readonly replica: string; readonly docId: string; readonly seq: number }>
  /** Versioned documents: each update-required a replica was told, with where the log stood then. */
  readonly updateRequired?: Array<UpdateRequiredSeen>
  /** The incarnation that was last told a command's outcome (one that died before it stored the outcome keeps the command). */
  readonly toldBy?: Map<string, SimProcess>
}

export interface UpdateRequiredSeen {
  readonly replica: string
  readonly docId: string
  /** The app version told. */
  readonly version: number
  /** The first seq it cannot be shown. */
  readonly seq: number
  /** The log when it was told: highest durable seq, highest compacted away. */
  readonly head: number
  readonly deletedUpTo: number
  /** Its state was provisional (an upgraded store): it asked for the authority's state, which an older version is never sent. */
  readonly provisional: boolean
}

/** Entries a follower may lag behind a newer snapshot before it is sent one instead (the sim's hub option). */
export const SNAPSHOT_LAG = 12

export const ledgerKey = (docId: string, clientId: string, clientSeq: number): string => `${docId}|${clientId}:${clientSeq}`

export interface DocView {
  readonly docId: string
  readonly machine: Machine<any, any>
  /** A replay of the log reproduces the state (false for deliberately non-deterministic machines). */
  readonly replayable: boolean
  /** The live authority at the end, or why the hub could not load the document. */
  readonly authority: { readonly seq: number; readonly hash: string; readonly state: unknown } | string
  /** The stored log, or why it cannot be read (then commands of this document are not judged one by one). */
  readonly entries: ReadonlyArray<Entry> | string
  /** A fresh Hub's view of the document loaded from storage, or why it could not load. */
  readonly reload: { readonly seq: number; readonly hash: string } | string
  /** A fresh replica that replayed the whole log, or why it did not get there. */
  readonly joiner: { readonly seq: number; readonly hash: string } | string
  readonly replicas: ReadonlyArray<{ name: string; clientId: string | undefined; doc: Doc<any> | undefined; status: string | undefined; version?: number; upgraded?: boolean; provisional?: boolean; toldHeld?: boolean; olderMachine?: boolean }>
  /** A document of a machine with versions (the mixed fleet). */
  readonly versioned?: {
    /** The version the authority's state is at, at the end: the newest, or an older one it is held at. */
    readonly current: number
    /** The loads at which the newest hub reported on its upgrade (held or done). */
    readonly loads?: ReadonlyArray<HubLoad>
    /** Held at the end: a fresh app of the newest version that opened it, its seq and what it was told. */
    readonly newest?: { readonly seq: number; readonly told: ReadonlyArray<string> }
  }
}

/** A load of the versioned document by a hub of the newest version that was not at it. */
export interface HubLoad {
  /** The head of the log the load read. */
  readonly seq: number
  /** The upgrade failed: the document stays at `version`. Else it was upgraded to `version`. */
  readonly held: boolean
  readonly version: number
  readonly message: string
}

export interface WorldView {
  readonly docs: ReadonlyArray<DocView>
  readonly ledger: Ledger
  readonly hostile: HostileClients | undefined
  /** The hub's CRDT work budget, when the heavy writer runs (SIM_CRDT_WORK). */
  readonly crdtWork?: { readonly perSecond: number; readonly burst: number }
  /** clientIds of the honest replicas. */
  readonly replicaIds: ReadonlySet<string>
  readonly incarnations: ReadonlyArray<{ readonly replica: string; readonly proc: SimProcess }>
}

const MAX_FAILURES = 40
/** A hostile command with no answer for this long on an open connection was ignored, not refused. */
const SILENCE_MS = 5_000

export const checkWorld = (w: WorldView): string[] => {
  const failures: string[] = []
  const seen = new Set<string>()
  const fail = (s: string) => {
    if (failures.length < MAX_FAILURES && !seen.has(s)) {
      seen.add(s)
      failures.push(s)
    }
  }
  for (const e of w.ledger.errors) fail(e)

  // Log entries by idempotency key, over every document.
  const byKey = new Map<string, Entry>()
  const bySeq = new Map<string, Map<number, Entry>>()
  for (const d of w.docs) checkDoc(d, fail, byKey, bySeq)
  // A log that cannot be read makes every command of its document look lost: say it once.
  const unreadable = new Set(w.docs.filter((d) => typeof d.entries === "string").map((d) => d.docId))
  const judged = (key: string) => !unreadable.has(key.slice(0, key.indexOf("|")))

  const { submitted, confirmed, rejected, resent } = w.ledger
  const describe = (e: Entry | undefined) => (e === undefined ? "nothing" : `${e.clientId}:${e.clientSeq} ${e.name}`)

  // Versioned documents: the epoch of each entry, and the commands kept in the outbox of a
  // read-only (update-required) replica: not heard back about, and rightly so.
  const epochOf = new Map<string, Map<number, number>>()
  const kept = new Set<string>()
  for (const d of w.docs) {
    if (d.versioned === undefined) continue
    const entries = typeof d.entries === "string" ? [] : d.entries
    const eps = epochs(entries, d.versioned.current)
    epochOf.set(d.docId, new Map(entries.map((e, i) => [e.seq, eps[i]!])))
    for (const r of d.replicas) {
      // An app newer than the version the document is held at cannot send its outbox either.
      const refused = r.version !== undefined && r.version > d.versioned.current
      if ((r.doc?.updateRequired === undefined && !refused) || r.doc === undefined || r.clientId === undefined) continue
      for (const p of r.doc.pending) kept.add(ledgerKey(d.docId, r.clientId, p.clientSeq))
    }
  }
  /** Whether entry e is command s as logged (a command of an older or newer version is logged converted to the entry's epoch). */
  const sameCommand = (s: Submitted, e: Entry): string | undefined => {
    const epoch = s.version === undefined ? undefined : epochOf.get(s.docId)?.get(e.seq)
    if (s.version === undefined || epoch === undefined) {
      return e.name === s.name && argsKey(e.args) === s.argsKey ? undefined : `${s.name} ${s.argsKey}`
    }
    const form = logForm(s.name, s.args, s.version, epoch)
    if (typeof form === "string") return `${s.name} ${s.argsKey} (${form})`
    return e.name === form.name && argsKey(e.args) === form.argsKey ? undefined : `v${s.version} ${s.name} ${s.argsKey}, at v${epoch} ${form.name} ${form.argsKey}`
  }

  // Acknowledged commands are in the log where the app was told, as the app sent them.
  for (const [key, seq] of confirmed) {
    if (!judged(key)) continue
    const s = submitted.get(key)
    const docId = key.slice(0, key.indexOf("|"))
    const e = bySeq.get(docId)?.get(seq)
    if (e === undefined || ledgerKey(docId, e.clientId, e.clientSeq) !== key) {
      fail(`acknowledged: ${key} was confirmed at seq ${seq} but the log has ${describe(e)} there`)
    } else if (s !== undefined && sameCommand(s, e) !== undefined) {
      fail(`acknowledged: ${key} was confirmed at seq ${seq} as ${sameCommand(s, e)} but the entry there is ${e.name} ${argsKey(e.args)}`)
    }
    if (rejected.has(key)) fail(`exactly-once: ${key} was both confirmed and rejected`)
    if (resent.has(key)) fail(`exactly-once: ${key} was both confirmed and told resent`)
  }

  // Every command settled, and the app heard of it.
  for (const [key, s] of submitted) {
    if (!judged(key)) continue
    const e = byKey.get(key)
    const inLog = e !== undefined
    const wasConfirmed = confirmed.has(key)
    const wasRejected = rejected.has(key)
    if (inLog && sameCommand(s, e) !== undefined) {
      fail(`identity: ${key} is in the log as ${e.name} ${argsKey(e.args)}, but ${s.replica} submitted ${sameCommand(s, e)}`)
    }
    // A read-only replica keeps what it has not heard back about (the hub may have applied it).
    const isKept = kept.has(key)
    // (Unless the incarnation told crashed before it stored the outcome: the next one sends it again.)
    if (isKept && (wasConfirmed || wasRejected) && w.ledger.toldBy?.get(key)?.alive !== false) fail(`outbox: ${key} (${s.name}) is still in ${s.replica}'s outbox but the app was told it was ${wasConfirmed ? "confirmed" : "rejected"}`)
    if (inLog && !wasConfirmed && !isKept) fail(`outbox: ${key} (${s.name}) is in the log but the app was never told it was confirmed`)
    if (inLog && wasRejected) fail(`outbox: ${key} (${s.name}) is in the log at seq ${e.seq} but the app was told it was rejected (${rejected.get(key)})`)
    if (inLog && resent.has(key)) fail(`outbox: ${key} (${s.name}) is in the log at seq ${e.seq} but the app was told it was resent`)
    if (s.persisted && !inLog && !wasRejected && !resent.has(key) && !isKept) fail(`outbox: ${key} (${s.name}) reached the outbox but was neither confirmed nor rejected`)
    // Settled by its receipt, or by an event after a receipt told `refused` (not an outcome).
    if (s.proc.alive && !s.settled && !wasConfirmed && !wasRejected && !isKept) fail(`outbox: ${key} (${s.name}) was submitted by ${s.replica}, still running, and never settled (persisted: ${s.persisted})`)
  }
  // Nothing is in the log under a replica's id that the replica did not submit.
  for (const [key, e] of byKey) {
    if (w.replicaIds.has(e.clientId) && !submitted.has(key)) fail(`identity: ${key} (${e.name}) is in the log but its client never submitted it`)
  }

  // update-required only when it must be: the entry has no form at the app's version, or the
  // replica would need a snapshot (behind the compacted log, far behind a newer snapshot, or
  // asking for the authority's state), which only the newest version is sent (an older one
  // asking for the state gets its version's start and the whole log, while the log has it).
  for (const u of w.ledger.updateRequired ?? []) {
    const d = w.docs.find((x) => x.docId === u.docId)
    if (d?.versioned === undefined || typeof d.entries === "string") continue
    const view = viewAt(d.docId, d.entries, d.versioned.current, u.version, u.seq)
    const cursor = u.seq - 1
    const barrier = view.barrier !== undefined && view.barrier <= u.seq
    if (!barrier && !u.provisional && cursor >= u.deletedUpTo && u.head - cursor <= SNAPSHOT_LAG) {
      const e = d.entries[u.seq - 1]
      fail(`versions: ${u.replica} (v${u.version}) was told update-required at seq ${u.seq} of ${u.docId} (${e === undefined ? "no entry" : `${e.name} ${JSON.stringify(e.args)}`}), which has a v${u.version} form, and it was not behind (head ${u.head}, compacted to ${u.deletedUpTo})`)
    }
  }

  // Determinism: a deterministic document never needs a resync.
  const replayable = new Set(w.docs.filter((d) => d.replayable).map((d) => d.docId))
  for (const d of w.ledger.desyncs) {
    if (replayable.has(d.docId)) fail(`determinism: ${d.replica} desynced on ${d.docId} at seq ${d.seq} (the machine is deterministic: the engine let state differ)`)
  }

  // A failed replica write is reported to the app.
  for (const { replica, proc } of w.incarnations) {
    if (proc.failedWrites > 0 && proc.reportedFailures === 0) fail(`storage: ${replica} had ${proc.failedWrites} failed writes and the app was never told`)
  }

  if (w.hostile !== undefined && w.crdtWork !== undefined) checkCrdtWork(w.hostile, w.crdtWork, fail)
  if (w.hostile !== undefined) checkHostile(w.hostile, w.replicaIds, byKey, bySeq, (docId) => !unreadable.has(docId), fail, submitted)
  return failures
}

const checkDoc = (d: DocView, fail: (s: string) => void, byKey: Map<string, Entry>, bySeq: Map<string, Map<number, Entry>>): void => {
  const seqs = new Map<number, Entry>()
  bySeq.set(d.docId, seqs)
  if (typeof d.entries === "string") fail(`durability: the log of ${d.docId} cannot be read: ${d.entries}`)
  const entries = typeof d.entries === "string" ? [] : d.entries
  entries.forEach((e, i) => {
    if (e.seq !== i + 1) fail(`durability: ${d.docId}: entry at index ${i} has seq ${e.seq}`)
    seqs.set(e.seq, e)
    const key = ledgerKey(d.docId, e.clientId, e.clientSeq)
    const prev = byKey.get(key)
    if (prev !== undefined) fail(`exactly-once: ${key} is in the log at seq ${prev.seq} and ${e.seq}`)
    byKey.set(key, e)
  })
  if (typeof d.authority === "string") {
    fail(`durability: the hub cannot load ${d.docId} at the end: ${d.authority}`)
    return
  }
  const authority = d.authority
  if (typeof d.entries !== "string" && entries.length !== authority.seq) fail(`durability: ${d.docId}: ${entries.length} entries stored but the authority is at ${authority.seq}`)

  // The authority rebuilt from storage is the authority that served.
  if (typeof d.reload === "string") fail(`durability: ${d.docId} cannot be loaded from storage by a fresh hub: ${d.reload}`)
  else if (d.reload.seq !== authority.seq || (d.replayable && d.reload.hash !== authority.hash)) {
    fail(`durability: ${d.docId}: reloaded authority at ${d.reload.seq}/${d.reload.hash}, live one at ${authority.seq}/${authority.hash}`)
  }

  // Convergence, and a fresh replica replaying everything gets there too.
  if (typeof d.joiner === "string") fail(`convergence: a fresh replica of ${d.docId} is ${d.joiner}, authority at ${authority.seq}`)
  else if (d.joiner.seq !== authority.seq || (d.replayable && d.joiner.hash !== authority.hash)) {
    fail(`convergence: ${d.docId}: a fresh replica replaying the log reached ${d.joiner.seq}/${d.joiner.hash}, authority at ${authority.seq}/${authority.hash}`)
  }
  for (const r of d.replicas) {
    if (r.doc === undefined) { fail(`convergence: ${r.name} does not follow ${d.docId} at the end (status ${r.status})`); continue }
    if (r.status !== "online") fail(`convergence: ${r.name} is ${r.status} at the end`)
    if (d.versioned !== undefined && r.version !== undefined && r.version > d.versioned.current) {
      checkNewer(d, r.name, r.version, r.toldHeld === true, r.provisional === true, r.doc, entries, d.versioned.current, fail)
      continue
    }
    if (d.versioned !== undefined && r.version !== undefined && r.version !== d.versioned.current) {
      checkOlder(d, r.name, r.version, r.upgraded === true, r.doc, entries, d.versioned.current, fail)
      continue
    }
    if (d.versioned !== undefined && r.doc.updateRequired !== undefined) fail(`versions: ${r.name} runs the authority's version of ${d.docId} but was told update-required at ${r.doc.updateRequired.seq}`)
    if (r.doc.confirmedSeq !== authority.seq) fail(`convergence: ${r.name} at seq ${r.doc.confirmedSeq} of ${d.docId}, authority at ${authority.seq}`)
    let h: string
    try {
      h = r.doc.confirmedHash()
    } catch (e) {
      h = `unhashable (${e instanceof Error ? e.message : String(e)})`
    }
    // A replica of an older version of a document without `versioned` (the text's v1 app: its
    // state is v1's view of the log) is judged by seq and outbox here, its text by crdt-check.
    if (h !== authority.hash && r.olderMachine !== true) fail(`convergence: ${r.name} hash ${h} != authority ${authority.hash} on ${d.docId} (seq ${r.doc.confirmedSeq})`)
    if (r.doc.pendingCount !== 0) fail(`outbox: ${r.name} still has ${r.doc.pendingCount} pending on ${d.docId}`)
  }

  // A versioned document's state is its log replayed through the declared conversions, from
  // the first epoch's initial state (the machines are built so that migrations and upcasts
  // commute): a migration run twice, a command applied unconverted, show here.
  if (d.versioned !== undefined && typeof d.entries !== "string" && d.replayable) {
    const v = viewAt(d.docId, d.entries, d.versioned.current, d.versioned.current, authority.seq)
    if (v.hash !== authority.hash) fail(`versions: the authority's state of ${d.docId} at seq ${authority.seq} (${authority.hash}) is not its log converted to v${d.versioned.current} and replayed (${v.hash})`)
  }

  if (d.versioned !== undefined && typeof d.entries !== "string") checkHeld(d, entries, d.versioned.current, fail)

  // ctx.random is seeded per (document, seq): different entries draw different numbers.
  if (d.machine === TodoPlus) {
    const rolls = (authority.state as TodoState).rolls
    if (new Set(rolls).size !== rolls.length) fail(`determinism: ${d.docId}: different roll entries drew the same ctx.random() (${rolls.join(", ")})`)
  }
}

/**
 * A replica of an older version than the authority: following, it has the document as its
 * version sees it, at the head; told update-required, it holds that view at its own seq
 * (nothing it could not be shown was applied) and refuses new commands; unless it was
 * upgraded: an upgraded store holds the older version's view migrated, provisional until the
 * hub sends its version's start and the log from there, which it cannot once the log's start
 * is compacted away (then it is told update-required on that provisional state).
 */
const checkOlder = (d: DocView, name: string, k: number, upgraded: boolean, doc: Doc<any>, entries: ReadonlyArray<Entry>, current: number, fail: (s: string) => void): void => {
  const authority = d.authority as { seq: number }
  const hash = (() => {
    try {
      return doc.confirmedHash()
    } catch (e) {
      return `unhashable (${e instanceof Error ? e.message : String(e)})`
    }
  })()
  const view = viewAt(d.docId, entries, current, k, doc.confirmedSeq)
  if (doc.updateRequired === undefined) {
    const head = viewAt(d.docId, entries, current, k, authority.seq)
    if (head.barrier !== undefined) fail(`versions: ${name} (v${k}) still follows ${d.docId}, but entry ${head.barrier} has no form at v${k} (it should have been told update-required)`)
    else {
      if (doc.confirmedSeq !== authority.seq) fail(`convergence: ${name} (v${k}) at seq ${doc.confirmedSeq} of ${d.docId}, authority at ${authority.seq}`)
      if (hash !== view.hash) fail(`convergence: ${name} (v${k}) hash ${hash} != the v${k} view of ${d.docId} ${view.hash} (seq ${doc.confirmedSeq})`)
    }
    if (doc.pendingCount !== 0) fail(`outbox: ${name} (v${k}) still has ${doc.pendingCount} pending on ${d.docId}`)
    return
  }
  if (upgraded) return
  if (view.barrier !== undefined) fail(`versions: ${name} (v${k}) is at seq ${doc.confirmedSeq} of ${d.docId}, past entry ${view.barrier} which has no form at v${k}`)
  else if (hash !== view.hash) fail(`convergence: ${name} (v${k}, update-required at ${doc.updateRequired.seq}) hash ${hash} != the v${k} view of ${d.docId} ${view.hash} at its seq ${doc.confirmedSeq}`)
}

/**
 * An app's migration that throws on a state holds back only what needs it (held-version.ts):
 * every load of the newest hub that kept the document at its version found a title v3's
 * migration refuses in the state it loaded (else the upgrade should have gone through), no
 * `$migrate` follows a state holding one, and a document held at the end refuses a fresh app
 * of the newest version `migration-failed`, leaving it at seq 0.
 */
const checkHeld = (d: DocView, entries: ReadonlyArray<Entry>, current: number, fail: (s: string) => void): void => {
  const v = d.versioned!
  for (const l of v.loads ?? []) {
    if (!l.held) continue
    const state = viewAt(d.docId, entries, current, l.version, l.seq).state
    if (blockingTitle(state) === undefined) fail(`versions: the hub kept ${d.docId} at v${l.version} on a load at seq ${l.seq}, but no item there has a title v3's migration refuses (the upgrade should have gone through): ${l.message.slice(0, 200)}`)
  }
  for (const e of entries) {
    if (e.name !== MIGRATE) continue
    const { from, to } = e.args as { from: number; to: number }
    const title = to === NEWEST ? blockingTitle(viewAt(d.docId, entries, current, from, e.seq - 1).state) : undefined
    if (title !== undefined) fail(`versions: ${d.docId} has a $migrate from v${from} to v${to} at seq ${e.seq}, though its state there holds an item titled ${title}, which v3's migration refuses`)
  }
  if (current >= NEWEST) return
  if (entries.some((e) => e.name === MIGRATE && (e.args as { to: number }).to > current)) fail(`versions: ${d.docId} is held at v${current} but its log has a $migrate past it`)
  const n = v.newest
  if (n === undefined) fail(`versions: ${d.docId} is held at v${current} at the end and no fresh app of v${NEWEST} tried it`)
  else {
    if (!n.told.some((t) => t.startsWith("migration-failed: ") && t.includes(MIGRATION_REFUSES))) fail(`versions: a fresh app of v${NEWEST} opening ${d.docId}, held at v${current}, was not told migration-failed (told: ${n.told.join("; ").slice(0, 200) || "nothing"})`)
    if (n.seq !== 0) fail(`versions: a fresh app of v${NEWEST} has ${d.docId}, held at v${current}, at seq ${n.seq}`)
  }
}

/**
 * A replica of a newer version than the one the document is held at: the hub refuses it
 * `migration-failed` (it must have been told), so it holds what it had, a state of the log as
 * its version sees it at its seq (compat mode, or seq 0 when its own store could not be
 * migrated; an upgraded store's migrated state is provisional, as in checkOlder), never past
 * the authority, and keeps its outbox.
 */
const checkNewer = (d: DocView, name: string, k: number, told: boolean, provisional: boolean, doc: Doc<any>, entries: ReadonlyArray<Entry>, current: number, fail: (s: string) => void): void => {
  const authority = d.authority as { seq: number }
  if (!told) fail(`versions: ${name} (v${k}) follows ${d.docId}, held at v${current}, and was never told migration-failed`)
  if (doc.confirmedSeq > authority.seq) fail(`convergence: ${name} (v${k}) at seq ${doc.confirmedSeq} of ${d.docId}, past the authority's ${authority.seq}`)
  let hash: string
  try {
    hash = doc.confirmedHash()
  } catch (e) {
    hash = `unhashable (${e instanceof Error ? e.message : String(e)})`
  }
  const view = viewAt(d.docId, entries, current, k, doc.confirmedSeq)
  if (view.barrier === undefined && !provisional && hash !== view.hash) fail(`convergence: ${name} (v${k}, refused ${d.docId} held at v${current}) hash ${hash} != the v${k} view of the log ${view.hash} at its seq ${doc.confirmedSeq}`)
}

/**
 * The hub made the heavy writer pay for its CRDT work (hub.ts `chargeCrdtWork`): a submit is
 * read only while the connection's work bucket is out of debt, and outcomes come in the order
 * submits were read, so whatever was answered before a command's answer fits in the bucket's
 * burst plus its rate since the connection's first command (1% and 1 ms for rounding).
 */
const checkCrdtWork = (h: HostileClients, budget: { readonly perSecond: number; readonly burst: number }, fail: (s: string) => void): void => {
  const byConn = new Map<RawConn, RawCommand[]>()
  for (const c of h.commands) if (c.weight !== undefined) byConn.set(c.conn, [...(byConn.get(c.conn) ?? []), c])
  for (const [conn, cmds] of byConn) {
    const start = Math.min(...cmds.map((c) => c.sentAt))
    // One submit, one answer: its commands share when they were sent and answered.
    const submits = new Map<string, RawCommand[]>()
    for (const c of cmds) if (c.answeredAt !== undefined) submits.set(`${c.answeredAt}/${c.sentAt}`, [...(submits.get(`${c.answeredAt}/${c.sentAt}`) ?? []), c])
    let before = 0
    for (const submit of [...submits.values()].sort((a, b) => a[0]!.answeredAt! - b[0]!.answeredAt!)) {
      const at = submit[0]!.answeredAt!
      const allowed = (budget.burst + (budget.perSecond * (at + 1 - start)) / 1000) * 1.01
      if (before > allowed) {
        return fail(`crdt work: ${conn.clientId}'s CRDT updates answered before ${submit[0]!.clientSeq} (at ${at} ms) weigh ${before} µs, more than the ${Math.round(allowed)} µs its budget allows since ${start} ms`)
      }
      for (const c of submit) before += c.weight!
    }
  }
}

/** What each hostile command must have come to. */
const checkHostile = (
  h: HostileClients,
  replicaIds: ReadonlySet<string>,
  byKey: ReadonlyMap<string, Entry>,
  bySeq: ReadonlyMap<string, ReadonlyMap<number, Entry>>,
  readable: (docId: string) => boolean,
  fail: (s: string) => void,
  submitted: ReadonlyMap<string, Submitted> = new Map(),
): void => {
  const rawIds = new Set(h.conns.filter((c) => !c.forged).map((c) => c.clientId))
  const first = new Map<string, RawCommand>()
  for (const c of h.commands) {
    const key = ledgerKey(c.docId, c.conn.clientId, c.clientSeq)
    // A command refused for its number (a gap) never took it: the next one sent under it is new.
    const numberRefused = c.outcome === "sequence-gap" || c.outcome === "sequence-reset"
    if (!c.conn.forged && c.expect !== "original" && c.localRefusal === undefined && !numberRefused && !first.has(key)) first.set(key, c)
  }
  const what = (c: RawCommand) => `${c.conn.forged ? `forger of ${c.conn.victim}` : "raw"} ${c.attack} (${c.conn.clientId}:${c.clientSeq} on ${c.docId})`

  for (const c of h.commands) {
    if (c.localRefusal !== undefined || !readable(c.docId)) continue
    const key = ledgerKey(c.docId, c.conn.clientId, c.clientSeq)
    const entry = byKey.get(key)
    const accepted = c.outcome?.startsWith("seq:") ?? false
    const refusedWith = c.outcome !== undefined && !accepted ? c.outcome : undefined

    if (c.conn.forged) {
      // A forger must never get its own command into the log under the victim's id.
      // (An entry the victim itself submitted with the same name and arguments is the victim's.)
      const victims = submitted.get(key)
      const victimsOwn = victims !== undefined && victims.name === entry?.name && victims.argsKey === argsKey(entry?.args)
      if (entry !== undefined && argsKey(entry.args) === c.argsKey && entry.name === c.name && c.attack.endsWith(":next") && !victimsOwn) {
        fail(`identity: ${what(c)} entered the log at seq ${entry.seq} under ${c.conn.victim}'s id`)
      }
      if (refusedWith === "outcome-expired") fail(`identity: ${what(c)}: the hub answered a forged clientId as if it were its owner (outcome-expired)`)
      continue
    }

    // A clear code when refused ("rejected" by the app is fair when the raw client's own
    // item, the target of its size and depth attacks, never made it into the document).
    const ownItemMissing = refusedWith === "rejected" && !h.commands.some((o) => o.conn === c.conn && o.docId === c.docId && o.attack === "own-item" && o.outcome?.startsWith("seq:"))
    if (refusedWith !== undefined && c.codes !== undefined && !c.codes.includes(refusedWith) && c.expect !== "original" && !ownItemMissing) {
      fail(`bad input: ${what(c)} was refused with ${refusedWith}, expected ${c.codes.join(" or ")}`)
    }
    switch (c.expect) {
      case "refuse": {
        const applied = entry !== undefined && entry.name === c.name && argsKey(entry.args) === c.argsKey
        if (applied) fail(`bad input: ${what(c)} was accepted (in the log at seq ${entry.seq})`)
        else if (accepted) {
          const at = bySeq.get(c.docId)?.get(Number(c.outcome!.slice(4)))
          fail(`acknowledged: ${what(c)} was answered ${c.outcome}, which holds ${at === undefined ? "nothing" : `${at.clientId}:${at.clientSeq} ${at.name}`}`)
        }
        break
      }
      case "original": {
        const o = c.original
        if (o?.outcome !== undefined && c.outcome !== undefined && c.outcome !== o.outcome && c.outcome !== "outcome-expired") {
          fail(`exactly-once: ${what(c)} got ${c.outcome} but the original command ${o.clientSeq} got ${o.outcome}`)
        }
        break
      }
      default:
        break
    }
    // Silence is not a clear answer: a command on a connection the network did not cut and
    // the hub did not close (with its code) gets an answer within seconds. Sent after the hub
    // answered a sequence-reset on that document, it was answered already: nothing more is
    // taken there until the connection subscribes again.
    const closed = c.conn.closed
    const openFor = (closed?.at ?? Infinity) - c.sentAt
    const reset = c.conn.resets.get(c.docId)
    const fenced = reset !== undefined && reset <= c.sentAt
    // (The CPU hog's commands wait for its work debt by design, past its connection's end: the
    // world checks what it was given against its budget instead, simulation.ts `cpuHog`.)
    const owed = c.attack === "cpu-hog"
    if (c.outcome === undefined && (closed === undefined || closed.byUs === true) && openFor >= SILENCE_MS && c.conn.errors.length === c.errorsBefore && !fenced && !owed) {
      fail(`bad input: ${what(c)} got no answer in ${Number.isFinite(openFor) ? `${openFor} ms` : "the whole run"} on a connection that stayed open`)
    }
  }

  // The raw client's entries are its own commands, as it first sent them.
  for (const [key, e] of byKey) {
    if (!rawIds.has(e.clientId)) {
      if (!replicaIds.has(e.clientId) && e.clientId !== HUB_CLIENT) fail(`identity: ${key} (${e.name}) is in the log under a client that never connected`)
      continue
    }
    const c = first.get(key)
    if (c === undefined) fail(`identity: ${key} (${e.name}) is in the log but the raw client never sent it as a new command`)
    else if (c.name !== e.name || c.argsKey !== argsKey(e.args)) fail(`exactly-once: ${key} is in the log as ${e.name} but was first sent as ${c.name}`)
    else if (c.outcome !== undefined && c.outcome !== `seq:${e.seq}`) fail(`acknowledged: raw ${key} is at seq ${e.seq} but its outcome was ${c.outcome}`)
  }
}

/**
 * The seeded fault simulator: one hub, K replicas and hostile raw clients over the in-memory
 * network (real codec frames), on virtual time. A seed fixes everything: latencies, the
 * workload, the faults. After an active phase full of faults the network heals, every
 * process is brought back, a fresh replica joins every document, and the checker compares
 * what every peer ended with (checker.ts).
 *
 * The world (each part a knob, see SimOptions; the defaults turn all of it on):
 * - several documents: TodoPlus ones (the README's Todo plus patch, aliasing and non-plain
 *   writes), one grown to megabytes, and one deliberately non-deterministic; each replica
 *   follows 1-3 of them;
 * - faults: dropped connections, partitions, replica and hub kill -9 (writes in flight lost),
 *   disk read and write latency, failed writes and failed reads on the hub's and the
 *   replicas' disks, and machines' wall clocks stepped by up to two hours either way (their
 *   steady clocks are not);
 * - hostile clients (hostile.ts): bad arguments, prototype keys, oversized and deep
 *   arguments, clientSeq gaps and duplicates, forged clientIds;
 * - wire protocols mixed: each replica incarnation speaks 1, 1..2, 1..3 (older apps) or 1..4,
 *   each hub start 1..4 or (a rolling downgrade) 1 only;
 * - snapshots and compaction all the time (a small policy), replicas far behind or new
 *   joining by snapshot stream, long replica outages past the horizon with an outbox, hub
 *   crashes aimed at snapshot and compaction writes, stream chunks corrupted or cut on the
 *   wire;
 * - a mixed fleet (versioned.ts): a document of a machine with three versions, replicas of
 *   different app versions (compat mode, update-required), the hub upgraded once at a random
 *   moment (restarted with the newer machine list: a `$migrate` entry), replicas upgraded at
 *   random moments (a process restarted with newer app code opening its old store), some
 *   never; v3's state migration throws on some titles the workload writes (versioned.ts
 *   `blockingTitle`), so an upgraded hub may keep the document at its stored version for a
 *   while (held: v1 and v2 apps served, v3 ones refused `migration-failed`, each load tries
 *   again; a hub still holding it at the heal is restarted once, in half the seeds after an
 *   older app retitled what v3 cannot migrate, so a last load is judged either way),
 *   an upgraded replica's store may open at seq 0, and an app in compat mode may be told
 *   `migration-failed` for the hub's state; a quarter of replica incarnations open their
 *   documents only once online (not in the handshake: a hub older than the app refuses the
 *   subscribe, and an app that has the hub's version must step down, never stay refused);
 * - collaborative text (crdt-text.ts): a document whose Yjs and Automerge text fields the
 *   replicas type into concurrently, every insert a unique marker, checked at the end by
 *   crdt-check.ts (every acknowledged insert survives unless an acknowledged delete removed
 *   it, nothing else appears, all texts equal). Its choices come from a stream of its own.
 *   Its machine has versions too (machines.ts SimTextV2, `evolve`: the fields carry over):
 *   the mixed fleet's v1 apps type at v1, v2 and v3 apps at v2, the hub serves v1 until its
 *   upgrade (a `$migrate` in the text's log); a v1 app told update-required on it (a v2
 *   snapshot it cannot start from) is upgraded soon, its kept typing then sent at v2
 *   (counters textInsertsAtV1/V2, textMigrations, textUpdateRequired). A v1 typist's store
 *   opened by its upgraded app must show, before it hears from the hub, the text the v1 app
 *   shows from the same store (stored-text.ts; counters textStoreUpgrades, ...WithText).
 * - presence: replicas set theirs now and then, and once more after the heal; then every
 *   replica online must show each other one's last presence, and no one else (a stream of
 *   its own too).
 */
import { CanonClient, Hub, hashState, type BatchOp, type Doc, type Entry, type Machine, type Receipt, type ServerMessage, replicaStorage } from "../../core/index.js"
import { AuthorityStore, seededRandom } from "../../core/internal.js"
import type { DocAuthority } from "../../core/authority/doc-authority.js"
import { heapBytes } from "../../core/state/heap-estimate.js"
import { historyOf } from "../../core/schema/registry.js"
import type { OutcomeRun } from "../../core/store/records.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { SimProcess } from "./process.js"
import { Big, SimBurner, SimText, SimTextLowered, SimTextLoweredV2, SimTextV2, TodoPlus, makeDrifting } from "./machines.js"
import { MAX_BURN_MS, simCpu } from "./cpu.js"
import { argsKey, ATTACKS, HostileClients, type Attack, type Victim } from "./hostile.js"
import { SubscribeChurner, countDeliveries, type Deliveries } from "./churn.js"
import { boundUnsent } from "./unsent.js"
import { UnsentBudget } from "../../adapters/ws/unsent-budget.js"
import { DEAF_CLOSE_MS, DeafAsker } from "./deaf.js"
import { LEAVE_MS, PresenceChurner } from "./presence-churn.js"
import { DEFAULT_HARD_LIMIT } from "../../core/authority/guarded-connection.js"
import { honestCommand, invalidArgs, pick, type BigPlan } from "./workload.js"
import { codeOf, message, RunGuard } from "./guard.js"
import { SNAPSHOT_LAG, checkWorld, ledgerKey, type DocView, type HubLoad, type Ledger, type Submitted } from "./checker.js"
import { ShadowLog } from "./shadow-log.js"
import { MIGRATION_REFUSES, NEWEST, VTodoV3, appMachine, blockingTitle, hubMachine, versionedCommand, viewAt } from "./versioned.js"
import { FIELD_SINCE, TEXT_FIELDS, Typists, fieldsAt, type Carrier } from "./crdt-text.js"
import { MIGRATE } from "../../core/schema/versions.js"
import { checkText, short } from "./crdt-check.js"
import { StoredTexts, textsOf, type StoredRows } from "./stored-text.js"
import { ROLLBACK_DOC, RollbackDevices, Tags, TagsV2 } from "./rollback.js"
import { fieldsOfRoot } from "../../core/crdt/roots.js"
import * as K from "../../core/store/keys.js"
import { decodeRecord } from "../../core/store/records.js"
import { SELF_CERTIFYING_ID } from "../../core/client-id.js"
import { encodeCanonical } from "../../core/canonical.js"
import type { CrdtFields } from "../../core/crdt/fields.js"

/** Bytes of a connection's commands waiting for their group commit before the hub stops reading it (default 8 MiB). */
const SIM_INFLIGHT_BYTES = 48 * 1024
/** Commands per second per connection past the burst (default 5000 and 20,000): low, so catch-ups are held for the rate. */
const SIM_COMMAND_RATE = { commandsPerSecond: 20, commandBurst: 30 }
/**
 * Document loads per client, messages one connection may have the hub working on, and the
 * subscribes it may have refused: small, so the churner's bursts (churn.ts) outrun them (the
 * queue first: 32 messages are 16 loads); a replica follows a handful of documents.
 */
export const SIM_LOADS = { loadsPerSecond: 20, loadBurst: 60, maxQueuedMessages: 32, maxRefusedSubscribes: 64 }
/** Virtual time for what is in flight at the end (deliveries: at most 20 ms) before nothing may be armed. */
const QUIET_AFTER_CLOSE_MS = 200
/**
 * The hub's output limits in a world with the deaf asker (deaf.ts), in what the links count
 * (bytes, or messages without `byteBuffers`): small, so its unread answers reach the hard
 * limit within a burst of DEAF_ASKS (each answer is some hundred bytes).
 */
const SIM_OUTPUT = { bytes: { highWaterMark: 16 << 10, hardLimit: 32 << 10 }, messages: { highWaterMark: 100, hardLimit: 200 } }
const DEAF_ASKS = 600
/** A nearly full replica disk (`replicaQuota`) fails every write batch larger than this. */
const QUOTA_BATCH_BYTES = 16 << 10
/** The hub's CRDT work budget in a world with the heavy writer (checker.ts checkCrdtWork). */
export const SIM_CRDT_WORK = { workPerSecond: 50_000, workBurst: 100_000 }
/**
 * The hub's work budget in the CPU hog's world: a twentieth of the simulated CPU a second, 0.2 s at
 * once, below what the command rate lets the hog send (20 burns a second: 0.4 s).
 */
export const SIM_HOG_WORK = { workPerSecond: 50_000, workBurst: 200_000, sharedWorkPerSecond: 60_000, sharedWorkBurst: 240_000 }
/**
 * The hub's batchSliceMs (its default): the most its documents may work together without the
 * event loop turning, but for the command that crosses it and the one a turn's first waiter is
 * granted.
 */
const SIM_SLICE_MS = 50
/** The CPU hog's documents, each sent slow commands at once. */
const CPU_HOG_DOCS = 3
/** The memory hog's world: the hub's bound on what its loaded documents hold (the replicas' documents take a few MiB), and what client states may add past it. */
export const HOG_HELD_BYTES = 6 << 20
const HOG_SLACK_BYTES = 1 << 20

export interface SimOptions {
  readonly seed: number
  readonly replicas: number
  /** Virtual ms of workload and faults. Default 20,000. */
  readonly activeMs?: number
  /** Workload ticks in the active phase, roughly. Default 160. */
  readonly ops?: number
  /** How wild the network and crash faults are: 0 = none, 1 = default. */
  readonly faults?: number
  /** One document of this machine instead of the default world (no hostile client, no disk failures unless asked for). */
  readonly machine?: Machine<any, any>
  /** The machine of `machine` is non-deterministic on purpose: replays cannot reproduce its hashes. */
  readonly nondeterministic?: boolean
  /** TodoPlus documents. Default 2. */
  readonly docs?: number
  /** Grow one document to this many bytes with 32-64 KiB strings; 0: no big document. Default 2 MiB. */
  readonly bigBytes?: number
  /** A deliberately non-deterministic document (checkpoints must heal it). Default true. */
  readonly drifting?: boolean
  /** Hostile raw clients and forgers. Default true. */
  readonly hostile?: boolean
  /** The raw client's repertoire (hostile.ts ATTACKS). Default: all. */
  readonly attacks?: ReadonlyArray<Attack>
  /** Honest replicas sometimes submit commands that alias or write non-plain values. Default true. */
  readonly appBugs?: boolean
  /** Disk reads take virtual time (0-3 ms, sometimes 30). Default true. */
  readonly readLatency?: boolean
  /** Probability that a hub disk write fails (nothing applied). Default 0.01. */
  readonly hubWriteFailures?: number
  /**
   * Probability that a hub disk read fails (a document's load, a catch-up page, a client's
   * records...), drawn from a stream of its own so that a world without one is unchanged.
   * Default 0.002.
   */
  readonly hubReadFailures?: number
  /** Probability that a replica disk write fails (nothing applied). Default 0.01. */
  readonly replicaWriteFailures?: number
  /** Probability that a replica disk read fails (opening a client or a document...), from a stream of its own. Default 0.002. */
  readonly replicaReadFailures?: number
  /** Steps of a machine's wall clock in the active phase (the hub's or a replica's, 1 s to 2 h either way), from a stream of their own. Default 2. */
  readonly clockSteps?: number
  /**
   * Connections count what they hold unread in bytes, as sockets do, instead of in messages:
   * the hub's and the clients' byte limits (followers' high-water mark, the hard limit, the
   * client's send window and resend guard) meet real numbers. Default true.
   */
  readonly byteBuffers?: boolean
  /**
   * Times a replica stops reading for 0.5-6 s (a frozen or backgrounded tab): what the hub
   * sends it piles up unread, its followers pause at their high-water mark, and past the hard
   * limit it is closed slow-consumer. From a stream of their own. Default 2.
   */
  readonly stalls?: number
  /**
   * Times a replica's disk is nearly full for 1-8 s: every write batch over 16 KiB fails (a
   * quota; snapshots, large commands, catch-up batches), smaller ones pass. From a stream of
   * their own. Default 2.
   */
  readonly replicaQuota?: number
  /** Of the hub's random stops, the share that is a graceful close() instead of a kill. Default 0.3. */
  readonly gracefulStops?: number
  /** Checkpoint period of the authority. Default 16. */
  readonly checkpointEvery?: number
  /** Quiet-checkpoint delay of the authority (ms). Default 500. */
  readonly quietCheckpointMs?: number
  /** Entries per catch-up page of the authority (small, so paging is exercised). Default 8. */
  readonly catchUpPage?: number
  /**
   * Wire protocol versions: "mixed" (default) gives each replica incarnation protocol 1, 1..2
   * or 1..3 (older apps) or 1..4, and each hub start 1..4 or, now and then, 1 only (a rolling
   * downgrade); "v1", "v2", "v3" or "v4" pins everyone.
   */
  readonly protocols?: "mixed" | "v1" | "v2" | "v3" | "v4"
  /**
   * A small snapshot policy, so snapshots, compaction and snapshot streams happen all the
   * time (a replica more than a few entries behind joins by stream). Default true.
   */
  readonly snapshots?: boolean
  /** Probability that a hub snapshot or compaction write has a hub crash aimed at it. Default 0.05. */
  readonly snapshotCrashes?: number
  /** Probability that a streamed snapshot chunk is corrupted or its connection cut. Default 0.2. */
  readonly streamFaults?: number
  /** Some replica crashes last seconds (the log is compacted past them meanwhile). Default true. */
  readonly longOutages?: boolean
  /**
   * A mixed fleet: a document of a machine with versions 1..3 (versioned.ts), replicas of
   * every version, the hub upgraded once per run and replicas at random moments. Default true.
   */
  readonly mixedFleet?: boolean
  /**
   * A document with collaborative text (SimText: a Yjs and an Automerge text field) that
   * replicas type into concurrently through the library's helpers, checked by crdt-check.ts.
   * Its choices come from a stream of their own; off, every other seed runs as it did before
   * the text document existed. Default true.
   */
  readonly crdt?: boolean
  /** Share of the typing that goes into the Automerge text (the rest into the Yjs one). Default 0.3. */
  readonly crdtAutomerge?: number
  /**
   * Share of the typing of apps running the text's v2 that goes into `notes`, the Yjs field
   * SimTextV2 adds (0: none, and no draw for it). Default 0.2.
   */
  readonly crdtNotes?: number
  /** Probability that a typing burst is 2-4 pastes of 30-100 KiB each into the Yjs text, a few ms apart. Default 0.02. */
  readonly crdtPastes?: number
  /**
   * The heavy writer (hostile.ts `crdtHeavy`): tries a few-hundred-byte Automerge change worth
   * thousands of ops this many times a second of the active phase, on a document of its own;
   * the hub runs with SIM_CRDT_WORK. Needs `crdt` and `hostile`. Its own stream of numbers, so
   * 0 leaves every seed as it was. Default 0.
   */
  readonly crdtHeavy?: number
  /**
   * The poisoner (hostile.ts `crdtPoison`): Yjs updates with values nested 4,000-6,000 levels
   * deep into the text document's field, or Automerge changes to its `am` field starting far
   * above every op counter, about this many a second; each must be refused.
   */
  readonly crdtPoison?: number
  /**
   * The memory hog (hostile.ts `memoryHog`): the hub runs with maxHeldBytes HOG_HELD_BYTES, and
   * a raw client grows a document of its own with empty objects until the hub answers
   * `hub-full`, holds it loaded until the middle of the active phase, then leaves. The hub's
   * memory gauge must stay within its bound throughout, and the replicas' commands refused
   * `hub-full` meanwhile must land once the hog is gone. Needs `hostile`. 0 leaves every seed
   * as it was. Default 0.
   */
  readonly memoryHog?: number
  /**
   * The CPU hog (hostile.ts `cpuHog`): a raw client sends, on CPU_HOG_DOCS documents of its
   * own at once, submits of commands that each stand for 20 ms of slow app code on the hub
   * (machines.ts `SimBurner`, timed on a simulated CPU the hub's steady clock reads: cpu.ts), as
   * fast as the command rate lets it, through the active phase; the hub runs with SIM_HOG_WORK.
   * The hub must never work longer than its batch slice and two commands without the event
   * loop turning, and each hog client's judged commands must fit in its work budget
   * (the burst and the rate over the time it was answered in). Needs `hostile`. 0 leaves every
   * seed as it was. Default 0.
   */
  readonly cpuHog?: number
  /**
   * Bursts of 25-45 Big `flags` commands of 12k-24k booleans into the big document, by one
   * writer or two at once, at random moments, while the big document's other followers are
   * partitioned for 1.5-3.5 s: their compact arguments are three times their canonical ones,
   * so a submit, a fan-out or a catch-up page cut by any other size than the bytes sent
   * outgrows the frame limit. Needs the big document. Their own stream of numbers, so 0
   * leaves every seed as it was. Default 1.
   */
  readonly flagBursts?: number
  /**
   * Bursts of the subscribe churner (churn.ts), one of the hostile clients: a fresh raw client
   * subscribes to 300-600 fresh documents and leaves each at once, at a random moment; the hub
   * must keep what it holds of one connection, and the documents it loads for one client,
   * within their bounds (the hub then runs with SIM_LOADS). Needs `hostile`. Its own stream of
   * numbers, so 0 leaves every seed as it was. Default 1.
   */
  readonly churn?: number
  /**
   * Deaf askers (deaf.ts), one of the hostile clients: this many times, at random moments, a
   * fresh raw client stops reading and asks for errors, three times the hub's hard limit of
   * them; the hub runs with SIM_OUTPUT and must close it `slow-consumer`, holding at most its
   * hard limit unread for any connection meanwhile. Needs `hostile`. Its own stream of
   * numbers, so 0 leaves every seed as it was. Default 0.
   */
  readonly deafAskers?: number
  /**
   * Presence churners (presence-churn.ts), one of the hostile clients: this many times, at
   * random moments, a raw client holding a large presence re-subscribes hundreds of times at
   * once on a second connection, then leaves; a watcher must be sent its presence at most once
   * a tick and told it left, and what the churner is sent must stay within its client's
   * presence budget; with each, a flood of clients renewing large presences, during which
   * another watcher must see an honest client's small cursor within FRESH_MS. Needs `hostile`. Its own stream of numbers, so 0 leaves every seed as it
   * was. Default 0.
   */
  readonly presenceChurn?: number
  /**
   * The hub-wide bound on unsent bytes (unsent.ts, adapters/ws/unsent-budget.ts), in KiB, over
   * all the hub's connections: one follower's high-water mark (1 MiB), far under a server's
   * least (8 MiB), so stalled replicas and the big document's snapshots fill it and
   * connections are cut in some seeds; the checker's invariants must hold through the cuts.
   * It must hold what one reader is sent while it reads, its high-water mark and a frame:
   * below that (512 KiB), a fresh replica alone, sent a snapshot in chunks, was cut at every
   * reconnect and never synced, and a world of 1 MiB frames needs 2048 (servers refuse less
   * than MIN_MAX_UNSENT_BYTES). Needs `byteBuffers`; 0 leaves it off. Default 1024.
   */
  readonly unsentKib?: number
  /**
   * Stores that go back in time (rollback.ts): two devices write to a document of their own
   * (one is moved to a new device from its backup on the way); this many times one of them is
   * killed and its disk restored from one of its backups. Their own streams of numbers; 0
   * leaves every seed as it was. Default 2.
   */
  readonly rollbacks?: number
  /**
   * Timer events one seed may run (a normal seed with 5 replicas runs about 2,000): past it
   * the world is livelocked, the run stops and fails. Default 2,500 x (replicas + 3), more
   * with more ops.
   */
  readonly maxEvents?: number
  /** Real time one seed may take (a safety net for livelocks that are slow per event). Default 120 s. */
  readonly maxRealMs?: number
  /** Called with each trace line as it happens (debugging a seed that does not finish). */
  readonly onTrace?: (line: string) => void
}

export interface SimResult {
  readonly seed: number
  readonly failures: ReadonlyArray<string>
  /** Digest of everything that happened: equal digests mean an identical run. */
  readonly digest: string
  readonly stats: Record<string, number>
  readonly trace: ReadonlyArray<string>
}

/** The knobs as the CLI and the mutant harness spell them, with their defaults. */
export const DEFAULTS = {
  docs: 2, bigBytes: 2 << 20, drifting: true, hostile: true, appBugs: true, readLatency: true, hubWriteFailures: 0.01, hubReadFailures: 0.002, replicaWriteFailures: 0.01, replicaReadFailures: 0.002, clockSteps: 2, byteBuffers: true, stalls: 2, replicaQuota: 2, gracefulStops: 0.3,
  checkpointEvery: 16, quietCheckpointMs: 500, catchUpPage: 8, activeMs: 20_000, ops: 160, faults: 1,
  protocols: "mixed" as "mixed" | "v1" | "v2" | "v3" | "v4", snapshots: true, snapshotCrashes: 0.05, streamFaults: 0.2, longOutages: true,
  mixedFleet: true, crdt: true, crdtAutomerge: 0.3, crdtNotes: 0.2, crdtPastes: 0.02, crdtHeavy: 0, crdtPoison: 0, memoryHog: 0, cpuHog: 0, flagBursts: 1, churn: 1, deafAskers: 0, presenceChurn: 0, rollbacks: 2, unsentKib: 1024,
} as const

/** Small enough that a TodoPlus document snapshots every few dozen commands. */
const SNAPSHOT_POLICY = { minLogBytes: 2 << 10, logRatio: 0.5, tailBytes: 1 << 10, chunkBytes: 4 << 10 }
const SNAPSHOT_CHUNK_SIZES = [1 << 10, 4 << 10, 16 << 10]

type Range = { readonly min: number; readonly max: number }
const V1: Range = { min: 1, max: 1 }
const V12: Range = { min: 1, max: 2 }
const V2: Range = { min: 2, max: 2 }
const V13: Range = { min: 1, max: 3 }
const V14: Range = { min: 1, max: 4 }
const V3: Range = { min: 3, max: 3 }
const V4: Range = { min: 4, max: 4 }

interface DocSpec {
  readonly docId: string
  readonly machine: Machine<any, any>
  readonly kind: "todo" | "big" | "drifting" | "custom" | "versioned" | "text"
  readonly replayable: boolean
}

interface Replica {
  readonly name: string
  readonly disk: MemoryStorage
  proc: SimProcess
  /** The process that is opening its client, until it has (another start waits for it). */
  starting?: SimProcess
  /** Commands per document sent and unanswered (the client's default is 1024). */
  sendWindow?: number
  client: CanonClient | undefined
  readonly docs: Map<string, Doc<any>>
  clientId: string | undefined
  partitioned: boolean
  readonly follows: ReadonlyArray<DocSpec>
  readonly incarnations: SimProcess[]
  failedStarts: number
  /** Snapshot chunks we corrupted on the way to it, not yet reported back as snapshot-invalid. */
  corrupted: number
  /** The app version it runs for the versioned document (it only grows: upgrades). */
  version: number
  upgraded: boolean
  /** Its versioned document's state was migrated from an older version and the authority's has not been installed since. */
  provisional: boolean
  /** This incarnation was told by the hub that it cannot have the versioned document: held at an older version (migration-failed). */
  toldHeld: boolean
  /**
   * The app's own command limit (DocOptions.maxCommandBytes), smaller than the default for
   * some typists: their pastes fit in a command one by one but not merged together, so
   * coalescing must follow the limit. Only replicas that do not write the big document's blobs.
   */
  readonly commandLimit: number | undefined
}

/** A typist's smaller command limit, and its pastes (12-20 KiB: alone they fit, 2 or 3 merged often do not). */
const SMALL_COMMAND_LIMIT = 40 << 10
/** A hub process's lowered maxCommandBytes: some of the big document's blobs (32-64 KiB) and text pastes go over it. */
const HUB_LOWERED_COMMAND_BYTES = 48 << 10

/** What a hub batch does to snapshots or compaction, if anything. */
const snapshotWrite = (ops: ReadonlyArray<BatchOp>): string | undefined => {
  for (const op of ops) {
    if (op.key[0] !== 0x61) continue
    const k = op.key[1]
    if (k === 0x74) return op.type === "put" ? "snapshot chunk" : "snapshot drop"
    if (k === 0x73) return op.type === "put" ? "snapshot meta" : "snapshot drop"
    if (k === 0x7a) return "compaction horizon"
    if (k === 0x65 && op.type === "del") return "compaction delete"
  }
  return undefined
}

/** A text field's content, or why it cannot be read. */
const readText = (field: string, handle: () => unknown): string | { error: string } => {
  try {
    const h = handle()
    return h === undefined ? { error: "no such field" } : TEXT_FIELDS[field]!.read(h)
  } catch (e) {
    return { error: `${codeOf(e)}: ${message(e)}` }
  }
}

/** A state that cannot be hashed is a finding, not a reason to stop checking. */
const safeHash = (f: () => string): string => {
  try {
    return f()
  } catch (e) {
    return `unhashable (${codeOf(e)}: ${message(e)})`
  }
}

export const runSimulation = async (options: SimOptions): Promise<SimResult> => {
  const { seed } = options
  const single = options.machine
  // One custom machine is the old, smaller world: no disk failures unless asked for.
  const base = single === undefined ? DEFAULTS : { ...DEFAULTS, hubWriteFailures: 0, hubReadFailures: 0, replicaWriteFailures: 0, replicaReadFailures: 0, clockSteps: 0, byteBuffers: false, stalls: 0, replicaQuota: 0 }
  const o = { ...base, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof DEFAULTS & SimOptions
  const activeMs = o.activeMs
  const faultLevel = o.faults
  const hostileOn = single === undefined && o.hostile
  const churnOn = hostileOn && o.churn > 0
  const deafOn = hostileOn && o.deafAskers > 0
  const output = o.byteBuffers ? SIM_OUTPUT.bytes : SIM_OUTPUT.messages
  const presenceChurnOn = hostileOn && o.presenceChurn > 0
  const rollbackOn = single === undefined && o.rollbacks > 0
  const vrt = new VirtualRuntime(seed)
  const rng = seededRandom(seed ^ 0x5eed)
  const readRng = seededRandom(seed ^ 0x4ead)
  const replicaReadRng = seededRandom(seed ^ 0x7ead)
  const clockRng = seededRandom(seed ^ 0xc10c)
  const trace: string[] = []
  const log = (s: string) => {
    const line = `${vrt.now() - 1_700_000_000_000} ${s}`
    trace.push(line)
    options.onTrace?.(line)
  }
  const stats: Record<string, number> = {
    submits: 0, lateOpens: 0, localRefusals: 0, drops: 0, partitions: 0, replicaCrashes: 0, hubCrashes: 0, hubStops: 0, hostile: 0, forged: 0, desyncs: 0, rateHolds: 0, secondTabs: 0,
    hubWriteFailures: 0, hubReadFailures: 0, replicaWriteFailures: 0, replicaReadFailures: 0, clockSteps: 0, snapshotCrashes: 0, streams: 0, installs: 0, corruptChunks: 0, cutStreams: 0,
    ...(options.machine === undefined && options.mixedFleet !== false ? { hubUpgrades: 0, replicaUpgrades: 0, updateRequired: 0, compatRefusals: 0, upgradesWithKeptOutbox: 0, heldLoads: 0, upgradesAfterHold: 0, heldRefusals: 0, compatMigrationFailed: 0, replicaMigrationFailed: 0, heldAtHeal: 0, heldAtEnd: 0, heldReceipts: 0, heldSeeds: 0, heldFixed: 0 } : {}),
    ...(options.machine === undefined && options.crdt !== false ? { textEdits: 0, textPastes: 0, textPastesUnderLimit: 0, textInsertsAtV1: 0, textInsertsAtV2: 0, textMigrations: 0, textUpdateRequired: 0, textStoreUpgrades: 0, textStoreUpgradesWithText: 0, notesEdits: 0, notesInserts: 0, notesTypedOnV1Hub: 0, notesBesideV1: 0, notesHeld: 0, notesV1Replicas: 0, textMigrateCheckpoints: 0 } : {}),
  }
  const ledger: Ledger = { submitted: new Map(), confirmed: new Map(), rejected: new Map(), resent: new Map(), errors: [], desyncs: [], updateRequired: [], toldBy: new Map() }
  const failed = new Set<string>()
  const fail = (s: string) => {
    if (failed.has(s)) return
    failed.add(s)
    if (ledger.errors.length < 50) ledger.errors.push(s)
    log(`FAILURE ${s}`)
  }
  let phase: "active" | "heal" | "check" = "active"
  let healedAt = Infinity
  /** Until when the hub holds some connection unread for the command rate. */
  let heldUntil = 0
  /** Replica/document pairs that found themselves diverged, or had a CRDT merge refused, and have not installed a state since. */
  const resyncing = new Set<string>()

  // Whatever escapes the engine (a throw in a timer, an unhandled rejection) is a failure of
  // this seed, not a crash of the simulator: the run goes on and the checker reports it.
  // A presence churner's burst is a few thousand events of its own. (Disks failing reads add
  // retries on both sides: seed 2 of the protocol-attacks world, 4 replicas, settles in 19,985.)
  const maxEvents = options.maxEvents ?? Math.round(3_500 * (options.replicas + 3) * Math.max(1, (options.ops ?? DEFAULTS.ops) / DEFAULTS.ops)) + 15_000 * (options.presenceChurn ?? 0)
  const guard = new RunGuard(vrt, fail, log, maxEvents, options.maxRealMs ?? 120_000)
  simCpu.reset()
  guard.eventStarted = () => simCpu.turned()
  const rt = guard.runtime
  const { overBudget } = guard
  const drive = <T>(what: string, p: Promise<T>) => guard.drive(what, p)

  try {
    return await run()
  } catch (e) {
    // The simulator must report, not die: whatever threw is this seed's failure.
    guard.reportUnhandled()
    return { seed, failures: [...ledger.errors, `crash: the run stopped: ${codeOf(e)}: ${message(e)} ${String((e as Error)?.stack ?? "").split("\n")[1]?.trim() ?? ""}`], digest: "", stats, trace }
  } finally {
    guard.dispose()
  }

  async function run(): Promise<SimResult> {
    // ---- the world ----
    const driftRng = seededRandom(seed ^ 0xd21f7)
    const specs: DocSpec[] = []
    if (single !== undefined) {
      specs.push({ docId: "sim-doc", machine: single, kind: "custom", replayable: !options.nondeterministic })
    } else {
      for (let i = 0; i < o.docs; i++) specs.push({ docId: `todo-${i}`, machine: TodoPlus, kind: "todo", replayable: true })
      if (o.bigBytes > 0) specs.push({ docId: "big", machine: Big, kind: "big", replayable: true })
      if (o.drifting) specs.push({ docId: "drifting", machine: makeDrifting(driftRng), kind: "drifting", replayable: false })
      if (o.mixedFleet) specs.push({ docId: "versioned", machine: VTodoV3, kind: "versioned", replayable: true })
    }
    // The ordered documents: the main stream's choices (who follows what, the workload, the
    // forgers) are drawn among these only, so the text document shifts none of them.
    const ordered = [...specs]
    const ofOrdered = (docs: ReadonlyArray<DocSpec>) => docs.filter((s) => s.kind !== "text")
    const textSpec: DocSpec | undefined = single === undefined && o.crdt ? { docId: "text", machine: SimTextV2, kind: "text", replayable: true } : undefined
    if (textSpec !== undefined) specs.push(textSpec)
    // Its own stream: who types, what, when.
    const textRng = seededRandom(seed ^ 0x7e475)
    const typists = new Typists(textRng, () => vrt.now())
    const fleetOn = specs.some((s) => s.kind === "versioned")
    // Its own stream of numbers: the fleet's plan does not shift the rest of a seed's choices.
    const fleetRng = seededRandom(seed ^ 0xf1ee7)
    // Its own stream: whether a replica told update-required with commands kept is upgraded soon after.
    const keptRng = seededRandom(seed ^ 0x6e97)
    // Its own stream, so the rest of a seed stays put: some submits of a burst come a few ms
    // apart, so one lands while the outbox write of the one before waits in the storage lane.
    const spreadRng = seededRandom(seed ^ 0x5b7ead)
    // Its own stream: choosing limits does not move any other draw of a seed.
    const limitRng = seededRandom(seed ^ 0x1e3175)
    // Its own stream: second tabs on a replica's disk shift nothing else of a seed.
    const tabRng = seededRandom(seed ^ 0x7ab5)
    // Its own stream, so the seeds' other draws stay as they were.
    const lateRng = seededRandom(seed ^ 0x1a7e)
    // Half the seeds bound documents below what the big document's workload writes: its puts
    // fill it to the bound and are refused there, and no document may be found past it. Only
    // with a big document of 1 MiB or more: the text document's pastes (some hundreds of KiB)
    // stay under the bound, since a paste cut in two commands at the bound loses its second
    // half, which the text checker would rightly call a lost acknowledged insert.
    const docCap = o.bigBytes >= 1 << 20 && seededRandom(seed ^ 0xcab5)() < 0.5 ? Math.floor(o.bigBytes * 0.75) : undefined
    // The hub starts at v1 or v2 and is upgraded to the newest once, at a random moment.
    let hubVersion = fleetOn ? (fleetRng() < 0.5 ? 1 : 2) : NEWEST
    const hubFirstVersion = hubVersion
    const hubUpgradeAt = Math.floor(activeMs * (0.15 + fleetRng() * 0.7))
    // Its own stream: each hub process its own limits (an operator lowering them across
    // restarts). What an earlier process accepted stays accepted (DESIGN invariant 11): a retry
    // of a command it applied is confirmed, and logged merges over today's field limits replay.
    const hubLimitRng = seededRandom(seed ^ 0x41b17)
    let hubLimits: { readonly maxCommandBytes?: number; readonly textLowered: boolean } = { textLowered: false }
    // In seeds 6 and 7 of every 8 the hub's upgrade takes the rollback document to TagsV2 too,
    // the version d1 runs in compat mode until then (rollback.ts).
    const rollbackUpgrade = rollbackOn && fleetOn && seed % 8 >= 6
    let rollbackMachine: typeof Tags = Tags
    // The text document has versions too (machines.ts SimTextV2): an app or hub of the fleet's
    // v1 runs SimText, of v2 or v3 SimTextV2 (a replica outside the fleet runs the newest).
    const textMachine = (v: number, lowered = false) => (v === 1 ? (lowered ? SimTextLowered : SimText) : lowered ? SimTextLoweredV2 : SimTextV2)
    const hubMachines = () => [...new Set(specs.map((s) => (s.kind === "versioned" ? hubMachine(hubVersion) : s.kind === "text" ? textMachine(hubVersion, hubLimits.textLowered) : s.machine))), ...(rollbackOn ? [rollbackMachine] : []), ...(o.cpuHog > 0 ? [SimBurner] : [])]
    const machineOf = (r: { version: number }, spec: DocSpec) => (spec.kind === "versioned" ? appMachine(r.version) : spec.kind === "text" ? textMachine(r.version) : spec.machine)
    const bigPlan: BigPlan = { targetBytes: o.bigBytes, minBlob: 32 << 10, maxBlob: 64 << 10 }

    // Real frames: the simulator also exercises the wire codec.
    // A frame over the limit ends its connection, as on a socket; from the hub or an honest
    // replica it is a bug: a message the transport refuses goes out again at every reconnect.
    const net = new MemoryNetwork(rt, {
      latency: () => Math.floor(rng() * 20),
      encode: true,
      countBytes: o.byteBuffers,
      onRefused: (f) => {
        if (f.from === "hub" || replicas.some((r) => r.name === f.client)) fail(`frames: ${f.from === "hub" ? `the hub's ${f.type} to ${f.client}` : `${f.client}'s ${f.type}`} is a frame of ${f.bytes} bytes, over the limit`)
        else log(`${f.client}'s ${f.type} of ${f.bytes} bytes refused: over the frame limit`)
      },
    })
    // The bound on what the hub's connections hold unsent together, on the world's clock (unsent.ts).
    const unsent = o.byteBuffers && o.unsentKib > 0 ? new UnsentBudget(o.unsentKib * 1024, () => vrt.now()) : undefined
    // Mostly fast, sometimes slow: widens the window in which a crash loses a write.
    const diskLatency = () => (rng() < 0.1 ? Math.floor(rng() * 60) : Math.floor(rng() * 4))
    const readLatency = () => (phase === "check" || !o.readLatency ? 0 : rng() < 0.05 ? Math.floor(rng() * 30) : Math.floor(rng() * 3))
    const failing = (p: number, counter: "hubWriteFailures" | "replicaWriteFailures") => () => {
      if (phase !== "active" || p <= 0 || rng() >= p) return false
      stats[counter]!++
      return true
    }
    /**
     * Whether the hub's last report of a storage failure on each document (a load, a client's
     * records, a catch-up) was of an injected fault. What a replica is told no longer quotes
     * the disk (hub-hook-failures): the hub's report, made as it tells it, says which it was.
     */
    const hubStorageInjected = new Map<string, boolean>()

    // ---- the hub process ----
    const shadow = new ShadowLog([...specs.map((s) => s.docId), ...(rollbackOn ? [ROLLBACK_DOC] : [])], fail)
    const hubDisk = new MemoryStorage({
      latency: { runtime: rt, ms: diskLatency, readMs: readLatency },
      failWrite: failing(o.hubWriteFailures, "hubWriteFailures"),
      failRead: () => {
        if (phase !== "active" || o.hubReadFailures <= 0 || readRng() >= o.hubReadFailures) return false
        stats.hubReadFailures!++
        return true
      },
      onDurable: (ops) => {
        shadow.observe(ops)
        watchTextCheckpoints(ops)
      },
      onBatch: (ops) => aimCrash(ops),
    })
    // Each machine's wall clock, stepped now and then (NTP, a resumed VM); steady clocks are not.
    const clockSteps = new Map<string, number>()
    const stepped = (machine: string) => () => clockSteps.get(machine) ?? 0
    // The hub's steady clock counts the simulated CPU its commands burn (cpu.ts).
    const hubCpu = () => simCpu.burnt
    /** The hub's steady clock, for checks of its buckets. */
    const hubSteady = () => vrt.now() + simCpu.burnt
    let hubProc = new SimProcess("hub", rt, hubDisk, stepped("hub"), hubCpu)
    let hub: Hub
    let hubStarted = false
    // When each hub process started, and whether it speaks no protocol 3 (rollback.ts's known limit).
    const hubStarts: Array<{ readonly at: number; readonly old: boolean }> = []
    /** What each connection delivered to the hub (the churner's queue check). */
    const deliveries: Deliveries = new Map()
    const startHub = () => {
      // One hub process at a time (a real store is locked by its process).
      if (hubProc.alive && hubStarted) return
      hubStarted = true
      hubProc = new SimProcess("hub", rt, hubDisk, stepped("hub"), hubCpu)
      const protocol = o.protocols === "v1" ? V1 : o.protocols === "v2" ? V12 : o.protocols === "v3" ? V13 : o.protocols === "v4" ? V14 : rng() < 0.2 ? V1 : V14
      hubStarts.push({ at: vrt.now(), old: protocol.max < 3 })
      // Documents nobody follows: unloaded at once, kept briefly one at a time, or kept as by default;
      // the first two make the hub reload documents from storage all the time.
      const keep = rng()
      const idleDocuments = keep < 0.4 ? { count: 0 } : keep < 0.7 ? { count: 1, ms: 1_000 } : {}
      // Each hub process its own chunk size (an operator changing it across restarts): snapshots
      // stored by the one before are streamed as they were written.
      const chunkBytes = SNAPSHOT_CHUNK_SIZES[Math.floor(rng() * SNAPSHOT_CHUNK_SIZES.length)]!
      hubLimits = { ...(hubLimitRng() < 0.25 ? { maxCommandBytes: HUB_LOWERED_COMMAND_BYTES } : {}), textLowered: hubLimitRng() < 0.25 }
      hub = new Hub({
        machines: hubMachines(),
        protocol,
        ...(o.snapshots ? { snapshots: { ...SNAPSHOT_POLICY, chunkBytes }, snapshotLagEntries: SNAPSHOT_LAG } : {}),
        storage: hubProc.storage,
        runtime: hubProc.runtime,
        checkpointEvery: o.checkpointEvery,
        quietCheckpointMs: o.quietCheckpointMs,
        catchUpPage: o.catchUpPage,
        idleDocuments,
        ...(docCap !== undefined ? { maxDocumentBytes: docCap } : {}),
        ...(hubLimits.maxCommandBytes !== undefined ? { maxCommandBytes: hubLimits.maxCommandBytes } : {}),
        ...(deafOn ? output : {}),
        ...(o.memoryHog > 0 ? { maxHeldBytes: HOG_HELD_BYTES } : {}),
        // Small, so the hub's input flow control pauses and resumes links all the time, and
        // replicas back from a partition or a crash with a long outbox are held for the rate.
        limits: { maxInflightBytes: SIM_INFLIGHT_BYTES, ...SIM_COMMAND_RATE, ...(churnOn ? SIM_LOADS : {}), ...(o.crdtHeavy > 0 ? SIM_CRDT_WORK : {}), ...(o.cpuHog > 0 ? SIM_HOG_WORK : {}) },
        onEvent: (e) => {
          if (e.type === "doc-load-failed" || (e.type === "doc-report" && (e.code === "catch-up-failed" || e.code === "client-unreadable"))) {
            hubStorageInjected.set(e.docId, (e.type === "doc-load-failed" ? message(e.error) : e.message).includes("injected fault"))
          }
          if (e.type === "doc-load-failed" && o.memoryHog > 0 && codeOf(e.error) === "hub-full") {
            // The hog's world: a document that does not fit beside the loaded ones waits (it is asked for again).
            stats.loadsRefusedFull = (stats.loadsRefusedFull ?? 0) + 1
            log(`hub ${e.type} ${e.docId}: ${message(e.error)}`)
          } else if (e.type === "doc-broken" || e.type === "doc-load-failed") {
            // A failed write breaks the document on purpose (it reloads); anything else is a bug,
            // and so is a failure that outlives the faults (a failed write remembered forever).
            if (codeOf(e.error) !== "storage-failed") fail(`storage: hub ${e.type} ${e.docId}: ${codeOf(e.error)}: ${message(e.error)}`)
            else if (phase !== "active" && vrt.now() > healedAt + 2_000) fail(`storage: hub ${e.type} ${e.docId} seconds after the disk stopped failing: ${message(e.error)} (an old failure is remembered)`)
            log(`hub ${e.type} ${e.docId}: ${message(e.error)}`)
          } else if (e.type === "protocol-error" && e.message.startsWith("Internal error")) {
            fail(`crash: hub: ${e.message}`)
          } else if (e.type === "refused" && e.code === "schema-too-new") {
            // An app newer than the hub, stepping down to the hub's version (compat mode).
            if (stats.compatRefusals !== undefined) stats.compatRefusals++
            log(`hub refused ${e.code}: ${e.message}`)
          } else if (e.type === "limit" && e.code === "rate-held") {
            stats.rateHolds!++
            heldUntil = Math.max(heldUntil, vrt.now() + Number(/for (\d+) ms/.exec(e.message)?.[1] ?? 0))
            log(`hub ${e.code}: ${e.message}`)
          } else if (e.type === "doc-report" && e.docId === "versioned" && (e.code === "migration-failed" || e.code === "machine-upgraded")) {
            noteLoad(e.code, e.message)
          } else if (e.type === "doc-report" && e.docId === textSpec?.docId && e.code === "machine-upgraded") {
            log(`hub ${e.type} ${e.code}: ${e.message}`)
            noteTextUpgrade(hub, Number(/at seq (\d+)/.exec(e.message)?.[1] ?? NaN))
          } else if (e.type === "crdt") {
            log(`hub crdt ${e.event.type}`)
          } else {
            log(`hub ${e.type} ${"code" in e ? e.code : ""}: ${e.message}`)
          }
        },
      })
      const counting = countDeliveries(hub, deliveries, { hardLimit: deafOn ? output.hardLimit : DEFAULT_HARD_LIMIT, fail })
      net.listen(unsent === undefined ? counting : boundUnsent(counting, net, unsent, { fail, log }))
      log(`hub up (protocol ${protocol.min}..${protocol.max})${fleetOn ? ` at v${hubVersion}` : ""}, chunks of ${chunkBytes} B${hubLimits.maxCommandBytes !== undefined ? `, commands up to ${hubLimits.maxCommandBytes} B` : ""}${hubLimits.textLowered ? ", text field limits lowered" : ""}`)
    }
    /**
     * The text's `$migrate` entries, and the hash of the hub's state there as the document came
     * up from its upgrade (its loaded authority, before any entry after it): the checkpoint the
     * hub stored with the entry must be that hash, which counts the fields v2 adds (empty). A
     * v2 replica that replays the entry verifies that checkpoint, but in this world one seldom
     * does (compaction: replicas start from snapshots), so it is compared here, at the end.
     */
    const textUpgrades: Array<{ seq: number; hash?: string }> = []
    /** Every checkpoint of the text the hub's disk made durable, by seq (compaction deletes them from the store). */
    const textCheckpoints = new Map<number, string>()
    const textCheckpointPrefix = textSpec === undefined ? undefined : K.authCheckpointPrefix(textSpec.docId)
    function watchTextCheckpoints(ops: ReadonlyArray<BatchOp>): void {
      if (textCheckpointPrefix === undefined) return
      for (const op of ops) {
        if (op.type !== "put" || op.key.length <= textCheckpointPrefix.length || !textCheckpointPrefix.every((b, i) => op.key[i] === b)) continue
        const seq = K.seqFromKey(op.key)
        if (!textCheckpoints.has(seq)) textCheckpoints.set(seq, decodeRecord(op.value, `checkpoint ${seq}`, textSpec!.docId, op.key, (v) => String(v)))
      }
    }
    function noteTextUpgrade(h: Hub, seq: number): void {
      const u: { seq: number; hash?: string } = { seq }
      textUpgrades.push(u)
      // The load that reported it is under way: this is its promise (no load of its own).
      h.doc(textSpec!.docId, textSpec!.machine).then((d) => {
        if (d.headSeq === seq) u.hash = safeHash(() => d.stateHash())
        log(`hub text up at v${d.version}, head ${d.headSeq}, its $migrate at ${seq}${u.hash !== undefined ? ` hashes ${u.hash}` : ""}`)
      }, (e: unknown) => log(`hub text upgrade load failed: ${message(e)}`))
    }
    startHub()

    // A versioned document the hub could not upgrade (versioned.ts blockingTitle): the version
    // it stays at, from the hub's report at each load, and every such load for the checker
    // (where the log stood: the load read exactly what was durable).
    let held: number | undefined
    const loads: HubLoad[] = []
    function noteLoad(code: "migration-failed" | "machine-upgraded", message: string): void {
      const { head } = shadow.position("versioned")
      if (code === "migration-failed") {
        held = Number(/ v(\d+) on this hub/.exec(message)?.[1] ?? NaN)
        stats.heldLoads!++
        loads.push({ seq: head, held: true, version: held, message })
      } else {
        if (held !== undefined) stats.upgradesAfterHold!++
        held = undefined
        loads.push({ seq: head, held: false, version: NEWEST, message })
      }
      log(`hub ${code} versioned at seq ${head}: ${message.slice(0, 200)}`)
    }
    /** The versioned document's state as durable now, at version v, the one it is held at (undefined: its log cannot be read). */
    const versionedView = (v: number): unknown => {
      const { head } = shadow.position("versioned")
      const entries = shadow.log("versioned", head)
      return typeof entries === "string" ? undefined : viewAt("versioned", entries, v, v, head).state
    }

    // A hub crash aimed at a snapshot or compaction write: chunks before the meta, the meta,
    // the horizon before the deletes, the deletes, an old snapshot's deletion.
    function aimCrash(ops: ReadonlyArray<BatchOp>): void {
      if (phase !== "active" || o.snapshotCrashes <= 0 || !hubProc.alive) return
      const kind = snapshotWrite(ops)
      if (kind === undefined || rng() >= o.snapshotCrashes) return
      stats.snapshotCrashes!++
      const after = Math.floor(rng() * 6)
      log(`hub crash aimed at a ${kind} write (+${after} ms)`)
      rt.setTimer(after, () => crashHub())
    }

    // ---- replicas ----
    const replicas: Replica[] = []
    /** Copies of the disks of v1 typists, until their store's text has been upgraded (stored-text.ts). */
    const storedTexts = new StoredTexts()
    const follows = (i: number): DocSpec[] => {
      const mine = orderedFollows(i)
      // At least two typists, most replicas one.
      if (textSpec !== undefined && (i < 2 || textRng() < 0.6)) mine.push(textSpec)
      return mine
    }
    const orderedFollows = (i: number): DocSpec[] => {
      if (ordered.length === 1) return [...ordered]
      const n = 1 + Math.floor(rng() * Math.min(3, ordered.length))
      const mine = new Set<DocSpec>([ordered[i % ordered.length]!])
      while (mine.size < n) mine.add(pick(rng, ordered))
      // Most replicas follow the versioned document: a fleet of one version is no fleet.
      const versioned = specs.find((s) => s.kind === "versioned")
      if (versioned !== undefined && fleetRng() < 0.6) mine.add(versioned)
      return [...mine]
    }
    const startReplica = async (r: Replica) => {
      // Running, or still starting (opening its client): one process per disk, as on a device.
      if (r.proc.alive && (r.client !== undefined || r.starting === r.proc)) return
      r.proc = new SimProcess(r.name, rt, r.disk, stepped(r.name))
      r.starting = r.proc
      // A new incarnation loads from its disk and syncs anew: what the old one awaited is moot.
      for (const k of [...resyncing]) if (k.startsWith(`${r.name}/`)) resyncing.delete(k)
      r.incarnations.push(r.proc)
      const proc = r.proc
      // The app restarts the client: soon after an injected write failure, with growing
      // patience after anything else (a store that cannot be opened stays that way).
      const retry = (why: string, e: unknown) => {
        const injected = codeOf(e) === "storage-failed"
        if (injected) proc.reportedFailures++
        else fail(`storage: ${r.name} ${why}: ${codeOf(e)}: ${message(e)}`)
        log(`${r.name} ${why}: ${message(e)}`)
        if (proc.alive) {
          proc.kill()
          // As a crash: the documents it opened went with it (a submit to one never settles).
          net.drop(r.name)
          r.client = undefined
          r.docs.clear()
          r.failedStarts = injected ? r.failedStarts : r.failedStarts + 1
          rt.setTimer(Math.min(10_000, 300 * 2 ** r.failedStarts), () => { void startReplica(r) })
        }
      }
      let client: CanonClient
      // The newest app speaks 1..4; the incarnations between are older ones that speak 1..2 or 1..3.
      const protocol = o.protocols === "v1" ? V1 : o.protocols === "v2" ? V2 : o.protocols === "v3" ? V3 : o.protocols === "v4" ? V4 : rng() < 0.4 ? V1 : [V12, V14, V13][r.incarnations.length % 3]!
      try {
        client = await CanonClient.open({
          protocol,
          transport: proc.wrapTransport(net.transport(r.name), (m) => tamper(r, m)),
          runtime: proc.runtime,
          storage: replicaStorage(proc.storage),
          backoff: { baseMs: 50, maxMs: 2_000 },
          stableMs: 3_000,
          snapshotEvery: 20,
          ...(r.commandLimit !== undefined ? { maxCommandBytes: r.commandLimit } : {}),
          // A small send window, so outboxes go out a window at a time and refill as answers come.
          ...(r.sendWindow !== undefined ? { sendWindow: r.sendWindow } : {}),
        })
      } catch (e) {
        return retry("could not open its client", e)
      }
      if (!proc.alive) return
      if (r.clientId !== undefined && client.clientId !== r.clientId && ledgerHas(r.clientId)) {
        fail(`identity: ${r.name} came back as ${client.clientId} after using ${r.clientId}`)
      }
      r.clientId = client.clientId
      r.client = client
      // Now and then the app opens a second client on the same disk (a second tab): it must be
      // refused, or two replicas would share this one's clientId and lose each other's commands.
      if (tabRng() < 0.3) {
        rt.setTimer(Math.floor(tabRng() * 2_000), () => {
          if (!proc.alive || phase !== "active") return
          stats.secondTabs!++
          void CanonClient.open({ transport: proc.wrapTransport(net.transport(`${r.name}-tab`)), runtime: proc.runtime, storage: replicaStorage(proc.storage), autoConnect: false }).then(
            (tab) => {
              fail(`identity: a second client opened on ${r.name}'s store while ${r.name} ran (clientId ${tab.clientId})`)
              void tab.close()
            },
            (e: unknown) => {
              if (codeOf(e) !== "storage-in-use") fail(`identity: a second client on ${r.name}'s store failed with ${codeOf(e)}, not storage-in-use: ${message(e)}`)
              else log(`${r.name} second tab refused: ${codeOf(e)}`)
            },
          )
        })
      }
      // The app version of this incarnation (events of a killed one may still arrive after an upgrade).
      const appVersion = r.version
      r.toldHeld = false
      client.onStatus((s, info) => {
        // An app newer than the hub is refused once per version it steps down (compat mode).
        if (s === "refused") fail(`identity: ${r.name} was refused by the hub: ${info?.code}: ${info?.reason}`)
        if (info?.code === "protocol-error") fail(`crash: the hub closed ${r.name}'s connection: ${info.reason}`)
        // Stepping down for a hub older than the app (its handshake or a document's subscribe refused).
        if (info?.code === "schema-too-new") stats.stepDowns = (stats.stepDowns ?? 0) + 1
      })
      // Now and then the app opens its documents only once online (as a user navigates to
      // them): their machines are not in the handshake, and a hub older than the app refuses
      // them at the subscribe, where the client must step down as at a refused handshake.
      if (lateRng() < 0.25) {
        await new Promise<void>((resolve) => {
          const stop = client.onStatus((s) => { if (s === "online") { stop(); resolve() } })
          if (client.status === "online") resolve()
        })
        if (!proc.alive) return
        stats.lateOpens!++
      }
      /** When the hub last told this process of an injected storage failure, by document. */
      const injectedAt = new Map<string, number>()
      for (const spec of r.follows) {
        let doc: Doc<any>
        // A newer app opening a v1 typist's store: what the store holds before the open migrates it.
        const upgrading = spec.kind === "text" && machineOf(r, spec).version > 1 && storedTexts.watching(r.name)
        const rows = upgrading ? storedTexts.take(r.name) : undefined
        try {
          doc = await client.open(machineOf(r, spec), spec.docId)
        } catch (e) {
          return retry(`could not open ${spec.docId}`, e)
        }
        if (!proc.alive) return
        if (rows !== undefined) {
          // Opened: the store is of the new version now (or was already: nothing to compare).
          storedTexts.forget(r.name)
          checkUpgradedText(r, spec, textsOf(doc), rows)
        }
        r.docs.set(spec.docId, doc)
        // Before anything is typed: the typists see which command carries each edit.
        if (spec.kind === "text") typists.attach(doc, (name, args, receipt) => record(r, spec, name, args, receipt, false, doc.updateRequired !== undefined))
        const key = (cs: number) => ledgerKey(spec.docId, client.clientId, cs)
        doc.on("confirmed", (e) => {
          const k = key(e.clientSeq)
          const prev = ledger.confirmed.get(k)
          if (prev !== undefined && prev !== e.seq) fail(`exactly-once: ${k} confirmed twice with different seqs ${prev} and ${e.seq}`)
          ledger.confirmed.set(k, e.seq)
          ledger.toldBy!.set(k, proc)
        })
        // A CRDT merge the hub refused (told rejected or resent) leaves its content in the
        // replica's field until the authority's state it asked for is installed, and asked-for
        // states are paced (by the document and by the client's state budget): seconds.
        const refusedMerge = (command: string) => { if (command.startsWith("$crdt.") && proc.alive) resyncing.add(`${r.name}/${spec.docId}`) }
        doc.on("rejected", (e) => {
          refusedMerge(e.command)
          ledger.rejected.set(key(e.clientSeq), e.rejection.code)
          ledger.toldBy!.set(key(e.clientSeq), proc)
          log(`${r.name} ${spec.docId} #${e.clientSeq} ${e.command} rejected: ${e.rejection.message.slice(0, 160)}`)
        })
        doc.on("resent", (e) => {
          refusedMerge(e.command)
          ledger.resent.set(key(e.clientSeq), e.rejection.code)
          log(`${r.name} ${spec.docId} #${e.clientSeq} ${e.command} resent: ${e.rejection.message.slice(0, 160)}`)
        })
        doc.on("snapshot", (s) => {
          stats.installs!++
          if (s.received === s.size) resyncing.delete(`${r.name}/${spec.docId}`)
          // Installed, unless a chunk we corrupted makes it discarded (snapshot-invalid follows).
          if (spec.kind === "versioned" && s.received === s.size && r.corrupted === 0) r.provisional = false
        })
        if (spec.kind === "versioned") {
          doc.on("updateRequired", (e) => {
            stats.updateRequired!++
            ledger.updateRequired!.push({ replica: r.name, docId: spec.docId, version: appVersion, seq: e.seq, ...shadow.position(spec.docId), provisional: r.provisional })
            log(`${r.name} v${appVersion} update-required on ${spec.docId} at ${e.seq}`)
            // The case upgrades are for, made on purpose rather than left to chance: an app told
            // to update with commands in its outbox is often upgraded soon after (they must then
            // be sent and applied once).
            if (doc.pendingCount > 0 && appVersion < NEWEST && keptRng() < 0.5) rt.setTimer(100 + Math.floor(keptRng() * 500), () => upgradeReplica(r, NEWEST))
          })
        }
        if (spec.kind === "text") {
          // A v1 app told the hub's text is of v2 (compacted into a v2 state it cannot start
          // from): read-only, its typing kept in the outbox. Its user updates it soon (in the
          // heal phase too: the texts must end equal), and the kept changes then go, at v2.
          doc.on("updateRequired", (e) => {
            stats.textUpdateRequired!++
            log(`${r.name} v${appVersion} update-required on ${spec.docId} at ${e.seq} (${doc.pendingCount} kept)`)
            rt.setTimer(200, () => upgradeReplica(r, NEWEST, true))
          })
        }
        doc.on("desync", (d) => {
          stats.desyncs!++
          if (proc.alive) resyncing.add(`${r.name}/${spec.docId}`)
          ledger.desyncs.push({ replica: r.name, docId: spec.docId, seq: d.seq })
          log(`${r.name} desync on ${spec.docId} at ${d.seq}`)
        })
        doc.on("error", (e) => {
          log(`${r.name} ${spec.docId} error ${e.code}: ${e.message}`)
          // Its own failed writes are reported this way; anything else is the hub failing to serve it.
          if (e.code === "storage-failed" && e.message.startsWith("Writing")) proc.reportedFailures++
          // The hub's disk failing a write or a read (injected) is a fair answer, and so is "not-subscribed" after
          // it; whether the document recovers is what convergence and the storage check judge.
          // A stream we corrupted on the wire is discarded with snapshot-invalid: that is the point.
          else if (e.code === "snapshot-invalid" && r.corrupted > 0) r.corrupted--
          // An older app told it cannot be shown an entry; a newer one whose command has no downcast to the hub's version.
          else if ((spec.kind === "versioned" || spec.kind === "text") && e.code === "update-required" && appVersion < NEWEST) return
          else if ((spec.kind === "versioned" || spec.kind === "text") && e.code === "schema-too-new" && appVersion > hubFirstVersion) {
            // On the text: an edit to `notes` (SimTextV2 adds it) waits, with what follows it, for the hub's upgrade.
            if (spec.kind === "text") stats.notesHeld!++
            return
          }
          // v3's migration refusing a state (versioned.ts blockingTitle), told an app that needs
          // it: the hub holding the document at an older version, the app's own store opened
          // at seq 0, or (compat mode) the hub's state. Any other migration-failed is a bug.
          else if (spec.kind === "versioned" && e.code === "migration-failed" && appVersion > 1 && e.message.includes(MIGRATION_REFUSES)) {
            if (e.message.includes(" on this hub")) {
              stats.heldRefusals!++
              if (proc.alive) r.toldHeld = true
            } else if (e.message.startsWith("The stored replica")) stats.replicaMigrationFailed!++
            else stats.compatMigrationFailed!++
            return
          }
          // The hub's disk failing a read of this client's records: the submits it carried
          // were refused unjudged, and a submit after them is a gap until they go again.
          else if ((e.code === "storage-failed" || e.code === "catch-up-failed") && hubStorageInjected.get(spec.docId) === true) injectedAt.set(spec.docId, vrt.now())
          else if (e.code === "sequence-gap" && vrt.now() - (injectedAt.get(spec.docId) ?? -Infinity) < 5_000) return
          // The hub's memory full (the hog's document): the replica sends again later.
          else if (e.code === "hub-full" && o.memoryHog > 0) stats.hubFullTold = (stats.hubFullTold ?? 0) + 1
          else if (e.code !== "not-subscribed") fail(`serving: the hub answered ${r.name} on ${spec.docId} with ${e.code}: ${e.message}`)
        })
        log(`${r.name} follows ${spec.docId} as ${client.clientId} seq=${doc.confirmedSeq} pending=${doc.pendingCount}`)
      }
    }
    /**
     * The text a newer app shows on opening a v1 store (`shown`, read as the open returned:
     * nothing from the network has arrived since) is what the v1 app shows from the same
     * store (`rows`, taken just before): its confirmed text and its unsent edits. The upgrade
     * migrates the stored state, and the CRDT fields must come along (the hub's state fetched
     * on connecting would repair them later, hiding the loss from every end-of-seed check).
     */
    function checkUpgradedText(r: Replica, spec: DocSpec, shown: Record<string, string>, rows: StoredRows): void {
      const version = machineOf(r, spec).version
      storedTexts.read(rows, SimText, spec.docId).then((stored) => {
        if (stored === undefined) return
        stats.textStoreUpgrades!++
        if (Object.values(stored).some((t) => t !== "")) stats.textStoreUpgradesWithText!++
        // A field the v1 app does not have (`notes`) starts empty at the new version.
        for (const field of fieldsAt(version)) {
          if (shown[field] !== (stored[field] ?? "")) fail(`crdt: ${spec.docId}: ${r.name}'s ${field} opened by its v${version} app is ${JSON.stringify(short(shown[field]!))}, but its v1 store holds ${JSON.stringify(short(stored[field] ?? ""))}`)
        }
        log(`${r.name} opened its v1 store of ${spec.docId} at v${version}: ${Object.entries(stored).map(([f, t]) => `${f} ${t.length} chars`).join(", ")}`)
      }, (e: unknown) => fail(`crash: ${r.name}'s v1 store of ${spec.docId} cannot be read by its v1 app: ${codeOf(e)}: ${message(e)}`))
    }
    // A replica's app version and its upgrades: it starts at v1..v3; most older ones are
    // upgraded once or twice at random moments, some never.
    function planFleet(r: Replica): void {
      r.version = 1 + Math.floor(fleetRng() * NEWEST)
      let v = r.version
      let t = 0
      while (v < NEWEST && fleetRng() < 0.65) {
        v += 1 + Math.floor(fleetRng() * (NEWEST - v))
        t += Math.floor(fleetRng() * (activeMs - t))
        const to = v
        rt.setTimer(t, () => upgradeReplica(r, to))
      }
      log(`${r.name} app v${r.version}${v > r.version ? `, upgraded to v${v} later` : ", never upgraded"}`)
    }
    // New app code: the process is stopped (kill -9: an upgrade is not always clean) and the new code opens the old store.
    function upgradeReplica(r: Replica, to: number, told = false): void {
      if ((phase !== "active" && !(told && phase === "heal")) || to <= r.version) return
      stats.replicaUpgrades!++
      const d = r.docs.get("versioned")
      // The case the upgrade is for: a read-only document whose outbox must now be sent and applied once.
      if (d !== undefined && d.updateRequired !== undefined && d.pendingCount > 0) stats.upgradesWithKeptOutbox!++
      log(`${r.name} upgrade v${r.version} -> v${to}${r.proc.alive ? "" : " (while down)"}${d?.updateRequired !== undefined ? ` (update-required, ${d.pendingCount} kept)` : ""}`)
      r.version = to
      r.upgraded = true
      if (r.follows.some((s) => s.kind === "versioned")) r.provisional = true
      if (!r.proc.alive) return
      r.proc.kill()
      net.drop(r.name)
      r.client = undefined
      r.docs.clear()
      rt.setTimer(50 + Math.floor(fleetRng() * 500), () => { void startReplica(r) })
    }
    const ledgerHas = (clientId: string) => [...ledger.submitted.values()].some((s) => s.clientId === clientId)
    /**
     * `count` times, at a random moment of the active phase, a random replica's episode of
     * `minMs` plus up to `spanMs`: from a random stream of its own (`salt`), so a world
     * without them is unchanged.
     */
    const episodes = (count: number, salt: number, minMs: number, spanMs: number, start: (name: string, ms: number) => void) => {
      const episodeRng = seededRandom(seed ^ salt)
      for (let i = 0; i < count; i++) {
        const at = Math.floor(episodeRng() * activeMs)
        const name = `r${Math.floor(episodeRng() * options.replicas)}`
        const ms = minMs + Math.floor(episodeRng() * spanMs)
        rt.setTimer(at, () => phase === "active" && start(name, ms))
      }
    }
    // Disks nearly full for a while: large batches fail, small pass.
    const fullUntil = new Map<string, number>()
    episodes(o.replicaQuota, 0x9007a, 1_000, 7_000, (name, ms) => {
      log(`${name}'s disk is nearly full for ${ms} ms (batches over ${QUOTA_BATCH_BYTES} B fail)`)
      fullUntil.set(name, vrt.now() + ms)
    })
    const overQuota = (name: string, ops: ReadonlyArray<BatchOp>): boolean => {
      if (phase !== "active" || vrt.now() >= (fullUntil.get(name) ?? 0)) return false
      let bytes = 0
      for (const op of ops) bytes += op.key.length + (op.type === "put" ? op.value.length : 0)
      if (bytes <= QUOTA_BATCH_BYTES) return false
      stats.replicaQuotaFailures = (stats.replicaQuotaFailures ?? 0) + 1
      return true
    }
    for (let i = 0; i < options.replicas; i++) {
      const writeFails = failing(o.replicaWriteFailures, "replicaWriteFailures")
      const disk = new MemoryStorage({
        latency: { runtime: rt, ms: diskLatency, readMs: readLatency },
        // The random failure first: its draw is made whether or not the disk is full.
        failWrite: (ops) => writeFails() || overQuota(`r${i}`, ops),
        failRead: () => {
          if (phase !== "active" || o.replicaReadFailures <= 0 || replicaReadRng() >= o.replicaReadFailures) return false
          stats.replicaReadFailures!++
          return true
        },
        onDurable: (ops) => storedTexts.durable(`r${i}`, ops),
      })
      const proc = new SimProcess(`r${i}`, rt, disk, stepped(`r${i}`))
      proc.alive = false
      const mine = follows(i)
      const commandLimit = mine.some((s) => s.kind === "text") && !mine.some((s) => s.kind === "big") && limitRng() < 0.4 ? SMALL_COMMAND_LIMIT : undefined
      // Half the replicas send their outboxes a few commands at a time (own stream: no other draw moves).
      const sendWindow = tabRng() < 0.5 ? 1 + Math.floor(tabRng() * 4) : undefined
      const r: Replica = { name: `r${i}`, disk, proc, client: undefined, docs: new Map(), clientId: undefined, partitioned: false, follows: mine, incarnations: [], failedStarts: 0, corrupted: 0, version: NEWEST, upgraded: false, provisional: false, toldHeld: false, commandLimit, sendWindow }
      replicas.push(r)
      if (r.follows.some((s) => s.kind === "versioned")) planFleet(r)
      // A v1 typist's store is of the text's v1: an upgrade will migrate it (checked at the open).
      if (textSpec !== undefined && r.follows.includes(textSpec) && machineOf(r, textSpec).version === 1) storedTexts.watch(r.name)
      // Storage takes virtual time: everything async happens inside rt.run.
      rt.setTimer(0, () => { void startReplica(r) })
    }

    // ---- hostile clients ----
    const todoDocs = specs.filter((s) => s.kind === "todo")
    const hostile = hostileOn && todoDocs.length > 0 ? new HostileClients(net, rt, rng, todoDocs, log, options.attacks ?? ATTACKS) : undefined
    const nextClientSeq = (docId: string, clientId: string): number => {
      let max = 0
      for (const s of ledger.submitted.values()) if (s.docId === docId && s.clientId === clientId && s.clientSeq > max) max = s.clientSeq
      return max + 1
    }
    // An attacker learns a clientId from the entries it reads: only a replica with a confirmed
    // command is a victim. (A clientId the hub never saw belongs to whoever proves it first;
    // forging one the victim has not used yet is guessing 82 random bits.)
    const onWire = (clientId: string) => [...ledger.confirmed.keys()].some((k) => k.includes(`|${clientId}:`))
    // An id the forger can know: seen in entries, or (a Canon-made id, core/client-id.ts) any
    // replica's, even before the hub has a record of it: its secret alone proves it.
    const victim = (r: Replica): Victim | undefined => r.clientId === undefined || !(onWire(r.clientId) || SELF_CERTIFYING_ID.test(r.clientId)) ? undefined : {
      name: r.name, clientId: r.clientId, docs: ofOrdered(r.follows), nextClientSeq: (docId) => nextClientSeq(docId, r.clientId!),
    }

    // ---- workload ----
    const submit = (r: Replica, spec: DocSpec) => {
      const doc = r.docs.get(spec.docId)
      if (doc === undefined || !r.proc.alive || doc.isClosed) return
      const draw = spec.kind === "todo" ? rng() : 1
      const invalid = draw < 0.05
      const [name, args] = invalid ? ["rename", invalidArgs(draw / 0.05)] : spec.kind === "versioned" ? versionedCommand(rng, r.version) : honestCommand(rng, spec.machine, doc.state, bigPlan, o.appBugs)
      submitCommand(r, spec, doc, name, args, invalid)
    }
    const submitCommand = (r: Replica, spec: DocSpec, doc: Doc<any>, name: string, args: unknown, invalid: boolean) => {
      // The app bugs of TodoPlus (workload.ts todoCommand): aliasing and non-plain writes.
      if (spec.kind === "todo" && (name === "alias" || name === "stamp")) stats.appBugs = (stats.appBugs ?? 0) + 1
      // A read-only document (update-required) refuses locally: that is its contract.
      const readOnly = (spec.kind === "versioned" || spec.kind === "text") && doc.updateRequired !== undefined
      let receipt: ReturnType<Doc<any>["submit"]>
      try {
        receipt = doc.submit(name as never, args as never)
      } catch (e) {
        return fail(`crash: ${r.name} submit of ${name} threw ${codeOf(e)}: ${message(e)}`)
      }
      record(r, spec, name, args, receipt, invalid, readOnly)
    }

    /** Puts a command an app submitted (or the CRDT outbox for it) in the ledger; its key, unless refused locally. */
    function record(r: Replica, spec: DocSpec, name: string, args: unknown, receipt: Receipt, invalid: boolean, readOnly: boolean): Carrier | undefined {
      const machine = machineOf(r, spec)
      stats.submits!++
      if (receipt.clientSeq < 0) {
        stats.localRefusals!++
        receipt.catch((e: { code?: string }) => {
          if (readOnly && e.code === "update-required") return
          if (e.code !== "invalid-args" || !invalid) fail(`bad input: local refusal of a valid ${name} with code ${e.code}`)
        })
        return undefined
      }
      const clientId = r.clientId!
      const key = ledgerKey(spec.docId, clientId, receipt.clientSeq)
      const encoded = machine.compiled.get(name)!.encode(args)
      const entry: Submitted = {
        docId: spec.docId, clientId, clientSeq: receipt.clientSeq, name, replica: r.name, proc: r.proc,
        argsKey: encoded._tag === "Success" ? argsKey(encoded.success) : undefined, persisted: false, settled: false,
        ...(spec.kind === "versioned" ? { version: r.version, args: encoded._tag === "Success" ? encoded.success : args } : {}),
      }
      ledger.submitted.set(key, entry)
      receipt.persisted.then((lost) => { if (lost === undefined) entry.persisted = true })
      // A replica keeps its storage here: nothing should make it renumber its commands (sequence-reset).
      const renumbered = () => {
        if (receipt.clientSeq !== entry.clientSeq) fail(`identity: ${key} (${name}) was renumbered to clientSeq ${receipt.clientSeq} (a sequence-reset) though ${r.name} kept its storage`)
      }
      receipt.then((v) => {
        renumbered()
        entry.settled = true
        const prev = ledger.confirmed.get(key)
        if (prev !== undefined && prev !== v.seq) fail(`exactly-once: ${key}: receipt seq ${v.seq} but event seq ${prev}`)
        ledger.confirmed.set(key, v.seq)
        ledger.toldBy!.set(key, entry.proc)
      }, (e: { code?: string; message?: string }) => {
        renumbered()
        // The hub refused the document's subscribe (a hub older than the app: schema-too-new; a
        // document held at an older version: migration-failed): the receipt says so and that the
        // command stays in the outbox, to go once the hub takes it. Not an outcome: the checker
        // still wants it confirmed (the event), rejected or kept; but the receipt has settled.
        if (e.code === "refused") {
          entry.settled = true
          // Refused as too new by a hub whose version this app has: it should have stepped down
          // (declared that version and connected again), not left the document refused.
          const hubRuns = /^schema-too-new: .* the hub runs (\d+)/.exec(e.message ?? "")?.[1]
          if (hubRuns !== undefined && historyOf(machine)?.has(Number(hubRuns))) {
            fail(`liveness: ${key} (${name}) refused as too new though the app has the hub's v${hubRuns}: ${e.message}`)
          }
          if (spec.kind === "versioned" && e.message?.startsWith("migration-failed: ")) stats.heldReceipts!++
          return
        }
        entry.settled = true
        ledger.rejected.set(key, e.code ?? "?")
        ledger.toldBy!.set(key, entry.proc)
      })
      log(`${r.name} submit ${spec.docId} ${receipt.clientSeq} ${name}${spec.kind === "versioned" ? ` (v${r.version})` : ""}`)
      return { key, entry }
    }

    // Typing: a replica following the text document edits its Y.Text (1-3 edits, some a few
    // ms apart, so they coalesce behind a merge in flight; now and then a long run of them),
    // now and then submits the ordered `touch`, goes offline to type alone for a while, or is
    // hit by a fault soon after. All drawn from the text stream.
    const type = (r: Replica, pasteBytes = 0) => {
      const doc = r.docs.get(textSpec!.docId)
      if (doc === undefined || !r.proc.alive || doc.isClosed) return
      // An app running the text's v2 types into the field v2 adds, too.
      const version = machineOf(r, textSpec!).version
      const field = pasteBytes > 0 ? "text" : version >= FIELD_SINCE.notes! && o.crdtNotes > 0 && textRng() < o.crdtNotes ? "notes" : textRng() < o.crdtAutomerge ? "am" : "text"
      let what: string
      try {
        what = typists.edit(r.name, doc, field, pasteBytes)
      } catch (e) {
        return fail(`crash: ${r.name} editing the text threw ${codeOf(e)}: ${message(e)}`)
      }
      stats.textEdits!++
      // Inserts by the text's version this app runs (the fleet's v1 apps type at v1).
      if (what.startsWith("insert")) stats[`textInsertsAtV${version}`]!++
      if (field === "notes") {
        stats.notesEdits!++
        if (what.startsWith("insert")) stats.notesInserts!++
        // The hub serves the text's v1: the edit waits in the outbox (with what follows it) until its upgrade.
        if (textMachine(hubVersion).version < FIELD_SINCE.notes!) stats.notesTypedOnV1Hub!++
        // The hub serves v2 while a v1 app follows the text: its merge must reach that app as nothing.
        else if (replicas.some((o) => o.proc.alive && o.docs.has(textSpec!.docId) && machineOf(o, textSpec!).version < FIELD_SINCE.notes!)) stats.notesBesideV1!++
      }
      log(`${r.name} ${what}`)
    }
    const typeBurst = (r: Replica) => {
      // A typist under a smaller command limit pastes more often, 3-4 at a time: the case is coalescing under it.
      const limited = r.commandLimit !== undefined
      if (textRng() < (limited ? 5 * o.crdtPastes : o.crdtPastes)) {
        // Pastes during one round trip: they coalesce behind the first, and must still fit in commands.
        const n = (limited ? 3 : 2) + Math.floor(textRng() * (limited ? 2 : 3))
        for (let k = 0, at = 0; k < n; k++) {
          const bytes = r.commandLimit === undefined ? (30 << 10) + Math.floor(textRng() * (70 << 10)) : (12 << 10) + Math.floor(textRng() * (8 << 10))
          if (k === 0) type(r, bytes)
          else rt.setTimer((at += 1 + Math.floor(textRng() * 5)), () => type(r, bytes))
        }
        stats.textPastes!++
        if (r.commandLimit !== undefined) stats.textPastesUnderLimit!++
        return
      }
      const long = textRng() < 0.08
      const n = long ? 5 + Math.floor(textRng() * 30) : 1 + Math.floor(textRng() * 3)
      for (let k = 0, at = 0; k < n; k++) {
        at += long ? Math.floor(textRng() * 12) : 1 + Math.floor(textRng() * 30)
        if (k > 0 && (long || textRng() < 0.5)) rt.setTimer(at, () => type(r))
        else type(r)
      }
      if (textRng() < 0.1) submit(r, textSpec!)
      const x = textRng()
      if (x < 0.04 * faultLevel) {
        if (r.partitioned) return
        r.partitioned = true
        stats.partitions!++
        log(`partition ${r.name} (typing offline)`)
        net.partition(r.name)
        rt.setTimer(1_000 + Math.floor(textRng() * 4_000), () => { r.partitioned = false; net.heal(r.name); log(`heal ${r.name}`) })
      } else if (x < 0.19 * faultLevel) {
        const y = textRng()
        rt.setTimer(Math.floor(textRng() * 40), () => {
          if (y < 0.5) { stats.drops!++; log(`drop ${r.name} (after typing)`); net.drop(r.name) }
          else crashReplica(r)
        })
      }
    }

    const crashReplica = (r: Replica) => {
      if (!r.proc.alive) return
      r.proc.kill()
      net.drop(r.name)
      r.client = undefined
      r.docs.clear()
      stats.replicaCrashes!++
      log(`${r.name} crash`)
      // Now and then a long outage: the log is compacted past the replica meanwhile.
      const down = o.longOutages && rng() < 0.25 ? 4_000 + Math.floor(rng() * 4_000) : 200 + Math.floor(rng() * 2000)
      rt.setTimer(down, () => { void startReplica(r) })
    }

    // Snapshot streams on the wire to a replica: a chunk now and then corrupted (the replica
    // must discard the stream and fetch again) or its connection cut (resume or restart).
    const tamper = (r: Replica, m: ServerMessage): ServerMessage | undefined => {
      if (m.type === "snapshot-begin") stats.streams!++
      if (m.type !== "snapshot-chunk" || phase !== "active" || o.streamFaults <= 0 || rng() >= o.streamFaults) return m
      if (rng() < 0.5 && m.bytes.length > 0) {
        stats.corruptChunks!++
        r.corrupted++
        const bytes = m.bytes.slice()
        const i = Math.floor(rng() * bytes.length)
        bytes[i] = bytes[i]! ^ (1 + Math.floor(rng() * 255))
        log(`corrupt chunk at ${m.offset} of snapshot ${m.snapshotId} of ${m.docId} to ${r.name}`)
        return { ...m, bytes }
      }
      stats.cutStreams!++
      log(`cut the snapshot stream of ${m.docId} to ${r.name} at ${m.offset}`)
      rt.setTimer(0, () => net.drop(r.name))
      return m
    }

    const crashHub = () => {
      if (!hubProc.alive) return
      hubProc.kill()
      net.stopServer()
      stats.hubCrashes!++
      log("hub crash")
      rt.setTimer(100 + Math.floor(rng() * 1500), startHub)
    }

    // A hub stopped on purpose (a deploy's SIGTERM): it closes while replicas are connected and
    // commits are in flight; once close() resolves its process must do nothing more. Drawn from a
    // stream of its own, so a seed's other draws stay where they were.
    const stopRng = seededRandom(seed ^ 0x570b)
    let stopping = false
    const stopOrCrashHub = () => {
      if (!hubProc.alive || stopping) return
      if (stopRng() >= o.gracefulStops) return crashHub()
      stopping = true
      stats.hubStops!++
      log("hub stop (graceful close)")
      const [proc, closing] = [hubProc, hub!]
      void closing.close().catch((e: unknown) => fail(`crash: the hub's close() failed: ${codeOf(e)}: ${message(e)}`)).then(() => {
        proc.exitAfterClose((what) => fail(`quiet: the closed hub ${what}`))
        net.stopServer()
        stopping = false
        rt.setTimer(100 + Math.floor(stopRng() * 1500), startHub)
      })
    }

    // The hub's upgrade: restarted with the newer machine list (killed: an upgrade may be abrupt).
    if (fleetOn) {
      rt.setTimer(hubUpgradeAt, () => {
        stats.hubUpgrades!++
        log(`hub upgrade v${hubVersion} -> v${NEWEST}${hubProc.alive ? "" : " (while down)"}`)
        hubVersion = NEWEST
        if (rollbackUpgrade) rollbackMachine = TagsV2 as unknown as typeof Tags
        if (!hubProc.alive) return
        hubProc.kill()
        net.stopServer()
        rt.setTimer(100 + Math.floor(fleetRng() * 1000), startHub)
      })
    }

    // The heavy writer: its own stream, its own document (nobody else follows it).
    if (o.crdtHeavy > 0 && textSpec !== undefined && hostile !== undefined) {
      const heavyRng = seededRandom(seed ^ 0x4ea7)
      const target = { docId: "text-heavy", machine: SimText }
      for (let t = Math.floor(heavyRng() * 500); t < activeMs; t += 1 + Math.floor(heavyRng() * (2000 / o.crdtHeavy))) {
        rt.setTimer(t, () => {
          if (phase !== "active") return
          stats.crdtHeavy = (stats.crdtHeavy ?? 0) + 1
          hostile.crdtHeavy(target)
        })
      }
    }

    // The memory hog: fills the hub's memory from a document of its own, holds it, then leaves.
    if (o.memoryHog > 0 && hostile !== undefined) {
      const target = { docId: "hog", machine: TodoPlus }
      for (let t = 200; t < activeMs / 2; t += 50) {
        rt.setTimer(t, () => {
          if (phase !== "active") return
          hostile.memoryHog(target)
        })
      }
      rt.setTimer(Math.floor(activeMs / 2), () => {
        stats.hogFilled = hostile.hogFilled ? 1 : 0
        log(`hog leaves: ${hostile.hogStatus}`)
        hostile.hogLeaves()
      })
      // The bound holds throughout, by the hub's gauge and by what its loaded states hold
      // (heapBytes, which the gauge's estimates never fall below; client states count but are
      // never refused: a little more).
      const loaded = new Set<DocAuthority<unknown>>()
      const sample = (): void => {
        const h = hub as unknown as { memory?: { total: number }; docs?: Map<string, Promise<DocAuthority<unknown>>> } | undefined
        if (h?.memory !== undefined && hubProc.alive) {
          for (const p of h.docs?.values() ?? []) p.then((d) => loaded.add(d), () => {})
          let states = 0
          for (const d of loaded) {
            if ((d as unknown as { closed: boolean }).closed) loaded.delete(d)
            else states += heapBytes(d.state)
          }
          stats.heldPeak = Math.max(stats.heldPeak ?? 0, h.memory.total)
          if (h.memory.total > HOG_HELD_BYTES + HOG_SLACK_BYTES) fail(`memory: the hub's loaded documents hold ${h.memory.total} bytes by its gauge, past its maxHeldBytes of ${HOG_HELD_BYTES}`)
          if (states > HOG_HELD_BYTES + HOG_SLACK_BYTES) fail(`memory: the hub's loaded states hold ${states} bytes (heapBytes), past its maxHeldBytes of ${HOG_HELD_BYTES}; its gauge says ${h.memory.total}`)
        } else loaded.clear()
        if (phase === "active") rt.setTimer(100, sample)
      }
      rt.setTimer(100, sample)
    }

    // The CPU hog: slow commands on a document of its own, as fast as the rate lets it.
    if (o.cpuHog > 0 && hostile !== undefined) {
      const targets = Array.from({ length: CPU_HOG_DOCS }, (_, i) => ({ docId: `cpu-hog-${i}`, machine: SimBurner }))
      const cpuAtStart = simCpu.burnt
      for (let t = 200; t < activeMs; t += 50) {
        rt.setTimer(t, () => {
          if (phase === "active") hostile.cpuHog(targets)
        })
      }
      rt.setTimer(activeMs, () => {
        hostile.cpuHogLeaves()
        stats.cpuWorstStretchMs = simCpu.worst
        stats.cpuHogJudgedMs = 0
        // What the hub judged of each client of the hog's, at MAX_BURN_MS each, within what its
        // budget allows: the burst, and the rate over the time from its first submit to its last
        // answer (on the hub's steady clock, which counts the CPU burnt: all of it, at most), and
        // one command past the debt.
        for (const c of hostile.cpuHogClients) {
          const judged = c.judged * MAX_BURN_MS
          const passed = c.spanMs + simCpu.burnt - cpuAtStart
          const allowed = SIM_HOG_WORK.workBurst / 1_000 + SIM_HOG_WORK.workPerSecond / 1_000_000 * passed + MAX_BURN_MS
          stats.cpuHogJudgedMs += judged
          log(`cpu hog ${c.clientId}: ${judged} ms of its commands judged, ${Math.round(allowed)} ms allowed`)
          if (judged > allowed) fail(`cpu: the hub judged ${judged} ms of ${c.clientId}'s commands within ${Math.round(passed)} ms, past its work budget (${Math.round(allowed)} ms: workBurst ${SIM_HOG_WORK.workBurst} µs, workPerSecond ${SIM_HOG_WORK.workPerSecond})`)
        }
        // And all of them together within their address's budget (every client of the world
        // shares one: the replicas' commands burn nothing), and one command past each one's debt.
        const clients = hostile.cpuHogClients
        const passed = Math.max(0, ...clients.map((c) => c.spanMs)) + simCpu.burnt - cpuAtStart
        const allowed = SIM_HOG_WORK.sharedWorkBurst / 1_000 + SIM_HOG_WORK.sharedWorkPerSecond / 1_000_000 * passed + clients.length * MAX_BURN_MS
        if (stats.cpuHogJudgedMs > allowed) fail(`cpu: the hub judged ${stats.cpuHogJudgedMs} ms of the CPU hog's ${clients.length} clients within ${Math.round(passed)} ms, past their address's work budget (${Math.round(allowed)} ms: sharedWorkBurst ${SIM_HOG_WORK.sharedWorkBurst} µs, sharedWorkPerSecond ${SIM_HOG_WORK.sharedWorkPerSecond})`)
      })
    }

    // The poisoner: Yjs values nested past what Yjs reads back, into the text document the replicas follow.
    if (o.crdtPoison > 0 && textSpec !== undefined && hostile !== undefined) {
      const poisonRng = seededRandom(seed ^ 0x9015)
      const target = { docId: textSpec.docId, machine: SimText }
      for (let t = Math.floor(poisonRng() * 500); t < activeMs; t += 1 + Math.floor(poisonRng() * (2000 / o.crdtPoison))) {
        rt.setTimer(t, () => {
          if (phase !== "active") return
          stats.crdtPoison = (stats.crdtPoison ?? 0) + 1
          hostile.crdtPoison(target, poisonRng)
        })
      }
    }

    // Wall clocks stepped (its own random stream: a world without steps is unchanged): the
    // hub's or a replica's, by a second to two hours, either way.
    for (let i = 0; i < o.clockSteps; i++) {
      const at = Math.floor(clockRng() * activeMs)
      const machine = clockRng() < 0.5 ? "hub" : `r${Math.floor(clockRng() * options.replicas)}`
      const by = Math.round((clockRng() < 0.5 ? -1 : 1) * 1_000 * Math.exp(clockRng() * Math.log(7_200)))
      rt.setTimer(at, () => {
        stats.clockSteps!++
        clockSteps.set(machine, (clockSteps.get(machine) ?? 0) + by)
        log(`${machine}'s wall clock steps ${by} ms`)
      })
    }

    // Replicas that stop reading for a while.
    episodes(o.stalls, 0x57a11, 500, 5_500, (name, ms) => {
      if (net.isStalled(name)) return
      stats.stalls = (stats.stalls ?? 0) + 1
      log(`stall ${name} for ${ms} ms (reads nothing)`)
      net.stall(name)
      rt.setTimer(ms, () => {
        if (!net.isStalled(name)) return
        log(`unstall ${name}`)
        net.unstall(name)
      })
    })

    // Presence: replicas set theirs now and then (a cursor, null: none), on an RNG of its own
    // so the rest of a seed stays put. Each document object's last one is what every other
    // replica must show at the end (checked after the heal).
    const presenceRng = seededRandom(seed ^ 0x9e5e)
    const presenceOf = new WeakMap<object, unknown>()
    /** `r` sets its presence on `doc` (unless the document closed meanwhile), remembered for the check. */
    const setPresence = (r: Replica, doc: Doc<any>, state: unknown): void => {
      try {
        doc.setPresence(state)
      } catch {
        return
      }
      presenceOf.set(doc, state)
      log(`${r.name} presence ${doc.docId} ${JSON.stringify(state)}`)
      stats.presenceSets = (stats.presenceSets ?? 0) + 1
    }
    for (let t = 0, i = 0; i < o.ops / 4; i++) {
      t += Math.floor(presenceRng() * (activeMs / o.ops) * 8)
      if (t >= activeMs) break
      const [which, value, spec] = [presenceRng(), presenceRng(), presenceRng()]
      rt.setTimer(t, () => {
        const r = replicas[Math.floor(which * replicas.length)]!
        const docs = [...r.docs.values()]
        const doc = docs[Math.floor(spec * docs.length)]
        if (doc === undefined || !r.proc.alive) return
        setPresence(r, doc, value < 0.15 ? null : { who: r.name, at: Math.floor(value * 1000) })
      })
    }

    // Schedule the active phase up front, so the order of events depends on the seed only.
    const opGap = activeMs / o.ops
    for (let t = 0, i = 0; i < o.ops; i++) {
      t += Math.floor(rng() * opGap * 2)
      if (t >= activeMs) break
      rt.setTimer(t, () => {
        guard.watchGlobals()
        const x = rng()
        const f = faultLevel
        if (x < 0.05 * f) {
          const r = pick(rng, replicas)
          stats.drops!++
          log(`drop ${r.name}`)
          net.drop(r.name)
        } else if (x < 0.08 * f) {
          const r = pick(rng, replicas)
          if (!r.partitioned) {
            r.partitioned = true
            stats.partitions!++
            log(`partition ${r.name}`)
            net.partition(r.name)
            rt.setTimer(500 + Math.floor(rng() * 3000), () => { r.partitioned = false; net.heal(r.name); log(`heal ${r.name}`) })
          }
        } else if (x < 0.11 * f) {
          crashReplica(pick(rng, replicas))
        } else if (x < 0.125 * f) {
          stopOrCrashHub()
        } else if (hostile !== undefined && x < 0.125 * f + 0.14) {
          // The same share of ticks whatever the repertoire, so the rest of a seed stays put.
          if (x < 0.125 * f + 0.12) {
            if (hostile.raws) {
              stats.hostile!++
              hostile.attack()
            }
          } else if (hostile.forges) {
            const v = victim(pick(rng, replicas))
            if (v !== undefined) {
              stats.forged!++
              hostile.forge(v)
            }
          }
        } else {
          // A burst of submits, sometimes followed closely by a fault aimed at the window
          // between a submit and its acknowledgement (or its durable write).
          const r = pick(rng, replicas)
          const spec = pick(rng, ofOrdered(r.follows))
          const n = 1 + Math.floor(rng() * 4)
          for (let k = 0; k < n; k++) {
            if (k > 0 && spreadRng() < 0.5) rt.setTimer(k * (1 + Math.floor(spreadRng() * 8)), () => submit(r, spec))
            else submit(r, spec)
          }
          if (rng() < 0.3 * f) {
            const y = rng()
            rt.setTimer(Math.floor(rng() * 40), () => {
              if (y < 0.45) { stats.drops!++; log(`drop ${r.name} (after submit)`); net.drop(r.name) }
              else if (y < 0.7) crashReplica(r)
              else stopOrCrashHub()
            })
          }
        }
      })
    }

    // The typists' schedule, from their own stream.
    if (textSpec !== undefined) {
      const writers = replicas.filter((r) => r.follows.includes(textSpec))
      for (let t = 0, i = 0; i < o.ops; i++) {
        t += Math.floor(textRng() * opGap * 2)
        if (t >= activeMs) break
        if (writers.length === 0) break
        const r = pick(textRng, writers)
        rt.setTimer(t, () => typeBurst(r))
      }
    }

    // Bursts of arguments whose compact form outweighs their canonical one, from their own stream.
    const bigSpec = specs.find((s) => s.kind === "big")
    const flagWriters = bigSpec === undefined ? [] : replicas.filter((r) => r.follows.includes(bigSpec))
    if (o.flagBursts > 0 && flagWriters.length > 0) {
      const flagRng = seededRandom(seed ^ 0xf1a65)
      for (let i = 0; i < o.flagBursts; i++) {
        // One writer, or two at once: the hub's group commit then fans both submits out together.
        const writers = [...new Set([pick(flagRng, flagWriters), pick(flagRng, flagWriters)].slice(0, flagRng() < 0.5 ? 1 : 2))]
        // 25-45 commands of 12k-24k booleans: 300 KB to 1 MB canonical, so a submit or page of
        // half a frame by that size is over a frame compact; those over 21.8k booleans (64 KiB
        // compact) go in the value form (args-codec LARGE_ARGS).
        const count = 25 + Math.floor(flagRng() * 21)
        const flags = Array.from({ length: 12_000 + Math.floor(flagRng() * 12_000) }, () => flagRng() < 0.5)
        // The other followers are cut off meanwhile, to catch up on the whole burst at once.
        const away = 1_500 + Math.floor(flagRng() * 2_000)
        rt.setTimer(Math.floor(flagRng() * activeMs), () => {
          for (const m of flagWriters) {
            if (writers.includes(m) || m.partitioned) continue
            m.partitioned = true
            log(`partition ${m.name} (flags burst)`)
            net.partition(m.name)
            rt.setTimer(away, () => { m.partitioned = false; net.heal(m.name); log(`heal ${m.name}`) })
          }
          for (const r of writers) {
            const doc = r.docs.get(bigSpec!.docId)
            if (doc === undefined || !r.proc.alive || doc.isClosed) continue
            stats.flagBursts = (stats.flagBursts ?? 0) + 1
            log(`${r.name} flags burst: ${count} commands of ${flags.length} booleans`)
            for (let k = 0; k < count; k++) submitCommand(r, bigSpec!, doc, "flags", { id: `f${k % 4}`, flags }, false)
          }
        })
      }
    }

    // Bursts of subscribes to fresh documents, from their own stream.
    // Ping-pong bursts subscribe as a second machine too: any the hub serves under another name.
    const churnOther = specs.find((s) => (s.kind === "big" || s.kind === "text") && s.machine.name !== todoDocs[0]?.machine.name)
    const churner = churnOn && todoDocs.length > 0 ? new SubscribeChurner(net, { ...rt, monotonic: hubSteady }, deliveries, SIM_LOADS, todoDocs[0]!, churnOther, fail, log) : undefined
    if (churner !== undefined) {
      const churnRng = seededRandom(seed ^ 0xc4a27)
      for (let i = 0; i < o.churn; i++) {
        const pairs = 300 + Math.floor(churnRng() * 301)
        rt.setTimer(Math.floor(churnRng() * activeMs), () => {
          stats.churnBursts = (stats.churnBursts ?? 0) + 1
          // The mode from the size, drawn already (the seeds' worlds stay as they were).
          churner.burst(pairs, 0, (["fresh", "ping-pong", "refused"] as const)[pairs % 3]!)
        })
      }
    }

    // Deaf askers, from their own stream, early enough for the gate to close each in the active phase.
    const deaf = deafOn && todoDocs.length > 0 ? new DeafAsker(net, rt, output.hardLimit, DEAF_ASKS, todoDocs[0]!, fail, log) : undefined
    if (deaf !== undefined) {
      const deafRng = seededRandom(seed ^ 0xdeaf)
      for (let i = 0; i < o.deafAskers; i++) {
        rt.setTimer(Math.floor(deafRng() * Math.max(1, activeMs - 3 * DEAF_CLOSE_MS)), () => {
          stats.deafBursts = (stats.deafBursts ?? 0) + 1
          deaf.burst()
        })
      }
    }

    // Stores that go back in time, from their own streams.
    const rollback = rollbackOn
      ? new RollbackDevices({
        net, rt, now: () => vrt.now(), seed, activeMs, restores: o.rollbacks, active: () => phase === "active", fail, log, stats,
        oldHubSince: (t) => hubStarts.some((h, i) => h.old && (hubStarts[i + 1]?.at ?? Infinity) > t),
      })
      : undefined
    rollback?.start()

    // Presence churners, from their own stream, early enough for their leave to be checked in the active phase.
    const presenceChurner = presenceChurnOn && todoDocs.length > 0 ? new PresenceChurner(net, rt, todoDocs[0]!, fail, log) : undefined
    if (presenceChurner !== undefined) {
      const pRng = seededRandom(seed ^ 0x9c4a2)
      for (let i = 0; i < o.presenceChurn; i++) {
        const rounds = 100 + Math.floor(pRng() * 101)
        rt.setTimer(Math.floor(pRng() * Math.max(1, activeMs - 2 * LEAVE_MS)), () => {
          stats.presenceChurnBursts = (stats.presenceChurnBursts ?? 0) + 1
          presenceChurner.burst(rounds)
        })
      }
    }

    await vrt.run({ forMs: activeMs + 100, until: overBudget })
    if (presenceChurner !== undefined) {
      stats.presenceResubscribes = presenceChurner.resubscribes
      stats.presenceLeavesSeen = presenceChurner.leavesSeen
      stats.presenceMostPerSecond = presenceChurner.mostPerSecond
      stats.presenceFloods = presenceChurner.floods
      stats.presenceStalestCursorMs = presenceChurner.stalestCursorMs
    }
    if (churner !== undefined) {
      stats.churnLoads = churner.loads
      stats.churnMostQueued = churner.mostQueued
      if (churner.refused > 0) (stats.churnRefused = churner.refused, stats.churnRefusedCloses = churner.refusedCloses)
    }
    if (deaf !== undefined) {
      stats.deafAsked = deaf.asked
      stats.deafClosedSlow = deaf.closedSlow
    }

    // ---- heal: everything back up, then wait for quiet ----
    phase = "heal"
    healedAt = vrt.now()
    log("heal all")
    hostile?.closeAll()
    churner?.closeAll()
    deaf?.closeAll()
    presenceChurner?.closeAll()
    net.heal()
    for (let i = 0; i < options.replicas; i++) net.unstall(`r${i}`)
    for (const r of replicas) r.partitioned = false
    rollback?.heal()
    if (!hubProc.alive) startHub()
    // Let restarts scheduled in the active phase happen, then bring back anyone still down.
    await vrt.run({ forMs: 3_000, until: overBudget })
    for (const r of replicas) if (!r.proc.alive || r.client === undefined) rt.setTimer(0, () => { void startReplica(r) })
    const quiet = () => {
      // A connection held for the command rate has messages in flight (a fetch-state, say), and
      // a replica that found itself diverged waits for the state it asked for (paced by the hub).
      if (!hubProc.alive || vrt.now() < heldUntil || resyncing.size > 0) return false
      if (rollback !== undefined && !rollback.quiet()) return false
      for (const r of replicas) {
        if (r.client?.status !== "online") return false
        for (const spec of r.follows) {
          const d = r.docs.get(spec.docId)
          // A read-only document of an older app never syncs again: its outbox waits for an upgrade.
          if (d !== undefined && spec.kind === "versioned" && d.updateRequired !== undefined) continue
          // Nor does a newer app's while the hub holds the document at an older version.
          if (d !== undefined && spec.kind === "versioned" && held !== undefined && r.version > held) continue
          if (d === undefined || !d.synced || d.pendingCount > 0) return false
        }
      }
      return true
    }
    await vrt.run({ forMs: 60_000, until: () => overBudget() || quiet() })
    // A document still held: the operator restarts the hub once (each load tries the upgrade
    // again), so the last load, after every older app's outbox is in, is one the checker judges.
    // (`held` is set again by the hub's reports meanwhile.)
    if (held !== undefined && hubProc.alive && !guard.stuck) {
      stats.heldAtHeal!++
      // In half the seeds an older app's user retitles what v3 cannot migrate first (its own
      // stream): the restart's load must then upgrade the document and every v3 app take it.
      const heldAt = held
      const blocked = Object.entries((versionedView(heldAt) as { items?: Record<string, { title: string }> } | undefined)?.items ?? {}).filter(([, i]) => blockingTitle({ items: { x: i } }) !== undefined)
      const fixer = replicas.find((r) => r.version <= heldAt && r.proc.alive && r.docs.get("versioned")?.updateRequired === undefined && r.docs.has("versioned"))
      const versionedSpec = specs.find((x) => x.kind === "versioned")!
      if (blocked.length > 0 && fixer !== undefined && seededRandom(seed ^ 0xf1c5)() < 0.5) {
        stats.heldFixed!++
        for (const [id] of blocked) submitCommand(fixer, versionedSpec, fixer.docs.get("versioned")!, fixer.version === 1 ? "rename" : "retitle", { id, title: "t1" }, false)
        await vrt.run({ forMs: 60_000, until: () => overBudget() || quiet() })
      }
      const view = versionedView(heldAt)
      log(`hub restart with versioned held at v${heldAt}${view === undefined ? "" : `, its state ${blockingTitle(view) === undefined ? "migratable now" : `still holding ${blockingTitle(view)}`}`}`)
      const [proc, closing] = [hubProc, hub!]
      await drive("closing the hub holding a document", closing.close()).catch((e: unknown) => fail(`crash: the hub's close() failed: ${codeOf(e)}: ${message(e)}`))
      proc.exitAfterClose((what) => fail(`quiet: the closed hub ${what}`))
      net.stopServer()
      startHub()
      await vrt.run({ forMs: 60_000, until: () => overBudget() || quiet() })
    }
    // One more quiet period: the quiet checkpoint is published and any desync resolved.
    await vrt.run({ forMs: 3_000, until: overBudget })
    await vrt.run({ forMs: 30_000, until: () => overBudget() || quiet() })

    // A livelocked world is stopped mid-flight: comparing its peers would only add noise.
    if (guard.stuck) {
      guard.reportUnhandled()
      return { seed, failures: [...ledger.errors], digest: hashState(trace), stats, trace }
    }

    // ---- presence: every replica online shows each other one's last presence, and no one else ----
    // (Relayed on a 50 ms tick; ordered documents only: a versioned one may be read-only.)
    // A last round first, with no fault after it to reconnect anyone (a reconnect starts the
    // others over from a catch-up, which hides a leave that was never shown).
    for (const r of replicas) {
      for (const doc of r.docs.values()) {
        const x = presenceRng()
        if (x < 0.5 || !r.proc.alive) continue
        setPresence(r, doc, x < 0.7 ? null : { who: r.name, last: Math.floor(x * 1000) })
      }
    }
    // What each replica online shows that it should not, or lacks (relays are paced by the
    // document's and each client's presence budgets, which hostile clients may have spent: the
    // check waits up to 15 s for them, as for quiet).
    const presenceWrong = (): string[] => {
      const wrong: string[] = []
      for (const spec of specs) {
        if (spec.kind === "versioned") continue
        const here = replicas.filter((r) => r.proc.alive && r.client?.status === "online" && r.docs.get(spec.docId)?.synced === true)
        for (const a of here) {
          const expected = new Map<string, unknown>()
          for (const b of here) {
            const state = presenceOf.get(b.docs.get(spec.docId)!) ?? null
            if (b !== a && b.clientId !== a.clientId && state !== null) expected.set(b.clientId!, state)
          }
          const [want, got] = [[...expected].sort(), [...a.docs.get(spec.docId)!.presence].sort()]
          // Compared canonically (a state comes back with its keys sorted).
          if (hashState(want) !== hashState(got)) wrong.push(`${a.name} shows ${JSON.stringify(got)} on ${spec.docId}, not ${JSON.stringify(want)}`)
        }
      }
      return wrong
    }
    const presenceFrom = vrt.now()
    await vrt.run({ forMs: 15_000, until: () => overBudget() || presenceWrong().length === 0 })
    log(`presence settled in ${vrt.now() - presenceFrom} ms`)
    // And stays so: a stale or repeated relay arriving later shows here.
    await vrt.run({ forMs: 2_000, until: overBudget })
    for (const w of presenceWrong()) fail(`presence: ${w}`)

    // ---- a fresh replica joins every document: replaying the whole log must give the authority's state ----
    // (A document held at an older version is joined at that version, and a fresh app of the
    // newest one must be refused it with migration-failed.)
    // A process of its own, only so its timers can be told from the simulator's at the end.
    const joinerProc = new SimProcess("joiner", rt, new MemoryStorage())
    const joiner = await drive("opening a fresh replica", CanonClient.open({ transport: net.transport("joiner"), runtime: joinerProc.runtime, storage: new MemoryStorage(), backoff: { baseMs: 50, maxMs: 500 } }))
    const joined = new Map<string, Doc<any>>()
    for (const spec of specs) joined.set(spec.docId, await drive(`opening ${spec.docId} on a fresh replica`, joiner.open(spec.kind === "versioned" && held !== undefined ? appMachine(held) : spec.machine, spec.docId)))
    let newest: { client: CanonClient; doc: Doc<any>; told: string[] } | undefined
    if (held !== undefined) {
      const client = await drive("opening a fresh client of the newest version", CanonClient.open({ transport: net.transport("joiner-newest"), runtime: joinerProc.runtime, storage: new MemoryStorage(), backoff: { baseMs: 50, maxMs: 500 } }))
      const doc = await drive("opening the held document at the newest version", client.open(VTodoV3, "versioned"))
      newest = { client, doc, told: [] }
      doc.on("error", (e) => newest!.told.push(`${e.code}: ${e.message}`))
    }
    await vrt.run({ forMs: 30_000, until: () => overBudget() || ([...joined.values()].every((d) => d.synced) && (newest === undefined || newest.told.length > 0)) })
    if (newest !== undefined) {
      await drive("closing the fresh client of the newest version", newest.client.close()).catch(() => {})
      await vrt.run({ forMs: 100 })
    }
    if (guard.stuck) {
      guard.reportUnhandled()
      return { seed, failures: [...ledger.errors], digest: hashState(trace), stats, trace }
    }

    // ---- check ----
    phase = "check"
    guard.watchGlobals()
    // Hub memory: a connection closed (by either end, for any reason) is forgotten; only the
    // replicas' and the joiner's are left (the hostile peers were closed at heal).
    const open = replicas.filter((r) => r.proc.alive && r.client?.status === "online").length + 1 + (rollback?.online() ?? 0)
    if (hubProc.alive && hub!.stats().connections > open) {
      fail(`memory: the hub holds ${hub!.stats().connections} connections; ${open} are open (${replicas.map((r) => `${r.name} ${r.proc.alive ? r.client?.status ?? "starting" : "down"}`).join(", ")}, joiner)`)
    }
    const store = new AuthorityStore(hubDisk)
    const views: DocView[] = []
    const digestParts: unknown[] = [trace]
    let hubTexts: ReadonlyMap<string, string | { error: string }> = new Map()
    for (const spec of specs) {
      const authority = await drive(`loading ${spec.docId} on the hub`, hub!.doc(spec.docId, spec.machine)).catch((e: unknown) => `${codeOf(e)}: ${message(e)}`)
      if (spec.kind === "versioned" && typeof authority !== "string" && authority.version < NEWEST) stats.heldAtEnd!++
      // Compaction leaves a tail behind a snapshot: the checker reads every entry ever made
      // durable (the shadow), and the stored tail must be exactly its end.
      const head = typeof authority === "string" ? 0 : authority.headSeq
      if (spec === textSpec) {
        hubTexts = new Map(Object.keys(TEXT_FIELDS).map((f) => [f, typeof authority === "string" ? { error: authority } : readText(f, () => (fieldsOfRoot(authority.state) as CrdtFields | undefined)?.field(f).handle)]))
      }
      const entries: Entry[] | string = shadow.log(spec.docId, head)
      // The hub's migrations of the text (v1 to v2) in its log.
      if (spec === textSpec && typeof entries !== "string") stats.textMigrations = entries.filter((e) => e.name === MIGRATE).length
      const horizon = await drive(`reading the horizon of ${spec.docId}`, store.snapshots.horizon(spec.docId)).catch(() => 0)
      const tail = await drive(`reading the log of ${spec.docId}`, store.entries(spec.docId, horizon, 1_000_000)).catch((e: unknown) => `${codeOf(e)}: ${message(e)}`)
      if (typeof tail === "string") fail(`durability: the stored log of ${spec.docId} after its horizon ${horizon} cannot be read: ${tail}`)
      else if (typeof entries !== "string") {
        if (horizon + tail.length !== head) fail(`durability: ${spec.docId}: the stored tail after horizon ${horizon} has ${tail.length} entries, the head is ${head}`)
        for (const e of tail) {
          const s = entries[e.seq - 1]
          if (s === undefined || s.clientId !== e.clientId || s.clientSeq !== e.clientSeq || s.name !== e.name) fail(`durability: ${spec.docId}: stored entry ${e.seq} differs from the one made durable`)
        }
      }
      stats.compacted = (stats.compacted ?? 0) + shadow.deleted(spec.docId)
      if (docCap !== undefined && typeof authority !== "string") {
        // The state alone (CRDT fields aside), which the bound counts in.
        const size = encodeCanonical(authority.state).length
        if (size > docCap) fail(`size: ${spec.docId} holds ${size} bytes, past its maxDocumentBytes of ${docCap}`)
        stats.docCap = docCap
      }
      const fresh = new Hub({ machines: hubMachines(), storage: hubDisk, runtime: rt })
      const reload = await drive(`loading ${spec.docId} on a fresh hub`, fresh.doc(spec.docId, spec.machine)).then(
        (d) => ({ seq: d.headSeq, hash: safeHash(() => d.stateHash()) }),
        (e) => `${codeOf(e)}: ${message(e)}`,
      )
      await drive("closing the fresh hub", fresh.close()).catch(() => {})
      const j = joined.get(spec.docId)!
      views.push({
        docId: spec.docId,
        machine: spec.machine,
        replayable: spec.replayable,
        authority: typeof authority === "string" ? authority : { seq: authority.headSeq, hash: safeHash(() => authority.stateHash()), state: authority.state },
        entries,
        reload,
        joiner: j.synced ? { seq: j.confirmedSeq, hash: safeHash(() => j.confirmedHash()) } : `not synced (at seq ${j.confirmedSeq})`,
        replicas: replicas.filter((r) => r.follows.includes(spec)).map((r) => ({ name: r.name, clientId: r.clientId, doc: r.docs.get(spec.docId), status: r.client?.status, ...(spec.kind === "versioned" ? { version: r.version, upgraded: r.upgraded, provisional: r.provisional, toldHeld: r.toldHeld } : {}), ...(spec.kind === "text" && typeof authority !== "string" && machineOf(r, spec).version < authority.version ? { olderMachine: true } : {}) })),
        ...(spec.kind === "versioned" ? { versioned: { current: typeof authority === "string" ? NEWEST : authority.version, loads, ...(newest !== undefined ? { newest: { seq: newest.doc.confirmedSeq, told: newest.told } } : {}) } } : {}),
      })
      digestParts.push(typeof entries === "string" ? entries : entries.map((e) => [e.seq, e.clientId, e.clientSeq, e.name]), typeof authority === "string" ? authority : safeHash(() => authority.stateHash()))
      stats[`entries:${spec.docId}`] = typeof entries === "string" ? 0 : entries.length
      if (spec.kind === "big" && typeof authority !== "string") stats.bigBytes = Object.values((authority.state as { blobs: Record<string, string> }).blobs).reduce((n, s) => n + s.length, 0)
    }
    if (rollback !== undefined) {
      const authority = await drive(`loading ${ROLLBACK_DOC} on the hub`, hub!.doc(ROLLBACK_DOC, rollbackMachine)).then(
        (d) => ({ seq: d.headSeq, hash: safeHash(() => d.stateHash()), tags: d.state.tags }),
        (e: unknown) => `${codeOf(e)}: ${message(e)}`,
      )
      // Every entry ever made durable (compaction deletes them from the store).
      const runs = new Map<string, OutcomeRun[]>()
      for (const clientId of rollback.clientIds()) runs.set(clientId, await drive(`reading ${clientId}'s outcomes of ${ROLLBACK_DOC}`, store.runs(ROLLBACK_DOC, clientId)).catch(() => []))
      rollback.check(authority, typeof authority === "string" ? [] : shadow.log(ROLLBACK_DOC, authority.seq), runs)
    }
    const textFailures: string[] = []
    if (textSpec !== undefined) {
      const acked = (c: Carrier | undefined) => c !== undefined && ledger.submitted.get(c.key) === c.entry && ledger.confirmed.has(c.key)
      const followers = replicas.filter((r) => r.follows.includes(textSpec) && r.docs.has(textSpec.docId))
      for (const [field, edits] of typists.ledgers) {
        const crdt = (d: Doc<any>) => (d.crdt as Record<string, unknown>)[field]
        // A field the text's v2 adds (`notes`): on the hub, the fresh replica and the v2 apps;
        // an app still at v1 has no such field, and must not be shown one.
        const has = (r: Replica) => machineOf(r, textSpec).version >= FIELD_SINCE[field]!
        for (const r of followers.filter((r) => !has(r))) {
          if (field === "notes") stats.notesV1Replicas!++
          if (crdt(r.docs.get(textSpec.docId)!) !== undefined) textFailures.push(`crdt: ${textSpec.docId}.${field}: ${r.name} runs v${machineOf(r, textSpec).version} of the text, which has no ${field}, yet its app shows one`)
        }
        const texts = [
          { who: "the hub", text: hubTexts.get(field) ?? { error: "not loaded" } },
          { who: "a fresh replica", text: readText(field, () => crdt(joined.get(textSpec.docId)!)) },
          ...followers.filter(has).map((r) => ({ who: r.name, text: readText(field, () => crdt(r.docs.get(textSpec.docId)!)) })),
        ]
        textFailures.push(...checkText({ docId: `${textSpec.docId}.${field}`, field, texts, edits, ledger }))
        const hubText = hubTexts.get(field)
        digestParts.push(hubText)
        const tag = field === "text" ? "" : `:${field}`
        stats[`textInserts${tag}`] = edits.inserts.size
        stats[`textAckedInserts${tag}`] = [...edits.inserts.values()].filter((e) => acked(e.carrier)).length
        stats[`textAckedDeletes${tag}`] = edits.edits.filter((e) => e.kind === "delete" && acked(e.carrier)).length
        stats[`textChars${tag}`] = typeof hubText === "string" ? hubText.length : 0
      }
    }
    for (const u of textUpgrades) {
      const stored = textCheckpoints.get(u.seq)
      if (u.hash === undefined || stored === undefined) continue
      stats.textMigrateCheckpoints!++
      if (stored !== u.hash) textFailures.push(`crdt: ${textSpec!.docId}: the checkpoint the hub stored with its $migrate entry (seq ${u.seq}) is ${stored}, but its state there hashes ${u.hash} (the fields v2 adds not counted?)`)
    }
    guard.reportUnhandled()
    // The hub held its event loop no longer than a slice, the command that crossed it and the one its turn's first waiter is granted (turns.ts), however many documents.
    if (o.cpuHog > 0 && simCpu.worst > SIM_SLICE_MS + 2 * MAX_BURN_MS) fail(`cpu: the hub worked ${simCpu.worst} ms of commands without letting its event loop turn (batchSliceMs ${SIM_SLICE_MS}, longest command ${MAX_BURN_MS} ms)`)
    const failures = [...checkWorld({
      docs: views,
      ledger,
      hostile,
      ...(o.crdtHeavy > 0 ? { crdtWork: { perSecond: SIM_CRDT_WORK.workPerSecond, burst: SIM_CRDT_WORK.workBurst } } : {}),
      replicaIds: new Set(replicas.map((r) => r.clientId).filter((c): c is string => c !== undefined)),
      incarnations: replicas.flatMap((r) => r.incarnations.map((p) => ({ replica: r.name, proc: p }))),
    }), ...textFailures]
    // Hostile commands the hub answered (a raw client refused at its hello attacks nothing).
    if (hostile !== undefined) stats.hostileAnswered = hostile.commands.filter((c) => c.outcome !== undefined).length
    if (hostile !== undefined && o.crdtPoison > 0) {
      const poison = hostile.commands.filter((c) => c.attack.startsWith("crdt-poison") && c.outcome !== undefined)
      stats.crdtPoisonRefused = poison.filter((c) => !c.outcome!.startsWith("seq:")).length
    }
    if (hostile !== undefined && o.crdtHeavy > 0) {
      const heavy = hostile.commands.filter((c) => c.weight !== undefined && c.outcome !== undefined)
      stats.crdtHeavyAnswered = heavy.length
      stats.crdtHeavyAccepted = heavy.filter((c) => c.outcome!.startsWith("seq:")).length
    }
    if (stats.heldLoads !== undefined) stats.heldSeeds = stats.heldLoads > 0 ? 1 : 0
    // Whether what the links held unread reached what byte limits are for: the hub's default
    // high-water mark (1 MiB, followers pause) and a client's send window (2 MiB).
    if (o.byteBuffers) {
      stats.hubUnreadPastHighWater = net.peak.toClient > 1 << 20 ? 1 : 0
      stats.clientUnreadPastWindow = net.peak.toServer > 2 << 20 ? 1 : 0
    }
    stats.events = trace.length
    stats.timers = guard.events
    if (unsent !== undefined) stats.unsentCuts = unsent.cuts
    const digest = hashState(digestParts)
    // Closing waits for writes in flight; a peer that cannot finish them is reported, not awaited.
    // The replicas first, so the hub closes documents nobody follows any longer (idle, their timers armed).
    await drive("closing the fresh replica", joiner.close()).catch(() => {})
    for (const r of replicas) if (r.client !== undefined) await drive(`closing ${r.name}`, r.client.close()).catch(() => {})
    const devices = (await rollback?.close(drive)) ?? []
    await drive("closing the hub", hub!.close()).catch(() => {})
    // Closed means quiet: a timer a closed hub or client keeps keeps its process alive (a work
    // budget's debt timer kept a closed hub's process up for minutes). Dead processes have none.
    // The simulator's own timers (a replica's restart, a partition's heal) are not theirs.
    await vrt.run({ forMs: QUIET_AFTER_CLOSE_MS })
    for (const proc of [joinerProc, ...replicas.map((r) => r.proc), ...devices, hubProc]) {
      const armed = proc.alive ? proc.armedTimers() : []
      if (armed.length > 0) failures.push(`quiet: ${armed.length} timer(s) of ${proc.name} still armed ${QUIET_AFTER_CLOSE_MS} ms after it closed; the first: ${armed[0]}`)
    }
    return { seed, failures, digest, stats, trace }
  }
}

/**
 * Scenario: the hub is SIGKILLed while it snapshots and compacts its log.
 *
 * The hub runs in a child process (snapshot-hub-process.ts) on LevelDB with a small snapshot
 * policy, so snapshots and compactions come every few hundred commands; in-process
 * CanonClients submit Ledger commands (ledger-machine.ts: the state records every command it
 * applied, by client and token, with its seq) the whole time. Each hub life ends in a
 * SIGKILL, aimed by `mode`:
 *
 * - "random":     at a random moment once acknowledgments flow;
 * - "chunk":      inside a snapshot write, after its first chunk and before its meta (the
 *                 hub's store holds that write and says HOLD; see window-store.ts);
 * - "chunk-race": as soon as the parent reads the first CHUNK line, without holding: the
 *                 kill lands wherever the write got to by then (often still in the window);
 * - "horizon":    between the compaction horizon write and the deletes (held);
 * - "drop":       after an old snapshot's meta is deleted, before its chunks are (held).
 *
 * Whether a kill landed in its window is read back from the directory (chunks without a
 * meta; entries at or below the horizon), not assumed. After every kill, with the hub dead,
 * the directory is opened read-only and checked:
 * - the document loads (the real DocAuthority.load: newest verified snapshot + log tail);
 * - every acknowledged command is in the state exactly once at its acknowledged seq (in
 *   the log, or inside the snapshot the log was compacted behind), no command is in it
 *   twice, and nothing is in it that no client sent; the state's count equals the head;
 * - the kept log runs without a hole from the horizon to the head, each kept entry is the
 *   state's record of it, and each acknowledged command above the horizon is its entry.
 * At the end, with the hub up, everything settles, every client's confirmed state equals the
 * authority's loaded from disk, and every command submitted was acknowledged.
 *
 * The seed fixes the kill plan and the workload; thread timing is not reproducible, so a
 * failure may need a few runs of the same seed to show again.
 */
import { join } from "node:path"
import { CanonClient, CommandRejected, Hub, type Doc, type Entry, type KVStore, replicaStorage } from "../../core/index.js"
import { AuthorityStore, seededRandom } from "../../core/internal.js"
import * as K from "../../core/store/keys.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { ReadOnlyStore } from "../../apps/cli/read-only-store.js"
import { countKeys, orphanChunks } from "../../apps/cli/doc-records.js"
import { Ledger, type LedgerState } from "./ledger-machine.js"
import { type Child, pickPort, removeTempDir, sleep, spawnScript, tempDir, until } from "./harness.js"

export type KillMode = "random" | "chunk" | "chunk-race" | "horizon" | "drop"

/** One round of every way to kill; `npm test` runs one round, `npm run chaos` many. */
export const KILL_MODES: ReadonlyArray<KillMode> = ["chunk", "horizon", "random", "chunk-race", "drop"]

export interface SnapshotCrashOptions {
  readonly seed: number
  readonly kills: number
  /** In-process clients submitting the whole time. Default 3. */
  readonly clients?: number
  /** fsync every commit in the hub. Default false (SIGKILL does not lose the page cache). */
  readonly sync?: boolean
  readonly log?: (line: string) => void
}

export interface SnapshotKill {
  readonly mode: KillMode
  /** The hub reached the aimed window (said HOLD, or CHUNK for chunk-race) before the kill. */
  readonly reached: boolean
  /** What the directory showed after the kill: the write the kill cut. */
  readonly landed: "in-chunk-write" | "before-deletes" | "in-drop" | "elsewhere"
  readonly afterMs: number
  readonly inFlight: number
  /** Acknowledged commands checked against the directory after this kill. */
  readonly checked: number
  readonly horizon: number
  readonly headSeq: number
}

export interface SnapshotCrashReport {
  readonly seed: number
  readonly kills: ReadonlyArray<SnapshotKill>
  readonly clients: number
  readonly submitted: number
  readonly acknowledged: number
  /** Sum over every check (after each kill and at the end) of acknowledged commands checked. */
  readonly checks: number
  /** Snapshots completed and compactions begun, summed over all hub lives (from the hub's store lines). */
  readonly snapshots: number
  readonly compactions: number
  readonly headSeq: number
  readonly horizon: number
  /** ms from spawn to READY, per hub start. */
  readonly startMs: ReadonlyArray<number>
  readonly durationMs: number
  readonly violations: ReadonlyArray<string>
}

interface Sent {
  readonly k: number
  readonly token: number
  readonly clientSeq: number
  seq?: number
  rejected?: string
}

const DOC = "crash-snapshots"
const MAX_PENDING = 100
const MAX_COMMANDS = 200_000

export const snapshotCrashRepro = (o: Pick<SnapshotCrashOptions, "seed" | "kills" | "clients" | "sync">): string =>
  `npm run chaos -- --scenario snapshot --seed ${o.seed} --kills ${o.kills}${o.clients !== undefined ? ` --clients ${o.clients}` : ""}${o.sync ? " --sync" : ""}` +
  ` (or CANON_CRASH_SEED=${o.seed} npm test -- crash-snapshot)`

/** What a check of the directory found. */
interface DirCheck {
  readonly loaded: boolean
  readonly headSeq: number
  readonly horizon: number
  readonly orphans: number
  readonly belowHorizon: number
  readonly checked: number
  readonly hash: string | undefined
}

/**
 * Opens the stopped hub's directory read-only, loads the document as the hub would, and
 * checks every acknowledged command against it (see the header). Appends violations.
 */
const checkDir = async (dataDir: string, acked: ReadonlyArray<Sent>, sent: ReadonlyMap<string, Sent>, clientIds: ReadonlyArray<string>, label: string, violations: string[]): Promise<DirCheck> => {
  const ro = await ReadOnlyStore.open(dataDir)
  const bad = (what: string) => violations.push(`${label}: ${what}`)
  try {
    const store = new AuthorityStore(ro)
    const head = await store.head(DOC)
    const horizon = await store.snapshots.horizon(DOC)
    const metas = await store.snapshots.metas(DOC)
    const orphans = [...(await orphanChunks(ro, DOC, new Set(metas.map((m) => m.seq)))).values()].reduce((a, b) => a + b, 0)
    const belowHorizon = horizon > 0 ? await countKeys(ro, K.authEntryPrefix(DOC), K.authEntry(DOC, horizon + 1)) : 0
    const headSeq = head?.seq ?? 0
    const base = { headSeq, horizon, orphans, belowHorizon }
    if (head === undefined) {
      if (acked.length > 0) bad(`no document on disk, but ${acked.length} commands were acknowledged`)
      return { ...base, loaded: acked.length === 0, checked: 0, hash: undefined }
    }
    // The document loads as the hub loads it. (Its tidy-up cannot write here and is reported, which is fine.)
    const hub = new Hub({ machines: [Ledger], storage: ro as KVStore, runtime: systemRuntime, quietCheckpointMs: Infinity })
    let state: LedgerState
    let hash: string
    try {
      const doc = await hub.doc(DOC, Ledger)
      if (doc.headSeq !== headSeq) bad(`the loaded document is at seq ${doc.headSeq}, its head says ${headSeq}`)
      state = doc.state
      hash = doc.stateHash()
    } catch (e) {
      bad(`the document does not load: ${e instanceof Error ? e.message : String(e)} (horizon ${horizon}, snapshots at ${metas.map((m) => m.seq).join(",") || "none"}, head ${headSeq})`)
      return { ...base, loaded: false, checked: 0, hash: undefined }
    } finally {
      await hub.close()
    }

    // ---- the state: every command once, at its seq; nothing else ----
    if (state.dups.length > 0) bad(`commands applied twice: ${state.dups.slice(0, 5).join("; ")}`)
    if (state.count !== headSeq) bad(`the state counts ${state.count} applied commands, the head is at seq ${headSeq}`)
    let distinct = 0
    for (const [clientId, tokens] of Object.entries(state.applied)) {
      for (const token of Object.keys(tokens)) {
        distinct++
        if (!sent.has(`${clientId}/${token}`)) bad(`the state holds ${clientId}/${token}, which no client sent`)
      }
    }
    if (distinct !== headSeq) bad(`the state holds ${distinct} distinct commands, the head is at seq ${headSeq}`)
    let checked = 0
    for (const r of acked) {
      checked++
      const at = state.applied[clientIds[r.k]!]?.[String(r.token)]
      if (at === undefined) bad(`acknowledged ${clientIds[r.k]}/${r.token} (clientSeq ${r.clientSeq}) at seq ${r.seq} is not in the state (lost; horizon ${horizon}, head ${headSeq})`)
      else if (at !== r.seq) bad(`acknowledged ${clientIds[r.k]}/${r.token} at seq ${r.seq}, but the state applied it at seq ${at}`)
    }

    // ---- the kept log ----
    let log: Entry[] = []
    try {
      log = await store.entries(DOC, horizon, 1e7)
    } catch (e) {
      bad(`the kept log cannot be read: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (headSeq > horizon && (log[0]?.seq !== horizon + 1 || log.at(-1)?.seq !== headSeq)) {
      bad(`the kept log runs ${log[0]?.seq}..${log.at(-1)?.seq}, not ${horizon + 1}..${headSeq}`)
    }
    const keys = new Set<string>()
    for (const e of log) {
      const key = `${e.clientId}/${e.clientSeq}`
      if (keys.has(key)) bad(`(clientId, clientSeq) ${key} is in the kept log twice`)
      keys.add(key)
      const token = (e.args as { token: number }).token
      if (state.applied[e.clientId]?.[String(token)] !== e.seq) bad(`entry ${e.seq} (${e.clientId}/${token}) is not the state's record of it`)
    }
    for (const r of acked) {
      if (r.seq! <= horizon) continue
      const e = log[r.seq! - horizon - 1]
      if (e === undefined || e.clientId !== clientIds[r.k] || e.clientSeq !== r.clientSeq) {
        bad(`acknowledged ${clientIds[r.k]}/${r.clientSeq} at seq ${r.seq}, but the log there holds ${e === undefined ? "nothing" : `${e.clientId}/${e.clientSeq}`}`)
      }
    }
    return { ...base, loaded: true, checked, hash }
  } finally {
    await ro.close()
  }
}

export const runSnapshotCrash = async (options: SnapshotCrashOptions): Promise<SnapshotCrashReport> => {
  const started = Date.now()
  const { seed } = options
  const nClients = options.clients ?? 3
  const log = options.log ?? (() => {})
  const rand = seededRandom(seed)
  const dir = tempDir("canon-crash-snapshot-")
  const dataDir = join(dir, "hub")
  const violations: string[] = []
  const kills: SnapshotKill[] = []
  const clients: CanonClient[] = []
  const storages: KVStore[] = []
  let hub: Child | undefined
  let life = 0
  let lifeAcks = 0
  let snapshots = 0
  let compactions = 0
  let checks = 0
  const startMs: number[] = []
  let stopSubmitting = false
  let submitter: Promise<void> | undefined
  // The plan: every mode in turn, starting at a seeded place.
  const offset = Math.floor(rand() * KILL_MODES.length)
  const modeOf = (i: number): KillMode => KILL_MODES[(offset + i) % KILL_MODES.length]!

  const aimOf = (mode: KillMode): string[] => (mode === "chunk" || mode === "horizon" || mode === "drop" ? ["--aim", mode] : [])
  const startHub = async (port: number, mode: KillMode): Promise<number> => {
    if (hub !== undefined) {
      snapshots += hub.linesOf("META").length
      compactions += hub.linesOf("HORIZON").length
    }
    hub = spawnScript(`snapshot hub #${life + 1}`, "snapshot-hub-process.ts", ["--data", dataDir, "--port", String(port), ...aimOf(mode), ...(options.sync ? ["--sync"] : [])])
    const t0 = Date.now()
    const line = await hub.waitForLine((l) => l.startsWith("READY "), 30_000)
    startMs.push(Date.now() - t0)
    life++
    lifeAcks = 0
    return Number(line.split(" ")[1])
  }

  try {
    const port = await startHub(await pickPort(rand), modeOf(0))
    const url = `ws://127.0.0.1:${port}/`
    log(`seed ${seed}: hub on ${url}, data in ${dataDir}`)

    const records: Sent[] = []
    const sent = new Map<string, Sent>()
    const docs: Doc<typeof Ledger>[] = []
    const problems: string[] = []
    for (let k = 0; k < nClients; k++) {
      const storage: KVStore = k === 0 ? await LevelStorage.open(join(dir, `client-${k}`)) : new MemoryStorage()
      storages.push(storage)
      const c = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Ledger], storage: replicaStorage(storage), backoff: { baseMs: 20, maxMs: 250 }, stableMs: 1_000 })
      clients.push(c)
      const doc = await c.open(Ledger, DOC)
      doc.on("desync", (d) => problems.push(`client ${k}: desync ${JSON.stringify(d)}`))
      doc.on("error", (e) => problems.push(`client ${k}: error ${e.code}: ${e.message}`))
      docs.push(doc)
    }
    const clientIds = clients.map((c) => c.clientId)

    const wrand = seededRandom(seed ^ 0x2545f491)
    const tokens = new Array<number>(nClients).fill(0)
    const submitOne = (k: number) => {
      const token = ++tokens[k]!
      const pad = "x".repeat(100 + Math.floor(wrand() * 200))
      const receipt = docs[k]!.submit("record", { token, pad })
      const r: Sent = { k, token, clientSeq: receipt.clientSeq }
      records.push(r)
      sent.set(`${clientIds[k]}/${token}`, r)
      receipt.then(
        ({ seq }) => {
          r.seq = seq
          lifeAcks++
        },
        (e: unknown) => {
          r.rejected = e instanceof CommandRejected ? `${e.code}: ${e.message}` : String(e)
        },
      )
    }
    submitter = (async () => {
      while (!stopSubmitting && records.length < MAX_COMMANDS) {
        for (let k = 0; k < nClients; k++) {
          if (docs[k]!.pendingCount >= MAX_PENDING) continue
          const n = 1 + Math.floor(wrand() * 2)
          for (let i = 0; i < n; i++) submitOne(k)
        }
        await sleep(5 + Math.floor(wrand() * 10))
      }
    })()

    const unsettled = () => records.reduce((n, r) => n + (r.seq === undefined && r.rejected === undefined ? 1 : 0), 0)
    for (let i = 0; i < options.kills; i++) {
      const mode = modeOf(i)
      const readyAt = Date.now()
      const from = hub!.lines.length
      let reached = false
      if (mode === "random") {
        if (!(await until(() => lifeAcks > 0, 20_000))) violations.push(`no acknowledgment within 20 s of hub start ${life}`)
        await sleep(Math.floor(rand() * 800))
        reached = true
      } else {
        const want = mode === "chunk-race" ? (l: string) => l.startsWith("CHUNK ") : (l: string) => l === `HOLD ${mode}`
        reached = await hub!.waitForLine(want, 20_000, from).then(() => true, () => false)
      }
      const inFlight = unsettled()
      await hub!.stop("SIGKILL")
      const acked = records.filter((r) => r.seq !== undefined)
      const c = await checkDir(dataDir, acked, sent, clientIds, `after kill ${i + 1} (${mode})`, violations)
      checks += c.checked
      const landed: SnapshotKill["landed"] = mode === "horizon" ? (c.belowHorizon > 0 ? "before-deletes" : "elsewhere")
        : mode === "drop" ? (c.orphans > 0 ? "in-drop" : "elsewhere")
        : c.orphans > 0 ? "in-chunk-write" : c.belowHorizon > 0 ? "before-deletes" : "elsewhere"
      const record: SnapshotKill = { mode, reached, landed, afterMs: Date.now() - readyAt, inFlight, checked: c.checked, horizon: c.horizon, headSeq: c.headSeq }
      kills.push(record)
      log(`kill ${i + 1}/${options.kills}: ${mode}${reached ? "" : " (window not reached)"}, ${record.afterMs} ms after ready, landed ${landed}; head ${c.headSeq}, horizon ${c.horizon}, ` +
        `${c.orphans} orphan chunks, ${c.belowHorizon} entries below the horizon; ${c.checked} acknowledged commands checked, ${inFlight} in flight`)
      await sleep(Math.floor(rand() * 100))
      // The last life is stopped with SIGTERM, not killed: it holds no window, or its held
      // snapshot would keep the clean stop waiting for as long as the hold.
      await startHub(port, i + 1 < options.kills ? modeOf(i + 1) : "random")
    }

    // Quiet down: no new commands; everything settles with the hub up.
    stopSubmitting = true
    await submitter
    if (!(await until(() => unsettled() === 0 && clients.every((c) => c.status === "online") && docs.every((d) => d.pendingCount === 0), 30_000, 20))) {
      violations.push(`not settled within 30 s of the last restart: ${unsettled()} unsettled; status ${clients.map((c) => c.status).join("/")}; pending ${docs.map((d) => d.pendingCount).join("/")}`)
    }
    const probe = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Ledger], backoff: { baseMs: 20, maxMs: 250 } })
    clients.push(probe)
    const probeDoc = await probe.open(Ledger, DOC)
    if (!(await until(() => probeDoc.synced, 15_000, 20))) violations.push("a fresh client did not sync within 15 s")
    const head = probeDoc.confirmedSeq
    if (!(await until(() => docs.every((d) => d.confirmedSeq === head), 15_000, 20))) {
      violations.push(`clients did not reach the head ${head} within 15 s: ${docs.map((d) => d.confirmedSeq).join("/")}`)
    }
    const finals = [...docs, probeDoc].map((d) => ({ seq: d.confirmedSeq, hash: d.confirmedHash() }))
    for (const c of clients.splice(0)) await c.close()
    for (const s of storages.splice(0)) if (s instanceof LevelStorage) await s.close()
    snapshots += hub!.linesOf("META").length
    compactions += hub!.linesOf("HORIZON").length
    await hub!.stop("SIGTERM")
    if (hub!.exitCode !== 0) violations.push(`the hub did not stop cleanly on SIGTERM: ${hub!.describe()}`)

    const acked = records.filter((r) => r.seq !== undefined)
    const final = await checkDir(dataDir, acked, sent, clientIds, "at the end", violations)
    checks += final.checked
    for (const r of records) if (r.rejected !== undefined) violations.push(`${clientIds[r.k]}/${r.token} was refused: ${r.rejected}`)
    if (acked.length !== records.length) violations.push(`${records.length - acked.length} of ${records.length} commands were never acknowledged`)
    finals.forEach((f, i) => {
      const who = i < nClients ? `client ${i}` : "the fresh client"
      if (f.seq !== final.headSeq) violations.push(`${who} confirmed seq ${f.seq}, the hub's head is ${final.headSeq}`)
      if (f.hash !== final.hash) violations.push(`${who} has state hash ${f.hash}, the authority loaded from disk ${final.hash}`)
    })
    violations.push(...problems)
    return {
      seed, kills, clients: nClients, submitted: records.length, acknowledged: acked.length, checks, snapshots, compactions,
      headSeq: final.headSeq, horizon: final.horizon, startMs, durationMs: Date.now() - started, violations,
    }
  } finally {
    stopSubmitting = true
    await submitter?.catch(() => {})
    for (const c of clients) await c.close().catch(() => {})
    for (const s of storages) if (s instanceof LevelStorage) await s.close().catch(() => {})
    await hub?.stop("SIGKILL").catch(() => {})
    removeTempDir(dir)
  }
}

/** One paragraph: what ran and what was checked. */
export const describeSnapshotCrash = (r: SnapshotCrashReport): string => {
  const by = (m: KillMode) => r.kills.filter((k) => k.mode === m)
  const landed = (w: SnapshotKill["landed"]) => r.kills.filter((k) => k.landed === w).length
  const modes = (["chunk", "chunk-race", "horizon", "drop", "random"] as const).map((m) => `${by(m).length} ${m}`).join(", ")
  return `snapshot crash, seed ${r.seed}: ${r.kills.length} SIGKILLs (${modes}); landed ${landed("in-chunk-write")} inside a snapshot write (chunks without a meta), ` +
    `${landed("before-deletes")} between the horizon write and the deletes, ${landed("in-drop")} inside an old snapshot's deletion; ` +
    `${r.snapshots} snapshots and ${r.compactions} compactions over ${r.kills.length + 1} hub lives; ${r.clients} clients, ${r.submitted} commands submitted, ${r.acknowledged} acknowledged; ` +
    `${r.checks} acknowledged-command checks against the directory (after every kill and at the end); final head ${r.headSeq}, compacted through ${r.horizon}; ` +
    `hub start ${Math.round(r.startMs.reduce((a, b) => a + b, 0) / Math.max(1, r.startMs.length))} ms on average; ${(r.durationMs / 1000).toFixed(1)} s; ${r.violations.length === 0 ? "no invariant violated" : `${r.violations.length} VIOLATIONS`}`
}

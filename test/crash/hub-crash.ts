/**
 * Scenario: the hub is killed with SIGKILL at random moments while clients keep submitting.
 *
 * The hub runs in a child process (hub-process.ts) on a LevelDB directory; it is killed N
 * times at seeded random moments and restarted each time on the same directory and port.
 * In-process CanonClients (ws transport, system runtime, small backoff; one on LevelStorage,
 * the others on MemoryStorage) submit a seeded Todo workload the whole time and record
 * every receipt. At the end, with the hub up, everything settles; then the hub is stopped
 * cleanly and its directory is read back. Checked:
 * - the log is contiguous from seq 1 and its head says the same length;
 * - no (clientId, clientSeq) appears twice;
 * - every acknowledged (confirmed) receipt's seq holds exactly that command; every rejected
 *   one is absent and was rejected by the machine (not by lost bookkeeping);
 * - every log entry is some client's confirmed receipt (an entry committed just before a
 *   kill may be acknowledged only after the restart; but by the end all are);
 * - every client's confirmed state hash and seq equal those of a fresh load of the authority
 *   from the directory; no client saw a desync (a checkpoint contradicting what it confirmed).
 *
 * The seed fixes the kill schedule and the workload; thread timing is not reproducible, so a
 * failure may need a few runs of the same seed to show again.
 */
import { CanonClient, CommandRejected, Hub, type Doc, type Entry, type KVStore, replicaStorage } from "../../core/index.js"
import { AuthorityStore, seededRandom } from "../../core/internal.js"
import * as K from "../../core/store/keys.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Todo } from "../support/machines.js"
import { type Child, pickPort, removeTempDir, sleep, spawnScript, tempDir, until } from "./harness.js"
import { join } from "node:path"

export interface HubCrashOptions {
  readonly seed: number
  /** SIGKILLs of the hub. */
  readonly kills: number
  /** In-process clients submitting the whole time. Default 3. */
  readonly clients?: number
  /** fsync every commit in the hub. Default false (SIGKILL does not lose the page cache). */
  readonly sync?: boolean
  /** Longest a hub lives before its kill, ms. Default 400. */
  readonly maxLifeMs?: number
  /** Progress lines (the CLI prints them; the tests keep quiet). */
  readonly log?: (line: string) => void
}

export interface KillRecord {
  /** ms from READY to the SIGKILL. */
  readonly afterMs: number
  /**
   * "at-start": right after READY (clients in backoff or handshake); "resend": just after a
   * client came back online (its outbox going out); "loaded": after acks flowed in this life,
   * at a moment with commands in flight.
   */
  readonly when: "at-start" | "resend" | "loaded"
  readonly acksThisLife: number
  /** Receipts submitted and not yet settled at the moment of the kill. */
  readonly inFlight: number
}

export interface HubCrashReport {
  readonly seed: number
  readonly kills: number
  readonly killLog: ReadonlyArray<KillRecord>
  readonly clients: number
  readonly submitted: number
  /** Receipts resolved with a seq: each checked against the log. */
  readonly acknowledged: number
  readonly rejected: number
  /** Acknowledged receipts whose acknowledgment came in a later hub life than their submit. */
  readonly acknowledgedAfterRestart: number
  readonly logLength: number
  /** ms from spawn to READY, per hub start. */
  readonly startMs: ReadonlyArray<number>
  readonly durationMs: number
  readonly violations: ReadonlyArray<string>
}

interface Sent {
  readonly k: number
  readonly clientSeq: number
  readonly name: string
  readonly life: number
  seq?: number
  rejected?: string
  settledLife?: number
}

const DOC = "crash-hub"
const MAX_PENDING = 100
const MAX_COMMANDS = 100_000

/** Reproduction hint printed with every failure. */
export const hubCrashRepro = (o: Pick<HubCrashOptions, "seed" | "kills" | "clients" | "sync">): string =>
  `npm run chaos -- --scenario hub --seed ${o.seed} --kills ${o.kills}${o.clients !== undefined ? ` --clients ${o.clients}` : ""}${o.sync ? " --sync" : ""}` +
  ` (or CANON_CRASH_SEED=${o.seed} npm test -- crash-hub)`

/**
 * Reads a hub's directory after it stopped: the log (from its first stored entry: a long run
 * compacts the start away), the head, a fresh load's hash and the ids of its Todo items.
 */
export const readHubDir = async (dataDir: string, docId: string): Promise<{ log: Entry[]; compactedThrough: number; headSeq: number | undefined; loadedSeq: number; hash: string; itemIds: ReadonlySet<string> }> => {
  const storage = await LevelStorage.open(dataDir)
  try {
    const store = new AuthorityStore(storage)
    const prefix = K.authEntryPrefix(docId)
    const first = await storage.range({ gte: K.authEntry(docId, 1), lt: K.prefixEnd(prefix), limit: 1 })
    const compactedThrough = first[0] === undefined ? 0 : K.seqFromKey(first[0][0]) - 1
    const log = await store.entries(docId, compactedThrough, 1e7)
    const head = await store.head(docId)
    const hub = new Hub({ machines: [Todo], storage: storage as KVStore, runtime: systemRuntime })
    const authority = await hub.doc(docId, Todo)
    const result = {
      log, compactedThrough, headSeq: head?.seq, loadedSeq: authority.headSeq, hash: authority.stateHash(),
      itemIds: new Set(Object.keys((authority.state as { items: Record<string, unknown> }).items)),
    }
    await hub.close()
    return result
  } finally {
    await storage.close()
  }
}

export const runHubCrash = async (options: HubCrashOptions): Promise<HubCrashReport> => {
  const started = Date.now()
  const { seed, kills } = options
  const nClients = options.clients ?? 3
  const maxLifeMs = options.maxLifeMs ?? 400
  const log = options.log ?? (() => {})
  const rand = seededRandom(seed)
  const dir = tempDir("canon-crash-hub-")
  const dataDir = join(dir, "hub")
  const violations: string[] = []
  const startMs: number[] = []
  const killLog: KillRecord[] = []
  const clients: CanonClient[] = []
  const storages: KVStore[] = []
  let hub: Child | undefined
  let life = 0
  let lifeAcks = 0
  let lifeOnline = 0
  let stopSubmitting = false
  let submitter: Promise<void> | undefined

  const startHubProcess = async (port: number): Promise<number> => {
    const t0 = Date.now()
    hub = spawnScript(`hub #${life + 1}`, "hub-process.ts", ["--data", dataDir, "--port", String(port), ...(options.sync ? ["--sync"] : [])])
    const line = await hub.waitForLine((l) => l.startsWith("READY "), 30_000)
    startMs.push(Date.now() - t0)
    life++
    lifeAcks = 0
    lifeOnline = 0
    return Number(line.split(" ")[1])
  }

  try {
    const port = await startHubProcess(await pickPort(rand))
    const url = `ws://127.0.0.1:${port}/sync`
    log(`seed ${seed}: hub on ${url}, data in ${dataDir}`)

    const records: Sent[] = []
    const docs: Doc<typeof Todo>[] = []
    const desyncs: string[] = []
    for (let k = 0; k < nClients; k++) {
      const storage: KVStore = k === 0 ? await LevelStorage.open(join(dir, `client-${k}`)) : new MemoryStorage()
      storages.push(storage)
      const c = await CanonClient.open({
        transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo], storage: replicaStorage(storage),
        backoff: { baseMs: 20, maxMs: 250 }, stableMs: 1_000,
      })
      clients.push(c)
      c.onStatus((status) => {
        if (status === "online") lifeOnline++
      })
      const doc = await c.open(Todo, DOC)
      doc.on("desync", (d) => desyncs.push(`client ${k}: desync ${JSON.stringify(d)}`))
      doc.on("error", (e) => {
        // A storage failure of the client, or the hub refusing the document, is a finding.
        desyncs.push(`client ${k}: error ${e.code}: ${e.message}`)
      })
      docs.push(doc)
    }

    // The workload: each client adds items and works on everybody's, at most MAX_PENDING unsettled.
    const ids: string[] = []
    const wrand = seededRandom(seed ^ 0x5bd1e995)
    const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(wrand() * xs.length)]!
    let step = 0
    const submitOne = (k: number) => {
      const doc = docs[k]!
      const r = wrand()
      let name: string
      let receipt
      if (r < 0.35 || ids.length === 0) {
        const id = `${k}-${step}`
        ids.push(id)
        name = "add"
        receipt = doc.submit("add", { id, title: `t${step}` })
      } else if (r < 0.5) {
        name = "rename"
        receipt = doc.submit("rename", { id: pick(ids), title: `r${step}` })
      } else if (r < 0.65) {
        name = "toggle"
        receipt = doc.submit("toggle", { id: pick(ids) })
      } else if (r < 0.75) {
        name = "remove"
        receipt = doc.submit("remove", { id: pick(ids) })
      } else {
        name = "note"
        receipt = doc.submit("note", { text: `n${step}` })
      }
      step++
      const rec: Sent = { k, clientSeq: receipt.clientSeq, name, life }
      records.push(rec)
      receipt.then(
        ({ seq }) => {
          rec.seq = seq
          rec.settledLife = life
          lifeAcks++
        },
        (e: unknown) => {
          rec.rejected = e instanceof CommandRejected ? e.code : String(e)
          rec.settledLife = life
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

    const unsettled = () => records.reduce((n, r) => n + (r.settledLife === undefined ? 1 : 0), 0)
    for (let i = 0; i < kills; i++) {
      const readyAt = Date.now()
      const r = rand()
      const when: KillRecord["when"] = r < 0.15 ? "at-start" : r < 0.45 ? "resend" : "loaded"
      if (when === "at-start") {
        // Clients are still in backoff or mid-handshake.
        await sleep(Math.floor(rand() * 60))
      } else if (when === "resend") {
        // A client is back: its outbox (filled while the hub was down) is being resent and committed.
        if (!(await until(() => lifeOnline > 0, 20_000, 1))) violations.push(`no client came back online within 20 s of hub start ${life}`)
        await sleep(Math.floor(rand() * 30))
      } else {
        // Under load: acknowledgments flow in this life; a random moment with commands in flight.
        if (!(await until(() => lifeAcks > 0, 20_000))) violations.push(`no acknowledgment within 20 s of hub start ${life}`)
        await sleep(Math.floor(rand() * maxLifeMs))
        await until(() => unsettled() > 0, 1_000, 1)
        await sleep(Math.floor(rand() * 3))
      }
      const record: KillRecord = { afterMs: Date.now() - readyAt, when, acksThisLife: lifeAcks, inFlight: unsettled() }
      await hub!.stop("SIGKILL")
      killLog.push(record)
      log(`kill ${i + 1}/${kills}: ${record.when}, ${record.afterMs} ms after ready, ${record.acksThisLife} acks this life, ${record.inFlight} in flight; ${records.length} submitted so far`)
      await sleep(Math.floor(rand() * 150))
      await startHubProcess(port)
    }

    // Quiet down: no new commands; everything submitted settles with the hub up.
    stopSubmitting = true
    await submitter
    const settledAll = await until(
      () => unsettled() === 0 && clients.every((c) => c.status === "online") && docs.every((d) => d.pendingCount === 0),
      30_000, 20,
    )
    if (!settledAll) {
      violations.push(`not settled within 30 s of the last restart: ${unsettled()} receipts unsettled; client status ${clients.map((c) => c.status).join("/")}; ` +
        `pending ${docs.map((d) => d.pendingCount).join("/")}`)
    }

    // A fresh client tells the head; every client must reach it.
    const probe = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 20, maxMs: 250 } })
    clients.push(probe)
    const probeDoc = await probe.open(Todo, DOC)
    if (!(await until(() => probeDoc.synced, 15_000, 20))) violations.push("a fresh client did not sync within 15 s")
    const head = probeDoc.confirmedSeq
    if (!(await until(() => docs.every((d) => d.confirmedSeq === head), 15_000, 20))) {
      violations.push(`clients did not reach the head ${head} within 15 s: confirmed seqs ${docs.map((d) => d.confirmedSeq).join("/")}`)
    }
    const finals = [...docs, probeDoc].map((d) => ({ seq: d.confirmedSeq, hash: d.confirmedHash() }))
    const clientIds = clients.slice(0, nClients).map((c) => c.clientId)
    for (const c of clients.splice(0)) await c.close()
    for (const s of storages.splice(0)) if (s instanceof LevelStorage) await s.close()

    await hub!.stop("SIGTERM")
    if (hub!.exitCode !== 0) violations.push(`the hub did not stop cleanly on SIGTERM: ${hub!.describe()}`)
    const disk = await readHubDir(dataDir, DOC)

    // ---- the log itself (from its first stored entry: a long run compacts the start) ----
    const base = disk.compactedThrough
    const end = base + disk.log.length
    disk.log.forEach((e, i) => {
      if (e.seq !== base + i + 1) violations.push(`log position ${i} holds seq ${e.seq} (seqs not contiguous)`)
    })
    if (disk.headSeq !== end) violations.push(`head says seq ${disk.headSeq} but the log ends at ${end}`)
    if (disk.loadedSeq !== end) violations.push(`a fresh load reaches seq ${disk.loadedSeq}, the log ends at ${end}`)
    const byKey = new Map<string, Entry>()
    for (const e of disk.log) {
      const key = `${e.clientId}/${e.clientSeq}`
      if (byKey.has(key)) violations.push(`(clientId, clientSeq) ${key} is in the log twice: seqs ${byKey.get(key)!.seq} and ${e.seq}`)
      byKey.set(key, e)
    }

    // ---- every acknowledgment against the log ----
    let acknowledged = 0
    let rejected = 0
    let acknowledgedAfterRestart = 0
    const confirmedKeys = new Set<string>()
    for (const r of records) {
      const key = `${clientIds[r.k]}/${r.clientSeq}`
      if (r.seq !== undefined) {
        acknowledged++
        if (r.settledLife !== r.life) acknowledgedAfterRestart++
        confirmedKeys.add(key)
        // Compacted away: inside the snapshot the fresh load's hash is checked against.
        if (r.seq <= base) continue
        const e = disk.log[r.seq - 1 - base]
        if (e === undefined) violations.push(`acknowledged ${key} (${r.name}) at seq ${r.seq}, but the log ends at ${end} (lost)`)
        else if (e.clientId !== clientIds[r.k] || e.clientSeq !== r.clientSeq || e.name !== r.name) {
          violations.push(`acknowledged ${key} (${r.name}) at seq ${r.seq}, but seq ${r.seq} holds ${e.clientId}/${e.clientSeq} (${e.name})`)
        }
      } else if (r.rejected !== undefined) {
        rejected++
        if (r.rejected !== "rejected") violations.push(`${key} (${r.name}) was refused with "${r.rejected}", not by the machine`)
        if (byKey.has(key)) violations.push(`${key} (${r.name}) was rejected but is in the log at seq ${byKey.get(key)!.seq}`)
      }
    }
    for (const e of disk.log) {
      if (!confirmedKeys.has(`${e.clientId}/${e.clientSeq}`)) violations.push(`seq ${e.seq} (${e.clientId}/${e.clientSeq} ${e.name}) is in the log but no client was told so`)
    }

    // ---- convergence ----
    finals.forEach((f, i) => {
      const who = i < nClients ? `client ${i}` : "the fresh client"
      if (f.seq !== end) violations.push(`${who} confirmed seq ${f.seq}, the log ends at ${end}`)
      if (f.hash !== disk.hash) violations.push(`${who} has state hash ${f.hash}, the authority loaded from disk ${disk.hash}`)
    })
    violations.push(...desyncs)

    return {
      seed, kills: killLog.length, killLog, clients: nClients, submitted: records.length, acknowledged, rejected, acknowledgedAfterRestart,
      logLength: end, startMs, durationMs: Date.now() - started, violations,
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
export const describeHubCrash = (r: HubCrashReport): string => {
  const count = (w: KillRecord["when"]) => r.killLog.filter((k) => k.when === w).length
  const avgStart = Math.round(r.startMs.reduce((a, b) => a + b, 0) / Math.max(1, r.startMs.length))
  return `hub crash, seed ${r.seed}: ${r.kills} SIGKILLs (${count("at-start")} at start, ${count("resend")} during resend, ${count("loaded")} under load; ` +
    `in flight at kill: ${r.killLog.map((k) => k.inFlight).join(",")}), ${r.clients} clients, ${r.submitted} commands submitted, ` +
    `${r.acknowledged} acknowledged and checked against the log (${r.acknowledgedAfterRestart} of them acknowledged by a later hub process than the one up at submit), ${r.rejected} rejected by the machine; ` +
    `log ${r.logLength} entries; hub start ${avgStart} ms on average; ${(r.durationMs / 1000).toFixed(1)} s; ` +
    `${r.violations.length === 0 ? "no invariant violated" : `${r.violations.length} VIOLATIONS`}`
}

/**
 * Scenario: a client process with pending commands is killed with SIGKILL and restarted on
 * its LevelDB directory; once it reaches the hub, its pending commands are confirmed exactly
 * once and it converges.
 *
 * A hub runs in a child process (hub-process.ts, LevelDB). One client process
 * (client-process.ts, LevelStorage) is started `kills` times on the same directory and
 * SIGKILLed at a seeded random moment each time: the first round always offline (its
 * outbox only grows), later rounds offline (dead port, or autoConnect off) or online (killed
 * while its commands are being sent and confirmed). Each kill comes after a random number of
 * its commands reported `receipt.persisted`, while more are being submitted. An in-process
 * client on the same document submits notes meanwhile, so the client's commands interleave
 * with others. A last start with the hub reachable waits until nothing is pending.
 *
 * Checked, from the client's lines and the hub's directory read after a clean stop:
 * - the client keeps its clientId across restarts; on each restart its outbox holds every
 *   command that reported persisted and was not yet reported confirmed;
 * - a clientSeq that reported persisted is never reused for another command;
 * - in the log, the client's clientSeqs appear exactly once each and run 1..n without a gap,
 *   and each persisted command is there with its own arguments (its id);
 * - nothing of it was rejected; the log is contiguous; the in-process client's
 *   acknowledgments are at their seqs;
 * - the client's final confirmed seq and hash, and the in-process client's, equal a fresh
 *   load of the authority from the hub's directory.
 *
 * With `text` (the default), the client process also types a marker into a Yjs or an
 * Automerge text field of a second document (`<doc>-notes`, the Notes machine of
 * wide-machines.ts) with each command, so kills land while CRDT field changes are being
 * stored and sent too. Checked: the hub's texts (loaded from its directory) are made of markers
 * only, none twice, and hold every marker whose merge command reported persisted; the final
 * client's texts equal the hub's.
 */
import { CanonClient, CommandRejected, type Entry } from "../../core/index.js"
import { seededRandom } from "../../core/internal.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Todo } from "../support/machines.js"
import { Hub, type KVStore } from "../../core/index.js"
import { fieldsOfRoot } from "../../core/crdt/roots.js"
import { LevelStorage } from "../../adapters/level/index.js"
import type { AutomergeTextHandle } from "../../adapters/automerge/index.js"
import type * as Y from "yjs"
import { Notes } from "./wide-machines.js"
import { type Child, deadline, pickPort, removeTempDir, sleep, spawnScript, tempDir, until } from "./harness.js"
import { readHubDir } from "./hub-crash.js"
import { join } from "node:path"

export interface ClientCrashOptions {
  readonly seed: number
  /** SIGKILLs of the client process (rounds before the final one). */
  readonly kills: number
  /** The client also types into CRDT text fields of a second document. Default true. */
  readonly text?: boolean
  readonly log?: (line: string) => void
}

type Mode = "offline-dead-port" | "offline-no-connect" | "online"

export interface RoundRecord {
  readonly mode: Mode
  readonly submitted: number
  readonly persisted: number
  readonly confirmed: number
  /** Pending clientSeqs the restarted client found in its outbox. */
  readonly pendingAtOpen: number
}

export interface ClientCrashReport {
  readonly seed: number
  readonly kills: number
  readonly rounds: ReadonlyArray<RoundRecord>
  /** Commands that reported persisted before a kill: each checked in the log. */
  readonly persistedChecked: number
  /** Log entries of the client (its clientSeqs 1..n). */
  readonly clientEntries: number
  /** Entries of the client that were durable but never reported persisted (killed in between). */
  readonly durableUnreported: number
  /** Commands whose confirmation was stored (gone from the outbox, inside the stored state) but killed before reporting it. */
  readonly confirmedUnreported: number
  /** Text markers whose merge command reported persisted: each checked in the hub's text. */
  readonly markersChecked: number
  /** Acknowledged commands of the in-process client, checked against the log. */
  readonly otherAcknowledged: number
  readonly logLength: number
  readonly durationMs: number
  readonly violations: ReadonlyArray<string>
}

const DOC = "crash-client"
const FIELDS = ["text", "am"] as const
const MARKER = /⟨[^⟩]*⟩/g

/** The texts of a Notes document, loaded from a stopped hub's directory. */
const readNotesTexts = async (dataDir: string, docId: string): Promise<Record<string, string>> => {
  const storage = await LevelStorage.open(dataDir)
  try {
    const hub = new Hub({ machines: [Notes], storage: storage as KVStore, runtime: systemRuntime })
    try {
      const authority = await hub.doc(docId, Notes)
      const fields = fieldsOfRoot(authority.state) as { field(f: string): { handle: unknown } } | undefined
      if (fields === undefined) throw new Error(`${docId} has no CRDT fields`)
      return { text: (fields.field("text").handle as Y.Text).toString(), am: (fields.field("am").handle as AutomergeTextHandle).text }
    } finally {
      await hub.close()
    }
  } finally {
    await storage.close()
  }
}

export const clientCrashRepro = (o: Pick<ClientCrashOptions, "seed" | "kills">): string =>
  `npm run chaos -- --scenario client --seed ${o.seed} --client-kills ${o.kills} (or CANON_CRASH_SEED=${o.seed} npm test -- crash-client)`

export const runClientCrash = async (options: ClientCrashOptions): Promise<ClientCrashReport> => {
  const started = Date.now()
  const { seed, kills } = options
  const text = options.text ?? true
  const log = options.log ?? (() => {})
  const rand = seededRandom(seed)
  const dir = tempDir("canon-crash-client-")
  const hubDir = join(dir, "hub")
  const clientDir = join(dir, "client")
  const violations: string[] = []
  const rounds: RoundRecord[] = []
  let hub: Child | undefined
  let client: Child | undefined
  let other: CanonClient | undefined
  let noiseOn = false
  let noise: Promise<void> | undefined

  try {
    hub = spawnScript("hub", "hub-process.ts", ["--data", hubDir, "--port", String(await pickPort(rand))])
    const port = Number((await hub.waitForLine((l) => l.startsWith("READY "), 30_000)).split(" ")[1])
    const url = `ws://127.0.0.1:${port}/sync`
    const deadUrl = `ws://127.0.0.1:${await pickPort(rand)}/sync`
    log(`seed ${seed}: hub on ${url}, client data in ${clientDir}`)

    // Someone else on the document, so the client's commands interleave with others'.
    other = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo], storage: new MemoryStorage(), backoff: { baseMs: 20, maxMs: 200 } })
    const otherId = other.clientId
    const otherDoc = await other.open(Todo, DOC)
    const otherSent: { clientSeq: number; seq?: number; rejected?: string }[] = []
    noiseOn = true
    noise = (async () => {
      for (let i = 0; noiseOn && i < 10_000; i++) {
        const r = otherDoc.submit("note", { text: `other ${i}` })
        const rec: { clientSeq: number; seq?: number; rejected?: string } = { clientSeq: r.clientSeq }
        otherSent.push(rec)
        r.then(({ seq }) => void (rec.seq = seq), (e: unknown) => void (rec.rejected = e instanceof CommandRejected ? e.code : String(e)))
        await sleep(15)
      }
    })()

    let clientId: string | undefined
    /** clientSeq -> id, for every command that reported persisted (in any round). */
    const persisted = new Map<number, string>()
    /** clientSeqs reported confirmed (in any round). */
    const confirmed = new Set<number>()
    /** Per field: every marker typed, and those whose merge command reported persisted. */
    const typed: Record<string, Set<string>> = { text: new Set(), am: new Set() }
    const persistedMarkers: Record<string, Set<string>> = { text: new Set(), am: new Set() }
    /** Persisted, never reported confirmed, and gone from the outbox at a restart. */
    const leftOutbox: { name: string; cs: number; id: string; confirmedSeqAtOpen: number }[] = []

    const start = async (name: string, args: string[]): Promise<Child> => {
      const c = spawnScript(name, "client-process.ts", ["--data", clientDir, "--doc", DOC, ...args])
      const idLine = await c.waitForLine((l) => l.startsWith("CLIENT "), 30_000)
      const id = idLine.split(" ")[1]!
      if (clientId === undefined) clientId = id
      else if (id !== clientId) violations.push(`${name}: the client came back as ${id}, not ${clientId} (its clientId was not kept)`)
      const opened = (await c.waitForLine((l) => l.startsWith("OPENED "), 15_000)).split(" ")
      const confirmedSeqAtOpen = Number(opened[1])
      const pendingAtOpen = new Set(opened[2] === "-" ? [] : opened[2]!.split(",").map(Number))
      // Not in the outbox and never reported confirmed: the kill may have come after the
      // confirmation was stored and before the app heard of it. Checked against the log at the
      // end: its seq must be covered by the confirmed state the client opened with.
      for (const [cs, id2] of persisted) {
        if (!confirmed.has(cs) && !pendingAtOpen.has(cs)) leftOutbox.push({ name, cs, id: id2, confirmedSeqAtOpen })
      }
      return c
    }

    /** Collects a killed (or finished) round's lines into the shared maps. */
    const absorb = (name: string, c: Child): { submitted: number; persisted: number; confirmed: number } => {
      let p = 0
      for (const [cs, id] of c.linesOf("PERSISTED").map(([a, b]) => [Number(a), b!] as const)) {
        const before = persisted.get(cs)
        if (before !== undefined && before !== id) violations.push(`${name}: clientSeq ${cs} reported persisted for ${before} earlier, now for ${id} (a persisted clientSeq was reused)`)
        persisted.set(cs, id)
        p++
      }
      let k = 0
      for (const [cs] of c.linesOf("CONFIRMED")) {
        confirmed.add(Number(cs))
        k++
      }
      for (const [cs, code] of c.linesOf("REJECTED")) violations.push(`${name}: command ${cs} was rejected (${code}); every command of this test is valid`)
      for (const [field, marker] of c.linesOf("TYPED")) typed[field!]!.add(marker!)
      const merges = new Map(c.linesOf("MERGE").map(([field, cs, markers]) => [`${field}/${cs}`, markers === "-" ? [] : markers!.split(",")]))
      for (const [field, cs] of c.linesOf("MPERSISTED")) for (const m of merges.get(`${field}/${cs}`) ?? []) persistedMarkers[field!]!.add(m)
      return { submitted: c.linesOf("SUBMITTED").length, persisted: p, confirmed: k }
    }

    for (let round = 0; round < kills; round++) {
      const r = rand()
      const mode: Mode = round === 0 ? (r < 0.5 ? "offline-dead-port" : "offline-no-connect") : r < 0.3 ? "offline-dead-port" : r < 0.5 ? "offline-no-connect" : "online"
      const n = 20 + Math.floor(rand() * 100)
      const interval = Math.floor(rand() * 3)
      const name = `client round ${round + 1} (${mode})`
      const args = [
        "--url", mode === "offline-dead-port" ? deadUrl : url, "--tag", `r${round}`, "--submit", String(n), "--interval", String(interval),
        ...(text ? ["--text", "--seed", String(seed + round)] : []),
        ...(mode === "offline-no-connect" ? ["--no-connect"] : []),
      ]
      client = await start(name, args)
      const pendingAtOpen = client.lines.find((l) => l.startsWith("OPENED "))!.split(" ")[2]
      // Kill after a random number of its commands are persisted (more are on their way).
      const target = 1 + Math.floor(rand() * (n - 1))
      const c = client
      if (!(await until(() => c.linesOf("PERSISTED").length >= target || !c.running, 20_000, 1))) {
        violations.push(`${name}: fewer than ${target} commands persisted within 20 s (${c.linesOf("PERSISTED").length})`)
      }
      if (mode === "online" || rand() < 0.3) await sleep(Math.floor(rand() * 40))
      if (!c.running) violations.push(`${name}: exited before the kill: ${c.describe()}`)
      await c.stop("SIGKILL")
      const got = absorb(name, c)
      rounds.push({ mode, ...got, pendingAtOpen: pendingAtOpen === "-" || pendingAtOpen === undefined ? 0 : pendingAtOpen.split(",").length })
      log(`${name}: ${got.submitted}/${n} submitted, ${got.persisted} persisted, ${got.confirmed} confirmed, then SIGKILL`)
    }

    // The others stop; the client comes back with the hub reachable and drains its outbox.
    noiseOn = false
    await noise
    if (!(await until(() => otherSent.every((s) => s.seq !== undefined || s.rejected !== undefined), 15_000))) {
      violations.push(`the in-process client's commands did not all settle within 15 s (${otherSent.filter((s) => s.seq === undefined && s.rejected === undefined).length} open)`)
    }
    client = await start("client, final round", ["--url", url, "--wait", "--wait-ms", "30000", ...(text ? ["--text"] : [])])
    const c = client
    const done = (await c.waitForLine((l) => l.startsWith("DONE ") || l.startsWith("TIMEOUT "), 45_000)).split(" ")
    await Promise.race([c.exited, deadline(10_000)])
    absorb("client, final round", c)
    if (done[0] !== "DONE") violations.push(`the restarted client did not drain its outbox: ${done.join(" ")}; ${c.describe()}`)
    if (c.running || c.exitCode !== 0) violations.push(`the final client did not exit cleanly: ${c.describe()}`)
    const finalSeq = Number(done[1])
    const finalHash = done[2]
    const otherFinal = { seq: otherDoc.confirmedSeq, hash: otherDoc.confirmedHash() }
    if (!(await until(() => otherDoc.confirmedSeq === finalSeq, 15_000))) violations.push(`the in-process client stayed at seq ${otherDoc.confirmedSeq}, the final client reached ${finalSeq}`)
    otherFinal.seq = otherDoc.confirmedSeq
    otherFinal.hash = otherDoc.confirmedHash()
    await other.close()
    other = undefined

    await hub.stop("SIGTERM")
    if (hub.exitCode !== 0) violations.push(`the hub did not stop cleanly on SIGTERM: ${hub.describe()}`)
    const disk = await readHubDir(hubDir, DOC)

    // The log from its first stored entry (a long run compacts the start away): commands
    // below it are checked in the state (each `add` made its own item).
    const base = disk.compactedThrough
    const end = base + disk.log.length
    disk.log.forEach((e, i) => {
      if (e.seq !== base + i + 1) violations.push(`log position ${i} holds seq ${e.seq} (seqs not contiguous)`)
    })
    if (disk.headSeq !== end) violations.push(`head says seq ${disk.headSeq} but the log ends at ${end}`)
    const seen = new Map<string, Entry>()
    for (const e of disk.log) {
      const key = `${e.clientId}/${e.clientSeq}`
      if (seen.has(key)) violations.push(`(clientId, clientSeq) ${key} is in the log twice: seqs ${seen.get(key)!.seq} and ${e.seq}`)
      seen.set(key, e)
    }
    // The crashed client: clientSeqs 1..n once each; every persisted command with its own id.
    const mine = disk.log.filter((e) => e.clientId === clientId)
    const seqsOfMine = mine.map((e) => e.clientSeq).sort((a, b) => a - b)
    const firstOfMine = base === 0 ? 1 : seqsOfMine[0] ?? Infinity
    seqsOfMine.forEach((cs, i) => {
      if (cs !== firstOfMine + i) violations.push(`the client's clientSeqs in the log are not ${firstOfMine}..${firstOfMine + mine.length - 1}: position ${i} is ${cs}`)
    })
    const byClientSeq = new Map(mine.map((e) => [e.clientSeq, e]))
    for (const [cs, id] of persisted) {
      const e = byClientSeq.get(cs)
      if (e === undefined && cs < firstOfMine && disk.itemIds.has(id)) continue
      if (e === undefined) violations.push(`command ${cs} (${id}) reported persisted but is not in the log (lost)`)
      else if ((e.args as { id?: unknown }).id !== id) violations.push(`command ${cs} reported persisted as ${id} but the log has ${JSON.stringify(e.args)}`)
    }
    const durableUnreported = mine.filter((e) => !persisted.has(e.clientSeq)).length
    for (const l of leftOutbox) {
      const e = byClientSeq.get(l.cs)
      if (e === undefined && l.cs < firstOfMine && disk.itemIds.has(l.id)) continue
      if (e === undefined || e.seq > l.confirmedSeqAtOpen) {
        violations.push(`${l.name}: command ${l.cs} (${l.id}) reported persisted, not confirmed, yet is missing from the outbox after the restart, and the client's stored confirmed state (seq ${l.confirmedSeqAtOpen}) does not hold it (${e === undefined ? "not in the log" : `log seq ${e.seq}`})`)
      }
    }
    const confirmedUnreported = leftOutbox.length
    // The in-process client's acknowledgments.
    let otherAcknowledged = 0
    for (const s of otherSent) {
      if (s.rejected !== undefined) violations.push(`the in-process client's command ${s.clientSeq} was rejected (${s.rejected})`)
      if (s.seq === undefined || s.seq <= base) continue
      otherAcknowledged++
      const e = disk.log[s.seq - 1 - base]
      if (e === undefined || e.clientId !== otherId || e.clientSeq !== s.clientSeq || e.name !== "note") {
        violations.push(`the in-process client's command ${s.clientSeq} was acknowledged at seq ${s.seq}, which holds ${e === undefined ? "nothing" : `${e.clientId}/${e.clientSeq} ${e.name}`}`)
      }
    }
    // Convergence.
    // The texts: markers only, none twice, every persisted one there; the client's the same.
    let markersChecked = 0
    if (text) {
      let hubTexts: Record<string, string> | undefined
      try {
        hubTexts = await readNotesTexts(hubDir, `${DOC}-notes`)
      } catch (e) {
        violations.push(`the notes document does not load from the hub's directory: ${e instanceof Error ? e.message : String(e)}`)
      }
      const clientTexts = Object.fromEntries(c.linesOf("TEXT").map(([f, t]) => [f!, t === "-" ? "" : t!]))
      for (const field of FIELDS) {
        if (hubTexts === undefined) break
        const t = hubTexts[field]!
        const found = [...t.matchAll(MARKER)].map((m) => m[0])
        if (found.join("") !== t) violations.push(`${field}: the hub's text is not made of markers only: ${t.replace(MARKER, "|").slice(0, 80)}`)
        const seen = new Set<string>()
        for (const m of found) {
          if (seen.has(m)) violations.push(`${field}: marker ${m} is in the hub's text twice`)
          if (!typed[field]!.has(m)) violations.push(`${field}: marker ${m} is in the hub's text, but was never typed into it`)
          seen.add(m)
        }
        const lost = [...persistedMarkers[field]!].filter((m) => !seen.has(m))
        markersChecked += persistedMarkers[field]!.size
        if (lost.length > 0) violations.push(`${field}: ${lost.length} of ${persistedMarkers[field]!.size} markers whose merge reported persisted are not in the hub's text (lost): ${lost.slice(0, 10).join("")}`)
        if (clientTexts[field] !== t) violations.push(`${field}: the final client's text (${clientTexts[field]?.length ?? "none"} chars) differs from the hub's (${t.length} chars)`)
      }
    }
    if (finalSeq !== end) violations.push(`the restarted client confirmed seq ${finalSeq}, the log ends at ${end}`)
    if (finalHash !== disk.hash) violations.push(`the restarted client has hash ${finalHash}, the authority loaded from disk ${disk.hash}`)
    if (otherFinal.seq !== end || otherFinal.hash !== disk.hash) violations.push(`the in-process client ended at seq ${otherFinal.seq} hash ${otherFinal.hash}; the authority at ${end} ${disk.hash}`)

    return {
      seed, kills: rounds.length, rounds, persistedChecked: persisted.size, clientEntries: mine.length, durableUnreported, confirmedUnreported, markersChecked, otherAcknowledged,
      logLength: end, durationMs: Date.now() - started, violations,
    }
  } finally {
    noiseOn = false
    await noise?.catch(() => {})
    await other?.close().catch(() => {})
    await client?.stop("SIGKILL").catch(() => {})
    await hub?.stop("SIGKILL").catch(() => {})
    removeTempDir(dir)
  }
}

export const describeClientCrash = (r: ClientCrashReport): string =>
  `client crash, seed ${r.seed}: ${r.kills} SIGKILLs of the client (${r.rounds.map((x) => `${x.mode}: ${x.persisted} persisted/${x.confirmed} confirmed, ${x.pendingAtOpen} pending at open`).join("; ")}); ` +
  `${r.persistedChecked} persisted commands checked in the log, the client has ${r.clientEntries} entries (${r.durableUnreported} durable but killed before reporting), ` +
  `${r.confirmedUnreported} confirmed and stored but killed before reporting, ${r.markersChecked} text markers whose merge reported persisted checked in the hub's texts, ` +
  `${r.otherAcknowledged} acknowledgments of the in-process client checked; log ${r.logLength} entries; ${(r.durationMs / 1000).toFixed(1)} s; ` +
  `${r.violations.length === 0 ? "no invariant violated" : `${r.violations.length} VIOLATIONS`}`

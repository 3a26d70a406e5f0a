/**
 * Scenario: a client process on LevelDB is SIGKILLed while it installs a snapshot of a large
 * document streamed from the hub, and restarted on its directory; it opens the document,
 * converges with the hub and loses nothing from its outbox.
 *
 * The hub (wide-hub-process.ts, LevelDB, snapshot policy: 64 KiB chunks, a snapshot once
 * the log since the last one passes 5% of it) serves a `Notes` document (wide-machines.ts)
 * that an in-process writer fills with padded `record` commands (BIG_PADS x 64 KiB, about
 * 4 MiB of state), so a replica that is new or behind the compaction horizon is sent a
 * snapshot stream of several credit windows, then installs it (decode, hash, one LevelDB
 * batch of the whole state: install-client-process.ts announces it).
 *
 * Each round starts the client process (install-client-process.ts) on the same directory;
 * it submits `record` commands with fresh tokens as it starts, so its outbox holds commands
 * while the stream comes. Before each round after the first, the writer adds GROW_PADS
 * padded commands, which makes the hub snapshot and compact past the client's confirmed seq:
 * the restarted client is sent a snapshot again. The kill is aimed, by the seed, at one of:
 * - "stream": part way through the stream (received at least a random fraction of its size);
 * - "write": as the store's batch holding the installed state is issued to LevelDB;
 * - "written": up to 30 ms after that batch is durable (the tail and the outbox resent).
 * A round whose aim never comes (the client caught up without a stream) is killed at a random
 * moment and counted. A last start with --wait waits until nothing is pending.
 *
 * Checked:
 * - every start opens the document, keeps its clientId, and its view (stored state plus
 *   outbox) holds every token that reported persisted in an earlier round;
 * - no client error or desync, nothing rejected, no hub event saying a document failed;
 * - at the end, from the hub's directory (stopped cleanly): every persisted token is in the
 *   state once (no duplicate application), nothing never submitted, and the client's final
 *   confirmed seq and hash equal the authority loaded from disk.
 *
 * The seed fixes the kill plan and the workload; thread timing is not reproducible.
 */
import { join } from "node:path"
import { CanonClient, Hub, type KVStore } from "../../core/index.js"
import { seededRandom } from "../../core/internal.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Notes, TodoV1, type NotesState } from "./wide-machines.js"
import { type Child, pickPort, removeTempDir, sleep, spawnScript, tempDir, until } from "./harness.js"

export interface InstallCrashOptions {
  readonly seed: number
  readonly kills: number
  readonly sync?: boolean
  readonly log?: (line: string) => void
}

export const KILL_AIMS = ["stream", "write", "written"] as const
export type KillAim = (typeof KILL_AIMS)[number]

export interface InstallKill {
  readonly aim: KillAim
  /** The aim came (else the kill was at a random moment). */
  readonly reached: boolean
  /** Snapshot bytes received when killed, of the stream's size ("-" without a stream). */
  readonly progress: string
  readonly submitted: number
  readonly persisted: number
}

export interface InstallCrashReport {
  readonly seed: number
  readonly kills: ReadonlyArray<InstallKill>
  /** Tokens that reported persisted: each checked in the view at the next open and in the hub's state. */
  readonly persisted: number
  /** Snapshot streams begun in the client (over all starts). */
  readonly streams: number
  readonly installs: number
  readonly head: number
  readonly stateBytes: number
  readonly durationMs: number
  readonly violations: ReadonlyArray<string>
}

const DOC = "install-big"
const BIG_PADS = 64
const GROW_PADS = 4
const PAD_BYTES = 64 << 10
const PER_ROUND = 30

export const installCrashRepro = (o: Pick<InstallCrashOptions, "seed" | "kills" | "sync">): string =>
  `npm run chaos -- --scenario install --seed ${o.seed} --install-kills ${o.kills}${o.sync ? " --sync" : ""} (or CANON_CRASH_SEED=${o.seed} npm test -- crash-install)`

export const runInstallCrash = async (options: InstallCrashOptions): Promise<InstallCrashReport> => {
  const started = Date.now()
  const { seed } = options
  const log = options.log ?? (() => {})
  const rand = seededRandom(seed)
  const dir = tempDir("canon-crash-install-")
  const dataDir = join(dir, "hub")
  const clientDir = join(dir, "client")
  const violations: string[] = []
  const kills: InstallKill[] = []
  let hub: Child | undefined
  let client: Child | undefined
  let writer: CanonClient | undefined
  try {
    hub = spawnScript("install hub", "wide-hub-process.ts", ["--data", dataDir, "--port", String(await pickPort(rand)), "--min-log-kib", "64", "--log-ratio", "0.05", "--tail-kib", "16", "--chunk-kib", "64", ...(options.sync ? ["--sync"] : [])])
    const port = Number((await hub.waitForLine((l) => l.startsWith("READY "), 30_000)).split(" ")[1])
    const url = `ws://127.0.0.1:${port}/`
    log(`seed ${seed}: hub on ${url}, data in ${dataDir}`)

    // ---- the big document ----
    writer = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, storage: new MemoryStorage(), machines: [Notes], backoff: { baseMs: 20, maxMs: 200 } })
    const big = await writer.open(Notes, DOC)
    let pads = 0
    const pad = async (n: number) => {
      const receipts = []
      for (let i = 0; i < n; i++, pads++) receipts.push(big.submit("record", { token: pads, pad: String.fromCharCode(97 + (pads % 26)).repeat(PAD_BYTES) }))
      await Promise.all(receipts)
      await until(() => big.pendingCount === 0, 30_000)
    }
    await pad(BIG_PADS)

    // ---- the rounds ----
    let clientId: string | undefined
    const persisted = new Map<number, number>() // token -> round it reported persisted in
    const submitted = new Set<number>()
    let streams = 0
    let installs = 0
    let nextToken = 1
    const start = (args: string[]): Child => {
      client = spawnScript(`install client #${kills.length + 1}`, "install-client-process.ts", ["--data", clientDir, "--url", url, "--doc", DOC, ...args])
      return client
    }
    /** The checks of a start's first lines: opened, same clientId, nothing persisted lost. */
    const checkOpen = async (c: Child, round: number): Promise<boolean> => {
      try {
        const id = (await c.waitForLine((l) => l.startsWith("CLIENT "), 30_000)).split(" ")[1]!
        if (clientId !== undefined && id !== clientId) violations.push(`start ${round + 1}: the client came back as ${id}, not ${clientId}`)
        clientId ??= id
        const opened = (await c.waitForLine((l) => l.startsWith("OPENED "), 30_000)).split(" ")
        const view = new Set(opened[3] === "-" ? [] : opened[3]!.split(",").map(Number))
        const lost = [...persisted.keys()].filter((t) => !view.has(t))
        if (lost.length > 0) violations.push(`start ${round + 1}: ${lost.length} tokens that reported persisted are neither in the stored state nor in the outbox: ${lost.slice(0, 10).join(",")}`)
        return true
      } catch (e) {
        violations.push(`start ${round + 1}: the client did not open the document: ${e instanceof Error ? e.message : String(e)}`)
        return false
      }
    }
    const collect = (c: Child, round: number) => {
      for (const [, t] of c.linesOf("PERSISTED")) if (!persisted.has(Number(t))) persisted.set(Number(t), round)
      for (const [, t] of c.linesOf("SUBMITTED")) submitted.add(Number(t))
      streams += c.linesOf("SNAP").filter(([, r]) => r === "0").length
      installs += c.linesOf("SNAPWRITTEN").length
      for (const e of c.linesOf("ERROR")) violations.push(`${c.name}: ${e.join(" ")}`)
      for (const e of c.linesOf("REJECTED")) violations.push(`${c.name}: command ${e.join(" ")} rejected`)
    }

    for (let round = 0; round < options.kills; round++) {
      if (round > 0) await pad(GROW_PADS)
      const aim = KILL_AIMS[Math.floor(rand() * KILL_AIMS.length)]!
      const fraction = rand()
      const c = start(["--first", String(nextToken), "--submit", String(PER_ROUND), "--interval", String(2 + Math.floor(rand() * 15))])
      nextToken += PER_ROUND
      if (!(await checkOpen(c, round))) break
      let reached = false
      try {
        if (aim === "stream") {
          await c.waitForLine((l) => {
            if (!l.startsWith("SNAP ")) return false
            const [, , r, s] = l.split(" ")
            return Number(r) < Number(s) && Number(r) >= fraction * Number(s)
          }, 15_000)
        } else if (aim === "write") {
          await c.waitForLine((l) => l.startsWith("SNAPWRITE "), 15_000)
        } else {
          await c.waitForLine((l) => l === "SNAPWRITTEN", 15_000)
          await sleep(Math.floor(rand() * 30))
        }
        reached = true
      } catch {
        // No stream (caught up from the log), or it ended before the aim: a kill at random.
        if (!c.running) {
          violations.push(`start ${round + 1}: the client exited: ${c.describe()}`)
          break
        }
        await sleep(Math.floor(rand() * 200))
      }
      await c.stop("SIGKILL")
      const snaps = c.linesOf("SNAP")
      const last = snaps.at(-1)
      collect(c, round)
      kills.push({ aim, reached, progress: last === undefined ? "-" : `${last[1]}/${last[2]}`, submitted: c.linesOf("SUBMITTED").length, persisted: c.linesOf("PERSISTED").length })
      log(`kill ${round + 1}/${options.kills}: aimed at ${aim}${reached ? "" : " (not reached: killed at random)"}; stream ${last === undefined ? "none" : `${last[1]}/${last[2]} at seq ${last[0]}`}; ` +
        `${c.linesOf("SUBMITTED").length} submitted, ${c.linesOf("PERSISTED").length} persisted, ${c.linesOf("CONFIRMED").length} confirmed; state writes ${c.linesOf("SNAPWRITE").length}/${c.linesOf("SNAPWRITTEN").length}`)
    }

    // ---- the last start: converge ----
    let done: string[] | undefined
    if (violations.length === 0) {
      const c = start(["--first", String(nextToken), "--submit", "5", "--interval", "5", "--wait", "--wait-ms", "60000"])
      nextToken += 5
      if (await checkOpen(c, options.kills)) {
        try {
          done = (await c.waitForLine((l) => l.startsWith("DONE ") || l.startsWith("TIMEOUT "), 90_000)).split(" ")
          if (done[0] === "TIMEOUT") violations.push(`the last start did not settle: ${done.join(" ")}`)
        } catch (e) {
          violations.push(`the last start did not finish: ${e instanceof Error ? e.message : String(e)}`)
        }
        await c.exited
        collect(c, options.kills)
      }
    }
    await writer.close()
    writer = undefined
    await hub.stop("SIGTERM")
    if (hub.exitCode !== 0) violations.push(`the hub did not stop cleanly on SIGTERM: ${hub.describe()}`)
    for (const e of hub.linesOf("EVENT")) violations.push(`hub event ${e.join(" ")}`)

    // ---- the hub's directory ----
    let head = 0
    let stateBytes = 0
    const storage = await LevelStorage.open(dataDir)
    try {
      const reader = new Hub({ machines: [Notes, TodoV1], storage: storage as KVStore, runtime: systemRuntime, quietCheckpointMs: Infinity })
      try {
        const authority = await reader.doc(DOC, Notes)
        const state = authority.state as NotesState
        head = authority.headSeq
        stateBytes = Object.values(state.pads).reduce((n, p) => n + p.length, 0)
        if (state.dups.length > 0) violations.push(`commands applied twice: ${state.dups.slice(0, 5).join("; ")}`)
        const applied = clientId === undefined ? {} : state.applied[clientId] ?? {}
        const lost = [...persisted.keys()].filter((t) => applied[String(t)] === undefined)
        if (lost.length > 0) violations.push(`${lost.length} persisted tokens are not in the hub's state (lost): ${lost.slice(0, 10).join(",")}`)
        const foreign = Object.keys(applied).filter((t) => !submitted.has(Number(t)))
        if (foreign.length > 0) violations.push(`the hub's state holds tokens the client never submitted: ${foreign.slice(0, 10).join(",")}`)
        if (done !== undefined && done[0] === "DONE") {
          if (Number(done[1]) !== head) violations.push(`the client confirmed seq ${done[1]}, the head loaded from disk is ${head}`)
          if (done[2] !== authority.stateHash()) violations.push(`the client's state hash ${done[2]} differs from the authority's loaded from disk ${authority.stateHash()}`)
        }
      } finally {
        await reader.close()
      }
    } finally {
      await storage.close()
    }
    return { seed, kills, persisted: persisted.size, streams, installs, head, stateBytes, durationMs: Date.now() - started, violations }
  } finally {
    await writer?.close().catch(() => {})
    await client?.stop("SIGKILL").catch(() => {})
    await hub?.stop("SIGKILL").catch(() => {})
    removeTempDir(dir)
  }
}

export const describeInstallCrash = (r: InstallCrashReport): string =>
  `install crash, seed ${r.seed}: ${r.kills.length} SIGKILLs of a client on LevelDB (${KILL_AIMS.map((a) => `${a} ${r.kills.filter((k) => k.aim === a && k.reached).length}/${r.kills.filter((k) => k.aim === a).length}`).join(", ")} aimed/reached); ` +
  `${r.streams} snapshot streams begun, ${r.installs} installed states written; ${r.persisted} persisted commands checked; head ${r.head}, ${(r.stateBytes / 2 ** 20).toFixed(1)} MiB of pads; ${(r.durationMs / 1000).toFixed(1)} s; ` +
  `${r.violations.length === 0 ? "no invariant violated" : `${r.violations.length} VIOLATIONS`}`

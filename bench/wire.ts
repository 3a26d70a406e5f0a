/**
 * The `wire` suite: Canon over real WebSockets next to the raw `ws` package on 127.0.0.1.
 * The Canon hub (bench/wire-hub.ts: LevelStorage with the hub's default durability, fsync
 * per group commit) and the raw server (bench/wire-raw-server.ts) each run in their own
 * process (plain node on an esbuild bundle); the clients run in this process and speak the
 * newest protocol (2). Every loop is bounded in count and time; everything is closed at the end.
 *
 * 1. Raw ws baseline: 50-byte binary messages/s one way over one connection (acked every
 *    100, at most 1,000 unacknowledged), and the RTT p50/p99 of a 50-byte echo (back to
 *    back; and paced at 1,000/s like figure 3).
 * 2. Canon: confirmed commands/s with 1 client (Counter `incr`: bursts of 1,000 submitted in
 *    one tick, all receipts awaited before the next burst); ratio to raw messages/s, goal
 *    >= 1.0x.
 * 3. submit -> confirmed latency p50/p99 at a paced 1,000 commands/s; ratios to a raw echo
 *    paced the same way: p50 goal <= 2x, p99 goal <= 3x.
 * 4. Fan-out: 50 clients sharing 1,000 commands/s on one document: hub CPU (goal <= 1
 *    core) and p99 submit -> delivered to every other client (goal <= 20 ms).
 * 5. Bytes on the wire per confirmed command, todo workload (add/rename/toggle), one writer
 *    and one reader, split by direction; one command at a time, and in a burst. One at a
 *    time, writer -> hub, against the Yjs updates of the same ops: goal <= 0.5x.
 *
 * The ratios pair runs measured back to back (raw run, then Canon run), so a change of load
 * on the shared machine moves both sides of a ratio together.
 *
 * `CANON_BENCH_HUB_ARGS="--cpu-prof --cpu-prof-dir=DIR"` passes node flags to the hub process
 * (profiles are written when it exits).
 */
import { figure, formatNumber, median, sample, type Figure, type Plan, type Suite, type SuiteContext, figureLog } from "./harness.js"
import type { Doc } from "../core/index.js"
import { Counter } from "./machines.js"
import { MESSAGE_BYTES, RawWs, rawEchoRtt, rawLevelWriteLatency, rawMessagesPerSecond } from "./wire-raw.js"
import { CanonWorld, Meter, confirmedPerSecond, pacedLatencies, sharedLoad, todoTraffic, type TodoBytes, type Traffic } from "./wire-canon.js"
import { WireTodo, todoWorkload, yjsTodo, type TodoCommand } from "./wire-todo.js"
import { percentile } from "./wire-util.js"
import { unsentFigures } from "./wire-unsent.js"

/** --quick only cuts runs and warm-up; each run does the same work in both modes. */
const sizes = (quick: boolean) => ({
  pairs: quick ? { warmup: 1, warmupMs: 500, runs: 5 } : { warmup: 2, warmupMs: 2_000, runs: 9 },
  latency: quick ? { warmup: 1, warmupMs: 0, runs: 3 } : { warmup: 1, warmupMs: 0, runs: 7 },
  fanOut: quick ? { warmup: 1, warmupMs: 0, runs: 2 } : { warmup: 1, warmupMs: 0, runs: 5 },
  bytes: { warmup: 1, warmupMs: 0, runs: 3 },
  unsent: quick ? { warmup: 1, warmupMs: 0, runs: 3 } : { warmup: 2, warmupMs: 500, runs: 7 },
  /** Raw one-way run: messages, ack interval, outstanding window. */
  rawMessages: 100_000,
  ackEvery: 100,
  rawWindow: 1_000,
  /** Raw echo samples per run. */
  rttSamples: 2_000,
  /** Canon throughput run: commands, per tick, unconfirmed at most. */
  canonCommands: 20_000,
  burst: 1_000,
  canonWindow: 1_000,
  /** Paced latency run: commands at this rate. */
  pacedCommands: 1_000,
  pacedRate: 1_000,
  /** Shared load: clients, total commands/s, commands per run. */
  clients: 50,
  sharedRate: 1_000,
  sharedCommands: quick ? 2_000 : 5_000,
  todoCommands: 200,
  /** Any single wait (a run, a connect) longer than this fails the suite. */
  timeoutMs: 20_000,
})

/** Like harness `sample`, for runs that measure more than one number. */
const sampleEach = async <T>(plan: Plan, run: () => Promise<T>): Promise<T[]> => {
  const out: T[] = []
  await sample(plan, async () => {
    out.push(await run())
    return 0
  })
  return out.slice(-plan.runs)
}

/** y-websocket's header on an update (message type, sync step, the update's length) and a masked client WebSocket header, for updates under 126 bytes. */
const Y_WEBSOCKET_HEADER = 3
const WS_CLIENT_HEADER = 6

const hubArgs = (process.env.CANON_BENCH_HUB_ARGS ?? "").split(" ").filter((x) => x !== "")

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)
  const raw = await RawWs.start(s.ackEvery)
  const world = await CanonWorld.start({ execArgv: hubArgs })
  // For reference: the same hub without fsync, to tell the disk's share from Canon's.
  const noSync = await CanonWorld.start({ sync: false })
  let docs = 0
  const freshDoc = (what: string) => `wire-${what}-${++docs}`
  try {
    // ---- 1 + 2: one-way throughput, raw and Canon back to back (a fresh document per run) ----
    const throughputClient = await world.client(Counter)
    const noSyncClient = await noSync.client(Counter)
    const pairs = await sampleEach(s.pairs, async () => {
      const rawRate = await rawMessagesPerSecond(raw, s.rawMessages, s.rawWindow, s.ackEvery, s.timeoutMs)
      const doc = await world.open(throughputClient, Counter, freshDoc("throughput"))
      const canonRate = await confirmedPerSecond(doc, s.canonCommands, s.burst, s.canonWindow, s.timeoutMs)
      const noSyncDoc = await noSync.open(noSyncClient, Counter, freshDoc("throughput-nosync"))
      const noSyncRate = await confirmedPerSecond(noSyncDoc, s.canonCommands, s.burst, s.canonWindow, s.timeoutMs)
      return { rawRate, canonRate, noSyncRate }
    })
    const rawRate = figure("raw-messages", "1a. raw ws: 50-byte messages one way", "messages/s", pairs.map((p) => p.rawRate),
      { note: `raw server in its own process; one ws connection, ${s.rawMessages.toLocaleString("en-US")} binary messages of ${MESSAGE_BYTES} bytes per run, server acks every ${s.ackEvery}, at most ${s.rawWindow} unacknowledged` })

    // ---- 1 + 3: RTT and paced latency, back to back ----
    const latDoc = await world.open(await world.client(Counter), Counter, freshDoc("latency"))
    const noSyncLatDoc = await noSync.open(await noSync.client(Counter), Counter, freshDoc("latency-nosync"))
    const lat = await sampleEach(s.latency, async () => {
      const rtt = await rawEchoRtt(raw, s.rttSamples, s.timeoutMs)
      const pacedRtt = await rawEchoRtt(raw, s.pacedCommands, s.timeoutMs, s.pacedRate)
      const paced = await pacedLatencies(latDoc, s.pacedCommands, s.pacedRate, s.timeoutMs)
      const fsync = await rawLevelWriteLatency(s.pacedCommands, s.pacedRate, true, s.timeoutMs)
      const noSyncPaced = await pacedLatencies(noSyncLatDoc, s.pacedCommands, s.pacedRate, s.timeoutMs)
      return { rtt, pacedRtt, fsync, noSyncP50: percentile(noSyncPaced.latencies, 0.5), noSyncP99: percentile(noSyncPaced.latencies, 0.99), p50: percentile(paced.latencies, 0.5), p99: percentile(paced.latencies, 0.99), rate: paced.rate }
    })
    add(rawRate)
    add(figure("raw-rtt-p50", "1b. raw ws: 50-byte echo RTT p50", "µs", lat.map((l) => l.rtt.p50),
      { note: `${s.rttSamples} echoes per run, one outstanding at a time` }))
    add(figure("raw-rtt-p99", "1c. raw ws: 50-byte echo RTT p99", "µs", lat.map((l) => l.rtt.p99),
      { note: `${s.rttSamples} echoes per run, one outstanding at a time` }))
    const pacedNote = `${s.pacedCommands} echoes per run, each started by a timer at ${s.pacedRate}/s as the Canon commands of 3a are (the loop idles in between)`
    add(figure("raw-rtt-paced-p50", `1d. raw ws: echo RTT p50 paced @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.pacedRtt.p50), { note: pacedNote }))
    add(figure("raw-rtt-paced-p99", `1e. raw ws: echo RTT p99 paced @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.pacedRtt.p99), { note: pacedNote }))
    const fsyncNote = `${s.pacedCommands} one-put LevelDB chained batches per run, write({ sync: true }), paced at ${s.pacedRate}/s, in this process: the floor under an acknowledged command with the hub's default durability (one fsync per group commit)`
    add(figure("raw-fsync-p50", "1f. raw LevelDB fsync'd write p50, paced", "µs", lat.map((l) => l.fsync.p50), { note: fsyncNote }))
    add(figure("raw-fsync-p99", "1g. raw LevelDB fsync'd write p99, paced", "µs", lat.map((l) => l.fsync.p99), { note: fsyncNote }))
    add(figure("canon-confirmed", "2a. Canon: confirmed commands, 1 client", "commands/s", pairs.map((p) => p.canonRate),
      { note: `Counter incr over ws (protocol 2), hub in its own process on LevelDB, fsync per group commit (the hub's default); ${s.canonCommands.toLocaleString("en-US")} commands per run submitted ${s.burst} in one tick, each burst's receipts awaited before the next (at most ${s.canonWindow} unconfirmed), until every receipt resolved; a fresh document per run; hub rate limits lifted` }))
    add(figure("canon-vs-raw-rate", "2b. Canon confirmed / raw messages", "x", pairs.map((p) => p.canonRate / p.rawRate),
      { goal: { op: ">=", value: 1 }, note: "per-run ratio of runs measured back to back" }))
    add(figure("canon-nosync-vs-raw-rate", "2c. fsync off, for reference: Canon confirmed / raw messages", "x", pairs.map((p) => p.noSyncRate / p.rawRate),
      { note: `the same run on a second hub process with LevelDB fsync off (Hub sync: false); Canon ${formatNumber(median(pairs.map((p) => p.noSyncRate)))} commands/s` }))
    const rates = lat.map((l) => l.rate)
    add(figure("canon-latency-p50", `3a. Canon: submit -> confirmed p50 @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.p50),
      { note: `${s.pacedCommands} Counter incr per run paced by a timer (achieved ${formatNumber(Math.min(...rates))}..${formatNumber(Math.max(...rates))} commands/s), time from submit to the receipt resolving; fsync per group commit` }))
    add(figure("canon-latency-p99", `3b. Canon: submit -> confirmed p99 @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.p99),
      { note: `as 3a` }))
    add(figure("canon-vs-paced-rtt", "3c. Canon p50 / paced raw RTT p50", "x", lat.map((l) => l.p50 / l.pacedRtt.p50),
      { goal: { op: "<=", value: 2 }, note: "per-run ratio; both sides paced at the same rate by a timer, so both pay the wake-up of an idle loop" }))
    add(figure("canon-vs-paced-rtt-p99", "3d. Canon p99 / paced raw RTT p99", "x", lat.map((l) => l.p99 / l.pacedRtt.p99),
      { goal: { op: "<=", value: 3 }, note: "per-run ratio, as 3c" }))
    add(figure("canon-vs-rtt-plus-fsync", "3e. Canon p50 / (paced raw RTT p50 + raw fsync p50)", "x", lat.map((l) => l.p50 / (l.pacedRtt.p50 + l.fsync.p50)),
      { note: "per-run ratio, for reference: what Canon adds over the two raw costs every acknowledged command pays (a round trip and an fsync)" }))
    add(figure("canon-nosync-vs-paced-rtt", "3g. fsync off, for reference: Canon p50 / paced raw RTT p50", "x", lat.map((l) => l.noSyncP50 / l.pacedRtt.p50),
      { note: `the same paced run on the fsync-off hub: p50 ${formatNumber(median(lat.map((l) => l.noSyncP50)))} µs, p99 ${formatNumber(median(lat.map((l) => l.noSyncP99)))} µs` }))
    add(figure("canon-nosync-vs-paced-rtt-p99", "3h. fsync off, for reference: Canon p99 / paced raw RTT p99", "x", lat.map((l) => l.noSyncP99 / l.pacedRtt.p99),
      { note: "as 3g" }))
    add(figure("canon-vs-raw-latency", "3f. Canon p50 / raw RTT p50 (back to back)", "x", lat.map((l) => l.p50 / l.rtt.p50),
      { note: "per-run ratio, for reference: the raw echo here never lets its loop idle" }))

    // ---- 4: fan-out, clients sharing a rate ----
    const sharedId = freshDoc("shared")
    const shared: Doc<typeof Counter>[] = []
    for (let i = 0; i < s.clients; i++) shared.push(await world.open(await world.client(Counter), Counter, sharedId))
    const loads = await sampleEach(s.fanOut, async () =>
      sharedLoad(world, shared, await world.head(sharedId, Counter), s.sharedCommands, s.sharedRate, s.timeoutMs))
    const loadNote = `${s.clients} clients (one socket each, in this process) share ${s.sharedRate.toLocaleString("en-US")} Counter incr/s on one document, round robin on one timer, ${s.sharedCommands.toLocaleString("en-US")} per run (achieved ${formatNumber(Math.min(...loads.map((l) => l.rate)))}..${formatNumber(Math.max(...loads.map((l) => l.rate)))}/s)`
    add(figure("shared-hub-cpu", `4a. fan-out: hub CPU, ${s.clients} clients sharing ${s.sharedRate.toLocaleString("en-US")} commands/s`, "cores", loads.map((l) => l.hubCores),
      { goal: { op: "<=", value: 1 }, note: `${loadNote}; hub process CPU (user + system) over the run's wall time` }))
    add(figure("shared-delivered-p50", "4b. fan-out: submit -> delivered to every other client, p50", "ms", loads.map((l) => percentile(l.delivered, 0.5) / 1000),
      { note: `${loadNote}; per command, the latest time any of the other ${s.clients - 1} clients' confirmedSeq reached its seq; the submitter's own receipt: p50 ${formatNumber(median(loads.map((l) => percentile(l.confirmed, 0.5) / 1000)))} ms, p99 ${formatNumber(median(loads.map((l) => percentile(l.confirmed, 0.99) / 1000)))} ms` }))
    add(figure("shared-delivered-p99", "4c. fan-out: submit -> delivered to every other client, p99", "ms", loads.map((l) => percentile(l.delivered, 0.99) / 1000),
      { goal: { op: "<=", value: 20 }, note: "as 4b" }))
    add(figure("shared-client-cpu", "4d. fan-out: CPU of the process running the 50 clients", "cores", loads.map((l) => l.clientCores),
      { note: "for reference: the clients share one thread here; near 1 core they, not the hub, set the delivery time" }))

    // ---- 5: bytes per command, todo workload ----
    const writerMeter = new Meter()
    const readerMeter = new Meter()
    const todoWriter = await world.client(WireTodo, writerMeter.onSocket)
    const todoReader = await world.client(WireTodo, readerMeter.onSocket)
    const bytes: Record<"interactive" | "burst", TodoBytes[]> = { interactive: [], burst: [] }
    const yjsBytes: number[] = []
    for (const mode of ["interactive", "burst"] as const) {
      const docId = freshDoc(`todo-${mode}`)
      const w = await world.open(todoWriter, WireTodo, docId)
      const r = await world.open(todoReader, WireTodo, docId)
      const stream = todoWorkload(42)
      // The same commands on a Yjs document: the bytes of each run's updates.
      const yjs = yjsTodo()
      let yjsRun = 0
      const next = (): TodoCommand => {
        const c = stream()
        yjsRun += yjs.apply(c)
        return c
      }
      bytes[mode] = await sampleEach(s.bytes, async () => {
        yjsRun = 0
        const t = await todoTraffic(world, docId, w, writerMeter, r, readerMeter, next, s.todoCommands, mode, s.timeoutMs)
        if (mode === "interactive") yjsBytes.push(yjsRun / t.commands)
        return t
      })
    }
    const perCommand = (runs: TodoBytes[], pick: (b: TodoBytes) => Traffic, dir: "up" | "down") =>
      runs.map((b) => pick(b)[`${dir}Wire`] / b.commands)
    const detail = (runs: TodoBytes[], pick: (b: TodoBytes) => Traffic, dir: "up" | "down") => {
      const payload = median(runs.map((b) => pick(b)[`${dir}Payload`] / b.commands))
      const frames = median(runs.map((b) => pick(b)[`${dir}Frames`] / b.commands))
      return `Canon frame bytes ${formatNumber(payload)}/command, ${formatNumber(frames)} frames/command; wire = frames + WebSocket headers (client frames masked), no TCP/IP`
    }
    const one = `${s.todoCommands} todo commands per run (40% add, 30% rename, 30% toggle; 10-char ids, short titles)`
    for (const [mode, how, [a, b, c]] of [["interactive", "one at a time", "abc"], ["burst", "in one tick", "def"]] as const) {
      const runs = bytes[mode]
      add(figure(`bytes-${mode}-writer-up`, `5${a}. todo ${how}: writer -> hub`, "bytes/command", perCommand(runs, (t) => t.writer, "up"),
        { note: `${one}, ${how}; ${detail(runs, (t) => t.writer, "up")}` }))
      add(figure(`bytes-${mode}-writer-down`, `5${b}. todo ${how}: hub -> writer`, "bytes/command", perCommand(runs, (t) => t.writer, "down"),
        { note: `${one}, ${how}; ${detail(runs, (t) => t.writer, "down")}` }))
      add(figure(`bytes-${mode}-reader-down`, `5${c}. todo ${how}: hub -> reader`, "bytes/command", perCommand(runs, (t) => t.reader, "down"),
        { note: `${one}, ${how}; the reader sends ${formatNumber(median(runs.map((t) => t.reader.upWire / t.commands)))} bytes/command; ${detail(runs, (t) => t.reader, "down")}` }))
    }
    // Runs of the interactive mode, warm-up excluded, as sampleEach keeps them.
    yjsBytes.splice(0, yjsBytes.length - bytes.interactive.length)
    add(figure("bytes-yjs-update", "5g. Yjs: update bytes per command, same todo ops", "bytes/command", yjsBytes,
      { note: "items a Y.Map of Y.Map {title, done}, one transaction per command, V1 update bytes (what y-websocket sends, before its 2-3 byte header and the WebSocket header)" }))
    add(figure("bytes-vs-yjs", "5h. todo one at a time: Canon writer -> hub / Yjs update bytes", "x", bytes.interactive.map((b, i) => b.writer.upPayload / b.commands / yjsBytes[i]!),
      { goal: { op: "<=", value: 0.5 }, note: "per run, the same commands, both without transport: Canon's frame bytes over the Yjs update bytes" }))
    add(figure("bytes-vs-yjs-wire", "5i. same, both on the wire", "x", bytes.interactive.map((b, i) => b.writer.upWire / b.commands / (yjsBytes[i]! + Y_WEBSOCKET_HEADER + WS_CLIENT_HEADER)),
      { note: `for reference: Canon's frames with their WebSocket headers over each Yjs update with y-websocket's ${Y_WEBSOCKET_HEADER}-byte sync header (messageSync, messageYjsUpdate, length) and a ${WS_CLIENT_HEADER}-byte masked WebSocket header` }))

    // ---- 6: the hub-wide bound on unsent bytes, full: the cost of deciding whom to cut ----
    for (const f of await unsentFigures(s.unsent)) add(f)
  } finally {
    await world.close()
    await noSync.close()
    await raw.close()
  }
  return figures
}

export const suite: Suite = { name: "wire", title: "Canon over WebSocket (hub in its own process, LevelDB, fsync on) next to raw ws: throughput, latency, fan-out, bytes per command", run }

/**
 * The `wire` suite: Canon over real WebSockets next to the raw `ws` package, in one process
 * on 127.0.0.1 (server and clients share the event loop; loopback only; every loop bounded
 * in count and time; everything closed at the end).
 *
 * 1. Raw ws baseline: 50-byte binary messages/s one way over one connection (acked every
 *    100, at most 1,000 unacknowledged), and the RTT p50/p99 of a 50-byte echo (back to
 *    back; and paced at 1,000/s like figure 3).
 * 2. Canon: confirmed commands/s with 1 client (Counter `incr`: bursts of 1,000 submitted in
 *    one tick, all receipts awaited before the next burst); ratio to raw messages/s, goal
 *    >= 1.0x.
 * 3. submit -> confirmed latency p50/p99 at a paced 1,000 commands/s; ratio of p50 to the raw
 *    (back-to-back) RTT p50, goal <= 3x; and, without a goal, to the paced raw RTT p50.
 * 4. Fan-out: one writer, 50 subscribed readers; entries delivered per second.
 * 5. Bytes on the wire per confirmed command, todo workload (add/rename/toggle), one writer
 *    and one reader, split by direction; one command at a time, and in a burst.
 *
 * The ratios pair runs measured back to back (raw run, then Canon run), so a change of load
 * on the shared machine moves both sides of a ratio together.
 */
import { figure, formatNumber, median, sample, type Figure, type Plan, type Suite, type SuiteContext, figureLog } from "./harness.js"
import type { Doc } from "../core/index.js"
import { Counter } from "./machines.js"
import { MESSAGE_BYTES, RawWs, rawEchoRtt, rawMessagesPerSecond } from "./wire-raw.js"
import { CanonWorld, Meter, confirmedPerSecond, fanOutPerSecond, pacedLatencies, todoTraffic, type TodoBytes, type Traffic } from "./wire-canon.js"
import { WireTodo, todoWorkload } from "./wire-todo.js"
import { percentile } from "./wire-util.js"

/** --quick only cuts runs and warm-up; each run does the same work in both modes. */
const sizes = (quick: boolean) => ({
  pairs: quick ? { warmup: 1, warmupMs: 500, runs: 5 } : { warmup: 2, warmupMs: 2_000, runs: 9 },
  latency: quick ? { warmup: 1, warmupMs: 0, runs: 3 } : { warmup: 1, warmupMs: 0, runs: 7 },
  fanOut: quick ? { warmup: 1, warmupMs: 500, runs: 5 } : { warmup: 2, warmupMs: 1_000, runs: 9 },
  bytes: { warmup: 1, warmupMs: 0, runs: 3 },
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
  readers: 50,
  fanOutCommands: 2_000,
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

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)
  const raw = await RawWs.start(s.ackEvery)
  // One hub per section: MemoryStorage is a sorted array, so one document's log growing
  // in front of another's would charge each insert for moving the other's keys.
  const worlds: CanonWorld[] = []
  const newWorld = async () => {
    for (const old of worlds.splice(0)) await old.close()
    const w = await CanonWorld.start([Counter, WireTodo])
    worlds.push(w)
    return w
  }
  try {
    // ---- 1 + 2: one-way throughput, raw and Canon back to back ----
    // A fresh hub per Canon run: MemoryStorage inserts each entry in front of the document's
    // checkpoint keys, so a log grown by earlier runs would make later runs slower (see the
    // storage note in the report); every run starts from an empty log instead.
    const pairs = await sampleEach(s.pairs, async () => {
      const rawRate = await rawMessagesPerSecond(raw, s.rawMessages, s.rawWindow, s.ackEvery, s.timeoutMs)
      const fresh = await newWorld()
      const doc = await fresh.open(await fresh.client(Counter), Counter, "wire-throughput")
      const canonRate = await confirmedPerSecond(doc, s.canonCommands, s.burst, s.canonWindow, s.timeoutMs)
      return { rawRate, canonRate }
    })
    const rawRate = figure("raw-messages", "1a. raw ws: 50-byte messages one way", "messages/s", pairs.map((p) => p.rawRate),
      { note: `one ws connection, ${s.rawMessages.toLocaleString("en-US")} binary messages of ${MESSAGE_BYTES} bytes per run, server acks every ${s.ackEvery}, at most ${s.rawWindow} unacknowledged` })

    // ---- 1 + 3: RTT and paced latency, back to back ----
    let world = await newWorld()
    const latWriter = await world.client(Counter)
    const latDoc = await world.open(latWriter, Counter, "wire-latency")
    const lat = await sampleEach(s.latency, async () => {
      const rtt = await rawEchoRtt(raw, s.rttSamples, s.timeoutMs)
      const pacedRtt = await rawEchoRtt(raw, s.pacedCommands, s.timeoutMs, s.pacedRate)
      const paced = await pacedLatencies(latDoc, s.pacedCommands, s.pacedRate, s.timeoutMs)
      return { rtt, pacedRtt, p50: percentile(paced.latencies, 0.5), p99: percentile(paced.latencies, 0.99), rate: paced.rate }
    })
    add(rawRate)
    add(figure("raw-rtt-p50", "1b. raw ws: 50-byte echo RTT p50", "µs", lat.map((l) => l.rtt.p50),
      { note: `${s.rttSamples} echoes per run, one outstanding at a time` }))
    add(figure("raw-rtt-p99", "1c. raw ws: 50-byte echo RTT p99", "µs", lat.map((l) => l.rtt.p99),
      { note: `${s.rttSamples} echoes per run, one outstanding at a time` }))
    add(figure("raw-rtt-paced-p50", `1d. raw ws: echo RTT p50 paced @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.pacedRtt.p50),
      { note: `${s.pacedCommands} echoes per run, each started by a timer at ${s.pacedRate}/s as the Canon commands of 3a are (the loop idles in between); p99 ${formatNumber(median(lat.map((l) => l.pacedRtt.p99)))} µs` }))
    add(figure("canon-confirmed", "2a. Canon: confirmed commands, 1 client", "commands/s", pairs.map((p) => p.canonRate),
      { note: `Counter incr over ws, Hub on MemoryStorage, ${s.canonCommands.toLocaleString("en-US")} commands per run submitted ${s.burst} in one tick, each burst's receipts awaited before the next (at most ${s.canonWindow} unconfirmed), until every receipt resolved; a fresh hub per run; hub rate limits lifted` }))
    add(figure("canon-vs-raw-rate", "2b. Canon confirmed / raw messages", "x", pairs.map((p) => p.canonRate / p.rawRate),
      { goal: { op: ">=", value: 1 }, note: "per-run ratio of runs measured back to back" }))
    const rates = lat.map((l) => l.rate)
    add(figure("canon-latency-p50", `3a. Canon: submit -> confirmed p50 @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.p50),
      { note: `${s.pacedCommands} Counter incr per run paced by a timer (achieved ${formatNumber(Math.min(...rates))}..${formatNumber(Math.max(...rates))} commands/s), time from submit to the receipt resolving` }))
    add(figure("canon-latency-p99", `3b. Canon: submit -> confirmed p99 @ ${s.pacedRate.toLocaleString("en-US")}/s`, "µs", lat.map((l) => l.p99),
      { note: `as 3a` }))
    add(figure("canon-vs-raw-latency", "3c. Canon p50 / raw RTT p50", "x", lat.map((l) => l.p50 / l.rtt.p50),
      { goal: { op: "<=", value: 3 }, note: "per-run ratio of runs measured back to back" }))
    add(figure("canon-vs-paced-rtt", "3d. Canon p50 / paced raw RTT p50", "x", lat.map((l) => l.p50 / l.pacedRtt.p50),
      { note: "per-run ratio; both sides paced at the same rate by a timer, so both pay the wake-up of an idle loop" }))

    // ---- 4: fan-out ----
    world = await newWorld()
    const fanWriterClient = await world.client(Counter)
    const fanWriter = await world.open(fanWriterClient, Counter, "wire-fanout")
    const readers: Doc<typeof Counter>[] = []
    for (let i = 0; i < s.readers; i++) readers.push(await world.open(await world.client(Counter), Counter, "wire-fanout"))
    const fan = await sample(s.fanOut, async () =>
      fanOutPerSecond(fanWriter, readers, await world.head("wire-fanout", Counter), s.fanOutCommands, s.timeoutMs))
    add(figure("fanout", `4a. fan-out: entries delivered to ${s.readers} readers`, "entries/s", fan,
      { note: `one writer submits ${s.fanOutCommands.toLocaleString("en-US")} Counter incr in one tick; ${s.readers} other clients (one socket each) follow; timed until every reader's confirmedSeq reaches the head` }))
    add(figure("fanout-vs-raw", "4b. fan-out entries / raw messages", "x", fan.map((f) => f / rawRate.median),
      { note: "each run over the median of 1a" }))

    // ---- 5: bytes per command, todo workload ----
    world = await newWorld()
    const writerMeter = new Meter()
    const readerMeter = new Meter()
    const todoWriter = await world.client(WireTodo, writerMeter.onSocket)
    const todoReader = await world.client(WireTodo, readerMeter.onSocket)
    const bytes: Record<"interactive" | "burst", TodoBytes[]> = { interactive: [], burst: [] }
    for (const mode of ["interactive", "burst"] as const) {
      const docId = `wire-todo-${mode}`
      const w = await world.open(todoWriter, WireTodo, docId)
      const r = await world.open(todoReader, WireTodo, docId)
      const next = todoWorkload(42)
      bytes[mode] = await sampleEach(s.bytes, () => todoTraffic(world, docId, w, writerMeter, r, readerMeter, next, s.todoCommands, mode, s.timeoutMs))
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
  } finally {
    for (const w of worlds) await w.close()
    await raw.close()
  }
  return figures
}

export const suite: Suite = { name: "wire", title: "Canon over WebSocket next to raw ws: throughput, latency, fan-out, bytes per command", run }

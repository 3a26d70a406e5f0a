/**
 * The `snapshots` suite's network figures, each hub in its own process on 127.0.0.1 (so the
 * clients' memory never counts) with its RSS sampled from a worker thread:
 *
 * 4. Snapshot stream of a big state (100 MB) over WebSocket loopback: one new replica opens
 *    the document (the log is compacted behind a stored snapshot, so it gets the snapshot
 *    stream: credit flow control, 64 KiB wire chunks, hash verified before install, then the
 *    empty tail); from CanonClient.open to the replica synced at the head.
 * 5. The hub's RSS growth while 10 new replicas stream that snapshot at once, over its RSS
 *    with the document loaded (after GC).
 * 6. Join storm: N clients join a 5 MB document at once; time until every one holds the
 *    verified state, and the hub's peak RSS; Canon beside @y/websocket-server serving
 *    y-websocket WebsocketProviders a Y.Map of the same strings.
 * 7. The longest event-loop stall of the hub (monitorEventLoopDelay) while it snapshots the
 *    100 MB state with writes arriving, and while it hashes a quiet checkpoint of it.
 *
 * The stores are built by the parent through the real authority (snapshots-common.ts).
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { WebSocket } from "ws"
import * as Y from "yjs"
import { WebsocketProvider } from "y-websocket"
import { CanonClient, type Doc } from "../core/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { check, collectGarbage, figure, now, type Figure, type SuiteContext } from "./harness.js"
import { HubChild, Notes, buildStore, mib, noteId, noteText, notesFor, type ChildReady, type NotesState } from "./snapshots-common.js"
import { until } from "./wire-util.js"

const MB = 1e6

export interface StreamSizes {
  /** Canonical bytes of the big state (figures 4, 5, 7). */
  readonly bigState: number
  readonly streamRuns: number
  readonly joiners: number
  /** Figure 6. */
  readonly stormState: number
  readonly stormClients: number
  readonly stormRuns: number
  readonly stormWarmup: number
  readonly bytesPerNote: number
}

const putNote = (bytes: number) => (i: number) => ({ name: "put", args: { id: noteId(i), text: noteText(i, bytes) } })

type NotesDoc = Doc<typeof Notes>

/** N Canon replicas open the document at once; resolves when every one is synced at the head. */
interface Phases {
  /** The last snapshot byte arrived (ms from the start). */
  received: number
  /** The state was decoded and installed. */
  installed: number
}

const joinCanon = async (url: string, n: number, head: number, timeoutMs: number): Promise<{ ms: number; clients: CanonClient[]; docs: NotesDoc[]; phases: Phases[] }> => {
  const clients: CanonClient[] = []
  const phases: Phases[] = []
  const t0 = now()
  const docs = await Promise.all(Array.from({ length: n }, async () => {
    const client = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Notes] })
    clients.push(client)
    const doc = await client.open(Notes, "bench-notes")
    // "snapshot" fires per chunk, then once more when the verified state is installed.
    const p: Phases = { received: NaN, installed: NaN }
    phases.push(p)
    doc.on("snapshot", (e) => {
      if (e.received !== e.size) return
      if (Number.isNaN(p.received)) p.received = now() - t0
      else p.installed = now() - t0
    })
    return doc
  }))
  try {
    await until(() => docs.every((d) => d.synced && d.confirmedSeq >= head), timeoutMs, `${n} Canon replicas to sync`, 1)
  } catch (e) {
    await closeCanon(clients)
    throw e
  }
  return { ms: now() - t0, clients, docs, phases }
}

const closeCanon = async (clients: CanonClient[]): Promise<void> => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
}

/** Every replica holds the hub's state: its hash (computed from its state) and its note count. */
const verifyCanon = (docs: ReadonlyArray<NotesDoc>, ready: ChildReady, notes: number, hashAll: boolean): void => {
  for (const [i, d] of docs.entries()) {
    check(Object.keys((d.state as NotesState).notes).length === notes, `Canon replica ${i} holds ${notes} notes`)
    if (hashAll || i === 0) check(d.confirmedHash() === ready.hash, `Canon replica ${i} has the hub's state hash`)
  }
}

/** N y-websocket providers join the room at once; resolves when every one is synced and holds every note. */
const joinYjs = async (url: string, room: string, n: number, notes: number, timeoutMs: number): Promise<{ ms: number; docs: Y.Doc[]; providers: WebsocketProvider[] }> => {
  const t0 = now()
  const docs: Y.Doc[] = []
  const providers: WebsocketProvider[] = []
  for (let i = 0; i < n; i++) {
    const doc = new Y.Doc()
    docs.push(doc)
    // disableBc: in one process, BroadcastChannel would let the providers sync each other.
    providers.push(new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true }))
  }
  const maps = docs.map((d) => d.getMap<string>("notes"))
  try {
    await until(() => providers.every((p, i) => p.synced && maps[i]!.size === notes), timeoutMs, `${n} y-websocket providers to sync`, 1)
  } catch (e) {
    closeYjs(docs, providers)
    throw e
  }
  return { ms: now() - t0, docs, providers }
}

const closeYjs = (docs: Y.Doc[], providers: WebsocketProvider[]): void => {
  for (const p of providers) p.destroy()
  for (const d of docs) d.destroy()
}

const verifyYjs = (docs: ReadonlyArray<Y.Doc>, notes: number, bytesPerNote: number): void => {
  for (const [i, d] of docs.entries()) {
    const map = d.getMap<string>("notes")
    check(map.size === notes, `Yjs doc ${i} holds ${notes} notes`)
    const step = i === 0 ? 1 : Math.max(1, Math.floor(notes / 50))
    for (let k = 0; k < notes; k += step) check(map.get(noteId(k)) === noteText(k, bytesPerNote), `Yjs doc ${i}: note ${k} is the same string`)
  }
}

export const streamWorkload = async (ctx: SuiteContext, s: StreamSizes, add: (f: Figure) => void): Promise<void> => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "canon-bench-snapshots-"))
  try {
    await bigStateFigures(ctx, s, add, path.join(dir, "big"))
    await stormFigures(ctx, s, add, path.join(dir, "storm"))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const bigStateFigures = async (ctx: SuiteContext, s: StreamSizes, add: (f: Figure) => void, dir: string): Promise<void> => {
  const notes = notesFor(s.bigState, s.bytesPerNote)
  const built = await buildStore(dir, Notes, putNote(s.bytesPerNote), notes, { batch: 256, finalSnapshot: true })
  const size = `${Math.round(built.stateBytes / MB)} MB${s.bigState < 100e6 ? " (--quick: not 100 MB)" : ""}`
  ctx.log(`built a ${mib(built.stateBytes)} state (${notes.toLocaleString("en-US")} notes of ${s.bytesPerNote} B) through the authority in ${(built.ms / 1000).toFixed(1)} s; snapshot at ${built.snapshotSeq}, log compacted through ${built.horizon}`)
  check(built.horizon > 0, "the log is compacted behind the snapshot")
  const { child, ready } = await HubChild.start("./snapshots-hub.ts", { dir })
  try {
    ctx.log(`hub child: document loaded in ${ready.loadMs!.toFixed(0)} ms, RSS ${mib(ready.rss)}`)
    // 4. One replica streams the snapshot.
    const rates: number[] = []
    const times: number[] = []
    const hubCpu: number[] = []
    const clientCpu: number[] = []
    const phase = { transfer: [] as number[], decode: [] as number[], after: [] as number[] }
    const warmup = s.streamRuns > 1 ? 1 : 0
    for (let r = 0; r < warmup + s.streamRuns; r++) {
      collectGarbage()
      const h0 = await child.cpu()
      const c0 = process.cpuUsage()
      const { ms, clients, docs, phases } = await joinCanon(ready.url, 1, ready.head!, 600_000)
      const c = process.cpuUsage(c0)
      const h = (await child.cpu()) - h0
      verifyCanon(docs, ready, notes, true)
      await closeCanon(clients)
      if (r < warmup) continue
      times.push(ms)
      rates.push(built.stateBytes / MB / (ms / 1000))
      hubCpu.push(h)
      clientCpu.push((c.user + c.system) / 1000)
      phase.transfer.push(phases[0]!.received)
      phase.decode.push(phases[0]!.installed - phases[0]!.received)
      phase.after.push(ms - phases[0]!.installed)
    }
    add(figure("stream-rate", `4. snapshot stream of a ${size} state over WebSocket loopback, verified and installed`, "MB/s", rates,
      { goal: { op: ">=", value: 100 }, note: `${built.stateBytes.toLocaleString("en-US")} bytes (${notes.toLocaleString("en-US")} notes of ${s.bytesPerNote} B); one new replica (no storage) from CanonClient.open to synced at the head: handshake, snapshot-begin, 64 KiB chunks under a 1 MiB credit window (acks every 128 KiB), hash checked, state decoded and installed; hub (LevelStorage, fsync on) in its own process. Where the time goes (node --cpu-prof of hub and replica): the replica, not the hub, bounds it (4b). On the replica: copying the chunks into one buffer of the snapshot's size, whose every page is touched for the first time (on this VM first touch costs about 13 ns a byte: 100 MB zero-filled and written in 1.3-1.8 s, rewritten in 20 ms), then GC and the canonical decode of the ~100k strings; the hash itself is ~0.1 s per 100 MB; the acknowledgements' socket writes were ~0.35 s at one per 64 KiB (now one per 128 KiB); encoding and hashing the whole state again for the checkpoint at the snapshot's seq was over a second (now checked against the verified hash). On the hub (~0.35 s a stream): LevelDB reads of the stored chunks, frame encoding, socket writes. What is left: decoding while the chunks arrive (the state only, never its bytes in one buffer) would leave the decoded strings as the only fresh memory` }))
    add(figure("stream-time", `4. that stream, time to a verified replica`, "ms", times))
    add(figure("stream-phase-transfer", `4a. of which: open to the last byte received (hashed as it arrives)`, "ms", phase.transfer))
    add(figure("stream-phase-decode", `4a. of which: verify + decode + install`, "ms", phase.decode, { note: "from the last chunk to the replica's \"snapshot\" event of the installed state" }))
    add(figure("stream-phase-after", `4a. of which: installed to synced at the head`, "ms", phase.after, { note: "catch-up of the (empty) tail, and the replica checking the checkpoint the hub sends at the head (a hash of its whole state)" }))
    add(figure("stream-cpu-hub", `4b. CPU of that stream: hub process`, "ms", hubCpu, { note: "process CPU (user + system, all threads) of the hub child over the stream: what it costs whatever else runs on the machine" }))
    add(figure("stream-cpu-client", `4b. CPU of that stream: client process`, "ms", clientCpu, { note: "process CPU of the process holding the replica (nothing else runs in it meanwhile)" }))
    add(figure("stream-cpu-rate", `4c. the stream's rate if only CPU bounded it (size / the larger of 4b)`, "MB/s", hubCpu.map((h, i) => built.stateBytes / MB / (Math.max(h, clientCpu[i]!) / 1000)),
      { note: "hub and client run in parallel on the 2 cores; on a loaded machine wall time also counts other processes' turns" }))

    // 5. Ten replicas at once: the hub's RSS growth over the document itself.
    collectGarbage()
    const base = await child.mark()
    const joined = await joinCanon(ready.url, s.joiners, ready.head!, 900_000)
    const peak = await child.peak()
    verifyCanon(joined.docs, ready, notes, false)
    await closeCanon(joined.clients)
    add(figure("joiners-rss", `5. hub RSS growth while ${s.joiners} replicas stream that snapshot at once`, "MB", [(peak.peak - base.rss) / MB],
      { goal: { op: "<=", value: 64 }, note: `peak RSS of the hub process (sampled every 2 ms by a worker thread, ${peak.samples} samples) over its RSS with the document loaded, after GC (${mib(base.rss)}); the ${s.joiners} streams took ${(joined.ms / 1000).toFixed(1)} s in all (${((s.joiners * built.stateBytes) / MB / (joined.ms / 1000)).toFixed(0)} MB/s together)` }))
    collectGarbage()

    // 7. Stalls of the hub's event loop while it snapshots / checkpoints the big state.
    const hashSync = (await child.call("hashSync")) as { ms: number }
    const snap = (await child.call("stall", { kind: "snapshot", everyMs: 5, resolution: 5 })) as StallResult
    const cp = (await child.call("stall", { kind: "checkpoint", everyMs: 5, resolution: 5 })) as StallResult
    const stallNote = "perf_hooks.monitorEventLoopDelay (resolution 5 ms; the figure is its max minus the 5 ms period) in the hub process"
    add(figure("hub-rss", `4d. hub RSS with the ${size} document loaded, after GC`, "MB", [ready.rss / MB],
      { note: `the hub child (plain node, bundled by esbuild), the document opened from its stored snapshot in ${ready.loadMs!.toFixed(0)} ms` }))
    add(figure("stall", `7. longest event-loop stall during a snapshot or checkpoint of a ${size} state`, "ms", [Math.max(snap.maxMs, cp.maxMs)],
      { goal: { op: "<=", value: 50 }, note: `${stallNote}: the larger of 7a and 7b. Profiled (node --cpu-prof, the longest tasks): the snapshot's longest task is JournaledState copying the 100k-key notes object at its first write after the freeze (core/journal.ts touch, every key copied at once; ~170 ms here), then Object.keys of that object when the encoder reaches it (~40 ms); sorting its keys held the loop ~250 ms and is now sliced (StateEncoder's SlicedSort); before JournaledState.freeze the whole encoding was one task (1.8 s, bench/results/snapshots.pre-freeze.json). What is left: record the old value per written key instead of copying the container (core/journal.ts, not this suite's file)` }))
    add(figure("stall-snapshot", `7a. ... during a snapshot (snapshotNow + compaction), a write every 5 ms`, "ms", [snap.maxMs],
      { note: `${stallNote}; the snapshot job took ${snap.jobMs.toFixed(0)} ms, the window ${snap.windowMs.toFixed(0)} ms; ${snap.commands} writes (1 KB puts) in it, the slowest acknowledged after ${snap.maxLatencyMs.toFixed(1)} ms; p99 of the loop delay ${snap.p99Ms.toFixed(1)} ms` }))
    add(figure("stall-checkpoint", `7b. ... during a quiet checkpoint (hash of the state in the background)`, "ms", [cp.maxMs],
      { note: `${stallNote}; a few writes, then quiet until the checkpoint of the head (hashed by a hash-only snapshot job ${cp.jobMs.toFixed(0)} ms after the 1 s quiet period)` }))
    add(figure("stall-old", `7c. old path: one synchronous hash of the ${size} state (hashState), for reference`, "ms", [hashSync.ms],
      { note: "what a checkpoint cost inline before big states were hashed by the snapshot job" }))
  } finally {
    await child.stop()
  }
}

interface StallResult {
  readonly maxMs: number
  readonly p99Ms: number
  readonly windowMs: number
  readonly jobMs: number
  readonly commands: number
  readonly maxLatencyMs: number
}

const stormFigures = async (ctx: SuiteContext, s: StreamSizes, add: (f: Figure) => void, dir: string): Promise<void> => {
  const notes = notesFor(s.stormState, s.bytesPerNote)
  const built = await buildStore(dir, Notes, putNote(s.bytesPerNote), notes, { batch: 256, finalSnapshot: true })
  const size = `${+(built.stateBytes / MB).toFixed(1)} MB${s.stormState < 5e6 || s.stormClients < 50 ? " (--quick: not 50 x 5 MB)" : ""}`
  ctx.log(`join storm: ${s.stormClients} clients, a ${mib(built.stateBytes)} state (${notes.toLocaleString("en-US")} notes), built in ${(built.ms / 1000).toFixed(1)} s`)
  const room = "storm"
  const canon = { ms: [] as number[], peak: [] as number[], growth: [] as number[], cpu: [] as number[] }
  const yjs = { ms: [] as number[], peak: [] as number[], growth: [] as number[], cpu: [] as number[] }
  let yjsUpdate = 0
  for (let r = 0; r < s.stormWarmup + s.stormRuns; r++) {
    const measured = r >= s.stormWarmup
    // Alternate which system goes first.
    const order = r % 2 === 0 ? ["canon", "yjs"] : ["yjs", "canon"]
    for (const sys of order) {
      collectGarbage()
      if (sys === "canon") {
        const { child, ready } = await HubChild.start("./snapshots-hub.ts", { dir })
        try {
          const base = await child.mark()
          const h0 = await child.cpu()
          const j = await joinCanon(ready.url, s.stormClients, ready.head!, 300_000)
          const peak = await child.peak()
          const cpu = (await child.cpu()) - h0
          verifyCanon(j.docs, ready, notes, true)
          await closeCanon(j.clients)
          if (measured) {
            canon.ms.push(j.ms)
            canon.peak.push(peak.peak / MB)
            canon.growth.push((peak.peak - base.rss) / MB)
            canon.cpu.push(cpu)
          }
        } finally {
          await child.stop()
        }
      } else {
        const { child, ready } = await HubChild.start("./snapshots-yws.ts", { room, notes, bytesPerNote: s.bytesPerNote })
        yjsUpdate = (ready as ChildReady & { update: number }).update
        try {
          const base = await child.mark()
          const h0 = await child.cpu()
          const j = await joinYjs(ready.url, room, s.stormClients, notes, 300_000)
          const peak = await child.peak()
          const cpu = (await child.cpu()) - h0
          verifyYjs(j.docs, notes, s.bytesPerNote)
          closeYjs(j.docs, j.providers)
          if (measured) {
            yjs.ms.push(j.ms)
            yjs.peak.push(peak.peak / MB)
            yjs.growth.push((peak.peak - base.rss) / MB)
            yjs.cpu.push(cpu)
          }
        } finally {
          await child.stop()
        }
      }
    }
  }
  const ratio = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!)
  const who = `${s.stormClients} clients join a ${size} document at once`
  const yNote = `@y/websocket-server 0.1.1 (utils' setupWSConnection behind an http server, as its bin; no persistence) serving y-websocket WebsocketProviders (ws as WebSocketPolyfill, disableBc) a Y.Map of the same ${notes.toLocaleString("en-US")} strings (a ${yjsUpdate.toLocaleString("en-US")}-byte update)`
  const cNote = `Canon hub (LevelStorage, fsync on, default policy: the log compacted behind a stored snapshot) and ${s.stormClients} CanonClients (no storage), each getting the snapshot stream; verified: hash checked before install`
  add(figure("storm-time-canon", `6a. join storm: ${who}, time until all verified: Canon`, "ms", canon.ms, { note: cNote }))
  add(figure("storm-time-yjs", `6a. join storm: time until all synced: y-websocket`, "ms", yjs.ms, { note: yNote }))
  add(figure("storm-time-ratio", `6a. join storm time: Canon / y-websocket`, "x", ratio(canon.ms, yjs.ms), { goal: { op: "<=", value: 0.25 }, note: "per run, the two systems back to back (the order alternates), each hub in a fresh process" }))
  add(figure("storm-peak-canon", `6b. join storm: hub peak RSS: Canon`, "MB", canon.peak, { note: "peak RSS of the hub process during the storm, sampled every 2 ms by a worker thread (Node itself, the document, and what the storm costs)" }))
  add(figure("storm-peak-yjs", `6b. join storm: hub peak RSS: y-websocket`, "MB", yjs.peak))
  add(figure("storm-peak-ratio", `6b. join storm hub peak RSS: Canon / y-websocket`, "x", ratio(canon.peak, yjs.peak), { goal: { op: "<=", value: 0.25 } }))
  add(figure("storm-growth-canon", `6c. join storm: hub RSS growth over the loaded document: Canon`, "MB", canon.growth, { note: "the peak over the hub's RSS with the document loaded, after GC, just before the storm" }))
  add(figure("storm-growth-yjs", `6c. join storm: hub RSS growth over the loaded document: y-websocket`, "MB", yjs.growth))
  add(figure("storm-growth-ratio", `6c. join storm hub RSS growth: Canon / y-websocket`, "x", ratio(canon.growth, yjs.growth)))
  add(figure("storm-cpu-canon", `6d. join storm: hub process CPU: Canon`, "ms", canon.cpu, { note: "user + system, all threads, from just before the clients start to all verified" }))
  add(figure("storm-cpu-yjs", `6d. join storm: hub process CPU: y-websocket`, "ms", yjs.cpu))
  add(figure("storm-cpu-ratio", `6d. join storm hub CPU: Canon / y-websocket`, "x", ratio(canon.cpu, yjs.cpu)))
}

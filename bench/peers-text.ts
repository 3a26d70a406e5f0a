/**
 * Workload 2, text trace: the automerge-paper editing trace (../shared/traces, see its
 * README) replayed by a single writer in Canon, Yjs and Automerge.
 *
 * - Canon: TextMachine (bench/peers-machines.ts) `edit {pos, del, ins}`, one command per
 *   edit, through a CanonClient over MemoryNetwork (real codec frames, no latency) to a Hub on
 *   MemoryStorage, driven by a VirtualRuntime. The writer types one edit every TYPING_MS of
 *   virtual time; each goes out as its own submit and is confirmed before the next (a human
 *   typist on a fast link). Replay time (wall clock) runs until the last edit is confirmed.
 *   Also: the same edits submitted on an offline client (local apply only).
 * - Yjs: one Y.Doc (default gc, as the published B4 figure), one transaction per edit, each
 *   emitting a V2 update (the B4 convention) that the writer collects.
 * - Automerge: one `change` per edit with `splice`, then `saveIncremental` (the B4 convention).
 * - Bytes per edit on the wire: each system over WebSocket loopback (TCP payload counted on
 *   the server's sockets, frames included). Canon: the writer's CanonClient to a WsServer-
 *   fronted Hub, awaiting each edit's confirmation before the next (the full run sends the
 *   first 50k edits: one round trip per edit over real sockets); Yjs / Automerge: the writer
 *   sends each update to a relay, which checks them at the end.
 * - Memory (full run only): heap / RSS / external held by the final document loaded in a
 *   fresh process (the B4 memUsed idea), median of three processes.
 * - Final document size: Canon's replica store (snapshot + entry tail + meta, as a replica
 *   that followed the document keeps it) and, for reference, the hub's log; Yjs
 *   encodeStateAsUpdateV2; Automerge save.
 * - Cold load of the final document: Canon CanonClient.open + open(doc) over that replica
 *   store (MemoryStorage, so no disk in the figure); Yjs applyUpdateV2 into a new Y.Doc;
 *   Automerge load; each then reads the text.
 * If the trace file is missing the workload prints a note and adds no figure.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { gunzipSync } from "node:zlib"
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { CanonClient, Hub, encodeCanonical, type ClientTransport, type KVStore, replicaStorage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { check, collectGarbage, figure, now, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { TextMachine, editChunks, textOf, type TextState } from "./peers-machines.js"
import {
  CountingServer, SYSTEMS, UNLIMITED, backToBack, medianMemoryInChildren, openSocket, pick, startRelay, stopwatch, triple, turn, waitFor,
  type Elapsed, type MemoryDelta, type Sys,
} from "./peers-common.js"

const DOC = "paper"
const root = fileURLToPath(new URL("../", import.meta.url))
/**
 * The trace, resolved from the repository root (CI keeps shared/ beside the repository);
 * CANON_BENCH_TRACE overrides it.
 */
export const TRACE_PATH = process.env.CANON_BENCH_TRACE ?? path.resolve(root, "..", "shared", "traces", "automerge-paper.json.gz")

export type Edit = readonly [pos: number, del: number, ins: string]

export interface Trace {
  readonly edits: ReadonlyArray<Edit>
  /** The text after these edits. */
  readonly text: string
  /** Edits in the whole trace. */
  readonly total: number
}

/** The first `count` edits of the trace (all of them when undefined), or undefined if the file is missing. */
export const loadTrace = (count?: number): Trace | undefined => {
  if (!existsSync(TRACE_PATH)) return undefined
  const raw = JSON.parse(gunzipSync(readFileSync(TRACE_PATH)).toString("utf8")) as {
    startContent: string
    endContent: string
    txns: Array<{ patches: Array<[number, number, string]> }>
  }
  const all: Edit[] = []
  for (const txn of raw.txns) for (const p of txn.patches) all.push(p)
  const edits = count === undefined ? all : all.slice(0, count)
  // Positions are code points; the editors below count UTF-16 units. Same thing on BMP text.
  for (const [, , ins] of edits) check(ins.length === [...ins].length, "the trace is BMP-only (code points = UTF-16 units)")
  const chunks = raw.startContent.length > 0 ? [raw.startContent] : []
  for (const [pos, del, ins] of edits) check(editChunks(chunks, pos, del, ins), "the trace's edits fit its text")
  const text = chunks.join("")
  if (count === undefined) check(text === raw.endContent, "replaying the whole trace gives endContent")
  return { edits, text, total: all.length }
}

// ---- Canon ----

const offline: ClientTransport = { connect: () => { throw new Error("offline") } }

interface CanonReplay extends Elapsed {
  readonly hub: Hub
  readonly hubStorage: MemoryStorage
  readonly runtime: VirtualRuntime
  readonly network: MemoryNetwork
  readonly client: CanonClient
  /** Canonical bytes of the final state (what a snapshot holds). */
  readonly snapshotBytes: number
}

/**
 * Virtual ms between two edits of the writer (a fast typist, 10 edits/s). It only matters for
 * Canon's timers: under the 1 s quiet checkpoint, so the hub hashes the state every 256
 * entries (the default) and not after every edit, as it would if each edit ended a pause.
 */
const TYPING_MS = 100

/** End to end: each edit submitted, sent as its own message and confirmed before the next. */
const canonReplay = async (trace: Trace): Promise<CanonReplay> => {
  const runtime = new VirtualRuntime(7)
  const network = new MemoryNetwork(runtime, { encode: true })
  const hubStorage = new MemoryStorage()
  const hub = new Hub({ machines: [TextMachine], storage: hubStorage, runtime, limits: UNLIMITED })
  network.listen(hub)
  const client = await CanonClient.open({ transport: network.transport("writer"), runtime, clientId: "writer" })
  const doc = await client.open(TextMachine, DOC)
  await runtime.run()
  const watch = stopwatch()
  for (const [pos, del, ins] of trace.edits) {
    doc.submit("edit", { pos, del, ins })
    await runtime.run({ forMs: TYPING_MS })
  }
  const { ms, cpu } = watch()
  check(doc.pendingCount === 0 && doc.confirmedSeq === trace.edits.length, `every edit confirmed (${doc.confirmedSeq} of ${trace.edits.length}, ${doc.pendingCount} pending)`)
  check(textOf(doc.state as TextState) === trace.text, "Canon's text equals the trace's")
  return { ms, cpu, hub, hubStorage, runtime, network, client, snapshotBytes: encodeCanonical(doc.snapshot()).length }
}

/** Local only: the edits submitted on an offline client (applied, journaled, queued). */
const canonLocal = async (trace: Trace): Promise<Elapsed> => {
  const client = await CanonClient.open({ transport: offline, runtime: new VirtualRuntime(7), autoConnect: false, clientId: "writer" })
  const doc = await client.open(TextMachine, DOC)
  const watch = stopwatch()
  for (const [pos, del, ins] of trace.edits) doc.submit("edit", { pos, del, ins })
  await turn()
  const elapsed = watch()
  check(textOf(doc.state as TextState) === trace.text && doc.pendingCount === trace.edits.length, "offline Canon's text equals the trace's")
  await client.close()
  return elapsed
}

/** Bytes of every key and value in a store. */
export const storedBytes = async (kv: KVStore): Promise<number> => {
  let n = 0
  for (const [k, v] of await kv.range({})) n += k.length + v.length
  return n
}

/**
 * A replica that follows the document from scratch and keeps it in its own MemoryStorage
 * (snapshot every 1000 entries, the default): the store a cold load reads.
 */
const followIntoStore = async (replay: CanonReplay, expectedSeq: number): Promise<MemoryStorage> => {
  const storage = new MemoryStorage()
  const reader = await CanonClient.open({ transport: replay.network.transport("reader"), runtime: replay.runtime, storage, clientId: "reader" })
  const doc = await reader.open(TextMachine, DOC)
  await replay.runtime.run({ until: () => doc.confirmedSeq === expectedSeq })
  await replay.runtime.run({ forMs: 10 })
  check(doc.confirmedSeq === expectedSeq, "the reader caught up")
  await doc.whenStored()
  await reader.close()
  return storage
}

/** Cold load from a replica store: open the client and the document, read the text. */
const canonLoad = async (storage: KVStore, expected: string): Promise<number> => {
  const t0 = now()
  const client = await CanonClient.open({ transport: offline, runtime: systemRuntime, storage: replicaStorage(storage), autoConnect: false })
  const doc = await client.open(TextMachine, DOC)
  const text = textOf(doc.state as TextState)
  const ms = now() - t0
  check(text === expected, "Canon's cold-loaded text equals the trace's")
  await client.close()
  return ms
}

// ---- Yjs ----

const yjsReplay = (trace: Trace): Elapsed & { doc: Y.Doc; updateBytes: number } => {
  const doc = new Y.Doc()
  doc.clientID = 1
  const text = doc.getText("text")
  let updateBytes = 0
  const updates: Uint8Array[] = []
  doc.on("updateV2", (u: Uint8Array) => {
    updates.push(u)
    updateBytes += u.length
  })
  const watch = stopwatch()
  for (const [pos, del, ins] of trace.edits) {
    if (del > 0) text.delete(pos, del)
    if (ins.length > 0) text.insert(pos, ins)
  }
  const elapsed = watch()
  check(text.toString() === trace.text && updates.length === trace.edits.length, "Yjs's text equals the trace's, one update per edit")
  return { ...elapsed, doc, updateBytes }
}

const yjsLoad = (bytes: Uint8Array, expected: string): number => {
  const t0 = now()
  const doc = new Y.Doc()
  Y.applyUpdateV2(doc, bytes)
  const text = doc.getText("text").toString()
  const ms = now() - t0
  check(text === expected, "Yjs's loaded text equals the trace's")
  doc.destroy()
  return ms
}

// ---- Automerge ----

type TextDoc = { text: string }

const automergeReplay = (trace: Trace): Elapsed & { doc: A.Doc<TextDoc>; updateBytes: number } => {
  let doc = A.from<TextDoc>({ text: "" }, { actor: "0a" })
  A.saveIncremental(doc)
  let updateBytes = 0
  const watch = stopwatch()
  for (const [pos, del, ins] of trace.edits) {
    doc = A.change(doc, (d) => A.splice(d, ["text"], pos, del, ins))
    updateBytes += A.saveIncremental(doc).length
  }
  const elapsed = watch()
  check(doc.text === trace.text, "Automerge's text equals the trace's")
  return { ...elapsed, doc, updateBytes }
}

const automergeLoad = (bytes: Uint8Array, expected: string): number => {
  const t0 = now()
  const doc = A.load<TextDoc>(bytes)
  const text = doc.text
  const ms = now() - t0
  check(text === expected, "Automerge's loaded text equals the trace's")
  A.free(doc)
  return ms
}

// ---- wire ----

/** Canon over WebSocket loopback: the writer awaits each edit's confirmation. */
const canonWire = async (trace: Trace): Promise<{ up: number; down: number }> => {
  const counting = await CountingServer.start()
  const hub = new Hub({ machines: [TextMachine], storage: new MemoryStorage(), runtime: systemRuntime, limits: UNLIMITED })
  const ws = await WsServer.start(hub, { server: counting.server })
  const client = await CanonClient.open({ transport: wsClientTransport(counting.url), runtime: systemRuntime, clientId: "writer" })
  try {
    const doc = await client.open(TextMachine, DOC)
    await waitFor(() => doc.synced, "the writer to sync")
    counting.mark()
    for (const [pos, del, ins] of trace.edits) await doc.submit("edit", { pos, del, ins })
    await counting.quiet()
    check(doc.confirmedSeq === trace.edits.length && textOf(doc.state as TextState) === trace.text, "Canon over ws confirmed every edit")
    return counting.since()
  } finally {
    await client.close()
    await ws.close()
    await hub.close()
    await counting.close()
  }
}

/**
 * A peer over WebSocket loopback: the writer sends each update to the relay, which keeps
 * them (and applies them all at the end, to check them: Automerge 3's applyChanges /
 * loadIncremental cost O(document) per call, so applying 50k updates one by one would take
 * minutes and measure nothing about the wire).
 */
const peerWire = async (updates: ReadonlyArray<Uint8Array>): Promise<{ up: number; down: number; received: Uint8Array[] }> => {
  const counting = await CountingServer.start()
  const received: Uint8Array[] = []
  const wss = startRelay(counting.server, (u) => received.push(new Uint8Array(u)))
  const writer = await openSocket(counting.url)
  try {
    counting.mark()
    for (let i = 0; i < updates.length; i++) {
      writer.send(updates[i]!)
      // Let the socket write as a live editor would (one update per edit, not one huge burst).
      if (i % 256 === 255) await turn()
    }
    await waitFor(() => received.length === updates.length, "the relay to receive every update")
    await counting.quiet()
    return { ...counting.since(), received }
  } finally {
    writer.close()
    await new Promise<void>((r) => wss.close(() => r()))
    await counting.close()
  }
}

const yjsUpdates = (trace: Trace): Uint8Array[] => {
  const doc = new Y.Doc()
  doc.clientID = 1
  const text = doc.getText("text")
  const out: Uint8Array[] = []
  doc.on("updateV2", (u: Uint8Array) => out.push(u))
  for (const [pos, del, ins] of trace.edits) {
    if (del > 0) text.delete(pos, del)
    if (ins.length > 0) text.insert(pos, ins)
  }
  return out
}

/** The writer's updates, and the document they start from (a relay must start there too). */
const automergeUpdates = (trace: Trace): { seed: Uint8Array; updates: Uint8Array[] } => {
  const seed = A.save(A.from<TextDoc>({ text: "" }, { actor: "0a" }))
  let doc = A.load<TextDoc>(seed, { actor: "0a" })
  A.saveIncremental(doc)
  const updates: Uint8Array[] = []
  for (const [pos, del, ins] of trace.edits) {
    doc = A.change(doc, (d) => A.splice(d, ["text"], pos, del, ins))
    updates.push(A.saveIncremental(doc))
  }
  A.free(doc)
  return { seed, updates }
}

// ---- memory of the loaded document (in a child: see peers-child.ts) ----

/** A KV dump a child process can rebuild a MemoryStorage from. */
const dumpStore = async (kv: KVStore): Promise<Uint8Array> => {
  const rows = await kv.range({})
  const parts: Buffer[] = []
  for (const [k, v] of rows) {
    const h = Buffer.alloc(8)
    h.writeUInt32BE(k.length, 0)
    h.writeUInt32BE(v.length, 4)
    parts.push(h, Buffer.from(k), Buffer.from(v))
  }
  return Buffer.concat(parts)
}

export const restoreStore = async (bytes: Uint8Array): Promise<MemoryStorage> => {
  const storage = new MemoryStorage()
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const ops = []
  for (let at = 0; at < b.length;) {
    const kl = b.readUInt32BE(at)
    const vl = b.readUInt32BE(at + 4)
    at += 8
    ops.push({ type: "put" as const, key: new Uint8Array(b.subarray(at, at + kl)), value: new Uint8Array(b.subarray(at + kl, at + kl + vl)) })
    at += kl + vl
  }
  await storage.batch(ops)
  return storage
}

/**
 * Child side (peers-child.ts): reads the final document's bytes from `file` (and for Canon
 * rebuilds the replica store) before the baseline; the returned function loads the document
 * and returns what holds it.
 */
export const prepareTextLoad = async (sys: Sys, file: string): Promise<() => Promise<unknown>> => {
  const bytes = new Uint8Array(readFileSync(file))
  if (sys === "yjs") {
    return async () => {
      const doc = new Y.Doc()
      Y.applyUpdateV2(doc, bytes)
      return [doc, doc.getText("text").toString()]
    }
  }
  if (sys === "automerge") {
    return async () => {
      const doc = A.load<TextDoc>(bytes)
      return [doc, doc.text]
    }
  }
  const storage = await restoreStore(bytes)
  return async () => {
    const client = await CanonClient.open({ transport: offline, runtime: systemRuntime, storage, autoConnect: false })
    const doc = await client.open(TextMachine, DOC)
    return [client, doc, textOf(doc.state as TextState)]
  }
}

// ---- the workload ----

export interface TextSizes {
  /** Edits replayed (undefined: the whole trace). */
  readonly edits: number | undefined
  /** Warm-up runs use this many edits (a prefix), whatever `edits` is. */
  readonly warmupEdits: number
  readonly runs: number
  readonly loadPlan: Plan
  /** Edits sent over WebSocket for the wire figure (a prefix when smaller than `edits`). */
  readonly wireEdits: number | undefined
  readonly memory: boolean
  /** Child processes per system for the memory figures (the median is reported). */
  readonly memoryRuns: number
}

export const textWorkload = async (ctx: SuiteContext, s: TextSizes, add: (f: Figure) => void): Promise<void> => {
  const trace = loadTrace(s.edits)
  if (trace === undefined) {
    ctx.log(`NOTE: text workload skipped: the trace ${TRACE_PATH} is missing (CI keeps shared/ beside the repository).`)
    return
  }
  const n = trace.edits.length
  const scope = n === trace.total ? `all ${n.toLocaleString("en-US")} edits` : `first ${n.toLocaleString("en-US")} of ${trace.total.toLocaleString("en-US")} edits (--quick prefix)`
  ctx.log(`text: ${scope}, final text ${trace.text.length.toLocaleString("en-US")} chars`)
  const warm = loadTrace(Math.min(s.warmupEdits, n))!

  // Warm-up on a prefix (a full-trace warm-up would double the workload's time).
  for (const sys of SYSTEMS) {
    if (sys === "canon") {
      const r = await canonReplay(warm)
      await r.client.close()
      await r.hub.close()
      await canonLocal(warm)
    } else if (sys === "yjs") yjsReplay(warm).doc.destroy()
    else A.free(automergeReplay(warm).doc)
  }

  // Replays, back to back; the last run's documents are kept for sizes and loads.
  let lastCanon: CanonReplay | undefined
  let lastYjs: Y.Doc | undefined
  let lastAutomerge: A.Doc<TextDoc> | undefined
  const perEdit: Partial<Record<Sys, number>> = {}
  const all = await backToBack<"ms" | "cpu" | "local" | "localCpu">({ warmup: 0, warmupMs: 0, runs: s.runs }, SYSTEMS, async (sys) => {
    if (sys === "canon") {
      if (lastCanon !== undefined) {
        await lastCanon.client.close()
        await lastCanon.hub.close()
      }
      const r = await canonReplay(trace)
      lastCanon = r
      collectGarbage()
      const local = await canonLocal(trace)
      ctx.log(`  canon: ${r.ms.toFixed(0)} ms end to end, ${local.ms.toFixed(0)} ms local`)
      return { ms: r.ms, cpu: r.cpu, local: local.ms, localCpu: local.cpu }
    }
    if (sys === "yjs") {
      lastYjs?.destroy()
      const r = yjsReplay(trace)
      lastYjs = r.doc
      perEdit.yjs = r.updateBytes / n
      ctx.log(`  yjs: ${r.ms.toFixed(0)} ms`)
      return { ms: r.ms, cpu: r.cpu, local: r.ms, localCpu: r.cpu }
    }
    if (lastAutomerge !== undefined) A.free(lastAutomerge)
    const r = automergeReplay(trace)
    lastAutomerge = r.doc
    perEdit.automerge = r.updateBytes / n
    ctx.log(`  automerge: ${r.ms.toFixed(0)} ms`)
    return { ms: r.ms, cpu: r.cpu, local: r.ms, localCpu: r.cpu }
  })
  const what = n === trace.total ? "whole trace" : `${n.toLocaleString("en-US")}-edit prefix`
  triple(add, "text", "replay", `2. text: replay ${what} (Canon: until every edit is confirmed by the hub)`, "ms", pick(all, "ms"),
    { note: "Canon: one submit per edit over MemoryNetwork (codec frames) to a Hub on MemoryStorage, each confirmed before the next; Yjs/Automerge: local, one update per edit (B4)" })
  triple(add, "text", "replay-cpu", `2. text: CPU time of that replay`, "ms", pick(all, "cpu"),
    { note: "process CPU (user + system, all threads) over the same run" })
  triple(add, "text", "local", `2. text: replay ${what}, writer's local apply only (Canon offline)`, "ms", pick(all, "local"),
    { note: "Canon: the edits submitted on an offline CanonClient (apply + journal + outbox), no hub; Yjs/Automerge: the same figures as above" })
  triple(add, "text", "local-cpu", `2. text: CPU time of the local apply`, "ms", pick(all, "localCpu"))

  // Sizes, then cold loads.
  const canon = lastCanon!
  const hubLog = await storedBytes(canon.hubStorage)
  const replicaStore = await followIntoStore(canon, n)
  const replicaBytes = await storedBytes(replicaStore)
  await canon.client.close()
  await canon.hub.close()
  const yjsBytes = Y.encodeStateAsUpdateV2(lastYjs!)
  const amBytes = A.save(lastAutomerge!)
  triple(add, "text", "doc-size", "2. text: final document size (Canon: replica store; Yjs: V2 state update; Automerge: save)", "bytes",
    { canon: [replicaBytes], yjs: [yjsBytes.length], automerge: [amBytes.length] },
    { note: `Canon's hub log (what the authority keeps: every entry) is ${hubLog.toLocaleString("en-US")} bytes` })
  add(figure("text.hub-log.canon", "2. text: Canon hub log in storage (every entry, for reference)", "bytes", [hubLog]))
  add(figure("text.snapshot.canon", "2. text: Canon state snapshot (canonical bytes of the chunks, for reference)", "bytes", [canon.snapshotBytes]))

  const loads = await backToBack<"ms">(s.loadPlan, SYSTEMS, async (sys) => {
    if (sys === "canon") return { ms: await canonLoad(replicaStore, trace.text) }
    if (sys === "yjs") return { ms: yjsLoad(yjsBytes, trace.text) }
    return { ms: automergeLoad(amBytes, trace.text) }
  })
  triple(add, "text", "load", "2. text: load the final document cold and read it", "ms", pick(loads, "ms"),
    { note: "Canon: CanonClient.open + open(doc) on the replica store (MemoryStorage: snapshot + tail); Yjs: applyUpdateV2 into a new Doc; Automerge: load" })

  // Wire bytes per edit over WebSocket loopback.
  const wireTrace = s.wireEdits === undefined || s.wireEdits >= n ? trace : loadTrace(s.wireEdits)!
  const wn = wireTrace.edits.length
  const t0 = now()
  const cw = await canonWire(wireTrace)
  const t1 = now()
  const yw = await peerWire(yjsUpdates(wireTrace))
  const t2 = now()
  const am = automergeUpdates(wireTrace)
  const aw = await peerWire(am.updates)
  ctx.log(`  wire runs: Canon ${((t1 - t0) / 1000).toFixed(1)} s, Yjs ${((t2 - t1) / 1000).toFixed(1)} s, Automerge ${((now() - t2) / 1000).toFixed(1)} s`)
  const yDoc = new Y.Doc()
  Y.applyUpdateV2(yDoc, Y.mergeUpdatesV2(yw.received))
  const amServer = A.loadIncremental(A.load<TextDoc>(am.seed, { actor: "0b" }), Buffer.concat(aw.received))
  check(yDoc.getText("text").toString() === wireTrace.text && amServer.text === wireTrace.text, "what the relays received gives the trace's text")
  yDoc.destroy()
  A.free(amServer)
  const wireScope = wn === trace.total ? "" : ` (first ${wn.toLocaleString("en-US")} edits)`
  triple(add, "text", "wire", `2. text: bytes per edit on the wire, both directions${wireScope}`, "B/edit",
    { canon: [(cw.up + cw.down) / wn], yjs: [(yw.up + yw.down) / wn], automerge: [(aw.up + aw.down) / wn] },
    { note: "WebSocket loopback, TCP payload counted at the server (frames included). Canon: submit up, results + entries + checkpoints down, ack submits up; Yjs/Automerge: the update up to a relay" })
  triple(add, "text", "wire-up", `2. text: bytes per edit, writer to server only${wireScope}`, "B/edit",
    { canon: [cw.up / wn], yjs: [yw.up / wn], automerge: [aw.up / wn] })
  add(figure("text.update-size.yjs", "2. text: mean update payload per edit (B4 avgUpdateSize): Yjs", "B/edit", [perEdit.yjs!]))
  add(figure("text.update-size.automerge", "2. text: mean update payload per edit (B4 avgUpdateSize): Automerge", "B/edit", [perEdit.automerge!]))

  // Memory of the loaded final document, each in a fresh process.
  if (s.memory) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "canon-bench-text-"))
    try {
      const files: Record<Sys, string> = { canon: path.join(dir, "canon.kv"), yjs: path.join(dir, "yjs.bin"), automerge: path.join(dir, "automerge.bin") }
      writeFileSync(files.canon, await dumpStore(replicaStore))
      writeFileSync(files.yjs, yjsBytes)
      writeFileSync(files.automerge, amBytes)
      const mem: Partial<Record<Sys, MemoryDelta>> = {}
      for (const sys of SYSTEMS) mem[sys] = await medianMemoryInChildren(s.memoryRuns, { workload: "text-load", sys, file: files[sys] })
      triple(add, "text", "heap", "2. text: heap held by the loaded final document (after GC)", "bytes",
        { canon: [mem.canon!.heap], yjs: [mem.yjs!.heap], automerge: [mem.automerge!.heap] }, { note: "median of fresh processes per system; delta over the process with modules loaded and the document's bytes read" })
      triple(add, "text", "rss", "2. text: RSS held by the loaded final document (after GC)", "bytes",
        { canon: [mem.canon!.rss], yjs: [mem.yjs!.rss], automerge: [mem.automerge!.rss] }, { note: "RSS includes Automerge's WebAssembly memory; differences of a few MB are noise (pages the allocator keeps or returns)" })
      triple(add, "text", "external", "2. text: external + WebAssembly memory held (after GC)", "bytes",
        { canon: [mem.canon!.external], yjs: [mem.yjs!.external], automerge: [mem.automerge!.external] })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  lastYjs?.destroy()
  A.free(lastAutomerge!)
}

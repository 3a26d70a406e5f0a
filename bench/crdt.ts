/**
 * `crdt`: Canon's CRDT fields and whole CRDT documents next to the plain libraries, on the
 * automerge-paper trace (../shared/traces; without it the suite prints a note and measures
 * nothing). Issue 11's goals, each a per-run ratio (Canon over the library):
 * 1. a Yjs text field, every edit confirmed by the hub, vs plain Yjs applying the trace: time <= 1.2x
 * 2. bytes per edit writer -> hub (WebSocket, frames included) vs the Yjs update bytes: <= 1.1x
 * 3. bytes stored at the hub after a snapshot at the head and compaction vs Yjs V2 state: <= 1.0x
 * 4. an Automerge text field vs plain Automerge: time <= 1.2x
 * 5. y-websocket clients syncing through the Canon hub vs through @y/websocket-server: time
 *    and bytes <= 1.0x (live typing relayed to a reader, and a newcomer's initial sync).
 * 6. the board workload with card descriptions typed by several replicas at once: time until
 *    all replicas agree, Canon vs Yjs <= 1.0x (bench/crdt-board.ts; needs no trace, so it runs
 *    without one; alone: `node --expose-gc --import tsx bench/crdt-board-run.ts [--quick]`).
 * 7. one Automerge document chunk of 262,144 empty changes (a few hundred bytes) checked and
 *    applied by the hub: the longest stretch its event loop is held <= 2 s (bench/crdt-hub-chunk.ts).
 * The Yjs field replays the whole trace (259,778 edits; a prefix in --quick); the others
 * replay prefixes (labels say how many edits): an Automerge field edit costs the hub an
 * applyChanges that grows with the document (~3.6 ms per edit at 10,000 edits), and the
 * wire figure takes a loopback round trip per edit.
 * Details in bench/crdt-fields.ts, bench/crdt-yws.ts and bench/crdt-board.ts.
 */
import { collectGarbage, figure, type Figure, type Suite, type SuiteContext } from "./harness.js"
import { TRACE_PATH, loadTrace, type Trace } from "./peers-text.js"
import { canonAutomergeField, canonYjsField, canonYjsWire, plainAutomerge, plainYjs } from "./crdt-fields.js"
import { canonYws, stockYws, ywsRun, type YwsRun } from "./crdt-yws.js"
import { DESC_FULL, DESC_QUICK, descBoardWorkload } from "./crdt-board.js"
import { hubChunkRows } from "./crdt-hub-chunk.js"

interface Sizes {
  readonly yjsEdits: number
  readonly amEdits: number
  readonly wireEdits: number
  readonly ywsEdits: number
  readonly ywsRuns: number
  readonly warmEdits: number
}

const QUICK: Sizes = { yjsEdits: 2_000, amEdits: 1_000, wireEdits: 500, ywsEdits: 2_000, ywsRuns: 2, warmEdits: 300 }
const FULL: Sizes = { yjsEdits: Infinity, amEdits: 10_000, wireEdits: 5_000, ywsEdits: 20_000, ywsRuns: 3, warmEdits: 2_000 }

const n = (x: number) => x.toLocaleString("en-US")

const run = async (ctx: SuiteContext): Promise<Figure[]> => [
  ...(await traceRows(ctx)),
  ...(await descBoardWorkload(ctx, ctx.quick ? DESC_QUICK : DESC_FULL)),
  ...(await hubChunkRows(ctx)),
]

/** Rows 1-5, on the automerge-paper trace. */
const traceRows = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = ctx.quick ? QUICK : FULL
  const full = loadTrace()
  if (full === undefined) {
    ctx.log(`no trace at ${TRACE_PATH} (set CANON_BENCH_TRACE or put shared/ beside the repository): rows 1-5 measured nothing`)
    return []
  }
  const prefix = (count: number): Trace => count >= full.edits.length ? full : loadTrace(count)!
  const out: Figure[] = []
  const add = (f: Figure) => out.push(f)

  // Warm both paths up on a short prefix so neither pays the JIT in its figure.
  const warm = prefix(s.warmEdits)
  plainYjs(warm)
  await canonYjsField(warm)
  plainAutomerge(warm)
  await canonAutomergeField(prefix(Math.min(s.warmEdits, 200)))

  // ---- 1, 3: Yjs field ----
  const yt = prefix(s.yjsEdits)
  collectGarbage()
  const py = plainYjs(yt)
  collectGarbage()
  const cy = await canonYjsField(yt)
  ctx.log(`Yjs, ${n(yt.edits.length)} edits: plain ${py.ms.toFixed(0)} ms, Canon field ${cy.ms.toFixed(0)} ms; hub stores ${n(cy.stored)} B (snapshot ${n(cy.snapshot)} B), Yjs V2 state ${n(py.v2StateBytes)} B`)
  add(figure("yjs.time.plain", `1. plain Yjs applies ${n(yt.edits.length)} edits`, "ms", [py.ms], { note: "one Y.Doc, one transaction per edit, V1 updates collected" }))
  add(figure("yjs.time.canon", `1. Canon Yjs field, ${n(yt.edits.length)} edits each confirmed by the hub`, "ms", [cy.ms],
    { note: "CanonClient -> MemoryNetwork (codec frames, no latency) -> Hub on MemoryStorage, VirtualRuntime; one $crdt.body command per edit, confirmed before the next" }))
  add(figure("yjs.time.ratio", "1. Canon Yjs field / plain Yjs, time", "x", [cy.ms / py.ms], { goal: { op: "<=", value: 1.2 } }))
  add(figure("yjs.stored.canon", `3. hub storage after a snapshot at the head, ${n(yt.edits.length)} edits`, "bytes", [cy.stored],
    { note: `snapshotNow, then the default policy compacts the log behind it keeping min(64 KiB, snapshot size) of entries; every key and value byte of the hub's MemoryStorage; the snapshot alone is ${n(cy.snapshot)} B` }))
  add(figure("yjs.stored.yjs", "3. Yjs encodeStateAsUpdateV2", "bytes", [py.v2StateBytes]))
  add(figure("yjs.stored.ratio", "3. Canon hub storage / Yjs V2 state", "x", [cy.stored / py.v2StateBytes], { goal: { op: "<=", value: 1.0 } }))

  // ---- 2: wire ----
  const wt = prefix(s.wireEdits)
  const pw = plainYjs(wt)
  const cw = await canonYjsWire(wt)
  const we = wt.edits.length
  ctx.log(`wire, ${n(we)} edits: Canon up ${n(cw.up)} B, down ${n(cw.down)} B; Yjs V1 updates ${n(pw.updateBytes)} B`)
  add(figure("wire.up.canon", `2. Canon writer -> hub per edit (ws, first ${n(we)} edits)`, "B/edit", [cw.up / we],
    { note: `WebSocket loopback, TCP payload counted at the server, frames included; each edit confirmed before the next; hub -> writer was ${(cw.down / we).toFixed(1)} B/edit` }))
  add(figure("wire.up.yjs", "2. Yjs V1 update bytes per edit", "B/edit", [pw.updateBytes / we]))
  add(figure("wire.up.ratio", "2. Canon writer -> hub / Yjs update bytes", "x", [cw.up / pw.updateBytes], { goal: { op: "<=", value: 1.1 } }))

  // ---- 4: Automerge field ----
  const at = prefix(s.amEdits)
  collectGarbage()
  const pa = plainAutomerge(at)
  collectGarbage()
  const ca = await canonAutomergeField(at)
  ctx.log(`Automerge, ${n(at.edits.length)} edits: plain ${pa.ms.toFixed(0)} ms, Canon field ${ca.ms.toFixed(0)} ms`)
  add(figure("am.time.plain", `4. plain Automerge applies ${n(at.edits.length)} edits`, "ms", [pa.ms], { note: "change + splice per edit, getLastLocalChange (the bytes a peer ships)" }))
  add(figure("am.time.canon", `4. Canon Automerge field, ${n(at.edits.length)} edits each confirmed by the hub`, "ms", [ca.ms]))
  add(figure("am.time.ratio", "4. Canon Automerge field / plain Automerge, time", "x", [ca.ms / pa.ms], { goal: { op: "<=", value: 1.2 } }))

  // ---- 5: y-websocket through the Canon hub vs @y/websocket-server ----
  const yw = prefix(s.ywsEdits)
  const canon = await canonYws()
  const stock = await stockYws()
  const runs: Array<{ canon: YwsRun; stock: YwsRun }> = []
  try {
    await ywsRun(canon, warm)
    await ywsRun(stock, warm)
    for (let i = 0; i < s.ywsRuns; i++) {
      // Alternate which goes first: neither always runs on a warmer or a more collected heap.
      const c = i % 2 === 0 ? await ywsRun(canon, yw) : undefined
      const st = await ywsRun(stock, yw)
      runs.push({ canon: c ?? (await ywsRun(canon, yw)), stock: st })
    }
  } finally {
    await canon.close()
    await stock.close()
  }
  const ye = n(yw.edits.length)
  const col = (f: (r: { canon: YwsRun; stock: YwsRun }) => number) => runs.map(f)
  ctx.log(`y-websocket, ${ye} edits: live ${col((r) => r.canon.liveMs).map((x) => x.toFixed(0)).join("/")} ms Canon vs ${col((r) => r.stock.liveMs).map((x) => x.toFixed(0)).join("/")} ms stock`)
  const ywsNote = "a writer and a reader WebsocketProvider; the writer types the prefix (one transaction per edit); until the reader holds the final text. TCP payload at the server, both directions"
  add(figure("yws.live.canon", `5. y-websocket via Canon hub: ${ye} edits relayed`, "ms", col((r) => r.canon.liveMs), { note: ywsNote }))
  add(figure("yws.live.stock", `5. y-websocket via @y/websocket-server: ${ye} edits relayed`, "ms", col((r) => r.stock.liveMs)))
  add(figure("yws.live.ratio", "5. Canon hub / @y/websocket-server, live time", "x", col((r) => r.canon.liveMs / r.stock.liveMs), { goal: { op: "<=", value: 1.0 } }))
  add(figure("yws.livebytes.ratio", "5. Canon hub / @y/websocket-server, live bytes", "x", col((r) => r.canon.liveBytes / r.stock.liveBytes),
    { goal: { op: "<=", value: 1.0 }, note: `Canon ${n(runs[0]!.canon.liveBytes)} B, stock ${n(runs[0]!.stock.liveBytes)} B (the stock server also echoes each update to its sender)` }))
  add(figure("yws.join.ratio", "5. Canon hub / @y/websocket-server, a newcomer's initial sync time", "x", col((r) => r.canon.joinMs / r.stock.joinMs),
    { goal: { op: "<=", value: 1.0 }, note: `Canon ${col((r) => r.canon.joinMs).map((x) => x.toFixed(1)).join("/")} ms, stock ${col((r) => r.stock.joinMs).map((x) => x.toFixed(1)).join("/")} ms` }))
  add(figure("yws.joinbytes.ratio", "5. Canon hub / @y/websocket-server, initial sync bytes", "x", col((r) => r.canon.joinBytes / r.stock.joinBytes),
    { goal: { op: "<=", value: 1.0 }, note: `Canon ${n(runs[0]!.canon.joinBytes)} B, stock ${n(runs[0]!.stock.joinBytes)} B` }))
  return out
}

export const suite: Suite = {
  name: "crdt",
  title: "CRDT fields and whole documents vs plain Yjs / Automerge / @y/websocket-server (automerge-paper trace), board with concurrent descriptions vs Yjs",
  run,
}

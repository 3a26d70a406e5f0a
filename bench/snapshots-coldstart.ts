/**
 * The `snapshots` suite's cold starts: opening a hub's document from LevelDB now that the
 * authority loads the newest verified snapshot plus the log tail, beside the old path (the
 * same history written with snapshots off: every entry replayed).
 *
 * 1. A document with a 1M-entry history (Counter `incr`), written through the authority with
 *    the default snapshot policy: LevelStorage.open + Hub.doc.
 * 2. The peers board workload's generator, one writer, 100k ops: the hub's cold start beside
 *    Yjs (one merged update under one key in LevelDB, y-leveldb style: open, get, applyUpdate)
 *    and Automerge (its saved file: read, load), as bench/peers-coldstart.ts measures them.
 *
 * The Automerge file (minutes to build at 100k changes, and a function of the ops alone) is
 * cached under node_modules/.cache/canon-bench/. Stores are written once, then opened again
 * every run (page cache warm); each open is
 * checked (head, state), so a broken path cannot look fast.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"
import os from "node:os"
import path from "node:path"
import { Hub, type Machine } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { check, figure, now, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { Counter } from "./machines.js"
import { BoardMachine, type BoardState } from "./peers-machines.js"
import { boardScript, canonArgs } from "./peers-board.js"
import { backToBack, pick } from "./peers-common.js"
import { DOC, buildStore, type BuiltStore } from "./snapshots-common.js"
import { automergeOpen, buildAutomerge, buildYjs, yjsOpen } from "./peers-coldstart.js"

export interface ColdStartSizes {
  /** Figure 1: entries in the Counter history. */
  readonly entries: number
  readonly plan: Plan
  /** Figure 2: board ops in the history. */
  readonly boardOps: number
  readonly boardPlan: Plan
}

const root = fileURLToPath(new URL("../", import.meta.url))
const amVersion = (JSON.parse(readFileSync(`${root}node_modules/@automerge/automerge/package.json`, "utf8")) as { version: string }).version

const SNAPSHOTS_OFF = { snapshots: { minLogBytes: Infinity } } as const

const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n))

/** LevelStorage.open + Hub.doc with the hub's defaults; returns ms and the opened document's check. */
const openHub = async <S>(dir: string, machine: Machine<S, any>, ok: (state: S, head: number) => boolean, what: string): Promise<number> => {
  const t0 = now()
  const storage = await LevelStorage.open(dir)
  const hub = new Hub({ machines: [machine], storage, runtime: systemRuntime })
  const doc = await hub.doc(DOC, machine)
  const good = ok(doc.state, doc.headSeq)
  const ms = now() - t0
  check(good, `${what}: the opened document has its head and state`)
  await hub.close()
  await storage.close()
  return ms
}

const describe = (b: BuiltStore): string =>
  b.snapshotSeq > 0 ? `newest snapshot at seq ${b.snapshotSeq.toLocaleString("en-US")} (${b.stateBytes} B), log compacted through ${b.horizon.toLocaleString("en-US")}` : "no snapshot, the whole log"

/** Figure 1: the 1M-entry history, default policy vs snapshots off. */
const longHistory = async (ctx: SuiteContext, s: ColdStartSizes, add: (f: Figure) => void, dir: string): Promise<void> => {
  const n = s.entries
  const incr = () => ({ name: "incr", args: { by: 1 } })
  const on = await buildStore(path.join(dir, "counter-on"), Counter, incr, n, { batch: 1000, finalSnapshot: false })
  const off = await buildStore(path.join(dir, "counter-off"), Counter, incr, n, { batch: 1000, finalSnapshot: false, hub: SNAPSHOTS_OFF })
  ctx.log(`${label(n)}-entry history written in ${(on.ms / 1000).toFixed(1)} s (snapshots on: ${describe(on)}) and ${(off.ms / 1000).toFixed(1)} s (snapshots off)`)
  check(on.snapshotSeq > 0 && on.horizon > 0 && off.snapshotSeq === 0, "the default policy snapshotted and compacted; snapshots off did not")
  const ok = (st: { value: number }, head: number) => head === n && st.value === n
  const times = { on: [] as number[], off: [] as number[] }
  for (let r = 0; r < s.plan.warmup + s.plan.runs; r++) {
    const a = await openHub(path.join(dir, "counter-on"), Counter, ok, "snapshots on")
    const b = await openHub(path.join(dir, "counter-off"), Counter, ok, "snapshots off")
    if (r < s.plan.warmup) continue
    times.on.push(a)
    times.off.push(b)
  }
  const scope = `${label(n)}-entry history${n < 1_000_000 ? " (--quick: not 1M)" : ""}`
  add(figure("open-1m", `1. cold open of a document with a ${scope}, LevelDB, snapshots on (default policy)`, "ms", times.on,
    { goal: { op: "<=", value: 300 }, note: `LevelStorage.open + Hub.doc: newest verified snapshot + log tail (${describe(on)}); Counter incr, written through the authority in group commits of 1000; page cache warm` }))
  add(figure("open-1m-replay", `1b. old path: the same history written with snapshots off, opened by full replay`, "ms", times.off,
    { note: `every one of the ${n.toLocaleString("en-US")} entries read, decoded and applied` }))
  add(figure("open-1m-ratio", `1c. snapshots on / full replay`, "x", times.on.map((t, i) => t / times.off[i]!)))
  add(figure("write-1m-on", `1d. writing that history through the authority, snapshots on (default policy)`, "s", [on.ms / 1000],
    { note: "Hub + DocAuthority on LevelStorage (fsync off), group commits of 1000, until the last snapshot and its compaction are done; one run" }))
  add(figure("write-1m-off", `1d. writing it with snapshots off`, "s", [off.ms / 1000]))
  add(figure("write-1m-ratio", `1d. write time, snapshots on / off`, "x", [on.ms / off.ms],
    { note: "each compaction deletes from where the previous one stopped (the horizon record says how far deletes went), so it costs what it deletes; before (commit c2dee11, bench/results/snapshots.pre-freeze.json), each one began at the start of the document's key range and walked LevelDB's deletion markers of every entry deleted before it: 383 s, 42.9x" }))
}

// ---- figure 2: the board history, Canon's hub beside Yjs and Automerge ----

const boardHistory = async (ctx: SuiteContext, s: ColdStartSizes, add: (f: Figure) => void, dir: string): Promise<void> => {
  // The generator of bench/peers-coldstart.ts: one writer, rounds of 1000 ops.
  const script = boardScript(7, 1, Math.ceil(s.boardOps / 1000), Math.min(1000, s.boardOps))
  const ops = script.rounds.flatMap((r) => r[0]!)
  const cards = script.final.size
  const make = (i: number) => {
    const [name, args] = canonArgs(ops[i]!)
    return { name, args }
  }
  const d = { on: path.join(dir, "board-on"), off: path.join(dir, "board-off"), yjs: path.join(dir, "board-yjs"), am: path.join(dir, "board.automerge") }
  const on = await buildStore(d.on, BoardMachine, make, ops.length, { batch: 256, finalSnapshot: false })
  await buildStore(d.off, BoardMachine, make, ops.length, { batch: 256, finalSnapshot: false, hub: SNAPSHOTS_OFF })
  const b0 = now()
  const yjsBytes = await buildYjs(ops, d.yjs)
  const b1 = now()
  // Automerge takes minutes to apply 100k changes; its saved file depends only on the ops: cached.
  const cached = `${root}node_modules/.cache/canon-bench/board-${ops.length}-seed7-automerge-${amVersion}.bin`
  let amBytes: number
  if (existsSync(cached)) {
    copyFileSync(cached, d.am)
    amBytes = statSync(d.am).size
  } else {
    amBytes = buildAutomerge(ops, d.am)
    mkdirSync(path.dirname(cached), { recursive: true })
    copyFileSync(d.am, cached)
  }
  ctx.log(`board history: ${ops.length.toLocaleString("en-US")} ops, ${cards} cards; written: Canon ${(on.ms / 1000).toFixed(1)} s (${describe(on)}), Yjs ${((b1 - b0) / 1000).toFixed(1)} s (${yjsBytes} B), Automerge ${((now() - b1) / 1000).toFixed(1)} s (${amBytes} B)`)
  const ok = (st: BoardState, head: number) => head === ops.length && Object.keys(st.cards).length === cards
  const all = await backToBack<"ms" | "replay">(s.boardPlan, ["canon", "yjs", "automerge"], async (sys) => {
    if (sys === "canon") return { ms: await openHub(d.on, BoardMachine, ok, "Canon board"), replay: await openHub(d.off, BoardMachine, ok, "Canon board, snapshots off") }
    const ms = sys === "yjs" ? await yjsOpen(d.yjs, cards) : automergeOpen(d.am, cards)
    return { ms, replay: ms }
  })
  const ms = pick(all, "ms")
  const scope = `${label(ops.length)}-op board history${ops.length < 100_000 ? " (--quick: not 100k)" : ""}`
  add(figure("coldstart-canon", `2. hub cold start, ${scope}: Canon (snapshot + tail)`, "ms", ms.canon!,
    { note: `LevelStorage.open + Hub.doc + a read, default policy (${describe(on)}); the board generator of bench/peers-coldstart.ts, one writer` }))
  add(figure("coldstart-yjs", `2. hub cold start: Yjs`, "ms", ms.yjs!, { note: `Level open + get + applyUpdate of one merged update (${yjsBytes.toLocaleString("en-US")} B) + a read` }))
  add(figure("coldstart-automerge", `2. hub cold start: Automerge`, "ms", ms.automerge!, { note: `readFile + load (${amBytes.toLocaleString("en-US")} B) + a read` }))
  add(figure("coldstart-canon/yjs", `2. hub cold start: Canon / Yjs`, "x", ms.canon!.map((c, i) => c / ms.yjs![i]!),
    { goal: { op: "<=", value: 0.5 }, note: "per run, measured back to back (the order rotates)" }))
  add(figure("coldstart-canon/automerge", `2. hub cold start: Canon / Automerge`, "x", ms.canon!.map((c, i) => c / ms.automerge![i]!)))
  const replay = pick(all, "replay").canon!
  add(figure("coldstart-replay", `2b. old path: Canon hub cold start by full replay (snapshots off)`, "ms", replay))
  add(figure("coldstart-replay/yjs", `2b. old path / Yjs`, "x", replay.map((c, i) => c / ms.yjs![i]!)))
}

export const coldStartWorkload = async (ctx: SuiteContext, s: ColdStartSizes, add: (f: Figure) => void): Promise<void> => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "canon-bench-snapshots-cold-"))
  try {
    await longHistory(ctx, s, add, dir)
    await boardHistory(ctx, s, add, dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

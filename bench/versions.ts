/**
 * `versions`: what serving several machine versions at once costs the authority (issue 12).
 * A todo machine v1 -> v2 (`add` gains a priority, `rename` becomes `retitle`; upcasts and
 * downcasts declared with `evolve`), an authority running v2 on MemoryStorage, driven
 * directly (no network) as bench/core-throughput.ts does:
 * 1. upcast: one writer submits batches of commands; its session declared v1 (each command is
 *    decoded by v1's schema and upcast to v2 before it applies) vs v2 (applies as is). Figure:
 *    ordering rate, and per-run ratio v2 rate / v1 rate (goal <= 1.2).
 * 2. downcast: a v2 writer's commands fanned out to 50 readers, all at v2 vs half at v1 (each
 *    entry downcast to v1's form for them). Figure: time until every reader has every entry,
 *    per-run ratio mixed / same (goal <= 1.5).
 * Runs alternate the two sides.
 */
import * as Schema from "effect/Schema"
import { Hub, defineMachine, type Submit } from "../core/index.js"
import { evolve } from "../core/schema/versions.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CollectingConnection } from "./collecting-connection.js"
import { check, figure, now, sample, type Figure, type Suite, type SuiteContext } from "./harness.js"

type S1 = { items: Record<string, { title: string; done: boolean }> }
type S2 = { items: Record<string, { title: string; done: boolean; priority: number }> }
const Titled = Schema.Struct({ id: Schema.String, title: Schema.String })

const TodoV1 = defineMachine({
  name: "vtodo",
  version: 1,
  initial: (): S1 => ({ items: {} }),
  commands: {
    add: { args: Titled, apply: (s: S1, a, ctx) => { if (s.items[a.id]) ctx.reject(`There is already an item ${a.id}.`); s.items[a.id] = { title: a.title, done: false } } },
    rename: { args: Titled, apply: (s: S1, a, ctx) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).title = a.title } },
  },
})

const TodoV2 = evolve(TodoV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ items: Object.fromEntries(Object.entries(s.items).map(([k, i]) => [k, { ...i, priority: 0 }])) }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String, priority: Schema.Number }),
      apply: (s: S2, a: { id: string; title: string; priority: number }, ctx: { reject(r: string): never }) => {
        if (s.items[a.id]) ctx.reject(`There is already an item ${a.id}.`)
        s.items[a.id] = { title: a.title, done: false, priority: a.priority }
      },
    },
    retitle: { args: Titled, apply: (s: S2, a: { id: string; title: string }, ctx: { reject(r: string): never }) => { (s.items[a.id] ?? ctx.reject(`No item ${a.id}.`)).title = a.title } },
  },
  upcast: {
    add: (a) => ({ name: "add", args: { ...a, priority: 0 } }),
    rename: (a) => ({ name: "retitle", args: a }),
  },
  downcast: {
    add: (a) => ({ name: "add", args: { id: a.id, title: a.title } }),
    retitle: (a) => ({ name: "rename", args: a }),
  },
})

const DOC = "todo"
const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Half adds, half renames of the item added just before, in the session version's own names. */
const messages = (version: 1 | 2, batches: number, size: number): Submit[] => {
  const out: Submit[] = []
  for (let b = 0; b < batches; b++) {
    const commands = []
    for (let i = 1; i <= size; i++) {
      const seq = b * size + i
      const id = `item-${seq - (seq % 2 === 0 ? 1 : 0)}`
      commands.push(seq % 2 === 1
        ? { clientSeq: seq, name: "add", args: version === 1 ? { id, title: `Item ${seq}` } : { id, title: `Item ${seq}`, priority: 0 } }
        : { clientSeq: seq, name: version === 1 ? "rename" : "retitle", args: { id, title: `Renamed ${seq}` } })
    }
    out.push({ type: "submit", docId: DOC, commands, ackedClientSeq: b * size })
  }
  return out
}

/**
 * Commands ordered and committed per second by a v2 authority for a writer whose session is at
 * `writerVersion`, with `readers` followers at the given versions; `fanned` waits until every
 * reader has every entry before the clock stops.
 */
const orderingRun = async (writerVersion: 1 | 2, readerVersions: ReadonlyArray<1 | 2>, batches: number, size: number): Promise<{ ms: number; total: number }> => {
  const hub = new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: new VirtualRuntime(1) })
  try {
    const doc = await hub.doc(DOC, TodoV2)
    const conn = new CollectingConnection()
    doc.subscribe(conn, "writer", 0, 0, undefined, writerVersion)
    const readers = readerVersions.map((v, i) => {
      const r = new CollectingConnection()
      doc.subscribe(r, `reader-${i}`, 0, 0, undefined, v)
      return r
    })
    await turn()
    const msgs = messages(writerVersion, batches, size)
    const total = batches * size
    let ms = 0
    for (const msg of msgs) {
      const t0 = now()
      const done = conn.nextResults()
      doc.submit(conn, "writer", msg)
      await done
      // Fan-out: readers are sent the batch's entries as it commits; wait for the last one.
      for (let i = 0; i < 1000 && readers.some((r) => r.fannedOut < msg.commands[msg.commands.length - 1]!.clientSeq); i++) await turn()
      ms += now() - t0
    }
    check(conn.errors.length === 0 && readers.every((r) => r.errors.length === 0), `no error (${[conn, ...readers].flatMap((c) => c.errors).join("; ")})`)
    check(doc.headSeq === total && conn.accepted === total, `every command committed (${doc.headSeq} of ${total}, ${conn.accepted} accepted)`)
    check(readers.every((r) => r.fannedOut === total), "every reader received every entry")
    const state = doc.state as S2
    check(Object.keys(state.items).length === total / 2 && state.items["item-1"]?.title === "Renamed 2", "the state holds the upcast commands' effects")
    return { ms, total }
  } finally {
    await hub.close()
  }
}

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const plan = ctx.quick ? { warmup: 1, warmupMs: 200, runs: 3 } : { warmup: 3, warmupMs: 2_000, runs: 10 }
  const batches = ctx.quick ? 20 : 100
  const size = 100
  const out: Figure[] = []

  // ---- 1. upcast ----
  const same: number[] = []
  const up: number[] = []
  const upRatio = await sample(plan, async () => {
    const a = await orderingRun(2, [], batches, size)
    const b = await orderingRun(1, [], batches, size)
    const v2 = a.total / (a.ms / 1000)
    const v1 = b.total / (b.ms / 1000)
    same.push(v2)
    up.push(v1)
    return v2 / v1
  })
  const keep = (xs: number[]) => xs.slice(xs.length - plan.runs)
  ctx.log(`upcast: v2 session ${keep(same).map((x) => x.toFixed(0)).join(", ")} commands/s; v1 session ${keep(up).map((x) => x.toFixed(0)).join(", ")}`)
  const note1 = `a v2 authority on MemoryStorage, one writer, ${batches} submits of ${size} commands per run (half add, half rename/retitle), no reader`
  out.push(figure("upcast.same", "1. ordering rate, writer at v2 (no upcast)", "commands/s", keep(same), { note: note1 }))
  out.push(figure("upcast.old", "1. ordering rate, writer at v1 (every command upcast)", "commands/s", keep(up)))
  out.push(figure("upcast.ratio", "1. upcast cost: v2 rate / v1 rate", "x", upRatio, { goal: { op: "<=", value: 1.2 } }))

  // ---- 2. downcast on fan-out ----
  const readers = 50
  const sameTimes: number[] = []
  const mixedTimes: number[] = []
  const allV2 = Array.from({ length: readers }, () => 2 as const)
  const mixed = Array.from({ length: readers }, (_, i) => (i % 2 === 0 ? 1 : 2) as 1 | 2)
  const fanBatches = ctx.quick ? 5 : 20
  const downRatio = await sample(plan, async () => {
    const a = await orderingRun(2, allV2, fanBatches, size)
    const b = await orderingRun(2, mixed, fanBatches, size)
    sameTimes.push(a.ms)
    mixedTimes.push(b.ms)
    return b.ms / a.ms
  })
  ctx.log(`downcast: all v2 ${keep(sameTimes).map((x) => x.toFixed(1)).join(", ")} ms; half at v1 ${keep(mixedTimes).map((x) => x.toFixed(1)).join(", ")} ms`)
  const note2 = `a v2 writer, ${fanBatches} submits of ${size} commands, ${readers} readers; until every reader has every entry`
  out.push(figure("downcast.same", `2. fan-out to ${readers} readers, all at v2`, "ms", keep(sameTimes), { note: note2 }))
  out.push(figure("downcast.mixed", `2. fan-out to ${readers} readers, half at v1 (downcast)`, "ms", keep(mixedTimes)))
  out.push(figure("downcast.ratio", "2. downcast cost: mixed / same", "x", downRatio, { goal: { op: "<=", value: 1.5 } }))
  return out
}

export const suite: Suite = { name: "versions", title: "Machine versions: upcast and downcast costs on the authority", run }

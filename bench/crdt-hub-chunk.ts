/**
 * Row 7 of the `crdt` suite: what one Automerge document chunk of many changes costs the hub
 * (adapters/automerge-server/engine.ts, check, prepare and apply, as the authority runs them). A
 * document chunk of N empty changes is a few hundred bytes, so bytes do not bound it. The
 * engine decodes and admits in slices between turns of the event loop; the figures are the
 * total time and the longest stretch the event loop was held (a setImmediate chain measures
 * the gaps), and the stretch is what every other socket of the hub waits. Goal: at most 2 s at
 * the engine's bound (262,144 changes; 20,000 in --quick, where the goal scales to 0.5 s).
 */
import * as A from "@automerge/automerge"
import { automergeDocEngine } from "../adapters/automerge-server/engine.js"
import { check, figure, now, type Figure, type SuiteContext } from "./harness.js"

const chunkOf = (n: number): { chunk: Uint8Array; heads: string } => {
  let d = A.init<unknown>({ actor: "0a".repeat(16) })
  for (let i = 0; i < n; i++) d = A.emptyChange(d)
  return { chunk: A.save(d), heads: A.getHeads(d).join() }
}

/** Check and apply one chunk on a fresh document: total ms and the longest gap between event-loop turns. */
const once = async (chunk: Uint8Array, heads: string): Promise<{ total: number; longest: number }> => {
  const engine = automergeDocEngine()
  const box = engine.empty()
  let longest = 0
  let last = now()
  let ticking = true
  const tick = () => {
    const t = now()
    longest = Math.max(longest, t - last)
    last = t
    if (ticking) setImmediate(tick)
  }
  setImmediate(tick)
  const start = now()
  const verdict = engine.check(chunk)
  check(verdict.ok && (await engine.prepare!(chunk)).ok, "the chunk is checked as honest")
  const applied = await engine.apply(box, [chunk])
  const total = now() - start
  ticking = false
  check(applied[0] === true && A.getHeads(box.doc).join() === heads, "the chunk is applied whole")
  engine.dispose?.(box)
  return { total, longest }
}

export const hubChunkRows = async (ctx: SuiteContext): Promise<Figure[]> => {
  const changes = ctx.quick ? 20_000 : 262_144
  const runs = ctx.quick ? 2 : 3
  const { chunk, heads } = chunkOf(changes)
  const samples: Array<{ total: number; longest: number }> = []
  for (let i = 0; i < runs; i++) samples.push(await once(chunk, heads))
  const label = `7. hub: an Automerge document chunk of ${changes.toLocaleString("en-US")} empty changes (${chunk.length} B)`
  return [
    figure("7a", `${label}, check + prepare + apply`, "ms", samples.map((s) => s.total)),
    figure("7b", `${label}, longest stretch the event loop was held`, "ms", samples.map((s) => s.longest), { goal: { op: "<=", value: ctx.quick ? 500 : 2_000 } }),
  ]
}

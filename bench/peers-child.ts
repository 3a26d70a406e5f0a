/**
 * A fresh process for one memory figure of the `peers` suite (see memoryInChild in
 * peers-common.ts): `node --expose-gc --import tsx bench/peers-child.ts '<spec json>'`.
 * Loads every module first, takes the baseline after a full GC, runs the workload for one
 * system, keeps what it built alive, collects again and prints the deltas as one line
 * `PEERS-MEMORY {"heap":..,"rss":..,"external":..}`.
 */
import { memoryNow, type Sys } from "./peers-common.js"
import { boardScript, makeBoard, runBoard } from "./peers-board.js"
import { prepareTextLoad } from "./peers-text.js"

const spec = JSON.parse(process.argv[2] ?? "{}") as { workload: string; sys: Sys; [k: string]: unknown }

const main = async (): Promise<void> => {
  let held: unknown
  let before: ReturnType<typeof memoryNow>
  if (spec.workload === "board") {
    const script = boardScript(42, spec.replicas as number, spec.rounds as number, spec.opsPerRound as number)
    before = memoryNow()
    const world = await makeBoard(spec.sys, spec.replicas as number)
    await runBoard(world, script)
    world.verify(script)
    held = world
  } else if (spec.workload === "text-load") {
    const load = await prepareTextLoad(spec.sys, spec.file as string)
    before = memoryNow()
    held = await load()
  } else {
    throw new Error(`unknown workload ${spec.workload}`)
  }
  const after = memoryNow()
  console.log(`PEERS-MEMORY ${JSON.stringify({ heap: after.heap - before.heap, rss: after.rss - before.rss, external: after.external - before.external })}`)
  // Keep `held` reachable until after the measurement.
  if (held === null) console.log("")
  process.exit(0)
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})

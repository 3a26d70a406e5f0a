/**
 * Runs only issue 11's board-with-descriptions row (bench/crdt-board.ts) and prints its table;
 * writes no results file (`npm run bench -- --suite crdt` does, with every crdt row).
 *   node --expose-gc --import tsx bench/crdt-board-run.ts [--quick]
 * `--only canon|yjs` runs one system three times instead (for `--cpu-prof` after `node`).
 */
import os from "node:os"
import { formatTable, now } from "./harness.js"
import { DESC_FULL, DESC_QUICK, descBoardWorkload, makeDescBoard, runDescBoard, type DescSys } from "./crdt-board.js"
import { descScript } from "./crdt-board-script.js"

const quick = process.argv.includes("--quick")
const sizes = quick ? DESC_QUICK : DESC_FULL
const at = process.argv.indexOf("--only")
const only = at < 0 ? undefined : (process.argv[at + 1] as DescSys)
const load = () => `load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`
const t0 = now()
if (only === undefined) {
  const figures = await descBoardWorkload({ quick, log: (line) => console.log(`  ${line}`) }, sizes)
  console.log(`\n${formatTable(figures)}\n(${((now() - t0) / 1000).toFixed(1)} s; ${load()})`)
} else {
  const script = descScript(42, sizes)
  for (let i = 0; i < 3; i++) {
    const world = await makeDescBoard(only, sizes.replicas)
    const { ms, cpu } = await runDescBoard(world, script)
    world.verify(script)
    await world.close()
    console.log(`${only}: ${ms.toFixed(0)} ms (CPU ${cpu.toFixed(0)} ms; ${load()})`)
  }
}

/**
 * The simulator as a long-lived child (mutant-runner.ts SimServer): reads one JSON line per
 * run on stdin, `{"args": [...]}` (cli.ts's flags), runs it (world.ts, the same code and
 * output as `npm run sim -- ...`), and ends its output with a line SERVE_END and the exit
 * code. One run at a time, in order; exits when stdin closes.
 *
 * Why: each `npm run sim` pays tsx compiling the engine and the simulator, and a cold JIT,
 * seconds of CPU per run; the tests run some thirty worlds. A run here is independent of the
 * runs before it (the CLI's seeds already share a process this way, and the guard puts the
 * realm's shared objects back after each); sim.test.ts checks that a seed run here prints
 * what it prints in a process of its own.
 */
import { createInterface } from "node:readline"
import { runWorld } from "./world.js"

/** Ends a run's output, followed by its exit code (a byte no output line starts with). */
export const SERVE_END = "\u0001sim-serve end"

const out = (l: string) => void process.stdout.write(`${l}\n`)
const err = (l: string) => void process.stderr.write(`${l}\n`)
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === "") continue
  const { args } = JSON.parse(line) as { args: string[] }
  let code: number
  try {
    code = await runWorld(args, out, err)
  } catch (e) {
    // A throw out of the simulator itself: as `npm run sim` would die of it (no summary line).
    err(e instanceof Error ? e.stack ?? e.message : String(e))
    code = 70
  }
  out(`${SERVE_END} ${code}`)
}
process.exit(0)

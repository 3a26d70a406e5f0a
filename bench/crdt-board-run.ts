/**
 * Runs only issue 11's board-with-descriptions row (bench/crdt-board.ts) and prints its table;
 * writes no results file (`npm run bench -- --suite crdt` does, with every crdt row).
 *   node --expose-gc --import tsx bench/crdt-board-run.ts [--quick]
 */
import os from "node:os"
import { formatTable, now } from "./harness.js"
import { DESC_FULL, DESC_QUICK, descBoardWorkload } from "./crdt-board.js"

const quick = process.argv.includes("--quick")
const t0 = now()
const figures = await descBoardWorkload({ quick, log: (line) => console.log(`  ${line}`) }, quick ? DESC_QUICK : DESC_FULL)
console.log(`\n${formatTable(figures)}\n(${((now() - t0) / 1000).toFixed(1)} s; load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")})`)

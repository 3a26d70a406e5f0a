/** Jest runs TypeScript through SWC as native ESM (the package is "type": "module"). */
import { availableParallelism } from "node:os"

export default {
  // Two files at a time even on CI's two cores: most files wait on sockets, timers and child
  // processes, so two at once take about half the wall time of one (603 s against 1,198 s of
  // file time on this machine), which keeps CI under its 20 minutes.
  maxWorkers: Math.max(2, availableParallelism() - 1),
  // Node's, plus a report of the timers, sockets and processes a file leaves open (they keep
  // a worker from exiting): test/support/leak-environment.ts.
  testEnvironment: "<rootDir>/test/support/leak-environment.ts",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "es6" } }]
  },
  testTimeout: 60000,
  // Jest force-exits a worker not gone 500 ms after it is told to stop, and warns. Timed in
  // every worker of a full run (a preload writing how long after the stop message each one
  // exited): 0-1 ms, all of them, in a run that still printed the warning once. The timer is
  // the parent's, and the parent is busy at the end of a run, so it fired late and first. A
  // worker kept alive by a leaked handle still fails after 5 s, and the leak environment names
  // the handle per file.
  workerGracefulExitTimeout: 5000
}

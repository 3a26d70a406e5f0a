/** Jest runs TypeScript through SWC as native ESM (the package is "type": "module"). */
import { availableParallelism } from "node:os"

export default {
  // At least three files at a time, even on CI's two cores: many files wait on sockets, timers
  // and child processes. Measured on a two-core machine, whole `.ci/run` in a clean clone:
  // two at once, jest 1,306 s (2,585 s of file time); three, jest 983 s and the run 1,122 s
  // (user + sys 1,955 s: 1.74 cores busy), all tests passing in both. Three keeps CI under 20 min.
  maxWorkers: Math.max(3, availableParallelism() - 1),
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

/**
 * The test environment (test/support/leak-environment.ts) names what a file leaves open, so
 * a run that does not exit says why: here a fixture leaves an interval, a timer loop and a
 * server; the report must name each with the fixture's file, and nothing it cleaned up.
 */
import { spawn } from "node:child_process"

test("a run kept alive by a file's timers and server names them and the file", async () => {
  const child = spawn(process.execPath, ["node_modules/.bin/jest", "--runInBand", "--rootDir", ".", "--testMatch", "**/test/fixtures/leaky.fixture.ts"], {
    env: { ...process.env, CANON_LEAK_REPORT_MS: "500", NODE_OPTIONS: "--experimental-vm-modules" },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let err = ""
  child.stderr.on("data", (d: Buffer) => { err += d.toString() })
  const deadline = Date.now() + 20_000
  try {
    while (!err.includes("left open by") && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100))
  } finally {
    child.kill("SIGKILL")
  }
  const report = err.slice(err.indexOf("Still open"))
  expect(report).toMatch(/interval of 1000 ms set by test\/fixtures\/leaky\.fixture\.ts/)
  expect(report).toMatch(/timeout of 200 ms set by test\/fixtures\/leaky\.fixture\.ts after its teardown/)
  expect(report).toMatch(/server listening on 127\.0\.0\.1:\d+, left open by test\/fixtures\/leaky\.fixture\.ts/)
  expect(report).not.toMatch(/60000 ms/)
}, 30_000)

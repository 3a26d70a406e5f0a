// Preloaded (`node --import`) into the `canon serve` children of the hostile suite: the hub
// exits when its stdin closes (the test process is gone) or after CANON_GUARD_MAX_MS, so a
// crashed or killed test run leaves no hub behind. It changes nothing else in the process.
const maxMs = Number(process.env.CANON_GUARD_MAX_MS ?? 300_000)
process.stdin.on("end", () => process.exit(70))
process.stdin.on("error", () => process.exit(70))
process.stdin.resume()
setTimeout(() => {
  process.stderr.write(`orphan guard: lived longer than ${maxMs} ms, exiting\n`)
  process.exit(71)
}, maxMs).unref()

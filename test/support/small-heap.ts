/**
 * Runs a test script in a child Node with a small heap (`heapMb`), collecting its output:
 * memory bounds asserted by surviving. A child still running after `timeoutMs` is SIGKILLed
 * (a hung one would otherwise outlive its test and keep jest from exiting).
 */
import { spawn } from "node:child_process"

export const runWithHeap = (heapMb: number, script: string, args: ReadonlyArray<string>, timeoutMs = 110_000): Promise<{ code: number | null; signal: string | null; out: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, "--import", "tsx", script, ...args], {
      cwd: process.cwd(),
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    })
    let out = ""
    child.stdout.on("data", (d) => (out += String(d)))
    child.stderr.on("data", (d) => (out += String(d)))
    child.on("close", (code, signal) => resolve({ code, signal, out }))
  })

/** Runs a test script in a child Node with a small heap (`heapMb`), collecting its output: memory bounds asserted by surviving. */
import { spawn } from "node:child_process"

export const runWithHeap = (heapMb: number, script: string, args: ReadonlyArray<string>): Promise<{ code: number | null; signal: string | null; out: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, "--import", "tsx", script, ...args], {
      cwd: process.cwd(),
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let out = ""
    child.stdout.on("data", (d) => (out += String(d)))
    child.stderr.on("data", (d) => (out += String(d)))
    child.on("close", (code, signal) => resolve({ code, signal, out }))
  })

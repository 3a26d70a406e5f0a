/** Starts test/support/crdt-serve.ts (a hub with CRDT endpoints on LevelDB) as a child process. */
import { spawn, type ChildProcess } from "node:child_process"

export interface CrdtChild {
  readonly port: number
  readonly child: ChildProcess
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>
  /** Whatever the child printed (stderr included). */
  output(): string
}

export const startCrdtServer = (dir: string, port = 0, auth = false): Promise<CrdtChild> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/crdt-serve.ts", dir, String(port), auth ? "auth" : "open"], { cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" } })
    let out = ""
    const exited = new Promise<void>((r) => child.once("exit", () => r()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`The CRDT hub did not start within 30 s:\n${out}`))
    }, 30_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = /LISTENING (\d+)/.exec(out)
      if (m !== null && port !== -1) {
        clearTimeout(timer)
        port = -1
        resolve({
          port: Number(m[1]),
          child,
          output: () => out,
          stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return
            const kill = setTimeout(() => child.kill("SIGKILL"), 10_000)
            child.kill("SIGTERM")
            await exited
            clearTimeout(kill)
          },
        })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (port !== -1) reject(new Error(`The CRDT hub exited (${code}) before listening:\n${out}`))
    })
  })

/**
 * `canon serve` as a real child process for the hostile suite: the repository's bin
 * (apps/cli/canon.mjs, which runs the TypeScript CLI through tsx) on 127.0.0.1, port 0, a
 * LevelDB directory of the test's, and a machines module. Its URL is read from the banner
 * it prints. Every exit the suite did not ask for is recorded with the child's stderr, so a
 * hub that dies is a test failure that says why.
 *
 * The child is preloaded with hostile-orphan-guard.mjs: it exits when the test process is
 * gone. It is tracked by the crash harness, so `killAllChildren()` ends it.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { Child, ROOT } from "../crash/harness.js"

const BIN = join(ROOT, "apps/cli/canon.mjs")
const GUARD = join(ROOT, "test/support/hostile-orphan-guard.mjs")

export class HubChild {
  private child: Child | undefined
  private stopping = false
  private generation = 0
  /** Exits nobody asked for: the child's description (exit status, last stderr lines). */
  readonly deaths: string[] = []
  url = ""
  syncUrl = ""

  constructor(
    readonly name: string,
    readonly dataDir: string,
    /** The machines module, relative to the repository root. */
    readonly machines: string,
    readonly extraArgs: ReadonlyArray<string> = [],
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.running
  }

  get pid(): number | undefined {
    return this.child?.proc.pid
  }

  /** Starts the hub and waits for its banner (bounded); rejects with its stderr if it exits first. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`)
    const env = { ...process.env }
    // Jest's NODE_OPTIONS (--experimental-vm-modules) is not for the child.
    delete env.NODE_OPTIONS
    const args = ["--import", GUARD, BIN, "serve", "--data", this.dataDir, "--host", "127.0.0.1", "--port", "0", "--machines", this.machines, ...this.extraArgs]
    const child = new Child(`${this.name} #${++this.generation}`, spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] }))
    this.child = child
    // A child that exits before its banner failed to start (the caller's test fails with that).
    let started = false
    void child.exited.then(() => {
      if (started && !this.stopping && this.child === child) this.deaths.push(describe(child))
    })
    let banner: string
    try {
      banner = await child.waitForLine((l) => l.startsWith("Canon hub on "), 30_000)
    } catch (e) {
      // Still running: it took too long (the error says so, with its stderr); else how it exited.
      const why = child.running ? (e instanceof Error ? e.message : String(e)) : describe(child)
      await child.stop("SIGKILL").catch(() => {})
      this.child = undefined
      throw new Error(`canon serve ${args.slice(3).join(" ")} did not start: ${why}`)
    }
    started = true
    const m = /^Canon hub on (\S+) \(sync: (\S+)\)$/.exec(banner)
    if (m === null) throw new Error(`unexpected banner from canon serve: ${banner}`)
    this.url = m[1]!
    this.syncUrl = m[2]!
  }

  /** Stops it with `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits until it is gone. */
  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (child === undefined) return
    this.stopping = true
    try {
      await child.stop(signal, 15_000)
    } finally {
      this.stopping = false
      this.child = undefined
    }
    if (signal === "SIGTERM" && child.exitCode !== 0) {
      throw new Error(`${child.name} did not shut down cleanly on SIGTERM: ${describe(child)}`)
    }
  }

  async restart(signal: NodeJS.Signals): Promise<void> {
    await this.stop(signal)
    await this.start()
  }

  /** Starts it again if it died (the test it died in has failed already). */
  async ensureRunning(): Promise<void> {
    if (!this.running) {
      this.child = undefined
      await this.start()
    }
  }

}

/**
 * How a child ended and its last stderr lines, each behind "| " (so a stack trace the hub
 * printed reads as its output, not as the test's own stack).
 */
const describe = (child: Child): string => {
  const status = child.running ? "still running" : `exited with code ${child.exitCode} signal ${child.exitSignal}`
  const lines = child.stderr.filter((l) => l.trim() !== "" && !/^\s+at .*node:internal\//.test(l))
  const err = lines.slice(-16).map((l) => `| ${l}`).join("\n    ")
  return `${child.name} (pid ${child.proc.pid}) ${status}${err ? `; stderr:\n    ${err}` : ""}`
}

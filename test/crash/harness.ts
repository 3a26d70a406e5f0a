/**
 * Child processes for the crash tests: spawn a TypeScript script under `node --import tsx`,
 * read its stdout line by line, wait for a line (bounded in time), kill it with SIGKILL
 * and wait until it is gone. Every child spawned here is tracked, so `killAllChildren()`
 * (the tests' afterAll, the chaos CLI's exit path) leaves none behind.
 *
 * A child also exits by itself when its stdin closes (the parent died) or when its
 * `--max-ms` lifetime runs out: nothing outlives a crashed test run for long.
 *
 * To read what the children said in a failing seed: CANON_CRASH_DUMP=file appends every
 * stdout line, prefixed with the child's name.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { appendFileSync, mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root (where `tsx` resolves from). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url))
/** This folder: the child scripts live here. */
export const CRASH_DIR = fileURLToPath(new URL("./", import.meta.url))

/** A sleep that does not keep the process alive: the losing side of a bounded race. */
export const deadline = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref())

export { deadPort, sleep, until } from "../support/ws.js"

const children = new Set<Child>()
const tempDirs = new Set<string>()

/** A fresh temporary directory, removed by `removeTempDirs()` (or `removeTempDir`). */
export const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export const removeTempDir = (dir: string): void => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  tempDirs.delete(dir)
}

export const removeTempDirs = (): void => {
  for (const d of [...tempDirs]) removeTempDir(d)
}

/** A running child: its output lines, and ways to wait on them and to end it. */
export class Child {
  readonly lines: string[] = []
  readonly stderr: string[] = []
  private readonly waiters = new Set<() => void>()
  private partial = ""
  private errPartial = ""
  exitCode: number | null | undefined = undefined
  exitSignal: NodeJS.Signals | null = null
  readonly exited: Promise<void>

  constructor(readonly name: string, readonly proc: ChildProcess) {
    children.add(this)
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        this.exitCode = code
        this.exitSignal = signal
        children.delete(this)
        this.wake()
        resolve()
      })
    })
    proc.once("error", (e) => {
      this.stderr.push(`spawn error: ${e.message}`)
      this.wake()
    })
    proc.stdout!.setEncoding("utf8")
    proc.stdout!.on("data", (chunk: string) => {
      const parts = (this.partial + chunk).split("\n")
      this.partial = parts.pop()!
      for (const l of parts) this.lines.push(l)
      const dump = process.env.CANON_CRASH_DUMP
      if (dump) for (const l of parts) appendFileSync(dump, `${this.name} ${l}\n`)
      this.wake()
    })
    proc.stderr!.setEncoding("utf8")
    proc.stderr!.on("data", (chunk: string) => {
      const parts = (this.errPartial + chunk).split("\n")
      this.errPartial = parts.pop()!
      for (const l of parts) this.stderr.push(l)
      if (this.stderr.length > 200) this.stderr.splice(0, this.stderr.length - 200)
    })
    // The child reads stdin only to notice that we are gone; a write error after its death is no news.
    proc.stdin!.on("error", () => {})
  }

  get running(): boolean {
    return this.exitCode === undefined
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  /** Lines that start with `prefix` (a line is `PREFIX field field...`). */
  linesOf(prefix: string): string[][] {
    return this.lines.filter((l) => l.startsWith(prefix + " ") || l === prefix).map((l) => l.split(" ").slice(1))
  }

  /** What went wrong, for error messages: exit status and the last stderr lines. */
  describe(): string {
    const status = this.running ? "still running" : `exited with code ${this.exitCode} signal ${this.exitSignal}`
    const err = this.stderr.slice(-15).join("\n    ")
    return `${this.name} (pid ${this.proc.pid}) ${status}${err ? `; stderr:\n    ${err}` : ""}`
  }

  /**
   * Resolves with the first line (from index `from` on) for which `match` holds; rejects after
   * `timeoutMs`, or if the child exits first.
   */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      let i = from
      const check = () => {
        for (; i < this.lines.length; i++) {
          if (match(this.lines[i]!)) {
            done()
            resolve(this.lines[i]!)
            return
          }
        }
        if (!this.running) {
          done()
          reject(new Error(`${this.describe()} before printing the expected line`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a line from ${this.describe()}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Sends `signal` and waits (bounded) until the process is gone; SIGKILL if it lingers. */
  async stop(signal: NodeJS.Signals = "SIGKILL", timeoutMs = 10_000): Promise<void> {
    if (!this.running) return
    this.proc.kill(signal)
    const gone = await Promise.race([this.exited.then(() => true), deadline(timeoutMs).then(() => false)])
    if (!gone) {
      this.proc.kill("SIGKILL")
      await Promise.race([this.exited, deadline(5_000)])
    }
    if (this.running) throw new Error(`${this.name} (pid ${this.proc.pid}) did not exit after ${signal} and SIGKILL`)
  }
}

/** Runs `node --import tsx test/crash/<script> ...args` from the repository root. */
export const spawnScript = (name: string, script: string, args: ReadonlyArray<string>): Child => {
  const env = { ...process.env }
  // Jest runs with --experimental-vm-modules in NODE_OPTIONS: the children do not need it.
  delete env.NODE_OPTIONS
  const proc = spawn(process.execPath, ["--import", "tsx", join(CRASH_DIR, script), ...args], {
    cwd: ROOT,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  })
  return new Child(name, proc)
}

/** SIGKILLs every child still running and waits (bounded) for each to be gone. */
export const killAllChildren = async (): Promise<void> => {
  await Promise.all([...children].map((c) => c.stop("SIGKILL", 5_000).catch(() => {})))
}

/**
 * A free loopback port below the kernel's ephemeral range (32768 and up on Linux): a client
 * reconnecting while the hub is down never gets it as its own source port (a TCP
 * self-connect would then hold the port the hub restarts on). Falls back to 0 (any port).
 */
export const pickPort = async (random: () => number, host = "127.0.0.1"): Promise<number> => {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(random() * 12_000)
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once("error", () => resolve(false))
      s.listen(port, host, () => s.close(() => resolve(true)))
    })
    if (free) return port
  }
  return 0
}


/** Reads `--name value` flags and bare `--flag`s. */
export const parseFlags = (argv: ReadonlyArray<string>): { get(name: string): string | undefined; has(name: string): boolean; num(name: string, fallback: number): number } => {
  const values = new Map<string, string>()
  const bare = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith("--")) throw new Error(`Unexpected argument "${a}".`)
    const next = argv[i + 1]
    if (next === undefined || next.startsWith("--")) bare.add(a.slice(2))
    else {
      values.set(a.slice(2), next)
      i++
    }
  }
  return {
    get: (n) => values.get(n),
    has: (n) => bare.has(n) || values.has(n),
    num: (n, fallback) => {
      const v = values.get(n)
      if (v === undefined) return fallback
      const x = Number(v)
      if (!Number.isFinite(x)) throw new Error(`--${n} must be a number, not "${v}".`)
      return x
    },
  }
}

/**
 * In a child: exit when the parent goes away (stdin closes) or after `maxMs`, whichever is
 * first, so no child outlives its test run.
 */
export const exitWithParent = (maxMs: number, onExit: () => void = () => {}): void => {
  process.stdin.on("end", () => {
    onExit()
    process.exit(70)
  })
  process.stdin.on("error", () => process.exit(70))
  process.stdin.resume()
  const t = setTimeout(() => {
    process.stderr.write(`lived longer than --max-ms ${maxMs}: exiting\n`)
    onExit()
    process.exit(71)
  }, maxMs)
  t.unref()
}

/** One line on stdout (synchronous on a pipe on Linux: printed before any later SIGKILL). */
export const say = (...fields: ReadonlyArray<string | number>): void => {
  process.stdout.write(fields.join(" ") + "\n")
}

/** A seed from the environment (CANON_CRASH_SEED), else a fresh random one. */
export const seedFromEnv = (): number => {
  const s = process.env.CANON_CRASH_SEED
  if (s !== undefined && s !== "") {
    const n = Number(s)
    if (!Number.isInteger(n)) throw new Error(`CANON_CRASH_SEED must be an integer, not "${s}".`)
    return n
  }
  return Math.floor(Math.random() * 2 ** 31)
}

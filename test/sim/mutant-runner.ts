/**
 * Runs the simulator against a mutated engine: a temporary copy of the repository (core/,
 * adapters/, test/sim/, package.json, tsconfig.json; node_modules symlinked) with a mutant's
 * patches applied, and the sim CLI as a child process in it. Production code has no hooks.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { Mutant } from "./mutant-table.js"

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

/** What the simulator needs: the engine, the adapters, itself. */
const COPIED = ["core", "adapters", "test/sim", "test/support", "package.json", "tsconfig.json"]

/** A patch could not be applied: the engine moved; refresh the anchor in mutant-table.ts. */
export class AnchorMissing extends Error {
  constructor(readonly mutant: string, readonly file: string, readonly anchor: string, readonly count: number) {
    super(`mutant ${mutant}: anchor ${JSON.stringify(anchor)} occurs ${count} times in ${file} (needs exactly 1); refresh it in test/sim/mutant-table.ts`)
  }
}

/** Throws AnchorMissing unless each patch's anchor occurs exactly once in `repo`. */
export const checkAnchors = (mutant: Mutant, repo = REPO): void => {
  for (const patch of mutant.patches) {
    const count = readFileSync(join(repo, patch.file), "utf8").split(patch.anchor).length - 1
    if (count !== 1) throw new AnchorMissing(mutant.name, patch.file, patch.anchor, count)
  }
}

/** A copy of the repository, patched (no patches: the baseline). Remove it with `dispose`. */
export const prepareCopy = (mutant: Mutant | undefined, repo = REPO): { dir: string; dispose(): void } => {
  if (mutant !== undefined) checkAnchors(mutant, repo)
  const dir = mkdtempSync(join(tmpdir(), `canon-mutant-${mutant?.name ?? "baseline"}-`))
  const dispose = () => rmSync(dir, { recursive: true, force: true })
  try {
    for (const p of COPIED) cpSync(join(repo, p), join(dir, p), { recursive: true })
    symlinkSync(realpathSync(join(repo, "node_modules")), join(dir, "node_modules"), "dir")
    for (const patch of mutant?.patches ?? []) {
      const file = join(dir, patch.file)
      const text = readFileSync(file, "utf8")
      const count = text.split(patch.anchor).length - 1
      if (count !== 1) throw new AnchorMissing(mutant!.name, patch.file, patch.anchor, count)
      writeFileSync(file, text.replace(patch.anchor, () => patch.replacement))
    }
    return { dir, dispose }
  } catch (e) {
    dispose()
    throw e
  }
}

export interface SimRun {
  /** Seeds run (the last one failed, if any did). */
  readonly seedsRun: number
  /** The first failing seed and its first failure line. */
  readonly caught: { readonly seed: number; readonly line: string } | undefined
  /** Every failing seed (without `first`). */
  readonly failingSeeds: ReadonlyArray<number>
  readonly output: string
  readonly exitCode: number | null
  /** Stopped at its time limit (then a missing summary is not a crash of the simulator). */
  readonly timedOut: boolean
}

/** What a run printed, read: its failing seeds, the first one's line, how many seeds ran. */
const readRun = (output: string, exitCode: number | null, timedOut: boolean): SimRun => {
  const lines = output.split("\n")
  const failingSeeds: number[] = []
  let caught: SimRun["caught"]
  lines.forEach((l, i) => {
    const m = /^FAIL --seed (\d+)/.exec(l)
    if (m === null) return
    failingSeeds.push(Number(m[1]))
    caught ??= { seed: Number(m[1]), line: (lines[i + 1] ?? "").trim() }
  })
  const summary = /^sim: (\d+) seeds/m.exec(output)
  // A child that died before its summary (a crash of the simulator itself) counts as caught.
  if (summary === null && caught === undefined && !timedOut) caught = { seed: 0, line: `the simulator died (exit ${exitCode}): ${output.trim().split("\n").slice(-3).join(" | ")}` }
  const seedsRun = summary !== null ? Number(summary[1]) : lines.filter((l) => /^(FAIL|ok) --seed/.test(l)).length
  return { seedsRun, caught, failingSeeds, output, exitCode, timedOut }
}

/** The harness's own flags after a run's arguments. */
const harnessFlags = (options: { readonly first?: boolean }) => ["--quiet", ...(options.first ? ["--first"] : [])]

/** Runs `npm run sim` in `dir` with `args` (plus --quiet); with `first`, stops at the first failing seed. */
export const runSim = (dir: string, args: ReadonlyArray<string>, options: { readonly first?: boolean; readonly timeoutMs?: number } = {}): Promise<SimRun> =>
  new Promise((done) => {
    // What `npm run sim` (tsx's CLI) runs, with tsx as a loader in this one process: the CLI
    // runs the script in a grandchild, which a kill at the time limit left running to its end.
    const child = spawn(process.execPath, ["--import", "tsx", "test/sim/cli.ts", ...args, ...harnessFlags(options)], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (b: Buffer) => { output += b.toString() })
    child.stderr.on("data", (b: Buffer) => { output += b.toString() })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, options.timeoutMs ?? 30 * 60_000)
    child.on("close", (exitCode) => {
      clearTimeout(timer)
      done(readRun(output, exitCode, timedOut))
    })
  })

/** Ends a run's output in serve.ts (kept in step with its SERVE_END). */
const SERVE_END = "\u0001sim-serve end"

interface Served {
  readonly args: ReadonlyArray<string>
  readonly timeoutMs: number
  readonly done: (run: SimRun) => void
}

/** One serve.ts child and the run it is on, if any. */
class ServeChild {
  private readonly child: ChildProcess
  private current: { readonly job: Served; output: string; readonly timer: NodeJS.Timeout } | undefined
  private pending = ""
  private timedOut = false
  readonly exited: Promise<void>
  dead = false

  constructor(dir: string, private readonly idle: (child: ServeChild) => void) {
    // tsx as a loader in this one process, not its CLI (which runs the script in a child of
    // its own, and that child would outlive a kill at the time limit).
    this.child = spawn(process.execPath, ["--import", "tsx", "test/sim/serve.ts"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] })
    this.child.stdout!.on("data", (b: Buffer) => this.onStdout(b.toString()))
    this.child.stderr!.on("data", (b: Buffer) => { if (this.current !== undefined) this.current.output += b.toString() })
    // A child killed at its time limit, or that died, may not read what was written to it.
    this.child.stdin!.on("error", () => {})
    this.exited = new Promise((exited) => this.child.on("close", (code) => {
      this.dead = true
      const c = this.current
      this.current = undefined
      if (c !== undefined) {
        clearTimeout(c.timer)
        // What `npm run sim` would have printed before it died (or was stopped).
        c.job.done(readRun(c.output + this.pending, code, this.timedOut))
      }
      exited()
    }))
  }

  get busy(): boolean {
    return this.current !== undefined
  }

  start(job: Served): void {
    const timer = setTimeout(() => {
      this.timedOut = true
      this.child.kill("SIGKILL")
    }, job.timeoutMs)
    this.current = { job, output: "", timer }
    this.child.stdin!.write(`${JSON.stringify({ args: job.args })}\n`)
  }

  private onStdout(text: string): void {
    this.pending += text
    for (let nl = this.pending.indexOf("\n"); nl >= 0; nl = this.pending.indexOf("\n")) {
      const line = this.pending.slice(0, nl + 1)
      this.pending = this.pending.slice(nl + 1)
      const c = this.current
      if (c === undefined) continue
      if (!line.startsWith(SERVE_END)) {
        c.output += line
        continue
      }
      clearTimeout(c.timer)
      this.current = undefined
      c.job.done(readRun(c.output, Number(line.slice(SERVE_END.length).trim()), false))
      this.idle(this)
    }
  }

  close(): void {
    this.child.stdin!.end()
  }

  kill(): void {
    this.child.kill("SIGKILL")
  }
}

/**
 * Runs like `runSim`, in up to `children` long-lived simulator processes (serve.ts) instead of
 * one process per run: tsx's compile and the JIT's warm-up are paid once per child, not per
 * run. Each run prints what `npm run sim` prints with the same arguments (its replay lines
 * replay it in a process of its own); a run past its time limit, or whose child died, ends
 * that child, and the next run starts a fresh one. `close` when done.
 */
export class SimServer {
  private readonly children: ServeChild[] = []
  private readonly queue: Served[] = []

  constructor(private readonly dir: string, private readonly maxChildren = 1) {}

  run(args: ReadonlyArray<string>, options: { readonly first?: boolean; readonly timeoutMs?: number } = {}): Promise<SimRun> {
    return new Promise((done) => {
      this.queue.push({ args: [...args, ...harnessFlags(options)], timeoutMs: options.timeoutMs ?? 30 * 60_000, done })
      this.dispatch()
    })
  }

  private dispatch(): void {
    for (let i = this.children.length - 1; i >= 0; i--) if (this.children[i]!.dead) this.children.splice(i, 1)
    while (this.queue.length > 0) {
      let child = this.children.find((c) => !c.busy)
      if (child === undefined && this.children.length < this.maxChildren) {
        child = new ServeChild(this.dir, () => this.dispatch())
        this.children.push(child)
        void child.exited.then(() => this.dispatch())
      }
      if (child === undefined) return
      child.start(this.queue.shift()!)
    }
  }

  /** Ends the children once their runs are done (runs still queued are not started); resolves when they have exited. */
  async close(graceMs = 10_000): Promise<void> {
    this.queue.length = 0
    const children = this.children.splice(0)
    for (const c of children) if (!c.busy) c.close()
    const timer = setTimeout(() => { for (const c of children) c.kill() }, graceMs)
    await Promise.all(children.map(async (c) => {
      while (c.busy && !c.dead) await new Promise((r) => setTimeout(r, 100))
      c.close()
      await c.exited
    }))
    clearTimeout(timer)
  }
}

export interface MutantResult {
  readonly mutant: Mutant
  readonly status: "caught" | "survived" | "needs engine support" | "anchor missing"
  readonly seedsRun: number
  readonly line: string
}

/** Applies a mutant and runs seeds 1..seeds (minus `skip`) until one fails. */
export const runMutant = async (mutant: Mutant, simArgs: ReadonlyArray<string>, seeds: number, skip: ReadonlyArray<number> = [], timeoutMs?: number): Promise<MutantResult> => {
  let copy: { dir: string; dispose(): void }
  try {
    copy = prepareCopy(mutant)
  } catch (e) {
    if (!(e instanceof AnchorMissing)) throw e
    return { mutant, status: mutant.needsEngineSupport ? "needs engine support" : "anchor missing", seedsRun: 0, line: e.message }
  }
  try {
    const args = [...simArgs, ...(mutant.simArgs ?? []), "--seeds", String(seeds), ...(skip.length > 0 ? ["--skip", skip.join(",")] : [])]
    const run = await runSim(copy.dir, args, { first: true, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
    if (run.caught === undefined) return { mutant, status: "survived", seedsRun: run.seedsRun, line: run.timedOut ? "stopped at the time limit" : "" }
    return { mutant, status: "caught", seedsRun: run.seedsRun, line: `--seed ${run.caught.seed}: ${run.caught.line}` }
  } finally {
    copy.dispose()
  }
}

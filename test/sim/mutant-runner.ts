/**
 * Runs the simulator against a mutated engine: a temporary copy of the repository (core/,
 * adapters/, test/sim/, package.json, tsconfig.json; node_modules symlinked) with a mutant's
 * patches applied, and the sim CLI as a child process in it. Production code has no hooks.
 */
import { spawn } from "node:child_process"
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

/** Runs `npm run sim` in `dir` with `args` (plus --quiet); with `first`, stops at the first failing seed. */
export const runSim = (dir: string, args: ReadonlyArray<string>, options: { readonly first?: boolean; readonly timeoutMs?: number } = {}): Promise<SimRun> =>
  new Promise((done) => {
    const tsx = join(dir, "node_modules", "tsx", "dist", "cli.mjs")
    const child = spawn(process.execPath, [tsx, "test/sim/cli.ts", ...args, "--quiet", ...(options.first ? ["--first"] : [])], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
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
      done({ seedsRun, caught, failingSeeds, output, exitCode, timedOut })
    })
  })

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

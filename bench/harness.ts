/**
 * The benchmark harness's helpers: the shape every suite module exports, timing (one full
 * GC, a warm-up, then several measured runs), median/min/max, the printed table, and the
 * results file with the machine it ran on. Suites only measure; run.ts drives them.
 *
 * A suite is a module `bench/<name>.ts` exporting `suite: Suite`; it returns figures, each
 * the summary of several runs (one number per run: a rate or a time), optionally with a goal.
 */
import { execFileSync } from "node:child_process"
import { readFileSync, renameSync, mkdirSync, writeFileSync } from "node:fs"
import os from "node:os"
import { fileURLToPath } from "node:url"

export interface SuiteContext {
  /** Fewer runs and a shorter warm-up (same work per run): the whole run takes about three minutes on two cores. */
  readonly quick: boolean
  /** Progress lines (the table is printed at the end). */
  log(line: string): void
}

export interface Suite {
  readonly name: string
  readonly title: string
  run(ctx: SuiteContext): Promise<Figure[]>
}

/** A target a figure's median must meet. */
export interface Goal {
  readonly op: ">=" | "<="
  readonly value: number
}

export interface Figure {
  readonly id: string
  readonly label: string
  readonly unit: string
  readonly median: number
  readonly min: number
  readonly max: number
  /** One value per measured run (warm-up runs excluded). */
  readonly samples: ReadonlyArray<number>
  readonly goal?: Goal
  readonly note?: string
}

/**
 * Closes a hub that runs on a VirtualRuntime: closing waits for work the hub scheduled on its
 * clock (a snapshot after enough entries), and virtual time moves only when it is run.
 */
export const closeOnVirtualTime = async (hub: { close(): Promise<void> }, runtime: { run(o: { until: () => boolean }): Promise<number> }): Promise<void> => {
  let closed = false
  const closing = hub.close().then(() => void (closed = true))
  await runtime.run({ until: () => closed })
  await closing
}

/** Throws when a run did not do the work it claims: a broken path must not look fast. */
export const check = (ok: boolean, what: string): void => {
  if (!ok) throw new Error(`benchmark sanity check failed: ${what}`)
}

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Summarizes one value per run into a figure. */
export const figure = (
  id: string, label: string, unit: string, samples: ReadonlyArray<number>, more: { goal?: Goal; note?: string } = {},
): Figure => ({ id, label, unit, median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples, ...more })

/** PASS / MISS against the goal, or undefined when the figure has none. */
export const verdict = (f: Figure): "PASS" | "MISS" | undefined =>
  f.goal === undefined ? undefined : (f.goal.op === ">=" ? f.median >= f.goal.value : f.median <= f.goal.value) ? "PASS" : "MISS"

const gc = (globalThis as { gc?: () => void }).gc
export const hasGc = gc !== undefined

/** A full GC when node runs with --expose-gc; nothing otherwise. */
export const collectGarbage = (): void => gc?.()

/** Milliseconds, sub-microsecond resolution. */
export const now = (): number => performance.now()

/** Warm-up runs (results dropped) until both counts are reached, then the measured runs. */
export interface Plan {
  readonly warmup: number
  /** Keep warming up until this much time went into it: the JIT settles after work, not after calls. */
  readonly warmupMs: number
  readonly runs: number
}

/**
 * Calls `run` for the warm-up, then `plan.runs` times; each call measures one run and returns
 * its value. One full GC first, so a figure does not pay for the previous one's garbage; none
 * between runs: a forced GC throws away optimized code of functions called only a few times
 * per run (the authority's commitBatch ran 3x slower after each forced GC), and each run
 * should pay its own share of ordinary collection anyway.
 */
export const sample = async (plan: Plan, run: () => number | Promise<number>): Promise<number[]> => {
  collectGarbage()
  const started = now()
  for (let i = 0; i < plan.warmup || now() - started < plan.warmupMs; i++) await run()
  const out: number[] = []
  for (let i = 0; i < plan.runs; i++) out.push(await run())
  return out
}

/** 3 significant digits; thousands separated at and above 1000. */
export const formatNumber = (v: number): string => {
  if (!Number.isFinite(v)) return String(v)
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : v.toPrecision(3)
}

export const formatTable = (figures: ReadonlyArray<Figure>): string => {
  const head = ["figure", "median", "min", "max", "unit", "goal", ""]
  const rows = figures.map((f) => [
    f.label, formatNumber(f.median), formatNumber(f.min), formatNumber(f.max), f.unit,
    f.goal === undefined ? "" : `${f.goal.op} ${f.goal.value.toLocaleString("en-US")}`, verdict(f) ?? "",
  ])
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const line = (r: string[]) => r.map((cell, c) => (c >= 1 && c <= 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const root = fileURLToPath(new URL("../", import.meta.url))

const packageVersion = (name: string): string | null => {
  try {
    return (JSON.parse(readFileSync(`${root}node_modules/${name}/package.json`, "utf8")) as { version: string }).version
  } catch {
    return null
  }
}

const git = (...args: string[]): string | null => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return null
  }
}

/** Where and with what the figures were measured. */
export const environment = () => ({
  date: new Date().toISOString(),
  machine: {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  },
  node: process.version,
  v8: process.versions.v8,
  /** The loader matters: tsx transpiles with esbuild's keepNames, which costs on every closure made. */
  execArgv: process.execArgv,
  packages: Object.fromEntries(["effect", "yjs", "@automerge/automerge", "level", "ws"].map((n) => [n, packageVersion(n)])),
  commit: git("rev-parse", "--short", "HEAD"),
  /** Tracked files changed since that commit (the figures measure the working tree). */
  changed: git("diff", "--name-only", "HEAD")?.split("\n").filter(Boolean) ?? null,
})

/** Writes bench/results/<file>.json (through a .tmp file, so a crash never leaves half a file). */
export const writeResults = (file: string, body: unknown): string => {
  const dir = `${root}bench/results/`
  mkdirSync(dir, { recursive: true })
  const path = `${dir}${file}.json`
  const round = (_: string, v: unknown) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v)
  writeFileSync(`${path}.tmp`, JSON.stringify(body, round, 2) + "\n")
  renameSync(`${path}.tmp`, path)
  return path
}

/** A suite's figures, each logged as it lands. */
export const figureLog = (ctx: SuiteContext): { readonly figures: Figure[]; readonly add: (f: Figure) => void } => {
  const figures: Figure[] = []
  const add = (f: Figure): void => {
    figures.push(f)
    ctx.log(`${f.label}: ${formatNumber(f.median)} ${f.unit}${f.samples.length > 1 ? ` (median of ${f.samples.length})` : ""}`)
  }
  return { figures, add }
}

/**
 * Regenerates bench/README.md from every bench/results/<suite>.json: where and with what each
 * suite was measured (machine, load, Node, package versions, date, commit), then its figures
 * with median, min and max. The `peers` suite becomes one table per workload with a column
 * per system and the Canon / Yjs and Canon / Automerge ratios (figure ids
 * `<workload>.<metric>.<system>`, see bench/peers-common.ts).
 *
 * A suite with no full results yet is shown from its --quick results, marked as such.
 * `npm run bench` calls this at the end; `npx tsx bench/report.ts` runs it alone.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs"
import { fileURLToPath, pathToFileURL } from "node:url"
import { formatNumber, verdict, type Figure } from "./harness.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const resultsDir = `${root}bench/results/`
const readmePath = `${root}bench/README.md`

interface Results {
  readonly suite: string
  readonly quick: boolean
  readonly seconds: number
  readonly date: string
  readonly machine: { cpu: string; cores: number; memoryBytes: number; platform: string; loadAverage?: number[] }
  readonly node: string
  readonly v8?: string
  readonly packages?: Record<string, string | null>
  readonly commit?: string | null
  readonly changed?: string[] | null
  readonly figures: Figure[]
}

const SUITE_ORDER = ["core", "storage", "wire", "peers"]

const WORKLOADS: Record<string, string> = {
  board: "1. Board ops",
  text: "2. Text trace",
  counter: "3. Contended counter",
  coldstart: "4. Cold start",
}

const SYSTEM_COLUMNS = ["canon", "yjs", "automerge", "canon/yjs", "canon/automerge"] as const
const SYSTEM_HEADS = ["Canon", "Yjs", "Automerge", "Canon / Yjs", "Canon / Automerge"]

const cell = (text: string): string => text.replace(/\|/g, "\\|")

/** "median" alone when every run gave the same value, else "median (min – max)". */
const spread = (f: Figure): string =>
  f.min === f.max ? formatNumber(f.median) : `${formatNumber(f.median)} (${formatNumber(f.min)} – ${formatNumber(f.max)})`

const loadSuites = (): Results[] => {
  if (!existsSync(resultsDir)) return []
  const files = readdirSync(resultsDir).filter((f) => f.endsWith(".json"))
  const byName = new Map<string, Results>()
  for (const f of files) {
    let r: Results
    try {
      r = JSON.parse(readFileSync(`${resultsDir}${f}`, "utf8")) as Results
    } catch {
      continue
    }
    if (typeof r.suite !== "string" || !Array.isArray(r.figures)) continue
    const had = byName.get(r.suite)
    // Full results win over --quick ones.
    if (had === undefined || (had.quick && !r.quick)) byName.set(r.suite, r)
  }
  const rank = (n: string) => (SUITE_ORDER.includes(n) ? SUITE_ORDER.indexOf(n) : SUITE_ORDER.length)
  return [...byName.values()].sort((a, b) => rank(a.suite) - rank(b.suite) || a.suite.localeCompare(b.suite))
}

const environmentLine = (r: Results): string => {
  const m = r.machine
  const parts = [
    `measured ${r.date.replace("T", " ").replace(/\.\d+Z$/, " UTC")}`,
    `${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.platform}`,
    ...(m.loadAverage !== undefined ? [`load average ${m.loadAverage.join(" / ")} (1 / 5 / 15 min, when the run started)`] : []),
    `Node ${r.node}${r.v8 !== undefined ? ` (V8 ${r.v8})` : ""}`,
  ]
  const pkgs = Object.entries(r.packages ?? {}).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`)
  if (pkgs.length > 0) parts.push(pkgs.join(", "))
  if (r.commit) parts.push(`commit ${r.commit}${r.changed && r.changed.length > 0 ? ` + ${r.changed.length} changed file(s)` : ""}`)
  parts.push(`${r.seconds} s${r.quick ? ", **--quick run** (no full results yet: small sizes, few runs)" : ""}`)
  return parts.join("; ")
}

const plainTable = (figures: ReadonlyArray<Figure>): string[] => {
  const out = ["| figure | median | min | max | unit | goal | |", "|---|--:|--:|--:|---|---|---|"]
  for (const f of figures) {
    const goal = f.goal === undefined ? "" : `${f.goal.op} ${f.goal.value.toLocaleString("en-US")}`
    out.push(`| ${cell(f.label)} | ${formatNumber(f.median)} | ${formatNumber(f.min)} | ${formatNumber(f.max)} | ${f.unit} | ${goal} | ${verdict(f) ?? ""} |`)
  }
  const notes = figures.filter((f) => f.note !== undefined)
  if (notes.length > 0) {
    out.push("")
    for (const f of notes) out.push(`- ${cell(f.label)}: ${f.note}`)
  }
  return out
}

const ID = /^([a-z][\w-]*)\.([\w-]+)\.(canon|yjs|automerge|canon\/yjs|canon\/automerge)$/

/** The metric's name: the label without its workload prefix and its system suffix. */
const metricLabel = (label: string): string =>
  label.replace(/: (Canon|Yjs|Automerge)( \/ (Yjs|Automerge))?$/, "").replace(/^\d+\.\s*[\w -]+?:\s*/, "")

const peersTables = (figures: ReadonlyArray<Figure>): string[] => {
  const workloads = new Map<string, Map<string, Map<string, Figure>>>()
  const other: Figure[] = []
  for (const f of figures) {
    const m = ID.exec(f.id)
    if (m === null) {
      other.push(f)
      continue
    }
    const [, workload, metric, who] = m as unknown as [string, string, string, string]
    let w = workloads.get(workload)
    if (w === undefined) workloads.set(workload, (w = new Map()))
    let row = w.get(metric)
    if (row === undefined) w.set(metric, (row = new Map()))
    row.set(who, f)
  }
  const out: string[] = [
    "Each cell: median (min – max) over the measured runs; one number when there was one run or",
    "every run agreed. Ratios are Canon / peer computed per run, back to back in the same",
    "process (then the median of those): below 1 Canon is faster or smaller, above 1 slower or",
    "larger. Times are wall clock unless the row says CPU (process CPU, all threads: the",
    "better guide on a shared machine).",
    "",
  ]
  for (const key of Object.keys(WORKLOADS)) {
    const w = workloads.get(key)
    out.push(`### ${WORKLOADS[key]}`, "")
    if (w === undefined) {
      out.push(key === "text"
        ? "No figures: the text trace (../shared/traces/automerge-paper.json.gz) was missing when this ran."
        : "No figures in these results.", "")
      continue
    }
    out.push(`| metric | unit | ${SYSTEM_HEADS.join(" | ")} |`, `|---|---|${SYSTEM_COLUMNS.map(() => "--:").join("|")}|`)
    const notes: string[] = []
    for (const [, row] of w) {
      const any = row.get("canon") ?? row.get("yjs") ?? row.get("automerge") ?? [...row.values()][0]!
      // A ratio of a figure at or below zero (a memory delta lost in noise) means nothing.
      const meaningless = (["canon", "yjs", "automerge"] as const).some((c) => (row.get(c)?.median ?? 1) <= 0)
      const cells = SYSTEM_COLUMNS.map((c) => {
        const f = row.get(c)
        if (f === undefined) return ""
        return c.includes("/") && meaningless ? "n/a" : spread(f)
      })
      const label = metricLabel(any.label)
      out.push(`| ${cell(label)} | ${any.unit} | ${cells.join(" | ")} |`)
      const note = [...row.values()].find((f) => f.note !== undefined)?.note
      if (note !== undefined) notes.push(`- ${cell(label)}: ${note}`)
    }
    out.push("")
    if (notes.length > 0) out.push(...notes, "")
  }
  for (const [key] of workloads) if (!(key in WORKLOADS)) out.push(`(figures of workload "${key}" are in the JSON only)`, "")
  if (other.length > 0) out.push(...plainTable(other), "")
  return out
}

/** Writes bench/README.md from the results; returns its path. */
export const writeReadme = (): string => {
  const suites = loadSuites()
  const out: string[] = [
    "# Benchmarks",
    "",
    "<!-- Generated by bench/report.ts from bench/results/*.json: do not edit by hand. -->",
    "",
    "`npm run bench` runs every suite (`-- --suite NAME` one of them, `-- --quick` a small",
    "version of everything in about three minutes) and regenerates this file from",
    "`bench/results/<suite>.json`. Figures come from a shared machine: compare ratios measured",
    "in the same run rather than absolute times across runs.",
    "",
  ]
  if (suites.length === 0) out.push("No results yet: run `npm run bench`.", "")
  for (const r of suites) {
    out.push(`## ${r.suite}`, "", environmentLine(r), "")
    out.push(...(r.suite === "peers" ? peersTables(r.figures) : plainTable(r.figures)), "")
  }
  writeFileSync(readmePath, out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n")
  return readmePath
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`wrote ${writeReadme()}`)
}

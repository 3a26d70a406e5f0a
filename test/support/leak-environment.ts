/**
 * Jest's node environment, plus a record of what each test file leaves running. One timer,
 * socket, server or child process a file forgets keeps its process from exiting (in band: the
 * whole run, and `.ci/run`'s watchdog can then only say that something did; with workers,
 * jest force-exits the worker). This environment names it.
 *
 * - Timers: the files' `setTimeout` and `setInterval` are wrapped to remember where each was
 *   set, until it fires or is cleared. A timer a file sets after its teardown is a leak on
 *   its face (a retry loop nobody stopped).
 * - Immediates: `setImmediate` is wrapped to remember which file set each, until it runs or is
 *   cleared. One set after its file's teardown is work in slices that outlived the file
 *   (a decode nobody stopped): it is named on stderr at once, once per file, and the next
 *   file's checks (test/closed-quiet.test.ts) can tell it is not theirs.
 * - Handles (sockets, servers, child processes): those alive at a file's teardown that were
 *   not alive at its setup are put down to that file.
 * - If the process is still alive `REPORT_AFTER_MS` after the last teardown (the next file
 *   would have started by then), the environment prints what is still open and which file
 *   left it, on stderr. The check's timer is unref'd: it never keeps the process alive.
 */
import { TestEnvironment as NodeEnvironment } from "jest-environment-node"

type EnvironmentClass = typeof NodeEnvironment

/** Jest starts the next file at once; `.ci/run` gives up 60 s after the results. */
const REPORT_AFTER_MS = Number(process.env.CANON_LEAK_REPORT_MS ?? 15_000)

/** A timer a test file set, until it fires or is cleared. */
export interface TimerRecord {
  readonly file: string
  readonly kind: "timeout" | "interval"
  readonly ms: number
  /** When it was set (Date.now()). */
  readonly setAt: number
  /** Where it was set. */
  readonly at: Error
  readonly afterTeardown: boolean
}

/** Shared by every file's environment in one process (the run in band, or one worker). */
interface Registry {
  readonly timers: Map<NodeJS.Timeout, TimerRecord>
  /** Immediates set through a file's global and not yet run or cleared, by the file. */
  readonly immediates: Map<NodeJS.Immediate, string>
  /** Files already named for an immediate set after their teardown. */
  readonly lateImmediates: Set<string>
  readonly handleFiles: WeakMap<object, string>
  watchdog: NodeJS.Timeout | undefined
}

const KEY = Symbol.for("canon.test.leaks")
const registry: Registry = ((globalThis as Record<symbol, unknown>)[KEY] as Registry | undefined) ??
  ((globalThis as Record<symbol, unknown>)[KEY] = { timers: new Map(), immediates: new Map(), lateImmediates: new Set(), handleFiles: new WeakMap(), watchdog: undefined } as Registry)

const activeHandles = (): object[] => (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles()

const isRefed = (h: object): boolean => {
  const ref = (h as { hasRef?: () => boolean }).hasRef
  return ref === undefined || ref.call(h)
}

/** Armed: neither fired nor cleared (one cleared by node:timers' own clearTimeout is destroyed). */
const isArmed = (timer: NodeJS.Timeout): boolean => !(timer as unknown as { _destroyed: boolean })._destroyed

/** A line a person can act on: what the handle is and where it points. */
const describeHandle = (h: object): string => {
  const any = h as Record<string, any>
  const name = h.constructor?.name ?? "handle"
  if (name === "ChildProcess") return `child process ${any.pid} (${(any.spawnargs as string[] | undefined)?.join(" ").slice(0, 160)})`
  if (name === "Server") {
    const a = any.address?.()
    return `server listening on ${a === null || a === undefined ? "?" : typeof a === "string" ? a : `${a.address}:${a.port}`}`
  }
  if (name === "Socket") return `socket ${any.localAddress ?? "?"}:${any.localPort ?? "?"} -> ${any.remoteAddress ?? "?"}:${any.remotePort ?? "?"}`
  return name
}

/**
 * What a test file may ask of this environment, on its global under
 * `Symbol.for("canon.test.leak-tools")` (test/closed-quiet.test.ts): the timers test code set and
 * still armed, and the process's handles. (A file cannot import this module: it is loaded
 * outside the file's context, and a copy inside would keep its own records.)
 */
export interface LeakTools {
  /** Timers set since `since` (Date.now()) that are still armed, each with its record. */
  armedSince(since: number): Array<{ readonly timer: NodeJS.Timeout; readonly record: TimerRecord }>
  /** The test file whose global set this immediate, while it waits to run; undefined for one set otherwise (node:timers, Node itself). */
  immediateFile(immediate: object): string | undefined
  activeHandles(): object[]
  isRefed(h: object): boolean
  describeHandle(h: object): string
}

const tools: LeakTools = {
  armedSince: (since) => [...registry.timers].filter(([t, r]) => r.setAt >= since && isArmed(t)).map(([timer, record]) => ({ timer, record })),
  immediateFile: (immediate) => registry.immediates.get(immediate as NodeJS.Immediate),
  activeHandles, isRefed, describeHandle,
}

/** The stack of where a timer was set, without this file's frames. */
const whereSet = (at: Error): string =>
  (at.stack ?? "").split("\n").slice(1).filter((l) => !l.includes("leak-environment")).slice(0, 6).map((l) => `      ${l.trim()}`).join("\n")

const report = (): void => {
  const lines: string[] = []
  for (const [timer, r] of registry.timers) {
    if (!isArmed(timer) || !timer.hasRef()) continue
    lines.push(`  ${r.kind} of ${r.ms} ms set by ${r.file}${r.afterTeardown ? " after its teardown" : ""}:\n${whereSet(r.at)}`)
  }
  for (const h of activeHandles()) {
    const file = registry.handleFiles.get(h)
    if (file === undefined) continue
    if (!isRefed(h)) continue
    lines.push(`  ${describeHandle(h)}, left open by ${file}`)
  }
  if (lines.length === 0) return
  process.stderr.write(`\nStill open ${REPORT_AFTER_MS / 1000} s after the last test file finished (this keeps jest from exiting):\n${lines.join("\n")}\n`)
}

const withSymbols = <F extends object>(wrapper: F, original: object): F => {
  for (const s of Object.getOwnPropertySymbols(original)) Object.defineProperty(wrapper, s, Object.getOwnPropertyDescriptor(original, s)!)
  return wrapper
}

export default class LeakEnvironment extends NodeEnvironment {
  private readonly file: string
  private tornDown = false
  private handlesAtSetup = new Set<object>()

  constructor(config: ConstructorParameters<EnvironmentClass>[0], context: ConstructorParameters<EnvironmentClass>[1]) {
    super(config, context)
    this.file = context.testPath.replace(`${config.projectConfig.rootDir}/`, "")
    const g = this.global as unknown as Record<string, unknown>
    ;(this.global as unknown as Record<symbol, unknown>)[Symbol.for("canon.test.leak-tools")] = tools
    const track = (kind: TimerRecord["kind"], set: typeof setTimeout) =>
      (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
        const timer: NodeJS.Timeout = set((...a: unknown[]) => {
          if (kind === "timeout") registry.timers.delete(timer)
          fn(...a)
        }, ms, ...args)
        registry.timers.set(timer, { file: this.file, kind, ms: ms ?? 0, setAt: Date.now(), at: new Error(), afterTeardown: this.tornDown })
        return timer
      }
    const untrack = (clear: (t: NodeJS.Timeout | undefined) => void) => (t: NodeJS.Timeout | undefined): void => {
      if (t !== undefined) registry.timers.delete(t)
      clear(t)
    }
    const immediate = (fn: (...a: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate => {
      const im: NodeJS.Immediate = setImmediate((...a: unknown[]) => {
        registry.immediates.delete(im)
        fn(...a)
      }, ...args)
      registry.immediates.set(im, this.file)
      if (this.tornDown && !registry.lateImmediates.has(this.file)) {
        registry.lateImmediates.add(this.file)
        process.stderr.write(`\nAn immediate was set after ${this.file} finished (work that outlived its file: a loop in slices nobody stopped?):\n${whereSet(new Error())}\n`)
      }
      return im
    }
    // Keep util.promisify's custom forms of the originals.
    g.setTimeout = withSymbols(track("timeout", setTimeout), setTimeout)
    g.setInterval = withSymbols(track("interval", setInterval as unknown as typeof setTimeout), setInterval)
    g.clearTimeout = untrack(clearTimeout)
    g.clearInterval = untrack(clearInterval)
    g.setImmediate = withSymbols(immediate, setImmediate)
    g.clearImmediate = (im: NodeJS.Immediate | undefined): void => {
      if (im !== undefined) registry.immediates.delete(im)
      clearImmediate(im)
    }
  }

  override async setup(): Promise<void> {
    if (registry.watchdog !== undefined) clearTimeout(registry.watchdog)
    registry.watchdog = undefined
    this.handlesAtSetup = new Set(activeHandles())
    await super.setup()
  }

  override async teardown(): Promise<void> {
    this.tornDown = true
    for (const h of activeHandles()) if (!this.handlesAtSetup.has(h) && !registry.handleFiles.has(h)) registry.handleFiles.set(h, this.file)
    this.handlesAtSetup.clear()
    // Fired timers of this file were removed as they fired; cleared ones when cleared.
    registry.watchdog = setTimeout(report, REPORT_AFTER_MS).unref()
    await super.teardown()
  }
}

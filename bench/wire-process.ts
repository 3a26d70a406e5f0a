/**
 * Servers of the `wire` suite in their own processes: the parent bundles a bench/ module with
 * esbuild into one plain ES module (packages left external, under
 * node_modules/.cache/canon-bench/ so they resolve as from the project) and forks it with
 * plain node (no tsx loader in the measured process); requests and answers go over the IPC
 * channel. The child side is `serveParent`.
 */
import { fork, type ChildProcess } from "node:child_process"
import { mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { deadline } from "./wire-util.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const bundles = new Map<string, Promise<string>>()

/** `script` (relative to bench/) bundled once per process; resolves to the bundle's path. */
export const bundled = (script: string): Promise<string> => {
  let p = bundles.get(script)
  if (p === undefined) {
    const entry = fileURLToPath(new URL(script, import.meta.url))
    const outDir = `${root}node_modules/.cache/canon-bench/`
    const outfile = `${outDir}${script.replace(/^.*\//, "").replace(/\.ts$/, "")}.mjs`
    mkdirSync(outDir, { recursive: true })
    p = build({ entryPoints: [entry], outfile, bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", logLevel: "error" }).then(() => outfile)
    bundles.set(script, p)
  }
  return p
}

/** A server process driven over IPC. */
export class ChildServer {
  private readonly waiting = new Map<number, (v: unknown) => void>()
  private nextId = 1
  private stderr = ""
  private exited: string | undefined

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000)
    })
    child.on("message", (m: { id: number; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id)
      this.waiting.delete(m.id)
      w?.(m.error !== undefined ? new Error(`${this.what}: ${m.error}`) : m.value)
    })
    child.on("exit", (code, signal) => {
      this.exited = `exited with ${code ?? signal}`
      for (const w of this.waiting.values()) w(new Error(`${this.what} ${this.exited}\n${this.stderr}`))
      this.waiting.clear()
    })
  }

  private get what(): string {
    return `child ${this.child.pid ?? "?"}`
  }

  /** Starts `script` with `spec` (its argv[2], JSON) and `execArgv`; resolves once it is ready. */
  static async start(script: string, spec: Record<string, unknown>, execArgv: ReadonlyArray<string> = []): Promise<{ child: ChildServer; ready: Record<string, unknown> }> {
    const child = new ChildServer(fork(await bundled(script), [JSON.stringify(spec)], {
      execArgv: ["--expose-gc", ...execArgv],
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    }))
    const ready = (await child.call("ready", {}, 60_000)) as Record<string, unknown>
    return { child, ready }
  }

  call(op: string, args: Record<string, unknown> = {}, ms = 60_000): Promise<unknown> {
    if (this.exited !== undefined) return Promise.reject(new Error(`${this.what} ${this.exited}\n${this.stderr}`))
    const id = this.nextId++
    const p = new Promise<unknown>((resolve, reject) => {
      this.waiting.set(id, (v) => (v instanceof Error ? reject(v) : resolve(v)))
    })
    this.child.send({ id, op, ...args })
    return deadline(p, ms, `${this.what} "${op}"`)
  }

  /** The child's process CPU (user + system, all its threads) in ms since it started. */
  async cpuMs(): Promise<number> {
    return ((await this.call("cpu")) as { ms: number }).ms
  }

  /** Asks the child to close its servers and exit (a --cpu-prof child writes its profile then). */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()))
    this.child.send({ id: 0, op: "exit" })
    await deadline(gone, 20_000, `${this.what} to exit`).catch(() => {
      this.child.kill("SIGKILL")
    })
  }
}

type Handler = (args: Record<string, unknown>) => Promise<unknown> | unknown

/** The child side: answers the parent's requests; `close` runs before the process exits. */
export const serveParent = (handlers: Record<string, Handler>): void => {
  const all: Record<string, Handler> = {
    ...handlers,
    cpu: () => {
      const c = process.cpuUsage()
      return { ms: (c.user + c.system) / 1000 }
    },
  }
  const exit = () => {
    void Promise.resolve(handlers.close?.({})).finally(() => process.exit(0))
  }
  process.on("message", (m: { id: number; op: string } & Record<string, unknown>) => {
    if (m.op === "exit") return exit()
    const h = all[m.op]
    if (h === undefined) {
      process.send!({ id: m.id, error: `unknown request ${m.op}` })
      return
    }
    Promise.resolve()
      .then(() => h(m))
      .then(
        (value) => process.send!({ id: m.id, value }),
        (e: unknown) => process.send!({ id: m.id, error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) }),
      )
  })
  process.on("disconnect", exit)
}

/**
 * While `canon serve` starts (its port is bound before the hub is ready: LevelDB opens, the
 * CRDT engines load), a WebSocket upgrade is accepted and closed with 1013, never refused
 * over HTTP: a stock automerge-repo client throws a refused upgrade as an uncaught exception
 * (adapters/ws/starting.ts). Probed against the real CLI in a child process.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WebSocket } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { deadPort, sleep, until } from "./support/ws.js"

type Answer = { kind: "refused-tcp" } | { kind: "http"; status: number } | { kind: "closed"; code: number; reason: string } | { kind: "open" }

/** One upgrade attempt: what the server did with it (bounded: 2 s). */
const probe = (url: string): Promise<Answer> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => { ws.terminate(); resolve({ kind: "open" }) }, 2_000)
    let opened = false
    ws.on("unexpected-response", (_req, res) => {
      clearTimeout(timer)
      resolve({ kind: "http", status: res.statusCode ?? 0 })
      ws.terminate()
    })
    ws.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (e.code === "ECONNREFUSED") resolve({ kind: "refused-tcp" })
    })
    ws.on("open", () => {
      opened = true
      // The real endpoint waits for a hello: that is the ready hub.
      setTimeout(() => { if (ws.readyState === WebSocket.OPEN) { clearTimeout(timer); ws.terminate(); resolve({ kind: "open" }) } }, 200)
    })
    ws.on("close", (code, reason) => {
      clearTimeout(timer)
      resolve({ kind: "closed", code, reason: reason.toString() })
    })
  })

let dir: string
let child: ChildProcess | undefined
const repos: Repo[] = []
const adapters: WebSocketClientAdapter[] = []
const stockRepo = (port: number): Repo => {
  const adapter = new WebSocketClientAdapter(`ws://127.0.0.1:${port}/automerge`, 50)
  adapters.push(adapter)
  const repo = new Repo({ network: [adapter] })
  repos.push(repo)
  return repo
}

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "canon-starting-")) })
afterEach(async () => {
  // A stock adapter throws if shut down mid-connect: let each finish (re)connecting first.
  await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === WebSocket.OPEN), 10_000)
  for (const r of repos.splice(0)) await r.shutdown().catch(() => {})
  adapters.splice(0)
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child!.once("exit", () => r()))
    child.kill("SIGTERM")
    await Promise.race([exited, sleep(10_000)])
    child.kill("SIGKILL")
  }
  child = undefined
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

test("canon serve closes upgrades with 1013 while it starts (never an HTTP refusal); a stock automerge-repo client then connects", async () => {
  // Free now; canon serve binds it.
  const port = await deadPort()
  const uncaught: unknown[] = []
  const onUncaught = (e: unknown) => { uncaught.push(e) }
  process.on("uncaughtException", onUncaught)
  try {
    let out = ""
    child = spawn(process.execPath, ["apps/cli/canon.mjs", "serve", "--data", join(dir, "data"), "--port", String(port), "--host", "127.0.0.1"], {
      cwd: process.cwd(), env: { ...process.env, NODE_OPTIONS: "" },
    })
    child.stdout!.on("data", (d: Buffer) => { out += d.toString() })
    child.stderr!.on("data", (d: Buffer) => { out += d.toString() })
    const ready = () => /Canon hub on http/.test(out)

    // Probe the Canon endpoint and the automerge one from before the port is bound until the banner.
    const answers: Array<{ path: string; answer: Answer }> = []
    let repo: Repo | undefined
    const started = Date.now()
    while (!ready() && Date.now() - started < 30_000 && answers.length < 5_000) {
      for (const path of ["/sync", "/automerge"]) {
        const answer = await probe(`ws://127.0.0.1:${port}${path}`)
        answers.push({ path, answer })
        // A stock client, started as soon as the port answers (inside the starting window if it is open).
        if (repo === undefined && answer.kind !== "refused-tcp") repo = stockRepo(port)
      }
      await sleep(5)
    }
    expect(ready()).toBe(true)
    const refusedOverHttp = answers.filter((a) => a.answer.kind === "http")
    expect(refusedOverHttp).toEqual([])
    // The window was hit (else the test proves nothing): closed with 1013 and the reason.
    const starting = answers.filter((a) => a.answer.kind === "closed" && a.answer.code === 1013)
    expect(starting.length).toBeGreaterThan(0)
    expect(starting[0]!.answer).toEqual({ kind: "closed", code: 1013, reason: "The server is starting; try again." })

    // Once ready, the stock client (which saw the starting window) is connected and syncs.
    expect(repo).toBeDefined()
    expect(await until(() => adapters[0]!.socket?.readyState === WebSocket.OPEN, 15_000)).toBe(true)
    const handle = repo!.create<{ n: number }>({ n: 1 })
    // Another stock Repo loads it from the hub (once the first has pushed it: bounded retries).
    let found: { n: number } | undefined
    for (let i = 0; i < 30 && found === undefined; i++) {
      try {
        found = (await stockRepo(port).find<{ n: number }>(handle.url)).doc()
      } catch {
        await sleep(200)
      }
    }
    expect(found).toEqual({ n: 1 })
    expect(await until(() => uncaught.length === 0, 10)).toBe(true)
    expect(uncaught).toEqual([])
  } finally {
    process.off("uncaughtException", onUncaught)
  }
}, 60_000)

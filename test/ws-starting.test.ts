/**
 * While `canon serve` starts (its port is bound before the hub is ready: LevelDB opens, the
 * CRDT engines load), a WebSocket upgrade is accepted and closed with 1013, never refused
 * over HTTP: a stock automerge-repo client throws a refused upgrade as an uncaught exception
 * (adapters/ws/starting.ts). First the mechanism in process, with the window held open as
 * long as the test likes; then the real CLI in a child process, probed through its start
 * (its window can be a few ms on an idle machine, so that test counts on no particular probe
 * landing in it, only on none being refused over HTTP).
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as http from "node:http"
import type * as net from "node:net"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WebSocket } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, closeUpgradesUntilReady, STARTING_CLOSE } from "../adapters/ws/index.js"
import { automergeDocEngine, automergeRoute } from "../adapters/automerge-server/index.js"
import { deadPort, sleep, until } from "./support/ws.js"

type Answer = { kind: "refused-tcp" } | { kind: "http"; status: number } | { kind: "closed"; code: number; reason: string } | { kind: "open" }

/** One upgrade attempt: what the server did with it (bounded: 2 s). */
const probe = (url: string): Promise<Answer> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url)
    // Every path clears both timers: nothing outlives the probe.
    let held: ReturnType<typeof setTimeout> | undefined
    const done = (a: Answer) => {
      clearTimeout(timer)
      clearTimeout(held)
      resolve(a)
    }
    const timer = setTimeout(() => { ws.terminate(); done({ kind: "open" }) }, 2_000)
    ws.on("unexpected-response", (_req, res) => {
      done({ kind: "http", status: res.statusCode ?? 0 })
      ws.terminate()
    })
    ws.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ECONNREFUSED") done({ kind: "refused-tcp" })
    })
    ws.on("open", () => {
      // The real endpoint waits for a hello: still open after 200 ms is the ready hub.
      held = setTimeout(() => { ws.terminate(); done({ kind: "open" }) }, 200)
    })
    ws.on("close", (code, reason) => done({ kind: "closed", code, reason: reason.toString() }))
  })

let dir: string
let child: ChildProcess | undefined
const repos: Repo[] = []
const adapters: StoppableClientAdapter[] = []
const stockRepo = (port: number): Repo => {
  const adapter = new StoppableClientAdapter(`ws://127.0.0.1:${port}/automerge`, 50)
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
    // Bounded, with a timer that ends with the wait (a bare sleep would hold jest 10 s).
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([exited, new Promise<void>((r) => { timer = setTimeout(r, 10_000) })])
    clearTimeout(timer)
    child.kill("SIGKILL")
  }
  child = undefined
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

test("closeUpgradesUntilReady: upgrades are closed with 1013 until released; a stock automerge-repo client started meanwhile then syncs through the real endpoint", async () => {
  const uncaught: unknown[] = []
  const onUncaught = (e: unknown) => { uncaught.push(e) }
  process.on("uncaughtException", onUncaught)
  const server = http.createServer((_req, res) => { res.writeHead(404); res.end() })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const port = (server.address() as net.AddressInfo).port
  let hub: Hub | undefined
  let ws: WsServer | undefined
  let route: ReturnType<typeof automergeRoute> | undefined
  try {
    const ready = closeUpgradesUntilReady(server)
    expect(await probe(`ws://127.0.0.1:${port}/automerge`)).toEqual({ kind: "closed", ...STARTING_CLOSE })
    expect(await probe(`ws://127.0.0.1:${port}/sync`)).toEqual({ kind: "closed", ...STARTING_CLOSE })
    // A stock client retrying every 50 ms through the window: closed several times, never thrown.
    const repo = stockRepo(port)
    await sleep(300)
    // The hub is ready: the real endpoint takes over the upgrades.
    hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [automergeDocEngine()] } })
    route = automergeRoute(hub.crdtDocs)
    ready()
    ws = new WsServer(hub, { server, path: "/sync", routes: [route] })
    expect(await until(() => adapters[0]!.socket?.readyState === WebSocket.OPEN, 10_000)).toBe(true)
    const handle = repo.create<{ n: number }>({ n: 1 })
    let found: { n: number } | undefined
    for (let i = 0; i < 30 && found === undefined; i++) {
      try {
        found = (await stockRepo(port).find<{ n: number }>(handle.url)).doc()
      } catch {
        await sleep(200)
      }
    }
    expect(found).toEqual({ n: 1 })
    expect(uncaught).toEqual([])
  } finally {
    process.off("uncaughtException", onUncaught)
    // The stock adapters must be shut down while the endpoint is still up (afterEach is too late).
    await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === WebSocket.OPEN), 10_000)
    for (const r of repos.splice(0)) await r.shutdown().catch(() => {})
    adapters.splice(0)
    route?.close()
    await ws?.close()
    await hub?.close()
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
}, 30_000)

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
    // Whatever landed in the window was closed with 1013 and the reason.
    for (const a of answers.filter((x) => x.answer.kind === "closed" && x.answer.code === STARTING_CLOSE.code)) {
      expect(a.answer).toEqual({ kind: "closed", ...STARTING_CLOSE })
    }

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

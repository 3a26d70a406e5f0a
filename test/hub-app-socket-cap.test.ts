/**
 * The hub caps TCP sockets per client address and in all where they enter, before a request
 * is parsed (adapters/ws/socket-cap.ts, attached in apps/hub/start.ts). Before, only
 * WebSocket upgrades were counted: one address held ~990 idle sockets of a hub under
 * `ulimit -n 1024` and every other address was refused. Real sockets on 127.0.0.1, from
 * other loopback addresses (127.0.0.2...) as other clients.
 */
import net from "node:net"
import http from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WebSocket } from "ws"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { statusPage } from "../apps/hub/status-page.js"
import { ConfigError, parseConfig, type HubConfig } from "../apps/hub/config.js"
import { Board } from "../apps/demo/board.js"
import { defaultMaxSockets, openFileLimit } from "../apps/hub/socket-budget.js"
import { closeHeld, held, idle } from "./support/raw-sockets.js"

let dir: string
const running: RunningHub[] = []

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-socket-cap-")) })
afterEach(async () => {
  closeHeld()
  for (const r of running.splice(0)) await r.close().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

const config = (argv: string[]): HubConfig => {
  const c = parseConfig(argv, {})
  if (c === "help") throw new Error("unexpected")
  return c
}

const start = async (flags: string[]): Promise<{ hub: RunningHub; port: number }> => {
  const hub = await startHub(config(["--data", join(dir, "data"), "--port", "0", ...flags]), [Board], statusPage)
  running.push(hub)
  return { hub, port: Number(new URL(hub.url).port) }
}

/** Waits for `n` of the promises, or fails after `ms` (under the hub's 10 s deadline for a request to arrive, which closes idle sockets anyway). */
const atLeast = async (n: number, promises: Array<Promise<unknown>>, ms = 5_000): Promise<void> => {
  let done = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${done} of ${n} settled in ${ms} ms`)), ms)
    if (n === 0) return (clearTimeout(timer), resolve())
    for (const p of promises) void p.then(() => { if (++done === n) (clearTimeout(timer), resolve()) })
  })
}

/** GET /status on a socket already open: the status code, or "closed" if the hub ends it instead. */
const getOn = (socket: net.Socket, port: number): Promise<number | "closed"> => new Promise((resolve) => {
  let text = ""
  const onData = (d: Buffer) => {
    text += d.toString("latin1")
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
    if (m) (socket.off("data", onData), resolve(Number(m[1])))
  }
  socket.on("data", onData)
  socket.once("close", () => resolve("closed"))
  socket.write(`GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
})

/** Waits until the hub has cut `cut` of the sockets, then asks for a page on each of the others: their answers. */
const cutThenServed = async (tries: ReadonlyArray<{ socket: net.Socket; closed: Promise<void> }>, cut: number, port: number): Promise<Array<number | "closed">> => {
  await atLeast(cut, tries.map((t) => t.closed))
  return Promise.all(tries.filter((t) => !t.socket.destroyed).map((t) => getOn(t.socket, port)))
}

/** GET /status on a fresh socket from `from`: the status code, or the error's code. */
const page = (port: number, from: string): Promise<number | string> => new Promise((resolve) => {
  const req = http.get({ host: "127.0.0.1", port, path: "/status", localAddress: from, agent: false, timeout: 5_000 }, (res) => {
    res.resume()
    resolve(res.statusCode ?? 0)
  })
  req.on("timeout", () => req.destroy(new Error("timeout")))
  req.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
})

/** A WebSocket to /sync from `from`: 101 when open, else the HTTP status or the error's code. */
const upgrade = (url: string, from: string): Promise<number | string> => new Promise((resolve) => {
  const ws = new WebSocket(url, { localAddress: from })
  held.push(ws)
  ws.on("error", (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message))
  ws.once("open", () => resolve(101))
  ws.once("unexpected-response", (_req, res) => {
    resolve(res.statusCode ?? 0)
    ws.terminate()
  })
})

/** Polls `probe` until it gives `want` (bounded: 50 tries, 20 ms apart). */
const eventually = async <T>(probe: () => Promise<T>, want: T): Promise<T> => {
  let got = await probe()
  for (let i = 0; i < 50 && got !== want; i++) {
    await new Promise((r) => setTimeout(r, 20))
    got = await probe()
  }
  return got
}

test("one address opening more sockets than its cap has the extra ones cut; others are served; closing frees a slot", async () => {
  const { hub, port } = await start(["--max-connections-per-address", "2"]) // sockets: twice that, 4
  const tries = Array.from({ length: 10 }, () => idle(port, "127.0.0.2"))
  // Six are cut as they connect, without a byte read; the other four are served.
  expect(await cutThenServed(tries, 6, port)).toEqual([200, 200, 200, 200])
  const open = tries.filter((t) => !t.socket.destroyed)
  // While the address is full, another address gets pages and WebSockets.
  expect(await page(port, "127.0.0.1")).toBe(200)
  expect(await upgrade(hub.syncUrl, "127.0.0.1")).toBe(101)
  // The full address itself gets nothing more...
  expect(await getOn(idle(port, "127.0.0.2").socket, port)).toBe("closed")
  // ...until it closes one of its sockets.
  open[0]!.socket.destroy()
  expect(await eventually(() => page(port, "127.0.0.2"), 200)).toBe(200)
}, 30_000)

test("upgraded sockets count against the socket cap, and the WebSocket cap still answers 429 first", async () => {
  const { hub, port } = await start(["--max-connections-per-address", "2"]) // sockets: twice that, 4
  const from = "127.0.0.3"
  expect([await upgrade(hub.syncUrl, from), await upgrade(hub.syncUrl, from), await upgrade(hub.syncUrl, from)]).toEqual([101, 101, 429])
  // The refused upgrade's socket is gone: the two WebSockets leave room for two more sockets, not three.
  const tries = Array.from({ length: 4 }, () => idle(port, from))
  expect(await cutThenServed(tries, 2, port)).toEqual([200, 200])
}, 30_000)

test("the total cap holds every address together", async () => {
  const { port } = await start(["--max-sockets", "5"])
  const tries = ["127.0.0.4", "127.0.0.5", "127.0.0.6"].flatMap((from) => [idle(port, from), idle(port, from)])
  expect(await cutThenServed(tries, 1, port)).toEqual([200, 200, 200, 200, 200])
}, 30_000)

test("a trusted proxy's address is held to the total only: its clients share it", async () => {
  const { port } = await start(["--trust-proxy", "127.0.0.7", "--max-connections-per-address", "1", "--max-sockets-per-address", "2"])
  const viaProxy = Array.from({ length: 6 }, () => idle(port, "127.0.0.7"))
  expect(await Promise.all(viaProxy.map((t) => getOn(t.socket, port)))).toEqual([200, 200, 200, 200, 200, 200])
  const direct = Array.from({ length: 3 }, () => idle(port, "127.0.0.8"))
  expect(await cutThenServed(direct, 1, port)).toEqual([200, 200])
}, 30_000)

test("defaults follow the WebSocket cap; a socket cap below it, or one that is no number, is explained", () => {
  expect(config([])).toMatchObject({ maxConnectionsPerAddress: 64, maxSocketsPerAddress: 128, maxSockets: undefined })
  expect(config(["--max-connections-per-address", "500"])).toMatchObject({ maxSocketsPerAddress: 1000 })
  expect(parseConfig([], { CANON_MAX_SOCKETS_PER_ADDRESS: "300", CANON_MAX_SOCKETS: "900" })).toMatchObject({ maxSocketsPerAddress: 300, maxSockets: 900 })
  expect(() => parseConfig(["--max-sockets-per-address", "10"], {})).toThrow(ConfigError)
  expect(() => parseConfig(["--max-sockets-per-address", "10"], {})).toThrow(/below the WebSocket connections per address \(64\)/)
  expect(() => parseConfig(["--max-sockets", "0"], {})).toThrow(/--max-sockets must be a whole number of at least 1/)
})

test("the total, by default, leaves a quarter of the open-file limit to the hub's store; no cap where the limit is unknown", () => {
  expect(defaultMaxSockets(1024)).toBe(768)
  expect(defaultMaxSockets(undefined)).toBe(Infinity)
  expect(openFileLimit(join(tmpdir(), "no-such-limits-file"))).toBeUndefined()
  if (process.platform === "linux") expect(openFileLimit()).toEqual(expect.any(Number))
})

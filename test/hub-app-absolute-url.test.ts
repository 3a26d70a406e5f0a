/**
 * One HTTP request killed `npm start` (fixed: apps/hub/request-url.ts, and start.ts answers a throwing page 400).
 *
 * Node's HTTP parser accepts an absolute-form request target (`GET http://host:port/ HTTP/1.1`,
 * RFC 9112 3.2.2) without checking that it is a valid URL. The demo's page handler
 * (apps/demo/pages.ts) and the status page (apps/hub/status-page.ts) parse `req.url` with
 * `new URL(req.url, "http://x")`, which throws on e.g. an out-of-range port, a lone "[" or a
 * "%" in the host. The throw happens inside the request listener: an uncaught exception, and
 * apps/hub/main.ts installs no handler, so the hub process exits. No authentication, no
 * WebSocket, one line of text from anyone who can reach the port.
 */
import net from "node:net"
import http from "node:http"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { statusPage } from "../apps/hub/status-page.js"
import { demoPages } from "../apps/demo/pages.js"
import type { DemoAssets } from "../apps/demo/build.js"

let dir: string
let child: ChildProcess | undefined
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-attack-url-")) })
afterEach(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  child = undefined
  rmSync(dir, { recursive: true, force: true })
})

const BAD_TARGETS = ["http://x:99999/", "http://[/", "http://a%/status"]

/** Sends one raw request; resolves with the status line (or "" when the socket just closed). */
const raw = (port: number, target: string): Promise<string> =>
  new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
    let out = ""
    const timer = setTimeout(() => { s.destroy(); resolve(out.split("\r\n")[0] ?? "") }, 3_000)
    s.on("data", (d) => (out += d.toString()))
    s.on("close", () => { clearTimeout(timer); resolve(out.split("\r\n")[0] ?? "") })
    s.on("error", () => {})
  })

test("a request with an invalid absolute-form URL gets a 4xx and the `npm start` process keeps running", async () => {
  const proc = spawn(process.execPath, ["--import", "tsx", "apps/hub/main.ts", "--data", join(dir, "data"), "--port", "0"], { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] })
  child = proc
  let out = ""
  proc.stdout!.on("data", (d) => (out += d.toString()))
  proc.stderr!.on("data", (d) => (out += d.toString()))
  const end = Date.now() + 40_000
  while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) {
    if (Date.now() > end || proc.exitCode !== null) throw new Error(`the hub did not start:\n${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1])

  const line = await raw(port, BAD_TARGETS[0]!)
  await new Promise((r) => setTimeout(r, 300))
  expect({ exitCode: proc.exitCode, signal: proc.signalCode, stderr: out.includes("Invalid URL") ? "Invalid URL" : "" }).toEqual({ exitCode: null, signal: null, stderr: "" })
  expect(line).toMatch(/^HTTP\/1\.1 4\d\d/)
  const status = await fetch(`http://127.0.0.1:${port}/status`)
  expect(status.status).toBe(200)
}, 60_000)

/** The handlers themselves, without a process: each bad target is answered or left (404), never thrown. */
test("the page handlers never throw on a request target new URL() refuses", () => {
  const assets: DemoAssets = { files: new Map(), version: "x", scripts: { first: [], later: [] }, buildMs: 0 }
  const pages = demoPages(assets)
  for (const url of BAD_TARGETS) {
    const req = { method: "GET", url, headers: {} } as unknown as http.IncomingMessage
    const res = new http.ServerResponse(req)
    expect(() => pages(req, res, {} as never, {} as never)).not.toThrow()
    expect(() => statusPage(req, new http.ServerResponse(req), {} as never)).not.toThrow()
  }
})

/**
 * Other websites must not use a hub through its visitors' browsers (apps/hub/browser-guard.ts).
 * Before: a page of any site opened the hub's /sync from a visitor's browser and wrote to
 * every board as a client of its own (a WebSocket carries the page's Origin, and nothing
 * checked it); a name made to resolve to 127.0.0.1 (DNS rebinding) read the board and
 * /api/log as its own origin; and the board could be framed by any site. Now an upgrade with
 * an Origin must be the hub's own page or an allowed origin (--allow-origin), a hub on
 * loopback answers only loopback names (421), and the app's files carry CSP, frame-ancestors
 * 'none' and nosniff.
 */
import http from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { WebSocket } from "ws"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, ConfigError, type HubConfig } from "../apps/hub/config.js"
import { demoPages } from "../apps/demo/pages.js"
import { demoMachines } from "../apps/demo/machines.js"
import { buildDemo } from "../apps/demo/build.js"

let dir: string
const running: RunningHub[] = []
let assets: Awaited<ReturnType<typeof buildDemo>>

beforeAll(async () => {
  assets = await buildDemo()
}, 60_000)
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "canon-guard-"))
})
afterEach(async () => {
  for (const r of running.splice(0)) await r.close()
  rmSync(dir, { recursive: true, force: true })
})

let hubs = 0
const start = async (extra: ReadonlyArray<string> = []) => {
  const config = parseConfig(["--data", join(dir, `data-${hubs++}`), "--port", "0", "--no-sync", ...extra], {}) as HubConfig
  const r = await startHub(config, demoMachines, demoPages(assets))
  running.push(r)
  return { r, port: Number(new URL(r.url).port) }
}

/** A GET with the Host header given: status and headers. */
const get = (port: number, path: string, host: string) =>
  new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      res.resume()
      resolve({ status: res.statusCode!, headers: res.headers })
    })
    req.on("error", reject)
    req.end()
  })

/** Opens /sync with the headers given: "open" or the HTTP status it was refused with. */
const upgrade = (port: number, headers: Record<string, string>, path = "/sync") =>
  new Promise<string>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers })
    ws.on("open", () => {
      ws.close()
      resolve("open")
    })
    ws.on("unexpected-response", (_req, res) => {
      resolve(String(res.statusCode))
      ws.terminate()
    })
    ws.on("error", () => resolve("error"))
  })

test("an upgrade from another site's page is refused (403); the hub's own page, and clients that are not browsers, connect", async () => {
  const { port } = await start()
  expect(await upgrade(port, { Origin: "http://evil.example" })).toBe("403")
  expect(await upgrade(port, { Origin: `http://localhost:${port + 1}` })).toBe("403")
  expect(await upgrade(port, { Origin: "null" })).toBe("403")
  expect(await upgrade(port, { Origin: `http://127.0.0.1:${port}` })).toBe("open")
  expect(await upgrade(port, { Origin: `http://localhost:${port}`, Host: `localhost:${port}` })).toBe("open")
  expect(await upgrade(port, {})).toBe("open")
  // The CRDT endpoints too.
  expect(await upgrade(port, { Origin: "http://evil.example" }, "/yjs/room")).toBe("403")
})

test("--allow-origin lets the named sites' pages connect (and * any)", async () => {
  const { port } = await start(["--allow-origin", "http://localhost:5173,https://app.example.com"])
  expect(await upgrade(port, { Origin: "http://localhost:5173" })).toBe("open")
  expect(await upgrade(port, { Origin: "https://app.example.com" })).toBe("open")
  expect(await upgrade(port, { Origin: "http://evil.example" })).toBe("403")
  const any = await start(["--allow-origin", "*"])
  expect(await upgrade(any.port, { Origin: "http://evil.example" })).toBe("open")
  expect(() => parseConfig(["--allow-origin", "localhost:5173"], {})).toThrow(ConfigError)
  expect(() => parseConfig(["--allow-origin", "http://a.example/path"], {})).toThrow(/not an origin/)
})

test("bound to loopback, a request addressed to another name (DNS rebinding) is a 421, pages and upgrades alike", async () => {
  const { port } = await start()
  expect((await get(port, "/", `attacker.example:${port}`)).status).toBe(421)
  expect((await get(port, "/api/log?doc=team", `attacker.example:${port}`)).status).toBe(421)
  expect(await upgrade(port, { Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}` })).toBe("421")
  expect((await get(port, "/", `127.0.0.1:${port}`)).status).toBe(200)
  expect((await get(port, "/", `localhost:${port}`)).status).toBe(200)
  expect((await get(port, "/", `[::1]:${port}`)).status).toBe(200)
  // Its public URL's name is one of its own.
  const free = await new Promise<number>((resolve) => {
    const s = http.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const proxied = { ...(await start(["--public-url", "https://sync.example.com", "--port", String(free)])), port: free }
  expect((await get(proxied.port, "/", "sync.example.com")).status).toBe(200)
  expect(await upgrade(proxied.port, { Host: "127.0.0.1", Origin: "https://sync.example.com" })).toBe("open")
})

test("the app's files forbid framing, inline scripts and type sniffing", async () => {
  const { port } = await start()
  const { status, headers } = await get(port, "/", `127.0.0.1:${port}`)
  expect(status).toBe(200)
  expect(headers["content-security-policy"]).toMatch(/frame-ancestors 'none'/)
  expect(headers["content-security-policy"]).toMatch(/script-src 'self'(;|$)/)
  expect(headers["x-content-type-options"]).toBe("nosniff")
  expect(headers["x-frame-options"]).toBe("DENY")
})

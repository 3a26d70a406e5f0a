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
import { browserGuard, hostAllowed, misdirectedText, originAllowed, parseOrigins } from "../apps/hub/browser-guard.js"
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

/** A request as the guard sees it: its Host and Origin headers. */
const req = (host: string, origin?: string) => ({ headers: { host, ...(origin === undefined ? {} : { origin }) } }) as unknown as http.IncomingMessage

test("bound to every interface with origins restricted (npm start --host 0.0.0.0), a public name (DNS rebinding) is refused; addresses, local names and the public URL's are taken", () => {
  const guard = browserGuard("0.0.0.0", undefined, [])
  for (const host of ["attacker.example:8787", "rebind.attacker.example", "1.2.3.4.nip.io:8787", "localhost.attacker.example"]) expect([host, hostAllowed(guard, req(host))]).toEqual([host, false])
  for (const host of ["192.168.1.20:8787", "10.0.0.5", "[fe80::1]:8787", "[::1]:8787", "localhost:8787", "127.0.0.1:8787", "mybox:8787", "mybox.local", "mybox.lan", "hub.internal", "nas.home.arpa"]) expect([host, hostAllowed(guard, req(host))]).toEqual([host, true])
  expect(hostAllowed(browserGuard("0.0.0.0", "https://sync.example.com", []), req("sync.example.com"))).toBe(true)
  expect(misdirectedText(guard)).toMatch(/local names.*--public-url/)
  // A hub taking pages of any origin (canon serve's default) takes any Host: a rebinding page could connect anyway.
  expect(hostAllowed(browserGuard("0.0.0.0", undefined, "any"), req("attacker.example"))).toBe(true)
  // Bound to loopback, as before: loopback names and the public URL's only.
  const loop = browserGuard("127.0.0.1", undefined, [])
  expect([hostAllowed(loop, req("mybox.local")), hostAllowed(loop, req("192.168.1.20")), hostAllowed(loop, req("localhost:1"))]).toEqual([false, false, true])
  expect(misdirectedText(loop)).toMatch(/localhost and 127\.0\.0\.1.*--public-url/)
})

test("the hub's own page under another loopback name (http://localhost:P opening ws://127.0.0.1:P) connects; another port or a non-loopback name does not", () => {
  const guard = browserGuard("127.0.0.1", undefined, [])
  expect(originAllowed(guard, req("127.0.0.1:8787", "http://localhost:8787"))).toBe(true)
  expect(originAllowed(guard, req("localhost:8787", "http://127.0.0.1:8787"))).toBe(true)
  expect(originAllowed(guard, req("127.0.0.1:8787", "http://[::1]:8787"))).toBe(true)
  expect(originAllowed(guard, req("127.0.0.1:8787", "http://localhost:8788"))).toBe(false)
  expect(originAllowed(guard, req("127.0.0.1:80", "http://localhost"))).toBe(true)
  expect(originAllowed(guard, req("127.0.0.1:8787", "http://evil.example:8787"))).toBe(false)
  expect(originAllowed(browserGuard("0.0.0.0", undefined, []), req("192.168.1.20:8787", "http://localhost:8787"))).toBe(false)
})

test("--allow-origin takes apps of other schemes (Capacitor, Tauri, Electron) as written, never \"null\"", () => {
  const origins = parseOrigins("capacitor://localhost, tauri://localhost,app://board,HTTP://LOCALHOST:5173", "--allow-origin")
  expect(origins).toEqual(["capacitor://localhost", "tauri://localhost", "app://board", "http://localhost:5173"])
  const guard = browserGuard("127.0.0.1", undefined, origins)
  expect(originAllowed(guard, req("127.0.0.1:8787", "capacitor://localhost"))).toBe(true)
  expect(originAllowed(guard, req("127.0.0.1:8787", "app://board"))).toBe(true)
  expect(originAllowed(guard, req("127.0.0.1:8787", "app://other"))).toBe(false)
  expect(originAllowed(guard, req("127.0.0.1:8787", "ionic://localhost"))).toBe(false)
  for (const bad of ["null", "file://", "capacitor://", "app://board/path", "javascript:alert(1)", "localhost:5173"]) expect(() => parseOrigins(bad, "--allow-origin")).toThrow(/not an origin/)
})

test("a refused upgrade and a misdirected request say why, and what to pass to allow them", async () => {
  const { port } = await start()
  const body = (headers: Record<string, string>) =>
    new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/sync`, { headers })
      ws.on("unexpected-response", (_req, res) => {
        let text = ""
        res.on("data", (c: Buffer) => (text += c.toString()))
        res.on("end", () => resolve(`${res.statusCode} ${text}`))
      })
      ws.on("open", () => (ws.close(), resolve("open")))
      ws.on("error", () => {})
    })
  expect(await body({ Origin: "http://evil.example" })).toBe("403 A page of http://evil.example may not connect to this hub: start it with --allow-origin http://evil.example (or * for any site) to let it.\n")
  expect(await body({ Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}` })).toMatch(/^421 Misdirected request: this hub answers to localhost and 127\.0\.0\.1 and no other name\. Reached by another name, start it with --public-url/)
  const page = await new Promise<string>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/", headers: { host: "attacker.example" } }, (res) => {
      let text = ""
      res.on("data", (c: Buffer) => (text += c.toString()))
      res.on("end", () => resolve(`${res.statusCode} ${text}`))
    }).on("error", reject)
  })
  expect(page).toMatch(/^421 Misdirected request: .*--public-url set to that URL\.\n$/)
})

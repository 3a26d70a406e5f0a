/**
 * HTTP pipelining is bounded on the hub's servers (adapters/ws/pipelining.ts). Node parses
 * every request a socket has sent before its backpressure pauses it, and keeps each with its
 * response until written: a client pipelining 2,400 GETs of /app.js on each of a few hundred
 * sockets it never read (40 MB sent) ran `npm start`'s hub out of heap (found by a helper
 * attacking the HTTP surface). A socket with more than 16 responses waiting is destroyed; one
 * request at a time, as browsers send them, is served as ever.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { MAX_PIPELINED_REQUESTS, WsServer } from "../adapters/ws/index.js"
import { startHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { statusPage } from "../apps/hub/status-page.js"
import { Board } from "../apps/demo/board.js"

/** Pipelines `n` GETs of `path` in one write; the responses that come back before the socket closes (at most 10 s). */
const pipeline = (port: number, path: string, n: number): Promise<{ responses: number; closed: boolean }> =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1")
    let text = ""
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ responses: text.split("HTTP/1.1 ").length - 1, closed })
    }
    const timer = setTimeout(() => finish(false), 10_000)
    s.on("connect", () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(n)))
    s.on("data", (d) => {
      text += d.toString("latin1")
      if (text.split("HTTP/1.1 ").length - 1 >= n) finish(false)
    })
    s.on("close", () => finish(true))
    s.on("error", () => {})
  })

test("WsServer's own HTTP server destroys a socket pipelining past the bound; one at a time is served", async () => {
  const hub = new Hub({ machines: [Board], storage: new MemoryStorage(), runtime: systemRuntime })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  try {
    const port = server.addresses()[0]!.port
    const flood = await pipeline(port, "/", 200)
    expect(flood.closed).toBe(true)
    expect(flood.responses).toBeLessThanOrEqual(MAX_PIPELINED_REQUESTS + 1)
    const polite = await pipeline(port, "/", 1)
    expect(polite.responses).toBe(1)
  } finally {
    await server.close()
    await hub.close()
  }
})

test("npm start's hub destroys a socket pipelining past the bound and keeps serving /status", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canon-pipelining-"))
  const hub = await startHub(parseConfig(["--data", join(dir, "data"), "--port", "0"], {}) as HubConfig, [Board], statusPage)
  try {
    const port = Number(new URL(hub.url).port)
    const flood = await pipeline(port, "/status", 200)
    expect(flood.closed).toBe(true)
    expect(flood.responses).toBeLessThanOrEqual(MAX_PIPELINED_REQUESTS + 1)
    expect((await fetch(`${hub.url}/status`)).status).toBe(200)
  } finally {
    await hub.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

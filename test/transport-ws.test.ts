/**
 * The shared Transport conformance suite over real WebSockets on loopback: the server with
 * the Node client (IPv4 and IPv6), and the browser client (driven by the `ws` library's
 * WHATWG-style WebSocket class standing in for the browser's global one); then what is
 * particular to WebSockets: close codes, heartbeats, listen addresses, attaching to an
 * http(s) server, a misbehaving server.
 */
import * as http from "node:http"
import * as https from "node:https"
import * as net from "node:net"
import { WebSocket, WebSocketServer, type ClientOptions } from "ws"
import { CanonClient, Hub, type ClientTransport, type CloseInfo, type ConnectionAcceptor, type ConnectionInfo } from "../core/index.js"
import { encodeServerMessage } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, WS_CLOSE_CODES, fromWsClose, toWsClose, type WsConnectionInfo } from "../adapters/ws/index.js"
import { wsClientTransport as browserTransport, type BrowserWebSocketConstructor } from "../adapters/ws/client-browser.js"
import { wsClientTransport } from "../adapters/ws/client-node.js"
import { truncateUtf8 } from "../adapters/ws/shared.js"
import { transportConformance } from "./transport-conformance.js"
import { Todo } from "./support/machines.js"
import { deadPort, sleep, until } from "./support/ws.js"
import { selfSigned } from "./support/self-signed.js"

const MAX_FRAME = 256 * 1024

const harness = (host: string, client: (url: string) => ClientTransport) => async () => {
  let server: WsServer | undefined
  // Kept from the start: a stopped server lists no URLs, and its address is what a late client dials.
  let url = ""
  const dead = await deadPort(host)
  const bracket = host.includes(":") ? `[${host}]` : host
  return {
    serve: async (acceptor: Parameters<typeof WsServer.start>[0]) => {
      server = await WsServer.start(acceptor, { listen: [{ host, port: 0 }], maxFrameBytes: MAX_FRAME })
      url = server.urls()[0]!
    },
    client: () => client(url),
    nowhere: () => client(`ws://${bracket}:${dead}/`),
    until,
    stop: async () => server?.close(),
    maxFrameBytes: MAX_FRAME,
    dispose: async () => server?.close(),
  }
}

transportConformance("ws, Node client, 127.0.0.1", harness("127.0.0.1", (url) => wsClientTransport(url, { maxFrameBytes: MAX_FRAME })))

transportConformance("ws, Node client, ::1", harness("::1", (url) => wsClientTransport(url, { maxFrameBytes: MAX_FRAME })))

transportConformance("ws, browser client", harness("127.0.0.1", (url) =>
  browserTransport(url, { maxFrameBytes: MAX_FRAME, WebSocket: WebSocket as unknown as BrowserWebSocketConstructor })))

// ---- ws-specific behaviour ----


let cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  const steps = cleanup.reverse()
  cleanup = []
  for (const f of steps) await f()
})

/** An acceptor that records what it hears (and answers nothing). */
const recorder = () => {
  const conns: Array<{ info: ConnectionInfo | undefined; closes: CloseInfo[]; messages: number }> = []
  const acceptor: ConnectionAcceptor = {
    accept: (_conn, info) => {
      const c = { info, closes: [] as CloseInfo[], messages: 0 }
      conns.push(c)
      return { onMessage: () => void c.messages++, onClose: (i) => void c.closes.push(i) }
    },
  }
  return { acceptor, conns }
}

const hubWorld = () => {
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
  cleanup.push(() => hub.close())
  return hub
}

const canon = async (url: string) => {
  const c = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 100 } })
  cleanup.push(() => c.close())
  return c
}

/** A client that opens a doc and confirms one command through `url`. */
const roundTrip = async (url: string, id: string) => {
  const c = await canon(url)
  const doc = await c.open(Todo, "d")
  await expect(doc.submit("add", { id, title: id })).resolves.toEqual({ seq: expect.any(Number) })
  return c
}

const rawClient = (url: string, options?: ClientOptions) => {
  const ws = new WebSocket(url, options)
  let close: { code: number; reason: string } | undefined
  ws.on("error", () => {})
  ws.on("close", (code, reason) => void (close = { code, reason: reason.toString() }))
  cleanup.push(() => ws.terminate())
  return { ws, close: () => close, opened: new Promise<void>((r) => ws.once("open", () => r())) }
}

describe("close codes", () => {
  test("every Canon code in the table maps to a 4000-4999 code (or 1000/1001/1009) and back", () => {
    for (const [code, ws] of Object.entries(WS_CLOSE_CODES)) {
      expect(ws === 1000 || ws === 1001 || ws === 1009 || (ws >= 4000 && ws <= 4999)).toBe(true)
      const frame = toWsClose(code, "why")
      expect(frame).toEqual({ code: ws, reason: `${code}: why` })
      expect(fromWsClose(frame.code, frame.reason, true)).toEqual({ code, reason: "why" })
      // A peer that drops the prefix still gets the code from the number.
      expect(fromWsClose(ws, "", true).code).toBe(code)
    }
    expect(new Set(Object.values(WS_CLOSE_CODES)).size).toBe(Object.keys(WS_CLOSE_CODES).length)
  })

  test("codes without a number travel as 4000 and the reason's prefix", () => {
    expect(toWsClose("credentials-failed", "no token")).toEqual({ code: 4000, reason: "credentials-failed: no token" })
    expect(fromWsClose(4000, "credentials-failed: no token", true)).toEqual({ code: "credentials-failed", reason: "no token" })
    expect(fromWsClose(4000, "credentials-failed:", true)).toEqual({ code: "credentials-failed", reason: "" })
  })

  test("a code named like an Object.prototype member travels as 4000: the table's prototype is never read", () => {
    // "constructor" is the one Object.prototype member that is a well-formed code (lower-case
    // letters, digits, '-'); "__proto__" and "toString" are not, and are sent as "closed".
    expect(toWsClose("constructor", "x")).toEqual({ code: 4000, reason: "constructor: x" })
    expect(toWsClose("constructor", "x", true)).toEqual({ code: 4000, reason: "constructor: x" })
    expect(toWsClose("__proto__", "x")).toEqual({ code: 1000, reason: "closed: x" })
    expect(toWsClose("toString", "x")).toEqual({ code: 1000, reason: "closed: x" })
  })

  test("a client sends only 1000 and 4000-4999 (what browsers allow); the prefix keeps the code", () => {
    expect(toWsClose("going-away", "tab closed", true)).toEqual({ code: 4000, reason: "going-away: tab closed" })
    expect(toWsClose("too-large", "x", true).code).toBe(4000)
    expect(toWsClose("closed", "x", true).code).toBe(1000)
    expect(toWsClose("timeout", "x", true).code).toBe(4009)
    expect(fromWsClose(4000, "going-away: tab closed", true)).toEqual({ code: "going-away", reason: "tab closed" })
  })

  test("closes the ws library or the network produce", () => {
    expect(fromWsClose(1006, "", true).code).toBe("reset")
    expect(fromWsClose(1006, "", false).code).toBe("unreachable")
    expect(fromWsClose(1005, "", true).code).toBe("closed")
    expect(fromWsClose(1009, "", true).code).toBe("too-large")
    expect(fromWsClose(1002, "", true).code).toBe("protocol-error")
    expect(fromWsClose(1000, "bye", true)).toEqual({ code: "closed", reason: "bye" })
    expect(fromWsClose(3333, "", true).code).toBe("ws-3333")
  })

  test("reasons are cut to 123 bytes on a character boundary", () => {
    const long = toWsClose("slow-consumer", "🥛".repeat(100))
    expect(Buffer.byteLength(long.reason)).toBeLessThanOrEqual(123)
    // A cut reason says so: an app that shows it as is does not show half a word as the end.
    expect(long.reason).toMatch(/^slow-consumer: (🥛)+…$/u)
    expect(truncateUtf8("abcdef", 5)).toBe("ab…")
    expect(truncateUtf8("aébc", 4)).toBe("a…")
    expect(truncateUtf8("abc", 3)).toBe("abc")
  })
})

describe("heartbeat", () => {
  test("a peer that does not answer pings is terminated; the hub sees timeout; a live one stays", async () => {
    const { acceptor, conns } = recorder()
    const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 50, pongTimeoutMs: 100 })
    cleanup.push(() => server.close())
    const deaf = rawClient(server.urls()[0]!, { autoPong: false })
    await deaf.opened
    const live = rawClient(server.urls()[0]!)
    await live.opened
    expect(await until(() => conns.length === 2, 2_000)).toBe(true)
    const started = Date.now()
    expect(await until(() => deaf.close() !== undefined, 2_000)).toBe(true)
    const took = Date.now() - started
    // Terminated, not closed: the peer sees an abnormal close (1006).
    expect(deaf.close()!.code).toBe(1006)
    expect(await until(() => conns[0]!.closes.length === 1, 1_000)).toBe(true)
    expect(conns[0]!.closes[0]!.code).toBe("timeout")
    expect(took).toBeLessThan(1_000)
    // The peer that answers pings is still there after many intervals.
    await sleep(400)
    expect(live.close()).toBeUndefined()
    expect(conns[1]!.closes).toEqual([])
  })

  test("the client closes with timeout when it hears nothing (no messages, no pings) for idleTimeoutMs", async () => {
    // A bare ws server: accepts and then says nothing, never pings.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    cleanup.push(() => new Promise((r) => wss.close(r)))
    await new Promise<void>((r) => wss.once("listening", () => r()))
    const port = (wss.address() as net.AddressInfo).port
    const closes: CloseInfo[] = []
    let opened = false
    wsClientTransport(`ws://127.0.0.1:${port}/`, { idleTimeoutMs: 150 }).connect({
      onOpen: () => void (opened = true), onMessage: () => {}, onClose: (i) => void closes.push(i),
    })
    expect(await until(() => closes.length > 0, 2_000)).toBe(true)
    expect(opened).toBe(true)
    expect(closes).toEqual([{ code: "timeout", reason: expect.stringMatching(/150 ms/) }])
  })

  test("a quiet hub's pings keep a client with a short idle timeout connected", async () => {
    const { acceptor } = recorder()
    const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 40, pongTimeoutMs: 200 })
    cleanup.push(() => server.close())
    const closes: CloseInfo[] = []
    const conn = wsClientTransport(server.urls()[0]!, { idleTimeoutMs: 150 }).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    cleanup.push(() => conn.close())
    await sleep(600)
    expect(closes).toEqual([])
  })

  test("a server that accepts TCP but never answers the upgrade: unreachable after connectTimeoutMs", async () => {
    const silent = net.createServer(() => {})
    const sockets: net.Socket[] = []
    silent.on("connection", (s) => sockets.push(s))
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()))
    cleanup.push(() => new Promise((r) => {
      for (const s of sockets) s.destroy()
      silent.close(r)
    }))
    const closes: CloseInfo[] = []
    wsClientTransport(`ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`, { connectTimeoutMs: 150 }).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    expect(await until(() => closes.length > 0, 2_000)).toBe(true)
    expect(closes).toEqual([{ code: "unreachable", reason: expect.stringMatching(/150 ms/) }])
  })
})

describe("the client side refuses a bad server", () => {
  const badServer = async (send: (ws: WebSocket) => void) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    wss.on("connection", (ws) => send(ws))
    cleanup.push(() => new Promise((r) => {
      for (const c of wss.clients) c.terminate()
      wss.close(r)
    }))
    await new Promise<void>((r) => wss.once("listening", () => r()))
    return `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`
  }

  test.each([
    ["garbage bytes", (ws: WebSocket) => ws.send(Uint8Array.of(0xee, 0, 1))],
    ["a text frame", (ws: WebSocket) => ws.send("{\"type\":\"welcome\"}")],
    ["a client-direction message", (ws: WebSocket) => ws.send(Uint8Array.of(0x04, 0x00, 0x01, 0x61))],
  ])("%s: protocol-error, no message delivered", async (_name, send) => {
    const url = await badServer(send)
    const closes: CloseInfo[] = []
    let messages = 0
    wsClientTransport(url).connect({ onMessage: () => void messages++, onClose: (i) => void closes.push(i) })
    expect(await until(() => closes.length > 0, 2_000)).toBe(true)
    expect(closes[0]!.code).toBe("protocol-error")
    expect(messages).toBe(0)
  })

  test("an unknown optional type is skipped; the next message arrives", async () => {
    const url = await badServer((ws) => {
      ws.send(Uint8Array.of(0x7e, 0x01, 9, 9))
      ws.send(encodeServerMessage({ type: "welcome", protocol: 1, clientId: "c" }))
    })
    const got: unknown[] = []
    const conn = wsClientTransport(url).connect({ onMessage: (m) => void got.push(m), onClose: () => {} })
    cleanup.push(() => conn.close())
    expect(await until(() => got.length > 0, 2_000)).toBe(true)
    expect(got).toEqual([{ type: "welcome", protocol: 1, clientId: "c" }])
  })

  test("a malformed URL: not-found, never a throw, and the client stops instead of retrying for good", async () => {
    const closes: CloseInfo[] = []
    expect(() => wsClientTransport("definitely not a url").connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })).not.toThrow()
    expect(await until(() => closes.length > 0, 1_000)).toBe(true)
    expect(closes[0]).toEqual({ code: "not-found", reason: expect.stringMatching(/^Cannot connect to definitely not a url \(check the URL: ws:\/\/ or wss:\/\/\): /) })
    const statuses: string[] = []
    const c = await CanonClient.open({ transport: wsClientTransport("definitely not a url"), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 20 } })
    cleanup.push(() => c.close())
    c.onStatus((s) => void statuses.push(s))
    expect(await until(() => c.status === "refused", 2_000)).toBe(true)
    await new Promise((r) => setTimeout(r, 200))
    expect(statuses.filter((s) => s === "connecting").length).toBeLessThanOrEqual(1)
  })

  test("no hub at the address: unreachable, with a sentence saying what to check before Node's text", async () => {
    const url = `ws://127.0.0.1:${await deadPort()}/sync`
    const closes: CloseInfo[] = []
    wsClientTransport(url).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    expect(await until(() => closes.length > 0, 5_000)).toBe(true)
    expect(closes[0]).toEqual({ code: "unreachable", reason: expect.stringMatching(/^No hub answered at ws:\/\/127\.0\.0\.1:\d+\/sync \(is it running, and is that its address\?\): connect ECONNREFUSED/) })
  })
})

describe("where the server listens", () => {
  test("several addresses, IPv6 ::1 and IPv4, ports picked by the OS; clients on each reach the same hub", async () => {
    const hub = hubWorld()
    const server = await WsServer.start(hub, { listen: [{ host: "::1", port: 0 }, { host: "127.0.0.1", port: 0 }] })
    cleanup.push(() => server.close())
    const addresses = server.addresses()
    expect(addresses).toEqual([
      { host: "::1", port: expect.any(Number), family: "IPv6" },
      { host: "127.0.0.1", port: expect.any(Number), family: "IPv4" },
    ])
    expect(addresses.every((a) => a.port > 0)).toBe(true)
    const [v6, v4] = server.urls()
    expect(v6).toBe(`ws://[::1]:${addresses[0]!.port}/`)
    await roundTrip(v6!, "six")
    await roundTrip(v4!, "four")
    const doc = await hub.doc("d", Todo)
    expect(Object.keys(doc.state.items).sort()).toEqual(["four", "six"])
  })

  test("publicUrl is what clients are told, separate from the bind address", async () => {
    const { acceptor } = recorder()
    const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], publicUrl: "wss://sync.example.com/sync" })
    cleanup.push(() => server.close())
    expect(server.publicUrl).toBe("wss://sync.example.com/sync")
    expect(server.urls()[0]).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/)
    const plain = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }] })
    cleanup.push(() => plain.close())
    expect(plain.publicUrl).toBe(plain.urls()[0])
  })

  test("a plain HTTP request to a listen address gets 426 Upgrade Required", async () => {
    const { acceptor } = recorder()
    const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }] })
    cleanup.push(() => server.close())
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http.get(server.urls()[0]!.replace("ws:", "http:"), (res) => {
        res.resume()
        resolve(res.statusCode)
      }).on("error", reject)
    })
    expect(status).toBe(426)
  })

  test("an address already in use: start rejects with a clear error", async () => {
    const { acceptor } = recorder()
    const first = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }] })
    cleanup.push(() => first.close())
    await expect(WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: first.addresses()[0]!.port }] }))
      .rejects.toThrow(/Cannot listen on 127\.0\.0\.1:\d+/)
  })

  test("close() tells clients going-away and unbinds", async () => {
    const hub = hubWorld()
    const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
    const c = await roundTrip(server.urls()[0]!, "x")
    const seen: Array<string | undefined> = []
    c.onStatus((s, info) => void seen.push(`${s}:${info?.code}`))
    await server.close()
    expect(await until(() => seen.includes("offline:going-away"), 2_000)).toBe(true)
    expect(server.connectionCount).toBe(0)
    await server.close() // idempotent
  })
})

describe("attached to an existing server", () => {
  const get = (url: string, options: https.RequestOptions = {}) => new Promise<string>((resolve, reject) => {
    const mod = url.startsWith("https") ? https : http
    mod.get(url, options, (res) => {
      let body = ""
      res.on("data", (d) => (body += d))
      res.on("end", () => resolve(`${res.statusCode} ${body}`))
    }).on("error", reject)
  })

  test("http server with a path: sync on /sync, the app's routes and other upgrade paths untouched", async () => {
    const app = http.createServer((req, res) => res.end(req.url === "/health" ? "ok" : "app"))
    // The app has its own WebSocket endpoint on another path.
    const other = new WebSocketServer({ noServer: true })
    app.on("upgrade", (req, socket, head) => {
      if (req.url === "/other") other.handleUpgrade(req, socket, head, (ws) => ws.send("other endpoint"))
    })
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", () => r()))
    cleanup.push(() => new Promise((r) => {
      app.closeAllConnections()
      app.close(r)
    }))
    const hub = hubWorld()
    const infos: WsConnectionInfo[] = []
    const server = await WsServer.start({ accept: (conn, info) => (infos.push(info as WsConnectionInfo), hub.accept(conn, info)) }, { server: app, path: "/sync" })
    cleanup.push(() => server.close())
    const port = (app.address() as net.AddressInfo).port
    expect(server.urls()).toEqual([`ws://127.0.0.1:${port}/sync`])
    await roundTrip(`ws://127.0.0.1:${port}/sync?token=abc`, "attached")
    expect(infos[0]).toMatchObject({ remoteAddress: "127.0.0.1", url: "/sync?token=abc", headers: expect.objectContaining({ upgrade: "websocket" }) })
    // The app's own upgrade path still works, and plain HTTP too.
    const o = rawClient(`ws://127.0.0.1:${port}/other`)
    const msg = await new Promise<string>((r) => o.ws.once("message", (d) => r(d.toString())))
    expect(msg).toBe("other endpoint")
    expect(await get(`http://127.0.0.1:${port}/health`)).toBe("200 ok")
    // Closing the WsServer leaves the app's server running.
    await server.close()
    expect(await get(`http://127.0.0.1:${port}/health`)).toBe("200 ok")
    other.close()
  })

  test("a path nobody serves is refused (404): not-found for the client (a final close, not a retried one)", async () => {
    const app = http.createServer((_req, res) => res.end("app"))
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", () => r()))
    cleanup.push(() => new Promise((r) => {
      app.closeAllConnections()
      app.close(r)
    }))
    const { acceptor, conns } = recorder()
    const server = await WsServer.start(acceptor, { server: app, path: "/sync" })
    cleanup.push(() => server.close())
    const closes: CloseInfo[] = []
    wsClientTransport(`ws://127.0.0.1:${(app.address() as net.AddressInfo).port}/nope`).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    expect(await until(() => closes.length > 0, 2_000)).toBe(true)
    expect(closes[0]).toEqual({ code: "not-found", reason: expect.stringMatching(/404/) })
    expect(conns).toEqual([])
  })

  test("verifyUpgrade refuses before any frame (403 by default, or the status it returns)", async () => {
    const { acceptor, conns } = recorder()
    const server = await WsServer.start(acceptor, {
      listen: [{ host: "127.0.0.1", port: 0 }],
      verifyUpgrade: (req) => (req.headers.origin === "https://app.example.com" ? true : req.headers.origin === undefined ? 401 : false),
    })
    cleanup.push(() => server.close())
    const tryOrigin = async (origin?: string) => {
      const closes: CloseInfo[] = []
      let opened = false
      const conn = wsClientTransport(server.urls()[0]!, origin ? { ws: { origin } } : {}).connect({ onOpen: () => void (opened = true), onMessage: () => {}, onClose: (i) => void closes.push(i) })
      cleanup.push(() => conn.close())
      await until(() => opened || closes.length > 0, 2_000)
      return opened ? "open" : closes[0]!.reason
    }
    expect(await tryOrigin("https://app.example.com")).toBe("open")
    expect(await tryOrigin("https://evil.example.com")).toMatch(/403/)
    expect(await tryOrigin()).toMatch(/401/)
    expect(conns.length).toBe(1)
  })

  test("https server with the user's certificate: wss:// works", async () => {
    const { key, cert } = selfSigned()
    const app = https.createServer({ key, cert }, (_req, res) => res.end("secure app"))
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", () => r()))
    cleanup.push(() => new Promise((r) => {
      app.closeAllConnections()
      app.close(r)
    }))
    const hub = hubWorld()
    const server = await WsServer.start(hub, { server: app, path: "/sync" })
    cleanup.push(() => server.close())
    const url = server.urls()[0]!
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/sync$/)
    const c = await CanonClient.open({ transport: wsClientTransport(url, { ws: { ca: cert } }), runtime: systemRuntime, machines: [Todo] })
    cleanup.push(() => c.close())
    const doc = await c.open(Todo, "d")
    await expect(doc.submit("add", { id: "tls", title: "over TLS" })).resolves.toEqual({ seq: 1 })
    // Without trusting the certificate the client cannot connect (and says so, no throw).
    const closes: CloseInfo[] = []
    wsClientTransport(url).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    expect(await until(() => closes.length > 0, 2_000)).toBe(true)
    expect(closes[0]!.code).toBe("unreachable")
    expect(closes[0]!.reason).toMatch(/certificate/i)
  })
})

/**
 * The WebSocket server's resource limits over real sockets on loopback: connections per
 * client address and in all, the client address behind trusted and untrusted proxies
 * (forged X-Forwarded-For), deadlines for sockets that never finish (or never start) their
 * upgrade request, and the hub's handshake deadline as it reaches a raw client.
 */
import * as net from "node:net"
import { WebSocket } from "ws"
import { CanonClient, Hub, type CloseInfo, type ConnectionAcceptor, type ConnectionInfo } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, normalizeAddress, type WsServerEvent, type WsServerOptions } from "../adapters/ws/index.js"
import { wsClientTransport } from "../adapters/ws/client-node.js"
import { clientAddress, proxyTrust } from "../adapters/ws/remote-address.js"
import { ConnectionCounter } from "../adapters/ws/connection-limits.js"
import { Todo } from "./support/machines.js"
import { until } from "./support/ws.js"

let cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  const steps = cleanup.reverse()
  cleanup = []
  for (const f of steps) await f()
})

/** An acceptor that records each connection's info and keeps it open. */
const recorder = () => {
  const infos: Array<ConnectionInfo | undefined> = []
  const acceptor: ConnectionAcceptor = {
    accept: (_conn, info) => {
      infos.push(info)
      return { onMessage: () => {}, onClose: () => {} }
    },
  }
  return { acceptor, infos }
}

const serve = async (acceptor: ConnectionAcceptor, options: Partial<WsServerOptions> = {}) => {
  const events: WsServerEvent[] = []
  const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], onEvent: (e) => void events.push(e), ...options })
  cleanup.push(() => server.close())
  return { server, url: server.urls()[0]!, events }
}

type Outcome = { kind: "open"; ws: WebSocket } | { kind: "refused"; status: number; body: string }

/** Opens a raw WebSocket (from `localAddress`, with `headers`) and says whether it opened or was refused. */
const attempt = (url: string, options: { localAddress?: string; headers?: Record<string, string> } = {}): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...(options.localAddress ? { localAddress: options.localAddress } : {}), headers: options.headers ?? {} })
    cleanup.push(() => ws.terminate())
    const timer = setTimeout(() => reject(new Error("no answer to the upgrade within 5 s")), 5_000)
    ws.on("error", () => {})
    ws.once("open", () => {
      clearTimeout(timer)
      resolve({ kind: "open", ws })
    })
    ws.once("unexpected-response", (_req, res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (body += c))
      res.on("end", () => {
        clearTimeout(timer)
        ws.terminate()
        resolve({ kind: "refused", status: res.statusCode ?? 0, body })
      })
    })
  })

const opened = (o: Outcome): WebSocket => {
  if (o.kind !== "open") throw new Error(`expected an open socket, got HTTP ${o.status}: ${o.body}`)
  return o.ws
}

const closeAndWait = (ws: WebSocket) =>
  new Promise<void>((r) => {
    if (ws.readyState === WebSocket.CLOSED) return r()
    ws.once("close", () => r())
    ws.close()
  })

describe("connections per client address", () => {
  test("N+1 from one address: the extra one gets 429 with a sentence while the first N work; after closing some, new ones come in", async () => {
    const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
    cleanup.push(() => hub.close())
    const { server, url, events } = await serve(hub, { maxConnectionsPerAddress: 3 })
    // Three Canon clients hold the three places and each gets a command confirmed.
    const clients: CanonClient[] = []
    for (let i = 0; i < 3; i++) {
      const c = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo] })
      cleanup.push(() => c.close())
      clients.push(c)
      const doc = await c.open(Todo, "d")
      await expect(doc.submit("add", { id: `i${i}`, title: "x" })).resolves.toEqual({ seq: i + 1 })
    }
    expect(server.connectionsHeld("127.0.0.1")).toBe(3)
    const extra = await attempt(url)
    expect(extra).toEqual({ kind: "refused", status: 429, body: "Too many connections from 127.0.0.1 (limit 3); close some and try again.\n" })
    expect(events).toContainEqual({ type: "refused", remoteAddress: "127.0.0.1", status: 429, reason: expect.stringMatching(/^Too many connections/) })
    // The Node client reports the refusal as unreachable, with the server's sentence.
    const closes: CloseInfo[] = []
    const link = wsClientTransport(url).connect({ onMessage: () => {}, onClose: (i) => void closes.push(i) })
    cleanup.push(() => link.close())
    expect(await until(() => closes.length > 0, 5_000)).toBe(true)
    expect(closes[0]).toEqual({ code: "unreachable", reason: "The hub refused the connection: HTTP 429 (Too many connections from 127.0.0.1 (limit 3); close some and try again.)." })
    // The three still work.
    for (const [i, c] of clients.entries()) {
      const doc = await c.open(Todo, "d")
      await expect(doc.submit("toggle", { id: `i${i}` })).resolves.toEqual({ seq: expect.any(Number) })
    }
    // Two leave: two places free up, not three.
    await clients[0]!.close()
    await clients[1]!.close()
    expect(await until(() => server.connectionsHeld("127.0.0.1") === 1, 5_000)).toBe(true)
    const a = opened(await attempt(url))
    const b = opened(await attempt(url))
    expect((await attempt(url)).kind).toBe("refused")
    await closeAndWait(a)
    await closeAndWait(b)
  })

  test("one address at its cap does not hold back another", async () => {
    const { server, url } = await serve(recorder().acceptor, { maxConnectionsPerAddress: 2 })
    for (let i = 0; i < 2; i++) opened(await attempt(url))
    expect((await attempt(url)).kind).toBe("refused")
    // 127.0.0.2 is loopback too: a different client address on this machine.
    const other = opened(await attempt(url, { localAddress: "127.0.0.2" }))
    expect(server.connectionsHeld("127.0.0.2")).toBe(1)
    expect(server.connectionsHeld()).toBe(3)
    await closeAndWait(other)
  })

  test("a burst of upgrades from one address: exactly the cap gets in", async () => {
    const { server, url } = await serve(recorder().acceptor, { maxConnectionsPerAddress: 5 })
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => attempt(url)))
    expect(outcomes.filter((o) => o.kind === "open").length).toBe(5)
    expect(outcomes.filter((o) => o.kind === "refused" && o.status === 429).length).toBe(15)
    expect(server.connectionsHeld("127.0.0.1")).toBe(5)
  })

  test("maxConnections caps the server in all: 503", async () => {
    const { url } = await serve(recorder().acceptor, { maxConnections: 2 })
    opened(await attempt(url))
    opened(await attempt(url, { localAddress: "127.0.0.2" }))
    expect(await attempt(url, { localAddress: "127.0.0.3" })).toEqual({ kind: "refused", status: 503, body: "The server holds its limit of 2 connections; try again later.\n" })
  })

  test("a socket the hub drops for not saying hello frees its place (close code 4408, handshake-timeout)", async () => {
    const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime, handshakeTimeoutMs: 200 })
    cleanup.push(() => hub.close())
    const { server, url } = await serve(hub, { maxConnectionsPerAddress: 1 })
    const silent = opened(await attempt(url))
    const closed = new Promise<{ code: number; reason: string }>((r) => silent.once("close", (code, reason) => r({ code, reason: reason.toString() })))
    expect((await attempt(url)).kind).toBe("refused")
    expect(await closed).toEqual({ code: 4408, reason: "handshake-timeout: Say hello within 200 ms of connecting." })
    expect(await until(() => server.connectionsHeld() === 0, 5_000)).toBe(true)
    opened(await attempt(url))
  })

  test("bad caps are refused at construction", () => {
    const { acceptor } = recorder()
    for (const bad of [0, -1, 1.5, NaN]) {
      expect(() => new WsServer(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], maxConnectionsPerAddress: bad })).toThrow(/maxConnectionsPerAddress must be a positive integer/)
    }
    expect(() => new WsServer(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], trustProxy: ["10.0.0.0/33"] })).toThrow(/bad prefix length/)
    expect(() => new WsServer(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], trustProxy: ["proxy.local"] })).toThrow(/"proxy.local" is not an IP address/)
  })
})

describe("the client address behind a proxy", () => {
  const forged = { "X-Forwarded-For": "203.0.113.7" }

  test("trustProxy off (default): a forged X-Forwarded-For changes neither the address nor the count", async () => {
    const { acceptor, infos } = recorder()
    const { server, url } = await serve(acceptor, { maxConnectionsPerAddress: 2 })
    opened(await attempt(url, { headers: forged }))
    opened(await attempt(url, { headers: { "X-Forwarded-For": "198.51.100.9" } }))
    expect(await attempt(url, { headers: { "X-Forwarded-For": "192.0.2.1" } })).toMatchObject({ kind: "refused", status: 429 })
    expect(infos.map((i) => i?.remoteAddress)).toEqual(["127.0.0.1", "127.0.0.1"])
    expect(infos[0]).toMatchObject({ peerAddress: "127.0.0.1" })
    expect(server.connectionsHeld("203.0.113.7")).toBe(0)
  })

  test("trustProxy names other proxies: a peer that is not one of them is not believed", async () => {
    const { acceptor, infos } = recorder()
    const { url } = await serve(acceptor, { maxConnectionsPerAddress: 1, trustProxy: ["10.9.9.9", "192.168.0.0/16"] })
    opened(await attempt(url, { headers: forged }))
    expect(await attempt(url, { headers: { "X-Forwarded-For": "198.51.100.9" } })).toMatchObject({ kind: "refused", status: 429 })
    expect(infos.map((i) => i?.remoteAddress)).toEqual(["127.0.0.1"])
  })

  test("trustProxy: true: the client is the right-most hop; what a client prepends is ignored; each client has its own cap", async () => {
    const { acceptor, infos } = recorder()
    const { server, url } = await serve(acceptor, { maxConnectionsPerAddress: 2, trustProxy: true })
    opened(await attempt(url, { headers: forged }))
    // A client that prepends a fake hop: the proxy appended its real address on the right.
    opened(await attempt(url, { headers: { "X-Forwarded-For": "198.51.100.1, 203.0.113.7" } }))
    expect(await attempt(url, { headers: { "X-Forwarded-For": "192.0.2.50, 203.0.113.7" } })).toMatchObject({ kind: "refused", status: 429, body: expect.stringContaining("from 203.0.113.7") })
    // Another client behind the same proxy is not held back; no header: the proxy's own address.
    opened(await attempt(url, { headers: { "X-Forwarded-For": "198.51.100.9" } }))
    opened(await attempt(url))
    expect(infos.map((i) => i?.remoteAddress)).toEqual(["203.0.113.7", "203.0.113.7", "198.51.100.9", "127.0.0.1"])
    expect(infos.map((i) => (i as { peerAddress?: string }).peerAddress)).toEqual(["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    expect(server.connectionsHeld("203.0.113.7")).toBe(2)
  })

  test("trustProxy as a list: hops are read from the right, skipping trusted proxies", async () => {
    const { acceptor, infos } = recorder()
    const { url } = await serve(acceptor, { trustProxy: ["127.0.0.1", "10.0.0.0/8"] })
    opened(await attempt(url, { headers: { "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3" } }))
    // Only trusted hops: the left-most of them.
    opened(await attempt(url, { headers: { "X-Forwarded-For": "10.0.0.1, 10.1.2.3" } }))
    // A hop that is no address stops the walk at the last hop a trusted proxy vouched for.
    opened(await attempt(url, { headers: { "X-Forwarded-For": "203.0.113.7, not-an-ip, 10.1.2.3" } }))
    // Repeated headers count as one list.
    const raw = await rawUpgrade(url, ["X-Forwarded-For: 198.51.100.4", "X-Forwarded-For: 10.2.2.2"])
    expect(raw).toMatch(/^HTTP\/1\.1 101/)
    expect(await until(() => infos.length === 4, 2_000)).toBe(true)
    expect(infos.map((i) => i?.remoteAddress)).toEqual(["203.0.113.7", "10.0.0.1", "10.1.2.3", "198.51.100.4"])
  })
})

describe("IPv6 clients are counted by their network", () => {
  const from = (address: string) => ({ headers: { "X-Forwarded-For": address } })

  test("addresses of one /64 share its cap (a subscriber's block is one client); another /64 has its own; the acceptor is told both", async () => {
    const { acceptor, infos } = recorder()
    const { server, url } = await serve(acceptor, { maxConnectionsPerAddress: 2, trustProxy: true })
    opened(await attempt(url, from("2001:db8:1:2::1")))
    opened(await attempt(url, from("2001:db8:1:2:ffff:ffff:ffff:fffe")))
    // A third address of the same /64, written in another case and form: the block's cap.
    expect(await attempt(url, from("2001:DB8:1:2:0:0:0:3"))).toMatchObject({ kind: "refused", status: 429, body: expect.stringContaining("from 2001:db8:1:2::/64") })
    opened(await attempt(url, from("2001:db8:1:3::1")))
    expect(server.connectionsHeld("2001:db8:1:2::99")).toBe(2)
    expect(infos.map((i) => [i?.remoteAddress, i?.limitKey])).toEqual([
      ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
      ["2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"],
      ["2001:db8:1:3::1", "2001:db8:1:3::/64"],
    ])
  })

  test("ipv6Prefix: 128 counts each address; 48 a whole site; IPv4 is per address whatever it says; a bad prefix is refused at start", async () => {
    const each = await serve(recorder().acceptor, { maxConnectionsPerAddress: 1, trustProxy: true, ipv6Prefix: 128 })
    opened(await attempt(each.url, from("2001:db8:1:2::1")))
    opened(await attempt(each.url, from("2001:db8:1:2::2")))
    const site = await serve(recorder().acceptor, { maxConnectionsPerAddress: 1, trustProxy: true, ipv6Prefix: 48 })
    opened(await attempt(site.url, from("2001:db8:1:2::1")))
    expect(await attempt(site.url, from("2001:db8:1:ffff::1"))).toMatchObject({ kind: "refused", status: 429, body: expect.stringContaining("from 2001:db8:1::/48") })
    opened(await attempt(site.url, from("203.0.113.1")))
    opened(await attempt(site.url, from("203.0.113.2")))
    for (const bad of [0, 129, 64.5, Number.NaN]) {
      expect(() => new WsServer(recorder().acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], ipv6Prefix: bad })).toThrow(/ipv6Prefix must be an integer from 1 to 128/)
    }
  })
})

/** Sends a hand-written upgrade request with extra header lines; resolves with the first bytes of the answer. */
const rawUpgrade = (url: string, headerLines: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    const u = new URL(url)
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write([
        `GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", ...headerLines, "", "",
      ].join("\r\n"))
    })
    cleanup.push(() => socket.destroy())
    socket.once("data", (d) => resolve(d.toString("latin1")))
    socket.once("error", reject)
  })

describe("sockets that never finish their upgrade request", () => {
  const watch = (port: number, send?: string) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      if (send !== undefined) socket.write(send)
    })
    cleanup.push(() => socket.destroy())
    let answer = ""
    let closed = false
    socket.on("data", (d) => (answer += d.toString("latin1")))
    socket.on("error", () => {})
    socket.on("close", () => (closed = true))
    return { answer: () => answer, closed: () => closed, write: (text: string) => void (closed || socket.write(text)) }
  }

  test("one that sends nothing and one that never ends its headers are closed after requestTimeoutMs", async () => {
    const { acceptor, infos } = recorder()
    const { server } = await serve(acceptor, { requestTimeoutMs: 300 })
    const port = server.addresses()[0]!.port
    const silent = watch(port)
    // Stays active (a header line every 50 ms), so only the headers deadline can end it.
    const trickle = watch(port, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    for (let i = 0; i < 200 && !trickle.closed(); i++) {
      await new Promise((r) => setTimeout(r, 50))
      trickle.write(`X-Slow-${i}: 1\r\n`)
    }
    expect(await until(() => silent.closed() && trickle.closed(), 10_000)).toBe(true)
    expect(trickle.answer()).toMatch(/^HTTP\/1\.1 408/)
    expect(infos).toEqual([])
  })

  test("an upgraded socket is not cut by that deadline", async () => {
    const { url } = await serve(recorder().acceptor, { requestTimeoutMs: 200 })
    const ws = opened(await attempt(url))
    await new Promise((r) => setTimeout(r, 600))
    expect(ws.readyState).toBe(WebSocket.OPEN)
  })
})

describe("remote-address and connection-limits, unit", () => {
  const req = (peer: string, xff?: string | string[]) => ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { "x-forwarded-for": xff } }) as never

  test("addresses are compared in one form", () => {
    expect(normalizeAddress("::ffff:127.0.0.1")).toBe("127.0.0.1")
    expect(normalizeAddress("0:0:0:0:0:0:0:1")).toBe("::1")
    expect(normalizeAddress("[2001:DB8::1]")).toBe("2001:db8::1")
    expect(normalizeAddress("1.2.3.4:5678")).toBeUndefined()
    expect(normalizeAddress("unknown")).toBeUndefined()
  })

  test("clientAddress follows the rules of the module header", () => {
    const none = proxyTrust(false)
    const one = proxyTrust(true)
    const list = proxyTrust(["::1", "10.0.0.0/8"])
    expect(clientAddress(req("::ffff:10.0.0.1", "1.2.3.4"), none)).toBe("10.0.0.1")
    expect(clientAddress(req("10.0.0.1", "9.9.9.9, 1.2.3.4"), one)).toBe("1.2.3.4")
    expect(clientAddress(req("10.0.0.1", "9.9.9.9, garbage"), one)).toBe("10.0.0.1")
    expect(clientAddress(req("::1", "9.9.9.9, 1.2.3.4, 10.0.0.2"), list)).toBe("1.2.3.4")
    expect(clientAddress(req("::1", ["9.9.9.9", "10.0.0.2"]), list)).toBe("9.9.9.9")
    expect(clientAddress(req("192.168.1.1", "1.2.3.4"), list)).toBe("192.168.1.1")
    expect(clientAddress(req("::1"), list)).toBe("::1")
    expect(clientAddress(req("::1", ""), list)).toBe("::1")
  })

  test("a place is released once, however often release is called", () => {
    const counter = new ConnectionCounter({ perAddress: 1, total: 2 })
    const a = counter.admit("a")
    expect(a.ok).toBe(true)
    expect(counter.admit("a")).toMatchObject({ ok: false, status: 429 })
    if (a.ok) {
      a.release()
      a.release()
    }
    expect(counter.held()).toBe(0)
    expect(counter.admit("a").ok).toBe(true)
    expect(counter.admit("b").ok).toBe(true)
    expect(counter.admit("c")).toMatchObject({ ok: false, status: 503 })
  })
})

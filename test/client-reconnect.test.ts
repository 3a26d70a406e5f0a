/**
 * How promptly and how finally a client reconnects: the backoff cap (a restarted hub has its
 * clients back within 2 s of listening), `reconnectNow` and a transport's wake signal (the
 * browser's `online` and a tab made visible), a wrong URL (HTTP 404 at the upgrade) as a
 * final typed refusal instead of endless "offline" retries, and receipts that settle with a
 * typed error after a final refusal (the outbox is kept).
 */
import { CanonClient, CanonError, Hub, defineMachine, type ClientTransport } from "../core/index.js"
import { backoffDelay } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { wsClientTransport as browserTransport, type BrowserWebSocket } from "../adapters/ws/client-browser.js"
import { Todo } from "./support/machines.js"
import { until } from "./support/ws.js"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

const setup = () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}

test("the default backoff never waits more than 2 s, however many attempts failed", () => {
  for (const attempt of [0, 3, 8, 20, 60]) expect(backoffDelay(attempt, () => 0.9999)).toBeLessThanOrEqual(2_000)
  // Still exponential at the start: the first retries come quickly.
  expect(backoffDelay(0, () => 0.9999)).toBeLessThan(250)
})

test("after a hub restart, every client is online within 2 s of the hub listening again", async () => {
  const env = setup()
  const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => CanonClient.open({ transport: env.net.transport(`c${i}`), runtime: env.rt, machines: [Todo] })))
  await env.rt.run({ forMs: 100 })
  expect(clients.every((c) => c.status === "online")).toBe(true)
  env.net.stopServer()
  // Down long enough for every backoff to reach its cap.
  await env.rt.run({ forMs: 120_000 })
  expect(clients.every((c) => c.status !== "online")).toBe(true)
  env.net.listen(new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: env.rt }))
  await env.rt.run({ forMs: 2_050 })
  expect(clients.map((c) => c.status)).toEqual(clients.map(() => "online"))
})

test("reconnectNow skips what is left of a long backoff", async () => {
  const env = setup()
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Todo], backoff: { baseMs: 60_000, maxMs: 60_000 } })
  await env.rt.run({ forMs: 100 })
  env.net.stopServer()
  await env.rt.run({ forMs: 200 })
  expect(client.status).toBe("offline")
  env.net.listen(env.hub)
  await env.rt.run({ forMs: 100 })
  // The backoff would wait up to a minute more; the user clicked "Retry now".
  client.reconnectNow()
  await env.rt.run({ forMs: 50 })
  expect(client.status).toBe("online")
  // Online already: another call opens no second connection.
  client.reconnectNow()
  await env.rt.run({ forMs: 50 })
  expect(env.net.connectionCount).toBe(1)
})

test("a transport's wake signal (network back, tab visible) reconnects at once", async () => {
  const env = setup()
  const wakers = new Set<() => void>()
  const inner = env.net.transport("c")
  const transport: ClientTransport & { onWake(fn: () => void): () => void } = {
    connect: (listener) => inner.connect(listener),
    onWake(fn) {
      wakers.add(fn)
      return () => wakers.delete(fn)
    },
  }
  const client = await CanonClient.open({ transport, runtime: env.rt, machines: [Todo], backoff: { baseMs: 60_000, maxMs: 60_000 } })
  await env.rt.run({ forMs: 100 })
  env.net.stopServer()
  await env.rt.run({ forMs: 200 })
  env.net.listen(env.hub)
  for (const w of wakers) w()
  await env.rt.run({ forMs: 50 })
  expect(client.status).toBe("online")
  await client.close()
  expect(wakers.size).toBe(0)
})

test("the browser transport wakes on the window's online and visibilitychange events", () => {
  const g = globalThis as unknown as Record<string, unknown>
  const target = new EventTarget()
  const saved = { addEventListener: g["addEventListener"], removeEventListener: g["removeEventListener"], document: g["document"] }
  const doc = { visibilityState: "visible" }
  Object.assign(g, { addEventListener: target.addEventListener.bind(target), removeEventListener: target.removeEventListener.bind(target), document: doc })
  try {
    let woken = 0
    const stop = browserTransport("ws://127.0.0.1:1/sync").onWake(() => woken++)
    target.dispatchEvent(new Event("online"))
    expect(woken).toBe(1)
    doc.visibilityState = "hidden"
    target.dispatchEvent(new Event("visibilitychange")) // hidden: nothing to do
    target.dispatchEvent(new Event("online")) // nor while hidden: it wakes when shown
    expect(woken).toBe(1)
    doc.visibilityState = "visible"
    target.dispatchEvent(new Event("visibilitychange"))
    expect(woken).toBe(2)
    stop()
    target.dispatchEvent(new Event("online"))
    expect(woken).toBe(2)
  } finally {
    Object.assign(g, saved)
  }
})

describe("a URL with no hub behind it (HTTP 404 at the upgrade)", () => {
  // As the canon CLI's hub: pages on an HTTP server (404 elsewhere), WebSocket on /sync (426 to a plain GET).
  let http: Server
  let server: WsServer
  let port: number
  beforeAll(async () => {
    const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
    http = createServer((req, res) => (req.url === "/sync" ? res.writeHead(426, { Upgrade: "websocket" }).end() : res.writeHead(404).end("Not found.\n")))
    server = new WsServer(hub, { server: http, path: "/sync" })
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r))
    port = (http.address() as AddressInfo).port
  })
  afterAll(async () => {
    await server.close()
    http.closeAllConnections()
    await new Promise((r) => http.close(r))
  })

  test("the Node client stops with a typed not-found refusal instead of retrying as if offline", async () => {
    const client = await CanonClient.open({ transport: wsClientTransport(`ws://127.0.0.1:${port}/wrong`), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 20 } })
    let attempts = 0
    client.onStatus((s) => { if (s === "connecting") attempts++ })
    expect(await until(() => client.status === "refused", 3_000)).toBe(true)
    expect(client.refusal?.code).toBe("not-found")
    expect(client.refusal?.message).toMatch(/The hub at ws:\/\/127\.0\.0\.1:\d+\/wrong answered HTTP 404/)
    await new Promise((r) => setTimeout(r, 200))
    expect(attempts).toBe(0) // the first attempt began before the listener; none followed
    // The right path still works from the same hub.
    const good = await CanonClient.open({ transport: wsClientTransport(`ws://127.0.0.1:${port}/sync`), runtime: systemRuntime, machines: [Todo] })
    expect(await until(() => good.status === "online", 3_000)).toBe(true)
    await Promise.all([client.close(), good.close()])
  })

  test("the browser client asks the URL over HTTP after a failed upgrade and stops on its 404", async () => {
    // A page only sees close 1006 for a refused upgrade: a WebSocket that fails that way.
    class FailingWebSocket implements BrowserWebSocket {
      binaryType = "blob"
      readonly bufferedAmount = 0
      private readonly listeners: Record<string, (e: unknown) => void> = {}
      constructor(readonly url: string) {
        setTimeout(() => this.listeners["close"]?.({ code: 1006, reason: "" }), 5)
      }
      send(): void {}
      close(): void {}
      addEventListener(type: string, listener: (e: unknown) => void): void {
        this.listeners[type] = listener
      }
    }
    const wrong = await CanonClient.open({ transport: browserTransport(`ws://127.0.0.1:${port}/wrong`, { WebSocket: FailingWebSocket }), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 20 } })
    expect(await until(() => wrong.status === "refused", 3_000)).toBe(true)
    expect(wrong.refusal?.code).toBe("not-found")
    // The hub's own path answers 426 (a WebSocket endpoint): that stays a retried failure.
    const right = await CanonClient.open({ transport: browserTransport(`ws://127.0.0.1:${port}/sync`, { WebSocket: FailingWebSocket }), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 20 } })
    let attempts = 0
    right.onStatus((s) => { if (s === "connecting") attempts++ })
    expect(await until(() => attempts >= 2, 3_000)).toBe(true)
    expect(right.status).not.toBe("refused")
    await Promise.all([wrong.close(), right.close()])
  })
})

test("after a final refusal, pending receipts reject with a typed error and the outbox is kept", async () => {
  const TodoV2 = defineMachine({ ...Todo, version: 2 })
  const env = setup()
  env.net.listen(new Hub({ machines: [TodoV2], storage: new MemoryStorage(), runtime: env.rt }))
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Todo], storage, autoConnect: false })
  const doc = await client.open(Todo, "list")
  const early = doc.submit("add", { id: "a", title: "made before the refusal" })
  let e: unknown = "still pending"
  early.then(() => (e = "confirmed"), (err: unknown) => (e = err))
  client.connect()
  await env.rt.run({ forMs: 1_000 })
  expect(client.status).toBe("refused")
  await new Promise((r) => setTimeout(r, 0))
  expect(e).toBeInstanceOf(CanonError)
  expect((e as CanonError).code).toBe("refused")
  expect((e as CanonError).message).toMatch(/schema-too-old/)
  expect((e as CanonError).message).toMatch(/kept in the outbox on this device/)
  // Made while refused: settles the same way, at once.
  const late = doc.submit("add", { id: "b", title: "made while refused" })
  await late.persisted
  await expect(late).rejects.toMatchObject({ code: "refused" })
  expect(doc.pendingCount).toBe(2)
  await client.close()
  // Both commands are on disk for the next run.
  const again = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Todo], storage, autoConnect: false })
  const reopened = await again.open(Todo, "list")
  expect(reopened.pending.map((p) => p.name)).toEqual(["add", "add"])
  await again.close()
})

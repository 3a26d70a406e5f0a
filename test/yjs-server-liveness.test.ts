/**
 * On the /yjs route only a pong is a sign of life, as on /sync and /automerge. Before, any
 * message counted: a peer that sent and never read stayed connected, holding a connection
 * and up to `maxBufferedBytes` of unsent replies in the hub, for as long as it kept sending.
 * A stock y-websocket client, which reads (its socket answers pings by itself), stays.
 *
 * Over real sockets on 127.0.0.1; every loop is bounded in count and time.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeAwarenessUpdate, decodeYMessage, encodeAwareness, encodeAwarenessUpdate, encodeQueryAwareness, encodeStep1 } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { noise } from "./support/noise.js"

test("a /yjs peer that sends and never reads is terminated by the keepalive sweep; a stock provider stays", async () => {
  const { url, routes, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { keepaliveMs: 50 })])
  const route = routes[0]!
  const base = url("/yjs/liveness")
  const provider = new WebsocketProvider(base.slice(0, base.lastIndexOf("/")), "liveness", new Y.Doc(), {
    WebSocketPolyfill: WebSocket as never, params: { token: "ann" }, disableBc: true,
  })
  let providerCloses = 0
  provider.on("connection-close", () => providerCloses++)
  const deaf = new WebSocket(`${base}?token=mallory`, { perMessageDeflate: false })
  deaf.on("error", () => {})
  let heard = 0
  deaf.on("message", () => heard++)
  const opened = new Promise((resolve, reject) => { deaf.once("open", resolve); deaf.once("error", reject) })
  try {
    await opened
    expect(await until(() => provider.synced, 10_000)).toBe(true)
    expect(await until(() => heard > 0 && route.connections === 2, 5_000)).toBe(true)
    // Stop reading for good: the hub's pings (and everything else) stay unread.
    ;(deaf as unknown as { _socket: { pause(): void } })._socket.pause()
    // Its own small awareness state, renewed 50 times a second (well under the route's rates).
    const end = Date.now() + 5_000
    let clock = 0
    while (route.connections === 2 && Date.now() < end) {
      deaf.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: 424_242, clock: ++clock, state: "{}" }])))
      await sleep(20)
    }
    expect(route.connections).toBe(1)
    // The provider answered every ping by itself: still connected, many sweeps later.
    await sleep(500)
    expect(route.connections).toBe(1)
    expect(providerCloses).toBe(0)
    expect(provider.wsconnected).toBe(true)
  } finally {
    deaf.terminate()
    provider.destroy()
    provider.doc.destroy() // stops its awareness timer
    await stop()
  }
})

test("a /yjs peer that keeps one ping's nonce back, stops reading and answers it just before its deadline lives no longer for it", async () => {
  // When a pong answered every ping, the kept one cleared all that were owed, and the wait for
  // what the peer had not read began again: about twice the life (attack review r20: 310 s
  // instead of 160 s at the route's defaults with a 9 MiB document). It now answers its own
  // ping and the earlier ones only.
  const { url, hub, routes, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { keepaliveMs: 100, pongTimeoutMs: 600 })])
  const route = routes[0]!
  // 8 KiB of document: a peer that stops reading is given what that takes at 2 KiB/s (4 s), then the timeout.
  const source = new Y.Doc()
  source.getText("t").insert(0, noise(8 << 10, 7))
  const authority = await hub.crdtDocs.open<Y.Doc>("yjs", "withhold")
  expect((await authority.submit([Y.encodeStateAsUpdate(source)])).stored).toBe(1)
  hub.crdtDocs.release(authority)
  const timers: Array<ReturnType<typeof setTimeout>> = []
  /** How long a peer lives once it read a ping, asked for the document and stopped reading; it answers that ping `answerAfterMs` later (never: undefined). */
  const life = async (answerAfterMs?: number): Promise<number> => {
    const ws = new WebSocket(`${url("/yjs/withhold")}?token=mallory`, { perMessageDeflate: false, autoPong: false })
    ws.on("error", () => {})
    try {
      const nonce = await new Promise<Buffer>((resolve, reject) => { ws.once("ping", resolve); ws.once("error", reject) })
      ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
      ;(ws as unknown as { _socket: { pause(): void } })._socket.pause()
      const start = Date.now()
      if (answerAfterMs !== undefined) timers.push(setTimeout(() => ws.pong(nonce), answerAfterMs))
      expect(await until(() => route.connections === 0, 30_000)).toBe(true)
      return Date.now() - start
    } finally {
      ws.terminate()
    }
  }
  try {
    const plain = await life()
    expect(plain).toBeGreaterThan(3_000)
    const withheld = await life(plain - 700)
    expect(withheld).toBeLessThan(plain + 1_000)
  } finally {
    for (const t of timers) clearTimeout(t)
    await stop()
  }
})

test("a /yjs peer whose pong waits unread through a stall of the hub's process stays: the first sweep after it does not judge that time", async () => {
  const { url, routes, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { keepaliveMs: 100, pongTimeoutMs: 1_000 })])
  const route = routes[0]!
  const ws = new WebSocket(`${url("/yjs/stall")}?token=ann`, { perMessageDeflate: false })
  ws.on("error", () => {})
  try {
    await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
    expect(await until(() => route.connections === 1, 5_000)).toBe(true)
    // ws answers the ping at once; then this process (the hub's too) blocks for 2.5 pong
    // timeouts. After it the timers run before the sockets are read: before, the sweep found
    // the pong late and terminated the socket.
    await new Promise<void>((resolve) => ws.once("ping", () => {
      const end = Date.now() + 2_500
      while (Date.now() < end) { /* busy */ }
      resolve()
    }))
    await sleep(1_000)
    expect(route.connections).toBe(1)
    expect(ws.readyState).toBe(WebSocket.OPEN)
  } finally {
    ws.terminate()
    await stop()
  }
})

test("a /yjs room keeps an awareness state through a stall of the hub's process: the late sweep does not count the stall against it", async () => {
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { keepaliveMs: 100, pongTimeoutMs: 5_000, awarenessTimeoutMs: 800 })])
  const open = async (token: string) => {
    const ws = new WebSocket(`${url("/yjs/aware")}?token=${token}`, { perMessageDeflate: false })
    ws.on("error", () => {})
    const got: Uint8Array[] = []
    ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
    await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
    return { ws, got }
  }
  const statesIn = (frames: Uint8Array[]): string[] =>
    frames.map((f) => decodeYMessage(f)).flatMap((m) => (m.type === "awareness" ? decodeAwarenessUpdate(m.update, 1024) : [])).filter((e) => e.state !== "null").map((e) => e.state)
  const ann = await open("ann")
  const bob = await open("bob")
  try {
    ann.ws.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: 515_151, clock: 1, state: "{\"here\":1}" }])))
    expect(await until(() => statesIn(bob.got).includes("{\"here\":1}"), 5_000)).toBe(true)
    bob.got.length = 0
    // Bob asks for the room's states, and this process (the hub's too) blocks for twice the
    // awareness timeout before the hub reads the question. After the stall the sweep runs
    // first; before, it forgot ann's state, and bob's answer came without it.
    bob.ws.send(encodeQueryAwareness())
    const end = Date.now() + 1_600
    while (Date.now() < end) { /* busy */ }
    expect(await until(() => bob.got.some((f) => decodeYMessage(f).type === "awareness" && f.length > 3), 5_000)).toBe(true)
    expect(statesIn(bob.got)).toContain("{\"here\":1}")
  } finally {
    ann.ws.terminate()
    bob.ws.terminate()
    await stop()
  }
})

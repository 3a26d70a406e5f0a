/**
 * A stock client's offline work reaches the hub on the CRDT routes. y-websocket answers the
 * hub's step1 with everything the hub lacks in one step2, and a Repo syncs everything it made
 * before it connected in one sync message. With every frame held to Canon's 1 MiB, a user
 * with more than that done offline was closed 1009 at every reconnect, for good: 6 closes
 * in 8 s here, and the hub never had the text. The CRDT routes now take messages up to
 * their own `maxMessageBytes` (default 9 MiB: 8 MiB of updates, DEFAULT_MAX_DOC_UPDATE_BYTES,
 * and 1 MiB around them); the Canon protocol's route keeps 1 MiB.
 */
import { Repo } from "@automerge/automerge-repo"
import { randomBytes } from "node:crypto"
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { automergeDocEngine, automergeRoute, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { DEFAULT_MAX_DOC_UPDATE_BYTES, DOC_MESSAGE_OVERHEAD_BYTES } from "../core/crdt-docs/index.js"
import { DEFAULT_MAX_FRAME_BYTES } from "../core/index.js"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { noise } from "./support/noise.js"
import { until } from "./support/ws.js"


/** Polls an async reading into a value `until` can wait on. */
const watch = <T>(read: () => Promise<T>, initial: T) => {
  const box = { value: initial }
  const timer = setInterval(() => void read().then((v) => (box.value = v), () => {}), 50)
  return { box, stop: () => clearInterval(timer) }
}

test("Yjs: a stock provider with 3 MiB done offline syncs it on connect, and a reader gets it", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs")
  const doc = new Y.Doc()
  const text = doc.getText("t")
  for (let i = 0; i < 48; i++) text.insert(text.length, noise(64 << 10, i + 1))
  expect(Y.encodeStateAsUpdate(doc).length).toBeGreaterThan(3 * DEFAULT_MAX_FRAME_BYTES)
  const providers: WebsocketProvider[] = []
  const closes: number[] = []
  const hubText = watch(async () => (await hub.crdtDocs.open<Y.Doc>("yjs", "offline")).doc.getText("t").length, 0)
  try {
    const writer = new WebsocketProvider(base, "offline", doc, { WebSocketPolyfill: WebSocket as never, params: { token: "ann" }, disableBc: true })
    providers.push(writer)
    writer.on("connection-close", (e: { code: number } | null) => void closes.push(e?.code ?? -1))
    expect(await until(() => hubText.box.value === text.length, 20_000)).toBe(true)
    const reader = new WebsocketProvider(base, "offline", new Y.Doc(), { WebSocketPolyfill: WebSocket as never, params: { token: "bob" }, disableBc: true })
    providers.push(reader)
    expect(await until(() => reader.doc.getText("t").length === text.length, 20_000)).toBe(true)
    expect(reader.doc.getText("t").toString()).toBe(text.toString())
    expect(closes).toEqual([])
  } finally {
    hubText.stop()
    for (const p of providers) {
      p.destroy()
      p.doc.destroy() // stops its awareness timer
    }
    await stop()
  }
}, 60_000)

test("Automerge: a stock Repo's 3 MiB of changes made before it connected reach the hub", async () => {
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host, { pingMs: 600_000 })])
  const adapter = new StoppableClientAdapter(`${url("/automerge")}?token=ann`, 200)
  const repo = new Repo({ network: [adapter], peerId: "ann" as never })
  let hubKeys: ReturnType<typeof watch<number>> | undefined
  try {
    // All before the socket opens: the first sync carries them together.
    const handle = repo.create<Record<string, unknown>>({ n: 0 })
    for (let i = 0; i < 24; i++) handle.change((d) => void (d[`piece${i}`] = new Uint8Array(randomBytes(128 << 10))))
    hubKeys = watch(async () => Object.keys((await hub.crdtDocs.open<AutomergeBox>("automerge", handle.documentId)).doc.doc as object).length, 0)
    // 9 s on a loaded 2-core machine, over 20 s when the whole suite ran beside other work: bounded at 45 s.
    expect(await until(() => hubKeys!.box.value === 25, 45_000)).toBe(true)
  } finally {
    hubKeys?.stop()
    await repo.shutdown().catch(() => {})
    await stop()
  }
}, 60_000)

describe("the frame limits", () => {
  const closeOf = async (target: string, frame: Uint8Array): Promise<number | undefined> => {
    const ws = new WebSocket(target)
    let code: number | undefined
    ws.on("close", (c) => (code = c))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    ws.send(frame)
    await until(() => code !== undefined, 1_500)
    ws.terminate()
    return code
  }

  test("a CRDT route takes a message up to its maxMessageBytes and closes one a byte over (1009)", async () => {
    const LIMIT = 256 << 10
    const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { maxMessageBytes: LIMIT })])
    try {
      // An update message of exactly LIMIT bytes: the text is sized to fill it.
      const sized = (n: number) => {
        const d = new Y.Doc()
        d.getText("t").insert(0, noise(n, 7))
        return { doc: d, message: encodeUpdate(Y.encodeStateAsUpdate(d)) }
      }
      let n = LIMIT - 64
      let { doc: full, message } = sized(n)
      for (let i = 0; i < 10 && message.length !== LIMIT; i++) ({ doc: full, message } = sized((n += LIMIT - message.length)))
      expect(message.length).toBe(LIMIT)
      const target = `${url("/yjs/limit")}?token=ann`
      expect(await closeOf(target, message)).toBeUndefined()
      const hubText = watch(async () => (await hub.crdtDocs.open<Y.Doc>("yjs", "limit")).doc.getText("t").length, 0)
      expect(await until(() => hubText.box.value === full.getText("t").length, 5_000)).toBe(true)
      hubText.stop()
      const over = new Uint8Array(LIMIT + 1)
      over.set(message)
      expect(await closeOf(target, over)).toBe(1009)
    } finally {
      await stop()
    }
  })

  test("the defaults: CRDT routes 9 MiB, the Canon protocol's route still 1 MiB", async () => {
    const { url, routes, stop } = await crdtRoutesHub([yjsDocEngine(), automergeDocEngine()], (host) => [yjsRoute(host), automergeRoute(host)])
    try {
      expect(routes.map((r) => r.maxFrameBytes)).toEqual([DEFAULT_MAX_DOC_UPDATE_BYTES + DOC_MESSAGE_OVERHEAD_BYTES, DEFAULT_MAX_DOC_UPDATE_BYTES + DOC_MESSAGE_OVERHEAD_BYTES])
      expect(await closeOf(url("/sync"), new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1))).toBe(1009)
      // 2 MiB of garbage on a CRDT route is read (and refused as garbage, not for its size).
      const code = await closeOf(`${url("/yjs/garbage")}?token=ann`, new Uint8Array(2 << 20).fill(7))
      expect(code).not.toBe(1009)
    } finally {
      await stop()
    }
  })
})

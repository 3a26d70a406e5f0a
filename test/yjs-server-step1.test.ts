/**
 * SyncStep1 on the y-websocket route (the attack of yjs-step1-amplify.mjs): a 4-byte step1
 * with an empty state vector made the hub encode the whole document (Y.encodeStateAsUpdate,
 * synchronous) and send it, once per request, so a few sockets asking again and again kept
 * the hub encoding. Now a socket's step1s are paced (three at once, then one a second; a newer
 * one replaces a waiting one) with one answer in flight, and the whole document's answer is
 * encoded once per change and shared. Answers stay right: a client with a stale state vector
 * gets the diff, and a stock provider syncs.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute, type YjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep1, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

const KEYS = 20_000
const EMPTY = Y.encodeStateVector(new Y.Doc())

/** The step2 answers among `frames`, as updates. */
const answers = (frames: ReadonlyArray<Uint8Array>): Uint8Array[] => {
  const out: Uint8Array[] = []
  for (const f of frames) {
    const m = decodeYMessage(f)
    if (m.type === "step2") out.push(m.update)
  }
  return out
}

const keysAfter = (update: Uint8Array, base?: Y.Doc): number => {
  const d = new Y.Doc()
  if (base !== undefined) Y.applyUpdate(d, Y.encodeStateAsUpdate(base))
  Y.applyUpdate(d, update)
  const n = d.getMap("m").size
  d.destroy()
  return n
}

test("repeated step1s: paced, one answer in flight, the whole document encoded once per change; diffs and stock sync stay right", async () => {
  const { hub, url, routes, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const route = routes[0] as YjsRoute
  const base = url("/yjs/step1")
  const sockets: WebSocket[] = []
  let provider: WebsocketProvider | undefined
  const raw = async (token: string) => {
    const ws = new WebSocket(`${base}?token=${token}`)
    sockets.push(ws)
    const got: Uint8Array[] = []
    let closed: number | undefined
    ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
    ws.on("close", (code) => (closed = code))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    await until(() => got.length > 0, 5_000)
    return { ws, got, closed: () => closed }
  }
  try {
    // A document of 20,000 map keys (about 300 KB as one V1 update).
    const writerDoc = new Y.Doc()
    writerDoc.transact(() => {
      for (let k = 0; k < KEYS; k++) writerDoc.getMap("m").set(`k${k}`, k)
    })
    const writer = await raw("writer")
    writer.ws.send(encodeUpdate(Y.encodeStateAsUpdate(writerDoc)))
    const live = await hub.crdtDocs.open<Y.Doc>("yjs", "step1")
    expect(await until(() => live.doc.getMap("m").size === KEYS, 10_000)).toBe(true)
    const encodesBefore = route.step1Encodes

    // Four sockets each ask for everything ten times, back to back.
    const askers = await Promise.all([0, 1, 2, 3].map((i) => raw(`asker-${i}`)))
    const started = Date.now()
    for (const a of askers) for (let i = 0; i < 10; i++) a.ws.send(encodeStep1(EMPTY))
    expect(await until(() => askers.every((a) => answers(a.got).length > 0), 10_000)).toBe(true)
    await sleep(500)
    const elapsed = Date.now() - started
    for (const a of askers) {
      const got = answers(a.got)
      // Three at once, one a second after; the requests in between are one (the latest).
      expect(got.length).toBeLessThanOrEqual(3 + Math.ceil(elapsed / 1000))
      for (const u of got) expect(keysAfter(u)).toBe(KEYS)
      expect(a.closed()).toBeUndefined()
    }
    // One encode for all of them: the document did not change.
    expect(route.step1Encodes - encodesBefore).toBe(1)

    // A change: the next whole answer is encoded again, and holds it.
    writerDoc.getMap("m").set("new", -1)
    const stale = new Y.Doc()
    Y.applyUpdate(stale, answers(askers[0]!.got)[0]!)
    writer.ws.send(encodeUpdate(Y.encodeStateAsUpdate(writerDoc, Y.encodeStateVector(stale))))
    expect(await until(() => live.doc.getMap("m").size === KEYS + 1, 10_000)).toBe(true)
    const fresh = await raw("fresh")
    fresh.ws.send(encodeStep1(EMPTY))
    expect(await until(() => answers(fresh.got).length === 1, 10_000)).toBe(true)
    expect(keysAfter(answers(fresh.got)[0]!)).toBe(KEYS + 1)
    expect(route.step1Encodes - encodesBefore).toBe(2)
    // A client with a stale state vector gets the diff: small, and it completes its copy.
    const staleAsker = await raw("stale")
    staleAsker.ws.send(encodeStep1(Y.encodeStateVector(stale)))
    expect(await until(() => answers(staleAsker.got).length === 1, 10_000)).toBe(true)
    const diff = answers(staleAsker.got)[0]!
    expect(diff.length).toBeLessThan(1000)
    expect(keysAfter(diff, stale)).toBe(KEYS + 1)
    expect(route.step1Encodes - encodesBefore).toBe(3)

    // A stock provider syncs the whole document (the shared answer).
    provider = new WebsocketProvider(base.slice(0, base.lastIndexOf("/")), "step1", new Y.Doc(), {
      WebSocketPolyfill: WebSocket as never, params: { token: "stock" }, disableBc: true,
    })
    const p = provider
    expect(await until(() => p.synced && p.doc.getMap("m").size === KEYS + 1, 10_000)).toBe(true)
    expect(route.step1Encodes - encodesBefore).toBe(3)
    p.doc.getMap("m").set("from-stock", 1)
    expect(await until(() => live.doc.getMap("m").get("from-stock") === 1, 10_000)).toBe(true)
    stale.destroy()
  } finally {
    provider?.destroy()
    provider?.doc.destroy()
    for (const ws of sockets) ws.terminate()
    await stop()
  }
}, 60_000)

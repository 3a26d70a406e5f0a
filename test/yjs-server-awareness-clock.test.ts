/**
 * Awareness clocks over the y-websocket route. A reader sent one removal of another user's
 * clientID at clock 2^53-1: removals by others are allowed, and the hub kept and relayed it at
 * that clock. The victim's stock y-protocols answers a removal of its own state with clock + 1
 * = 2^53, which the hub does not decode: the victim's socket was closed 4400, and a stock
 * y-websocket never reconnects after 4400-4499, so one message cut the user off for good. Now
 * another socket's removal is relayed at the room's clock plus one at most, and a clock moved
 * far (or past 2^52) is dropped, not closed.
 */
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeAwareness, encodeAwarenessUpdate, type AwarenessEntry } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { rawYSocket, stockProvider } from "./support/yjs-sockets.js"

/** A hub whose `token` is the principal; "reader-*" may only read. */
const readerHub = async () => {
  const hub = new Hub({
    machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false,
    crdt: { engines: [yjsDocEngine()] },
    authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
    authorize: (p, _docId, access) => access === "read" || !p.id.startsWith("reader-"),
  })
  const route = yjsRoute(hub.crdtDocs)
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [route] })
  return {
    url: (path: string) => `ws://127.0.0.1:${server.addresses()[0]!.port}${path}`,
    stop: async () => {
      route.close()
      await server.close()
      await hub.close()
    },
  }
}

/** The awareness entries of `id` in `frames`, in order. */
const entriesOf = (frames: ReadonlyArray<Uint8Array>, id: number): AwarenessEntry[] => {
  const out: AwarenessEntry[] = []
  for (const f of frames) {
    const m = decodeYMessage(f)
    if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e6)) if (e.clientID === id) out.push(e)
  }
  return out
}

/** The endpoint's MAX_AWARENESS_CLOCK_STEP and MAX_AWARENESS_CLOCK, as written (the test also runs where they are not exported). */
const CLOCK_STEP = 2 ** 20
const MAX_CLOCK = 2 ** 52

const say = (clientID: number, clock: number, state: string) => encodeAwareness(encodeAwarenessUpdate([{ clientID, clock, state }]))

test("a reader's removal of another user's clientID at clock 2^53-1 does not cut that user off: it stays connected, its edits and its presence still reach the others", async () => {
  const { url, stop } = await readerHub()
  const base = url("/yjs/aw-clock")
  const sockets: WebSocket[] = []
  const providers: WebsocketProvider[] = []
  try {
    const alice = stockProvider(base, "alice", providers)
    const bob = stockProvider(base, "bob", providers)
    expect(await until(() => alice.p.synced && bob.p.synced, 10_000)).toBe(true)
    const id = alice.p.doc.clientID
    alice.p.awareness.setLocalState({ user: "alice" })
    expect(await until(() => bob.p.awareness.getStates().has(id), 5_000)).toBe(true)
    // What the hub relays of alice's clientID, as a third client sees it.
    const observer = await rawYSocket(base, "reader-observer", sockets)

    const mallory = await rawYSocket(base, "reader-mallory", sockets)
    mallory.ws.send(say(id, Number.MAX_SAFE_INTEGER, "null"))
    // The removal goes at once; alice answers it (clock + 1) and shows herself again.
    expect(await until(() => entriesOf(observer.got, id).some((e) => e.state === "null"), 5_000)).toBe(true)
    await sleep(500)
    expect(alice.closes()).toBe(0)
    expect(alice.p.wsconnected).toBe(true)
    expect(alice.p.shouldConnect).toBe(true)
    // No clock the hub relayed for alice moved far (alice's own count is a few).
    for (const e of entriesOf(observer.got, id)) expect(e.clock).toBeLessThan(100)
    expect(await until(() => bob.p.awareness.getStates().has(id), 5_000)).toBe(true)

    // Her next edits reach bob, and so does her next state.
    alice.p.doc.getText("t").insert(0, "still here")
    expect(await until(() => bob.p.doc.getText("t").toString() === "still here", 5_000)).toBe(true)
    alice.p.awareness.setLocalState({ user: "alice", cursor: 3 })
    expect(await until(() => (bob.p.awareness.getStates().get(id) as { cursor?: number } | undefined)?.cursor === 3, 5_000)).toBe(true)
    expect(alice.closes()).toBe(0)
    expect(bob.closes()).toBe(0)
    expect(mallory.closed()).toBeUndefined()
  } finally {
    for (const p of providers) {
      p.destroy()
      p.doc.destroy()
    }
    for (const ws of sockets) ws.terminate()
    await stop()
  }
}, 30_000)

test("an awareness clock moved far past the room's, or past the bound, is dropped, never closed; the owner's next renewal is taken", async () => {
  const { url, stop } = await readerHub()
  const base = url("/yjs/aw-clock-bound")
  const sockets: WebSocket[] = []
  const X = 424_242
  const Y = 434_343
  try {
    const observer = await rawYSocket(base, "observer", sockets)
    const owner = await rawYSocket(base, "owner", sockets)
    owner.ws.send(say(X, 5, `{"n":1}`))
    expect(await until(() => entriesOf(observer.got, X).length === 1, 5_000)).toBe(true)
    // Far past the room's clock for X, then past the bound for a new clientID: both dropped.
    owner.ws.send(say(X, 5 + CLOCK_STEP + 1, `{"n":2}`))
    owner.ws.send(say(Y, MAX_CLOCK + 1, `{"n":2}`))
    // Another socket's removal far ahead is kept one past the room's clock.
    const other = await rawYSocket(base, "reader-other", sockets)
    other.ws.send(say(X, Number.MAX_SAFE_INTEGER, "null"))
    expect(await until(() => entriesOf(observer.got, X).length === 2, 5_000)).toBe(true)
    owner.ws.send(say(X, 7, `{"n":3}`))
    expect(await until(() => entriesOf(observer.got, X).length === 3, 5_000)).toBe(true)
    await sleep(200)
    expect(entriesOf(observer.got, X).map((e) => [e.clock, e.state])).toEqual([[5, `{"n":1}`], [6, "null"], [7, `{"n":3}`]])
    expect(entriesOf(observer.got, Y)).toEqual([])
    expect(owner.closed()).toBeUndefined()
    expect(other.closed()).toBeUndefined()
  } finally {
    for (const ws of sockets) ws.terminate()
    await stop()
  }
}, 30_000)

/**
 * One socket renewing its own large awareness state as fast as it can (clock + 1 each time;
 * the attack of yjs-awareness-flood.mjs). The hub relayed each message whole to every other
 * socket at once, so the listeners fell 8 MiB behind and were closed (1013, slow consumer):
 * the flooder's victims were cut, not the flooder, and a stock client reconnecting after 1013
 * met the same flood again. Now a document relays awareness on a 50 ms tick, the latest state
 * per clientID; a listener behind on its socket gets the latest once it drains; and the
 * flooder is closed (4400) by the route's per-socket awareness rate.
 */
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeAwareness, encodeAwarenessUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { rawYSocket, stockProvider } from "./support/yjs-sockets.js"

const TICK_MS = 50
const FLOODER = 123_456_789

/** The flooder's entries (clientID FLOODER) in the awareness messages of `frames`, one list per message. */
const flooderEntries = (frames: ReadonlyArray<Uint8Array>): string[][] => {
  const out: string[][] = []
  for (const f of frames) {
    const m = decodeYMessage(f)
    if (m.type !== "awareness") continue
    const mine = decodeAwarenessUpdate(m.update, 1e6).filter((e) => e.clientID === FLOODER).map((e) => e.state)
    if (mine.length > 0) out.push(mine)
  }
  return out
}

test("an awareness flooder is closed by rate (4400); its listeners, one not reading, stay connected and get at most one of its states a tick", async () => {
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs/aw-flood")
  const sockets: WebSocket[] = []
  const providers: WebsocketProvider[] = []
  const raw = (token: string) => rawYSocket(base, token, sockets)
  const provider = (token: string) => stockProvider(base, token, providers)
  try {
    const fast = [await raw("fast-1"), await raw("fast-2")]
    // A listener that reads nothing while the flood lasts (a phone on a slow link).
    const slow = await raw("slow")
    ;(slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause()
    const ann = provider("ann")
    const bob = provider("bob")
    expect(await until(() => ann.p.synced && bob.p.synced, 10_000)).toBe(true)
    ann.p.awareness.setLocalState({ user: "ann" })
    expect(await until(() => bob.p.awareness.getStates().has(ann.p.doc.clientID), 5_000)).toBe(true)

    const flooder = await raw("mallory")
    const state = JSON.stringify({ user: { name: "x".repeat(60 * 1024 - 40) } })
    const started = Date.now()
    let clock = 0
    // Bounded: at most 600 renewals (36 MiB) and 10 s, kept under 2 MiB unsent.
    while (clock < 600 && flooder.closed() === undefined && Date.now() - started < 10_000) {
      while (clock < 600 && flooder.ws.readyState === WebSocket.OPEN && flooder.ws.bufferedAmount < 2 << 20) {
        flooder.ws.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: FLOODER, clock: ++clock, state }])))
      }
      await sleep(2)
    }
    expect(await until(() => flooder.closed() !== undefined, 5_000)).toBe(true)
    expect(flooder.closed()?.code).toBe(4400)
    // Its state is removed at once when it goes: the listeners' last word on it is null.
    const removed = (frames: Uint8Array[]) => flooderEntries(frames).at(-1)?.at(-1) === "null"
    expect(await until(() => fast.every((l) => removed(l.got)), 5_000)).toBe(true)
    expect(await until(() => !bob.p.awareness.getStates().has(FLOODER), 5_000)).toBe(true)
    const elapsed = Date.now() - started
    for (const l of fast) {
      expect(l.closed()).toBeUndefined()
      // One message a tick at most (the latest state), and the removal.
      expect(flooderEntries(l.got).length).toBeLessThanOrEqual(Math.ceil(elapsed / TICK_MS) + 2)
    }
    // The listener that read nothing is still there; reading again, it catches up to the removal.
    expect(slow.closed()).toBeUndefined()
    slow.ws.resume()
    ;(slow.ws as unknown as { _socket: { resume(): void } })._socket.resume()
    expect(await until(() => removed(slow.got), 5_000)).toBe(true)
    expect(slow.closed()).toBeUndefined()
    // The stock clients were never disconnected, and the room still works for them.
    expect(ann.closes()).toBe(0)
    expect(bob.closes()).toBe(0)
    bob.p.awareness.setLocalState({ user: "bob" })
    expect(await until(() => (ann.p.awareness.getStates().get(bob.p.doc.clientID) as { user?: string } | undefined)?.user === "bob", 5_000)).toBe(true)
  } finally {
    for (const p of providers) {
      p.destroy()
      p.doc.destroy()
    }
    for (const ws of sockets) ws.terminate()
    await stop()
  }
}, 60_000)

test("a listener that reads nothing is sent no awareness past 1 MiB behind (never closed for it); reading again, it gets each client's latest", async () => {
  // The rate is raised so the senders are not cut: what a room of many changing states sends.
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { awarenessBytesPerSecond: 1 << 30, awarenessByteBurst: 1 << 30, maxBufferedBytes: 4 << 20 })])
  const base = url("/yjs/aw-behind")
  const sockets: WebSocket[] = []
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
    const slow = await raw("slow")
    const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    const senders = await Promise.all([0, 1, 2, 3].map((i) => raw(`sender-${i}`)))
    const pad = "y".repeat(60 * 1024 - 60)
    const last = new Map<number, number>()
    const started = Date.now()
    // Bounded: 4 s, at most 400 states each (each tick relays 4 x 60 KiB: 4.8 MiB/s to the reader).
    for (let clock = 1; clock <= 400 && Date.now() - started < 4_000; clock++) {
      senders.forEach((s, i) => {
        s.ws.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: 1000 + i, clock, state: JSON.stringify({ n: clock, pad }) }])))
        last.set(1000 + i, clock)
      })
      await sleep(10)
    }
    await sleep(300)
    expect(slow.closed()).toBeUndefined()
    socket.resume()
    const latest = () => {
      const seen = new Map<number, number>()
      for (const f of slow.got) {
        const m = decodeYMessage(f)
        if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e6)) if (e.state !== "null") seen.set(e.clientID, (JSON.parse(e.state) as { n: number }).n)
      }
      return seen
    }
    const caughtUp = () => [...last].every(([id, clock]) => latest().get(id) === clock)
    await until(() => slow.closed() !== undefined || caughtUp(), 10_000)
    expect(slow.closed()).toBeUndefined()
    expect(caughtUp()).toBe(true)
    for (const s of senders) expect(s.closed()).toBeUndefined()
  } finally {
    for (const ws of sockets) ws.terminate()
    await stop()
  }
}, 60_000)

/**
 * Nothing keeps a slot on a peer listener (adapters/peer/ws-listen.ts) without showing it is
 * alive and reads. Before, `maxConnections` sockets that never sent nor read held every slot
 * for good and each honest peer after them was closed 1013 at every reconnect. Now a socket
 * that sends no first message, or stops answering pings (stops reading, or withholds pongs),
 * loses its slot; one client address holds only its share; a slow peer that is alive stays.
 * Real sockets on 127.0.0.1, short timeouts.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import type { Socket } from "node:net"
import { listenWsLinks, type ListenWsOptions } from "../adapters/peer/ws-listen.js"
import { connectWsLink, type WsLink } from "../adapters/peer/ws-link.js"
import { YSyncSession } from "../adapters/peer/yjs-sync.js"
import type { PeerLink } from "../core/crdt-docs/peer-link.js"
import { sleep, until } from "./support/ws.js"

const SLOTS = 4
const quick = { host: "127.0.0.1", port: 0, maxConnections: SLOTS, firstMessageTimeoutMs: 400, pingIntervalMs: 100, pongTimeoutMs: 400, closeTimeoutMs: 200 } satisfies ListenWsOptions

const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket

/** Opens a raw socket; resolves once it is open (or has failed). */
const dial = async (port: number, options: { autoPong?: boolean } = {}): Promise<{ ws: WebSocket; closed: () => boolean; close: Promise<{ code: number; reason: string }> }> => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, options)
  ws.on("error", () => {})
  let done = false
  const close = new Promise<{ code: number; reason: string }>((r) => ws.once("close", (code, reason) => {
    done = true
    r({ code, reason: reason.toString() })
  }))
  await new Promise<void>((r) => {
    ws.once("open", () => r())
    ws.once("close", () => r())
  })
  return { ws, closed: () => done, close }
}

/** An honest replica: connectWsLink (backing off to 200 ms at most) and a YSyncSession on a fresh Y.Doc. */
const honest = (port: number, closes: Array<{ code: number; reason: string }>) => {
  const doc = new Y.Doc()
  const link: WsLink = connectWsLink(`ws://127.0.0.1:${port}`, { WebSocket, maxBackoffMs: 200, onClose: (code, reason) => closes.push({ code, reason }) })
  const session = new YSyncSession(doc, link)
  return { doc, link, session, stop: () => (session.destroy(), link.close()) }
}

const served = () => {
  const doc = new Y.Doc()
  doc.getText("t").insert(0, "shared notes")
  return doc
}

test("silent squatters lose their slots at the first-message deadline; an honest peer then connects and syncs", async () => {
  const doc = served()
  const links: PeerLink[] = []
  const listener = await listenWsLinks(quick, (link) => {
    links.push(link)
    new YSyncSession(doc, link)
  })
  const squatters: Array<Awaited<ReturnType<typeof dial>>> = []
  let peer: ReturnType<typeof honest> | undefined
  try {
    for (let i = 0; i < SLOTS; i++) {
      const s = await dial(listener.port)
      // Never sends, never reads.
      socketOf(s.ws).pause()
      squatters.push(s)
    }
    const extra = await dial(listener.port)
    expect((await extra.close).code).toBe(1013)
    // Seen from the listener: a paused client does not even read that it was cut.
    expect(await until(() => links.length === SLOTS && links.every((l) => !l.isOpen), 3_000)).toBe(true)
    const closes: Array<{ code: number; reason: string }> = []
    peer = honest(listener.port, closes)
    expect(await until(() => peer!.session.synced, 3_000)).toBe(true)
    expect(peer.doc.getText("t").toString()).toBe("shared notes")
  } finally {
    peer?.stop()
    for (const s of squatters) s.ws.terminate()
    await listener.close()
  }
}, 15_000)

test("a socket that says nothing is told why it is closed", async () => {
  const listener = await listenWsLinks(quick, () => {})
  try {
    const s = await dial(listener.port)
    const { code, reason } = await s.close
    expect(code).toBe(1008)
    expect(reason).toMatch(/No message within 400 ms/)
  } finally {
    await listener.close()
  }
}, 10_000)

test("squatters that send a first message, then stop reading or withhold pongs, lose their slots; an honest peer then syncs", async () => {
  const doc = served()
  const links: PeerLink[] = []
  const listener = await listenWsLinks(quick, (link) => {
    links.push(link)
    new YSyncSession(doc, link)
  })
  const squatters: Array<Awaited<ReturnType<typeof dial>>> = []
  let peer: ReturnType<typeof honest> | undefined
  try {
    for (let i = 0; i < SLOTS; i++) {
      // Half stop reading; half read on but never answer a ping.
      const deaf = i % 2 === 0
      const s = await dial(listener.port, { autoPong: deaf })
      s.ws.send(new Uint8Array([0, 0, 1, 0])) // a Yjs step1 (empty state vector)
      await sleep(20)
      if (deaf) socketOf(s.ws).pause()
      squatters.push(s)
    }
    expect(await until(() => links.length === SLOTS && links.every((l) => !l.isOpen), 3_000)).toBe(true)
    // Cut for the pings (no close frame), not for the first-message deadline (1008): that was met.
    for (const s of squatters) socketOf(s.ws).resume()
    for (const s of squatters) expect((await s.close).code).toBe(1006)
    const closes: Array<{ code: number; reason: string }> = []
    peer = honest(listener.port, closes)
    expect(await until(() => peer!.session.synced, 3_000)).toBe(true)
  } finally {
    peer?.stop()
    for (const s of squatters) s.ws.terminate()
    await listener.close()
  }
}, 15_000)

test("an honest peer that is quiet, and one that reads in slow bursts, keep their slots and keep syncing", async () => {
  const doc = served()
  const listener = await listenWsLinks(quick, (link) => new YSyncSession(doc, link))
  const closes: Array<{ code: number; reason: string }> = []
  const peer = honest(listener.port, closes)
  let slow: Awaited<ReturnType<typeof dial>> | undefined
  let stop = false
  try {
    expect(await until(() => peer.session.synced, 3_000)).toBe(true)
    slow = await dial(listener.port)
    slow.ws.send(new Uint8Array([0, 0, 1, 0]))
    const sock = socketOf(slow.ws)
    // Reads for 50 ms, then nothing for 200 ms (half the pong timeout), over and over.
    const bursts = (async () => {
      for (let i = 0; i < 40 && !stop; i++) {
        sock.pause()
        await sleep(200)
        sock.resume()
        await sleep(50)
      }
    })()
    // Ten pong timeouts.
    await sleep(4_000)
    stop = true
    await bursts
    expect(slow.closed()).toBe(false)
    expect(closes).toEqual([])
    expect(peer.link.isOpen).toBe(true)
    doc.getText("t").insert(0, "still ")
    expect(await until(() => peer.doc.getText("t").toString() === "still shared notes", 2_000)).toBe(true)
  } finally {
    stop = true
    peer.stop()
    slow?.ws.terminate()
    await listener.close()
  }
}, 15_000)

test("one address holds at most maxConnectionsPerAddress sockets; one more is told the limit", async () => {
  const listener = await listenWsLinks({ ...quick, maxConnectionsPerAddress: 2 }, () => {})
  const sockets: Array<Awaited<ReturnType<typeof dial>>> = []
  try {
    for (let i = 0; i < 2; i++) {
      const s = await dial(listener.port)
      s.ws.send(new Uint8Array([0]))
      sockets.push(s)
    }
    const third = await dial(listener.port)
    const { code, reason } = await third.close
    expect(code).toBe(1013)
    expect(reason).toMatch(/Too many connections from 127\.0\.0\.1 \(limit 2\)/)
    expect(sockets.every((s) => !s.closed())).toBe(true)
  } finally {
    for (const s of sockets) s.ws.terminate()
    await listener.close()
  }
}, 10_000)

test("out-of-range options are refused with the option's name", () => {
  expect(() => listenWsLinks({ ...quick, pongTimeoutMs: Infinity }, () => {})).toThrow(/pongTimeoutMs/)
  expect(() => listenWsLinks({ ...quick, maxConnectionsPerAddress: 0 }, () => {})).toThrow(/maxConnectionsPerAddress/)
})

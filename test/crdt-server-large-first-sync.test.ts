/**
 * A reader whose first sync is a whole document larger than `maxBufferedBytes`. The routes
 * closed a socket (1013) as soon as more than that waited unsent, so a reader fetching a
 * large document over a slow link was dropped by the first edit relayed while the document
 * was still on its way, reconnected, fetched it again, and was dropped again: it could never
 * stay. The limit now counts what waits beyond the largest message written since the socket
 * last drained (adapters/ws/backlog.ts); a reader that stays behind past that is still closed.
 *
 * Readers here stop reading their socket (a phone on a slow link) with `_socket.pause()`. The
 * automerge route has the same gate, but there a reader that has not answered is sent the
 * whole document again with each change (Automerge's sync for a peer with no heads), so it
 * is still closed: not fixed here.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep1, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"

const LIMIT = 256 << 10
const PIECE = 128 << 10

/** Text that does not shrink (ws sends it as is; random so nothing can be shared). */
const noise = (n: number, seed: number): string => {
  let x = seed
  let s = ""
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0
    s += (x >>> 8).toString(36)
  }
  return s.slice(0, n)
}

const socket = async (url: string) => {
  const ws = new WebSocket(url)
  const doc = new Y.Doc()
  let closed: number | undefined
  ws.on("message", (d) => {
    const m = decodeYMessage(new Uint8Array(d as Buffer))
    if (m.type === "step2" || m.type === "update") Y.applyUpdate(doc, m.update)
  })
  ws.on("close", (code) => (closed = code))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  const raw = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
  return { ws, doc, closed: () => closed, pause: () => raw.pause(), resume: () => raw.resume() }
}

test("Yjs: a reader of a document larger than maxBufferedBytes stays through the edits relayed while it downloads; one that stays behind past that is closed 1013", async () => {
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { maxBufferedBytes: LIMIT })])
  const base = url("/yjs/large-first")
  const open: WebSocket[] = []
  try {
    const writer = await socket(`${base}?token=ann`)
    open.push(writer.ws)
    const text = writer.doc.getText("t")
    writer.doc.on("update", (u: Uint8Array) => writer.ws.send(encodeUpdate(u)))
    // A 4 MiB document, in 128 KiB edits.
    for (let i = 0; i < 32; i++) text.insert(text.length, noise(PIECE, i + 1))
    const size = Y.encodeStateAsUpdate(writer.doc).length
    expect(size).toBeGreaterThan(4 * LIMIT)
    // The hub has it all once a fresh reader's first sync holds it.
    const probe = await socket(`${base}?token=probe`)
    open.push(probe.ws)
    probe.ws.send(encodeStep1(Y.encodeStateVector(probe.doc)))
    expect(await until(() => probe.doc.getText("t").length === text.length, 10_000)).toBe(true)

    // Bob asks for the whole document and stops reading while it is on its way.
    const bob = await socket(`${base}?token=bob`)
    open.push(bob.ws)
    bob.pause()
    bob.ws.send(encodeStep1(Y.encodeStateVector(bob.doc)))
    await sleep(300)
    // Ann keeps typing meanwhile: 20 small edits, relayed to bob behind the document.
    for (let i = 0; i < 20; i++) {
      text.insert(0, `edit ${i} `)
      await sleep(10)
    }
    await sleep(300)
    expect(bob.closed()).toBeUndefined()
    bob.resume()
    expect(await until(() => bob.doc.getText("t").toString() === text.toString(), 10_000)).toBe(true)
    expect(bob.closed()).toBeUndefined()

    // Carol does the same and never reads again, while ann writes far more than the limit.
    const carol = await socket(`${base}?token=carol`)
    open.push(carol.ws)
    carol.pause()
    carol.ws.send(encodeStep1(Y.encodeStateVector(carol.doc)))
    await sleep(300)
    // Bounded: at most 80 edits of 64 KiB (5 MiB), stopping once carol is closed.
    for (let i = 0; i < 80 && carol.closed() === undefined; i++) {
      text.insert(0, noise(64 << 10, 1000 + i))
      await sleep(5)
    }
    carol.resume()
    expect(await until(() => carol.closed() !== undefined, 10_000)).toBe(true)
    expect(carol.closed()).toBe(1013)
    // The others were not held back by her.
    expect(await until(() => bob.doc.getText("t").toString() === text.toString(), 10_000)).toBe(true)
  } finally {
    for (const ws of open) ws.terminate()
    await stop()
  }
})

/**
 * Review of 6a882df (answers wait for the write in flight): exits of a commit that leave the
 * `unstored` marker set for good. `fail` and `abandon` close the document (its subscribers'
 * onClose) before they clear the marker; a subscriber whose onClose throws (the automerge-repo
 * endpoint's does, for a documentId of non-ASCII characters: ws.close throws RangeError on a
 * reason past 123 bytes, and it cuts the reason at 120 characters) skips the clearing, and
 * every answer asked of the document then waits forever instead of being refused.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { WebSocket } from "ws"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { automergeDocEngine, automergeRoute } from "../adapters/automerge-server/index.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { GatedStorage } from "./support/gated-storage.js"
import { sleep, until } from "./support/ws.js"

const typed = (text: string, clientID: number): Uint8Array => {
  const d = new Y.Doc()
  d.clientID = clientID
  d.getText("t").insert(0, text)
  return Y.encodeStateAsUpdate(d)
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

test("a write that fails while a subscriber's onClose throws still refuses the waiting answer (it does not hang)", async () => {
  const storage = new GatedStorage()
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false })
  const doc = await host.open<Y.Doc>("yjs", "d")
  await doc.submit([typed("stored ", 1)])
  // As the automerge endpoint's follow does for a non-ASCII documentId (ws.close: RangeError).
  doc.subscribe({ onUpdates: () => {}, onClose: () => { throw new RangeError("The message must not be greater than 123 bytes") } })

  storage.holdWrites()
  const writing = doc.submit([typed("lost", 2)]).catch((e: { code?: string }) => e.code)
  await until(() => doc.doc.getText("t").toString().includes("lost"), 5_000)
  const answer = doc.answer("reader", () => "answered").then((t) => ({ text: t }), (e: { code?: string }) => ({ refused: e.code }))
  await settle()
  storage.failHeldWrites()
  expect(await writing).toBe("doc-unavailable")
  const outcome = await Promise.race([answer, sleep(2_000).then(() => "still waiting")])
  expect(doc.storing).toBeUndefined()
  expect(outcome).toEqual({ refused: "doc-unavailable" })
  await host.close()
})

test("automerge-repo: a storage failure on a document with a non-ASCII id closes every follower", async () => {
  const storage = new GatedStorage()
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], { storage })
  const documentId = "é".repeat(60)
  const sockets: WebSocket[] = []
  const connect = async (token: string, peerId: string) => {
    const ws = new WebSocket(`${url("/automerge")}?token=${token}`)
    sockets.push(ws)
    const got: any[] = []
    let closed: number | undefined
    ws.on("message", (d) => got.push(decodeRepoMessage(new Uint8Array(d as Buffer))))
    ws.on("close", (c) => (closed = c))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    ws.send(encodeRepoMessage({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
    await until(() => got.some((m) => m?.type === "peer"), 5_000)
    return { ws, got, closed: () => closed, peerId }
  }
  try {
    let mine = A.change(A.init<{ n?: number }>(), (d) => (d.n = 1))
    const writer = await connect("writer", "peer-writer")
    writer.ws.send(encodeRepoMessage({ type: "sync", senderId: "peer-writer", targetId: "canon-hub", documentId, data: A.encodeSyncMessage({ heads: A.getHeads(mine), need: [], have: [], changes: [A.getLastLocalChange(mine)!] }) }))
    const doc = await hub.crdtDocs.open("automerge", documentId)
    expect(await until(() => doc.seq > 0, 5_000)).toBe(true)
    const reader = await connect("reader", "peer-reader")
    reader.ws.send(encodeRepoMessage({ type: "request", senderId: "peer-reader", targetId: "canon-hub", documentId, data: A.generateSyncMessage(A.init(), A.initSyncState())[1]! }))
    expect(await until(() => reader.got.some((m) => m?.type === "sync"), 5_000)).toBe(true)

    storage.holdWrites()
    mine = A.change(mine, (d) => (d.n = 2))
    writer.ws.send(encodeRepoMessage({ type: "sync", senderId: "peer-writer", targetId: "canon-hub", documentId, data: A.encodeSyncMessage({ heads: A.getHeads(mine), need: [], have: [], changes: [A.getLastLocalChange(mine)!] }) }))
    expect(await until(() => doc.storing !== undefined, 5_000)).toBe(true)
    storage.failHeldWrites()
    // Storage failed: every follower hears it (4503) and reconnects to reload.
    const allClosed = await until(() => writer.closed() !== undefined && reader.closed() !== undefined, 3_000)
    expect({ writer: writer.closed(), reader: reader.closed(), storing: doc.storing === undefined ? "cleared" : "stuck" }).toEqual({ writer: 4503, reader: 4503, storing: "cleared" })
    expect(allClosed).toBe(true)
  } finally {
    for (const ws of sockets) ws.terminate()
    storage.releaseWrites()
    await stop().catch(() => {})
  }
}, 30_000)

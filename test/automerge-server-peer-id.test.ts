/**
 * automerge-repo route: "the peer id a socket joins with is bound to it", but nothing stops a
 * socket of another principal from joining with the same peer id as a victim's live socket.
 * Its ephemeral (presence) messages then reach the other peers with senderId = the victim's
 * peer id: presence shown as the victim.
 */
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { automergeDocEngine, automergeRoute } from "../adapters/automerge-server/index.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

test("another principal cannot join with a victim's peer id and send presence as the victim", async () => {
  const { url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)])
  const base = url("/automerge")
  const sockets: WebSocket[] = []
  const connect = async (token: string, peerId: string) => {
    const ws = new WebSocket(`${base}?token=${token}`)
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
  // Ephemeral messages go to a document the socket follows: it syncs doc1 first (the observer makes it).
  const doc1 = A.change(A.init<{ n?: number }>(), (d) => (d.n = 1))
  const syncDoc1 = async (peer: { ws: WebSocket; got: any[]; peerId: string }, has: boolean) => {
    const data = has
      ? A.encodeSyncMessage({ heads: A.getHeads(doc1), need: [], have: [], changes: [A.getLastLocalChange(doc1)!] })
      : A.generateSyncMessage(A.init(), A.initSyncState())[1]!
    peer.ws.send(encodeRepoMessage({ type: has ? "sync" : "request", senderId: peer.peerId, targetId: "canon-hub", documentId: "doc1", data }))
    await until(() => peer.ws.readyState !== WebSocket.OPEN || peer.got.some((m) => m?.type === "sync" && m.documentId === "doc1"), 5_000)
  }
  const eph = (peerId: string, sessionId: string, count: number, data: string) =>
    encodeRepoMessage({ type: "ephemeral", senderId: peerId, targetId: "canon-hub", documentId: "doc1", sessionId, count, data: new TextEncoder().encode(data) })
  try {
    const observer = await connect("observer", "peer-observer")
    await syncDoc1(observer, true)
    observer.ws.send(eph("peer-observer", "s-o", 1, "hi"))
    const victim = await connect("victim", "peer-victim")
    await syncDoc1(victim, false)
    victim.ws.send(eph("peer-victim", "s-v", 1, `{"name":"Victim"}`))
    await sleep(200)
    const mallory = await connect("mallory", "peer-victim") // the victim's peer id, its own principal
    await syncDoc1(mallory, false)
    mallory.ws.send(eph("peer-victim", "s-v2", 1, `{"name":"Victim","says":"forged"}`))
    await sleep(300)
    const fromVictimId = observer.got.filter((m) => m?.type === "ephemeral" && m.senderId === "peer-victim").map((m) => new TextDecoder().decode(m.data))
    // Safe: mallory's join is refused, or its messages never carry the victim's peer id.
    expect(fromVictimId).toEqual([`{"name":"Victim"}`])
  } finally {
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 20_000)

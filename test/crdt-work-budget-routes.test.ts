/**
 * The CRDT document endpoints make the socket's principal pay for the hub's work
 * (core/crdt-docs/work-budget.ts): over y-websocket and automerge-repo, a principal in debt
 * has its next updates wait while another principal's are stored at once. The budget here is
 * tiny (1 µs of work, 1 µs a second), so after one update mallory is in debt for hours: her
 * second update must still be waiting when alice's, sent after it, is stored. Real sockets on
 * 127.0.0.1.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { yjsDocEngine, yjsRoute, encodeUpdate } from "../adapters/yjs-server/index.js"
import { automergeDocEngine, automergeRoute, encodeRepoMessage, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"

const TINY = { burstMicros: 1, microsPerSecond: 1 }

const open = (url: string): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

test("y-websocket: a principal in debt waits; another principal's update, sent later, is stored", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)], { work: TINY })
  const mallory = await open(`${url("/yjs")}/room?token=mallory`)
  const alice = await open(`${url("/yjs")}/room?token=alice`)
  try {
    const m = new Y.Doc()
    m.clientID = 101
    const mUpdates: Uint8Array[] = []
    m.on("update", (u: Uint8Array) => mUpdates.push(u))
    m.getText("t").insert(0, "m1")
    m.getText("t").insert(2, "m2")
    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "room")
    mallory.send(encodeUpdate(mUpdates[0]!))
    expect(await until(() => doc.doc.getText("t").toString() === "m1", 5_000)).toBe(true)
    mallory.send(encodeUpdate(mUpdates[1]!))
    await sleep(50)
    const a = new Y.Doc()
    a.clientID = 202
    Y.applyUpdate(a, Y.encodeStateAsUpdate(doc.doc))
    const aUpdates: Uint8Array[] = []
    a.on("update", (u: Uint8Array) => aUpdates.push(u))
    a.getText("t").insert(0, "A")
    alice.send(encodeUpdate(aUpdates[0]!))
    expect(await until(() => doc.doc.getText("t").toString().startsWith("A"), 5_000)).toBe(true)
    await sleep(200)
    expect(doc.doc.getText("t").toString()).toBe("Am1")
    hub.crdtDocs.release(doc)
  } finally {
    mallory.terminate()
    alice.terminate()
    await stop()
  }
}, 30_000)

test("automerge-repo: a principal in debt waits; another principal's change, sent later, is stored", async () => {
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], { work: TINY })
  const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId
  const peers = { mallory: await open(`${url("/automerge")}?token=mallory`), alice: await open(`${url("/automerge")}?token=alice`) }
  const join = (who: keyof typeof peers) => peers[who].send(encodeRepoMessage({ type: "join", senderId: who, peerMetadata: {}, supportedProtocolVersions: ["1"] } as never))
  const sync = (who: keyof typeof peers, changes: Uint8Array[], heads: string[]) =>
    peers[who].send(encodeRepoMessage({ type: "sync", senderId: who, targetId: "hub", documentId, data: A.encodeSyncMessage({ heads, need: [], have: [], changes }) } as never))
  try {
    join("mallory")
    join("alice")
    await sleep(200)
    let m = A.change(A.init<Record<string, number>>({ actor: "0a".repeat(16) }), (d) => { d.m1 = 1 })
    sync("mallory", [A.getLastLocalChange(m)!], A.getHeads(m))
    const has = async (key: string) => {
      const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", documentId)
      const value = (doc.doc.doc as Record<string, number>)[key]
      hub.crdtDocs.release(doc)
      return value === 1
    }
    let m1 = false
    expect(await until(() => { void has("m1").then((v) => (m1 = v)); return m1 }, 5_000)).toBe(true)
    m = A.change(m, (d) => { d.m2 = 1 })
    sync("mallory", [A.getLastLocalChange(m)!], A.getHeads(m))
    await sleep(50)
    const a = A.change(A.init<Record<string, number>>({ actor: "0b".repeat(16) }), (d) => { d.a = 1 })
    sync("alice", [A.getLastLocalChange(a)!], A.getHeads(a))
    let aStored = false
    expect(await until(() => { void has("a").then((v) => (aStored = v)); return aStored }, 5_000)).toBe(true)
    await sleep(200)
    expect(await has("m2")).toBe(false)
  } finally {
    peers.mallory.terminate()
    peers.alice.terminate()
    await stop()
  }
}, 30_000)

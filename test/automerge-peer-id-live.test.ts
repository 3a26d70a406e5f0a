/**
 * automerge-repo route: the owners of peer ids the hub remembers are bounded (65,536 by
 * default), and one principal joining with fresh peer ids used to push everyone's out of one
 * shared LRU (65,700 joins, about 35 s); it then joined with a victim's peer id (learned from
 * the `senderId` of relayed presence) while the victim was still connected, and its ephemeral
 * messages reached the others as the victim's. Now a peer id an open socket holds is never
 * given to another principal, and what one principal makes the hub remember is bounded apart
 * (its own oldest go first; past the bound in all, the oldest of whoever holds the most).
 * The bounds are made small here so a few joins reach them.
 */
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { automergeDocEngine, automergeRoute } from "../adapters/automerge-server/index.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"
import { PeerOwners } from "../adapters/automerge-server/peer-owners.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

const MAX_PEER_IDS = 8
const PER_USER = 4

const setup = async () => {
  const { url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host, { maxPeerIds: MAX_PEER_IDS, maxPeerIdsPerUser: PER_USER })])
  const base = url("/automerge")
  const sockets: WebSocket[] = []
  /** A socket of principal `token` joining as `peerId`: answered `peer`, or closed. */
  const join = async (token: string, peerId: string) => {
    const ws = new WebSocket(`${base}?token=${token}`)
    sockets.push(ws)
    const got: any[] = []
    let closed: { code: number; reason: string } | undefined
    ws.on("message", (d) => got.push(decodeRepoMessage(new Uint8Array(d as Buffer))))
    ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    ws.send(encodeRepoMessage({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
    await until(() => closed !== undefined || got.some((m) => m?.type === "peer"), 5_000)
    return { ws, got, peerId, closed: () => closed, joined: () => closed === undefined && got.some((m) => m?.type === "peer") }
  }
  /** Joins and leaves with `n` fresh peer ids, one socket at a time (each waits for its close). */
  const churn = async (token: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const p = await join(token, `${token}-fresh-${i}`)
      p.ws.close()
      await until(() => p.closed() !== undefined, 5_000)
    }
    await sleep(100)
  }
  return { join, churn, stop: async () => { for (const ws of sockets) ws.close(); await stop() } }
}

const doc1 = A.change(A.init<{ n?: number }>(), (d) => (d.n = 1))
/** Follows doc1 (ephemeral messages go only to a document the socket follows); `has`: sends it. */
const syncDoc1 = async (peer: { ws: WebSocket; got: any[]; peerId: string }, has: boolean) => {
  const data = has
    ? A.encodeSyncMessage({ heads: A.getHeads(doc1), need: [], have: [], changes: [A.getLastLocalChange(doc1)!] })
    : A.generateSyncMessage(A.init(), A.initSyncState())[1]!
  peer.ws.send(encodeRepoMessage({ type: has ? "sync" : "request", senderId: peer.peerId, targetId: "canon-hub", documentId: "doc1", data }))
  await until(() => peer.ws.readyState !== WebSocket.OPEN || peer.got.some((m) => m?.type === "sync" && m.documentId === "doc1"), 5_000)
}
const eph = (peerId: string, sessionId: string, data: string) =>
  encodeRepoMessage({ type: "ephemeral", senderId: peerId, targetId: "canon-hub", documentId: "doc1", sessionId, count: 1, data: new TextEncoder().encode(data) })

test("a peer id an open socket holds is never given to another principal, whatever the hub forgot", async () => {
  const { join, churn, stop } = await setup()
  try {
    const observer = await join("observer", "peer-observer")
    await syncDoc1(observer, true)
    const victim = await join("victim", "peer-victim")
    await syncDoc1(victim, false)
    victim.ws.send(eph("peer-victim", "s-v", `{"name":"Victim"}`))
    // Far more fresh peer ids than the hub remembers in all.
    await churn("mallory", 3 * MAX_PEER_IDS)
    const mallory = await join("mallory", "peer-victim")
    if (mallory.joined()) {
      await syncDoc1(mallory, false)
      mallory.ws.send(eph("peer-victim", "s-m", `{"name":"Victim","says":"forged"}`))
      await sleep(300)
    }
    const fromVictimId = observer.got.filter((m) => m?.type === "ephemeral" && m.senderId === "peer-victim").map((m) => new TextDecoder().decode(m.data))
    expect(fromVictimId).toEqual([`{"name":"Victim"}`])
    expect(mallory.closed()?.code).toBe(4400)
    expect(mallory.closed()?.reason).toMatch(/another user/)
    // The victim's own reconnect with its peer id, its old socket not yet gone, is taken.
    const again = await join("victim", "peer-victim")
    expect(again.joined()).toBe(true)
    expect(victim.ws.readyState).toBe(WebSocket.OPEN)
  } finally {
    await stop()
  }
}, 30_000)

test("one principal's fresh peer ids do not push out another principal's remembered ones", async () => {
  const { join, churn, stop } = await setup()
  try {
    const victim = await join("victim", "peer-victim")
    victim.ws.close()
    await until(() => victim.closed() !== undefined, 5_000)
    // Three principals, each with far more fresh peer ids than the hub remembers in all.
    for (const token of ["mallory-1", "mallory-2", "mallory-3"]) await churn(token, 3 * MAX_PEER_IDS)
    const mallory = await join("mallory-1", "peer-victim")
    expect(mallory.joined()).toBe(false)
    expect(mallory.closed()?.code).toBe(4400)
    expect(mallory.closed()?.reason).toMatch(/another user/)
    // The victim comes back with its peer id (a stock client reconnecting).
    const back = await join("victim", "peer-victim")
    expect(back.joined()).toBe(true)
  } finally {
    await stop()
  }
}, 30_000)

test("PeerOwners: held ids are never forgotten, each account keeps at most its share, and the largest pays past the bound", () => {
  const owners = new PeerOwners(16, 4)
  let seed = 7
  const rand = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n)
  const held = new Map<string, string>()
  for (let i = 0; i < 2_000; i++) {
    if (held.size > 0 && rand(3) === 0) {
      const [id, owner] = [...held][rand(held.size)]!
      held.delete(id)
      owners.release(id, `acct-${owner}`)
    } else {
      const owner = `u${rand(6)}`
      const id = `p${rand(400)}`
      if (held.has(id)) continue
      const known = owners.ownerOf(id)
      if (known !== undefined && known.owner !== owner) continue
      owners.hold(id, owner)
      held.set(id, owner)
    }
    for (const [id, owner] of held) expect(owners.ownerOf(id)).toEqual({ owner, held: true })
    expect(owners.sizes.kept).toBeLessThanOrEqual(16)
  }
  // An account keeping one record survives any number of others' fresh ones.
  const small = new PeerOwners(8, 4)
  small.hold("victim", "victim")
  small.release("victim", "acct-victim")
  for (let i = 0; i < 1_000; i++) {
    const who = `mallory-${i % 3}`
    small.hold(`${who}-${i}`, who)
    small.release(`${who}-${i}`, `acct-${who}`)
  }
  expect(small.ownerOf("victim")).toEqual({ owner: "victim", held: false })
  expect(small.sizes.kept).toBe(8)
})

/**
 * ATTACK (critical): one anonymous automerge-repo `sync` frame under the route's frame limit
 * holding an Automerge sync message of millions of empty `have` entries. The route decoded it
 * (`A.decodeSyncMessage`: an object and a Uint8Array per entry) before opening the document
 * or asking for permission, then `receiveSyncMessage` kept them in the socket's SyncState, and
 * every later round (each honest edit, each resend) converted and checked them again: 8 MB
 * froze the hub for ~85 s, two such sockets ran it out of heap, 200 KB stalled it every few
 * seconds for as long as the attacker stayed. Now the message is refused from its bytes
 * (adapters/automerge/admit.ts `admitSyncMessage`) and the socket closed (4400).
 *
 * And should Automerge fail to answer a peer whatever the checks (it panicked on a `need`
 * naming a hash twice, and on a Bloom filter of no bits), the failure stays with that peer's
 * SyncState: it starts over, instead of throwing out of the fan-out of another peer's edit.
 *
 * Automerge is wrapped (jest's ESM module mock) to count what the hub decodes and to stand
 * for such a failure; the stock clients use Automerge's "slim" entry, not wrapped.
 */
import { jest } from "@jest/globals"
import type { DocHandle } from "@automerge/automerge-repo"
import type * as Automerge from "@automerge/automerge"
import { WebSocket } from "ws"
import { haveFlood } from "./support/automerge-sync-bytes.js"

const A = await import("@automerge/automerge")
/** `have` entries of every sync message the hub decoded. */
const decodedHaves: number[] = []
/** A `need` hash that makes the wrapped generateSyncMessage throw, as Automerge's panics did. */
let failOnNeed: string | undefined
let failures = 0
jest.unstable_mockModule("@automerge/automerge", () => ({
  ...A,
  decodeSyncMessage: (bytes: Uint8Array) => {
    const d = A.decodeSyncMessage(bytes)
    decodedHaves.push(d.have.length)
    return d
  },
  generateSyncMessage: (doc: Automerge.Doc<unknown>, state: Automerge.SyncState) => {
    if (failOnNeed !== undefined && (state as unknown as { theirNeed?: string[] }).theirNeed?.includes(failOnNeed)) {
      failures++
      throw new Error("PanicError: (simulated) Automerge could not answer")
    }
    return A.generateSyncMessage(doc, state)
  },
}))
const { automergeDocEngine, automergeRoute } = await import("../adapters/automerge-server/index.js")
const { encodeRepoMessage, decodeRepoMessage } = await import("../adapters/automerge-server/protocol.js")
const { crdtRoutesHub } = await import("./support/crdt-routes.js")
const { Repo } = await import("@automerge/automerge-repo")
const { StoppableClientAdapter } = await import("./support/automerge-client.js")
const { until } = await import("./support/ws.js")

interface Note {
  text: string
}



/** A peer speaking the protocol by hand, joined. */
const rawPeer = async (base: string, token: string, peerId: string) => {
  const ws = new WebSocket(`${base}?token=${token}`)
  const got: any[] = []
  let closed: { code: number; reason: string } | undefined
  ws.on("message", (d) => got.push(decodeRepoMessage(new Uint8Array(d as Buffer))))
  ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  ws.send(encodeRepoMessage({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  await until(() => got.some((m) => m?.type === "peer"), 5_000)
  const send = (type: "request" | "sync", documentId: string, data: Uint8Array) =>
    ws.send(encodeRepoMessage({ type, senderId: peerId, targetId: "canon-hub", documentId, data }))
  return { ws, got, send, closed: () => closed }
}

/** Waits (bounded) until the hub has `documentId`: a stock client stores a new document there on its own time. */
const hubHas = async (base: string, documentId: string): Promise<boolean> => {
  for (let i = 0; i < 50; i++) {
    const probe = await rawPeer(base, "probe", `probe-${i}`)
    probe.send("request", documentId, A.generateSyncMessage(A.init(), A.initSyncState())[1]!)
    await until(() => probe.got.some((m) => m?.type === "sync" || m?.type === "doc-unavailable"), 5_000)
    probe.ws.close()
    if (probe.got.some((m) => m?.type === "sync")) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

const setup = async () => {
  /** What the route reported refusing. */
  const events: { code: string; message: string }[] = []
  const hub = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)], {
    onEvent: (e) => {
      if (e.type === "crdt" && e.event.type === "refused") events.push(e.event)
    },
  })
  const base = hub.url("/automerge")
  const repos: InstanceType<typeof Repo>[] = []
  const repo = (token: string, peerId: string) => {
    const r = new Repo({ network: [new StoppableClientAdapter(`${base}?token=${token}`, 200)], peerId: peerId as never })
    repos.push(r)
    return r
  }
  const stop = async () => {
    for (const r of repos) await r.shutdown().catch(() => {})
    await hub.stop()
  }
  return { base, events, repo, stop }
}

const text = (h: DocHandle<Note>): string | undefined => h.doc()?.text

test("a sync message of 100,000 empty have entries is refused before it is decoded; its socket is closed; honest peers sync on", async () => {
  const { base, events, repo, stop } = await setup()
  const sockets: WebSocket[] = []
  try {
    const r1 = repo("alice", "peer-alice")
    const h1 = r1.create<Note>({ text: "hello" })
    expect(await hubHas(base, h1.documentId)).toBe(true)
    const r2 = repo("bob", "peer-bob")
    const h2 = await r2.find<Note>(h1.url)
    expect(await until(() => text(h2) === "hello", 10_000)).toBe(true)

    const flood = haveFlood(100_000)
    expect(flood.length).toBeLessThan(256 * 1024)
    const mallory = await rawPeer(base, "mallory", "peer-mallory")
    sockets.push(mallory.ws)
    mallory.send("sync", h1.documentId, flood)
    expect(await until(() => mallory.closed() !== undefined, 10_000)).toBe(true)
    expect(mallory.closed()!.code).toBe(4400)
    expect(mallory.closed()!.reason).toMatch(/more than 16 have entries/)
    expect(events.some((e) => e.code === "protocol-error" && /more than 16 have entries/.test(e.message))).toBe(true)
    // The hub never made objects of the flood's entries: no message it decoded had more than 16.
    expect(Math.max(0, ...decodedHaves)).toBeLessThanOrEqual(16)

    // The same for a document that does not exist: refused before anything opens it.
    const eve = await rawPeer(base, "eve", "peer-eve")
    sockets.push(eve.ws)
    eve.send("request", "4NMNnkMhL8jXrkKWtHStSRAcBg4j", flood)
    expect(await until(() => eve.closed() !== undefined, 10_000)).toBe(true)
    expect(eve.closed()!.code).toBe(4400)

    // A Bloom filter of no bits: Automerge panicked on it (a remainder by zero) when it next answered.
    const trent = await rawPeer(base, "trent", "peer-trent")
    sockets.push(trent.ws)
    trent.send("sync", h1.documentId, new Uint8Array([0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0]))
    expect(await until(() => trent.closed() !== undefined, 10_000)).toBe(true)
    expect(trent.closed()!.code).toBe(4400)
    expect(trent.closed()!.reason).toMatch(/Bloom filter/)

    // Honest peers keep syncing, both ways.
    h1.change((d) => A.splice(d, ["text"], 5, 0, " world"))
    expect(await until(() => text(h2) === "hello world", 10_000)).toBe(true)
    h2.change((d) => A.splice(d, ["text"], 0, 0, ">> "))
    expect(await until(() => text(h1) === ">> hello world", 10_000)).toBe(true)
    expect(Math.max(0, ...decodedHaves)).toBeLessThanOrEqual(16)
  } finally {
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 60_000)

test("when Automerge cannot answer one peer, that peer's sync starts over; another peer's edit still reaches everyone", async () => {
  const { base, events, repo, stop } = await setup()
  const sockets: WebSocket[] = []
  const marker = "ab".repeat(32)
  try {
    const r1 = repo("alice", "peer-alice-2")
    const h1 = r1.create<Note>({ text: "one" })
    expect(await hubHas(base, h1.documentId)).toBe(true)
    // A hand-driven peer follows the document before the second stock peer does (so it is
    // answered first in the fan-out), and leaves a `need` in its SyncState.
    const carol = await rawPeer(base, "carol", "peer-carol")
    sockets.push(carol.ws)
    carol.send("request", h1.documentId, A.generateSyncMessage(A.init(), A.initSyncState())[1]!)
    expect(await until(() => carol.got.some((m) => m?.type === "sync"), 10_000)).toBe(true)
    let mine = A.init<Note>()
    for (const m of carol.got.filter((x) => x?.type === "sync")) mine = A.receiveSyncMessage(mine, A.initSyncState(), m.data)[0]
    expect(mine.text).toBe("one")
    carol.send("sync", h1.documentId, A.encodeSyncMessage({ heads: A.getHeads(mine), need: [marker], have: [], changes: [] }))
    const r2 = repo("bob", "peer-bob-2")
    const h2 = await r2.find<Note>(h1.url)
    expect(await until(() => text(h2) === "one", 10_000)).toBe(true)

    // From now on Automerge fails on carol's SyncState, as it panicked on some a peer had set.
    failOnNeed = marker
    const before = carol.got.length
    h1.change((d) => A.splice(d, ["text"], 3, 0, " two"))
    expect(await until(() => text(h2) === "one two", 10_000)).toBe(true)
    expect(failures).toBeGreaterThan(0)
    expect(events.some((e) => e.code === "internal-error" && /sync starts over/.test(e.message))).toBe(true)
    // Carol's sync started over (a fresh SyncState answers her), and her socket is still open.
    expect(await until(() => carol.got.slice(before).some((m) => m?.type === "sync"), 10_000)).toBe(true)
    expect(carol.closed()).toBeUndefined()
  } finally {
    failOnNeed = undefined
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 60_000)

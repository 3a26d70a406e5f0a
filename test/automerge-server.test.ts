/**
 * Stock automerge-repo clients (`Repo` + `WebSocketClientAdapter`) against a hub with the
 * automerge-repo endpoint, run as a child process on LevelDB (test/support/crdt-serve.ts).
 */
import * as A from "@automerge/automerge"
import { Repo, type DocHandle } from "@automerge/automerge-repo"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { WebSocket } from "ws"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startCrdtServer, type CrdtChild } from "./support/crdt-child.js"
import { sleep, until } from "./support/ws.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"

interface Note {
  text: string
}

const repos: Repo[] = []
const adapters: StoppableClientAdapter[] = []
const repo = (url: string, peerId: string): Repo => {
  const adapter = new StoppableClientAdapter(url, 200)
  adapters.push(adapter)
  const r = new Repo({ network: [adapter], peerId: peerId as never })
  repos.push(r)
  return r
}
const text = (h: DocHandle<Note>): string | undefined => h.doc()?.text

/** Waits (bounded) until the hub answers a request for the document with data, not doc-unavailable. */
const hubHas = async (base: string, documentId: string): Promise<boolean> => {
  // A peer id of its own per URL (a peer id belongs to the first user that joined with it).
  const probe = `probe-${base}`
  const end = Date.now() + 15_000
  while (Date.now() < end) {
    const ws = new WebSocket(base)
    const answer = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), 3_000)
      ws.on("error", () => resolve("error"))
      ws.on("message", (d) => {
        const m = decodeRepoMessage(new Uint8Array(d as Buffer))
        if (m?.type === "peer") {
          const [, request] = A.generateSyncMessage(A.init(), A.initSyncState())
          ws.send(encodeRepoMessage({ type: "request", senderId: probe, targetId: "canon-hub", documentId, data: request! }))
        } else if (m?.type === "sync" || m?.type === "doc-unavailable") {
          clearTimeout(timer)
          resolve(m.type)
        }
      })
      ws.on("open", () => ws.send(encodeRepoMessage({ type: "join", senderId: probe, peerMetadata: {}, supportedProtocolVersions: ["1"] })))
    })
    ws.close()
    if (answer === "sync") return true
    await sleep(100)
  }
  return false
}

/** A raw peer ("mallory") joins at `url` and sends one change of `documentId`; resolves with the close code (undefined: still open after 5 s). */
const sendChangeRaw = async (url: string, documentId: string, change: Uint8Array): Promise<number | undefined> => {
  const ws = new WebSocket(url)
  let closed: number | undefined
  ws.on("close", (c) => (closed = c))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  // A peer id of its own per URL (a peer id belongs to the first user that joined with it).
  const peer = `mallory-${url}`
  ws.send(encodeRepoMessage({ type: "join", senderId: peer, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  ws.send(encodeRepoMessage({ type: "sync", senderId: peer, targetId: "canon-hub", documentId: documentId as never, data: A.encodeSyncMessage({ heads: [A.decodeChange(change).hash], need: [], have: [], changes: [change] }) }))
  await until(() => closed !== undefined, 5_000)
  if (closed === undefined) ws.close()
  return closed
}

let dir: string
let hub: CrdtChild
let url: string

// One hub for the file (starting a child is slow on a shared machine); each test has its documents.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "canon-am-"))
  hub = await startCrdtServer(dir, 0, true)
  url = `ws://127.0.0.1:${hub.port}/automerge?token=writer-t`
}, 60_000)

afterEach(async () => {
  // A stock adapter rethrows "closed before the connection was established" when shut down
  // mid-connect (after a hub restart it may be reconnecting): let each finish connecting first.
  await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === WebSocket.OPEN), 10_000)
  for (const r of repos.splice(0)) await r.shutdown().catch(() => {})
  adapters.splice(0)
})

afterAll(async () => {
  await hub.stop()
  if (process.env.CRDT_SERVE_LOG) console.log(hub.output())
  rmSync(dir, { recursive: true, force: true })
})

test("a document created on one repo loads by URL on another; concurrent edits converge", async () => {
  const r1 = repo(url, "peer-1")
  const h1 = r1.create<Note>({ text: "hello" })
  expect(await hubHas(url, h1.documentId)).toBe(true)
  h1.change((d) => A.splice(d, ["text"], 5, 0, " world"))
  const r2 = repo(url, "peer-2")
  const h2 = await r2.find<Note>(h1.url)
  expect(await until(() => text(h2) === "hello world", 10_000)).toBe(true)
  h2.change((d) => A.splice(d, ["text"], 0, 0, ">> "))
  h1.change((d) => A.splice(d, ["text"], d.text.length, 0, "!"))
  expect(await until(() => text(h1) === ">> hello world!" && text(h2) === ">> hello world!", 10_000)).toBe(true)
})

test("ephemeral messages are relayed to the document's other peers", async () => {
  const r1 = repo(url, "peer-e1")
  const h1 = r1.create<Note>({ text: "x" })
  expect(await hubHas(url, h1.documentId)).toBe(true)
  const r2 = repo(url, "peer-e2")
  const h2 = await r2.find<Note>(h1.url)
  let got: unknown
  h2.on("ephemeral-message", (e) => (got = e.message))
  await sleep(200)
  h1.broadcast({ cursor: 7 })
  expect(await until(() => got !== undefined, 5_000)).toBe(true)
  expect(got).toEqual({ cursor: 7 })
})

test("an unknown document is unavailable", async () => {
  const r = repo(url, "peer-u")
  const known = r.create<Note>({ text: "" })
  await sleep(500)
  // Another valid document id the hub has never seen.
  const other = new Repo({ network: [] }).create<Note>({ text: "" })
  await expect(r.find(other.url)).rejects.toThrow(/unavailable/i)
  void known
  // The same at the protocol level: request -> doc-unavailable.
  const ws = new WebSocket(url)
  const got: Uint8Array[] = []
  ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
  await new Promise((ok) => ws.once("open", ok))
  ws.send(encodeRepoMessage({ type: "join", senderId: "asker", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  const [, request] = A.generateSyncMessage(A.init(), A.initSyncState())
  ws.send(encodeRepoMessage({ type: "request", senderId: "asker", targetId: "canon-hub", documentId: other.documentId, data: request! }))
  expect(await until(() => got.some((g) => decodeRepoMessage(g)?.type === "doc-unavailable"), 5_000)).toBe(true)
  ws.close()
})

test("offline edits and a hub restart: the document is kept in LevelDB and everything converges", async () => {
  const r1 = repo(url, "peer-o1")
  const h1 = r1.create<Note>({ text: "base" })
  expect(await hubHas(url, h1.documentId)).toBe(true)
  for (let i = 0; i < 50; i++) h1.change((d) => A.splice(d, ["text"], d.text.length, 0, String(i % 10)))
  const r2 = repo(url, "peer-o2")
  const h2 = await r2.find<Note>(h1.url)
  const first = text(h1)!
  expect(await until(() => text(h2) === first, 10_000)).toBe(true)
  const port = hub.port
  await hub.stop()
  // Both edit while the hub is down.
  h1.change((d) => A.splice(d, ["text"], 0, 0, "[one]"))
  h2.change((d) => A.splice(d, ["text"], d.text.length, 0, "[two]"))
  hub = await startCrdtServer(dir, port, true)
  const both = (s: string | undefined) => s !== undefined && s.includes("[one]") && s.includes("[two]")
  expect(await until(() => both(text(h1)) && both(text(h2)) && text(h1) === text(h2), 20_000)).toBe(true)
  // A fresh repo loads the merged document from the hub alone.
  const r3 = repo(url, "peer-o3")
  const h3 = await r3.find<Note>(h1.url)
  expect(await until(() => text(h3) === text(h1), 10_000)).toBe(true)
}, 90_000)

test("malformed frames close only that socket; a hostile change is refused and the hub keeps serving", async () => {
  const r1 = repo(url, "peer-h1")
  const h1 = r1.create<Note>({ text: "safe" })
  expect(await hubHas(url, h1.documentId)).toBe(true)
  const raw = async () => {
    const ws = new WebSocket(url)
    let closed: number | undefined
    const got: Uint8Array[] = []

    ws.on("close", (c) => (closed = c))
    ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    return { ws, got, closed: () => closed }
  }
  const g = await raw()
  g.ws.send(new Uint8Array([0xff, 0x00, 0x13]))
  expect(await until(() => g.closed() !== undefined, 5_000)).toBe(true)
  expect(g.closed()).toBe(4400)

  const s = await raw()
  s.ws.send(encodeRepoMessage({ type: "join", senderId: "evil", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  expect(await until(() => s.got.length > 0, 5_000)).toBe(true)
  expect(decodeRepoMessage(s.got[0]!)?.type).toBe("peer")
  s.ws.send(encodeRepoMessage({ type: "sync", senderId: "evil", targetId: "canon-hub", documentId: h1.documentId, data: new Uint8Array([0x42, 1, 2, 3, 255]) }))
  expect(await until(() => s.closed() !== undefined, 5_000)).toBe(true)
  expect(s.closed()).toBe(4400)

  // A sync message carrying a change whose bytes are corrupted.
  const other = A.change(A.from({ text: "zz" }), (d) => { d.text = "evil" })
  const change = A.getLastLocalChange(other)!.slice()
  change[change.length - 3]! ^= 0xff
  const msg = A.encodeSyncMessage({ heads: [], need: [], have: [], changes: [change] })
  const c = await raw()
  c.ws.send(encodeRepoMessage({ type: "join", senderId: "evil-2", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  c.ws.send(encodeRepoMessage({ type: "sync", senderId: "evil-2", targetId: "canon-hub", documentId: h1.documentId, data: msg }))
  expect(await until(() => c.closed() !== undefined, 5_000)).toBe(true)
  expect(c.closed()).toBe(4400)

  const r2 = repo(url, "peer-h2")
  const h2 = await r2.find<Note>(h1.url)
  expect(await until(() => text(h2) === "safe", 10_000)).toBe(true)
  expect(hub.child.exitCode).toBeNull()
})

test("a forged change (its set's pred names a character of another user's text) is refused; every peer still syncs the same document", async () => {
  const r1 = repo(url, "peer-f1")
  const h1 = r1.create<{ text: string; m: Record<string, number> }>({ text: "hello world", m: { a: 1 } })
  expect(await hubHas(url, h1.documentId)).toBe(true)
  // The attacker's own actor, the right seq and deps; only the pred is forged.
  const honest = h1.doc()!
  const ops = A.getAllChanges(honest).map((c) => A.decodeChange(c)).flatMap((d) => d.ops.map((o, i) => ({ o, id: `${d.startOp + i}@${d.actor}` })))
  const char = ops[ops.findIndex((x) => x.o.action === "makeText") + 1]!.id
  const change = A.getLastLocalChange(A.change(A.clone(honest, { actor: "ab".repeat(16) }), (x) => { x.m.b = 2 }))!
  const dc = A.decodeChange(change) as any
  delete dc.hash
  dc.ops[0].pred = [char]
  const forged = A.encodeChange(dc)
  expect(await sendChangeRaw(url, h1.documentId, forged)).toBe(4400)
  // A new peer and the old one keep syncing the same document.
  const r2 = repo(url, "peer-f2")
  const h2 = await r2.find<{ text: string; m: Record<string, number> }>(h1.url)
  expect(await until(() => h2.doc()?.text === "hello world", 10_000)).toBe(true)
  h1.change((d) => { d.m.c = 3 })
  expect(await until(() => h2.doc()?.m.c === 3, 10_000)).toBe(true)
  expect(JSON.stringify(h2.doc())).toBe(JSON.stringify(h1.doc()))
  expect(h2.doc()!.m.b).toBeUndefined()
  expect(hub.child.exitCode).toBeNull()
})

test("a change of another user's actor is refused (4400); that user's next change lands and every peer syncs the same document", async () => {
  const base = url.split("?")[0]!
  const r1 = repo(`${base}?token=writer-ann`, "peer-ann")
  const h1 = r1.create<Note>({ text: "ann" })
  expect(await hubHas(`${base}?token=writer-probe`, h1.documentId)).toBe(true)
  // Mallory writes ann's next seq: ann's actor, the right seq and deps, a valid change.
  const honest = h1.doc()!
  const forged = A.getLastLocalChange(A.change(A.clone(honest, { actor: A.getActorId(honest) }), (d) => { d.text = "FORGED" }))!
  expect(await sendChangeRaw(`${base}?token=writer-mallory`, h1.documentId, forged)).toBe(4400)
  // Ann's own next change (the seq mallory tried to take) reaches a new peer.
  h1.change((d) => { d.text = "ann!" })
  const r2 = repo(`${base}?token=writer-bob`, "peer-bob")
  const h2 = await r2.find<Note>(h1.url)
  expect(await until(() => text(h2) === "ann!", 10_000)).toBe(true)
  expect(JSON.stringify(h2.doc())).toBe(JSON.stringify(h1.doc()))
  expect(hub.child.exitCode).toBeNull()
})

test("authentication from the URL: no token is refused, a reader cannot change the document", async () => {
  const base = `ws://127.0.0.1:${hub.port}/automerge`
  const anon = new WebSocket(base)
  let closed: number | undefined
  anon.on("close", (c) => (closed = c))
  await new Promise((r) => anon.once("open", r))
  anon.send(encodeRepoMessage({ type: "join", senderId: "anon", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  expect(await until(() => closed !== undefined, 5_000)).toBe(true)
  expect(closed).toBe(4401)

  const w = repo(`${base}?token=writer-1`, "peer-w")
  const hw = w.create<Note>({ text: "by writer" })
  expect(await hubHas(`${base}?token=writer-probe`, hw.documentId)).toBe(true)
  const r = repo(`${base}?token=reader-1`, "peer-r")
  const hr = await r.find<Note>(hw.url)
  expect(await until(() => text(hr) === "by writer", 10_000)).toBe(true)
  hr.change((d) => A.splice(d, ["text"], 0, 0, "reader: "))
  await sleep(500)
  const r2 = repo(`${base}?token=reader-2`, "peer-r2")
  const h2 = await r2.find<Note>(hw.url)
  expect(await until(() => text(h2) === "by writer", 10_000)).toBe(true)
  await sleep(200)
  expect(text(hw)).toBe("by writer")
})

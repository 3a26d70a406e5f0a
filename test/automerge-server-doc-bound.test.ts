/**
 * Whole Automerge documents on the hub hold at most `maxDocOps` ops (every op of every change,
 * deletes included) and `maxDocChanges` changes. Each update was bounded where it entered
 * (1 MiB, 2^18 ops), but nothing bounded the document: changes accepted one after another
 * grew it until the hub ran out of memory, and deletes grow it too although `A.stats` does
 * not count them (re-deletes of one character: 129 MiB for 100,000). An update whose new
 * changes could take the document past a bound is now refused whole, `update-too-large`, and
 * the document stays as it was, encodes, reloads and serves. Run with small bounds, through
 * the authority on memory storage and through the automerge-repo route on a real WsServer.
 */
import * as A from "@automerge/automerge"
import { Repo, generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { WebSocket } from "ws"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, automergeRoute, type AutomergeBox, type AutomergeEngineOptions } from "../adapters/automerge-server/index.js"
import { decodeRepoMessage, encodeRepoMessage } from "../adapters/automerge-server/protocol.js"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { until } from "./support/ws.js"

type Note = { text: string }

const host = (storage: MemoryStorage, options: AutomergeEngineOptions) =>
  new CrdtDocHost({ engines: [automergeDocEngine(options)], storage, sync: false, compactAfterBytes: 1 << 30 })

const refusal = (bound: string) => ({ code: "update-too-large", index: 0, message: `The document would pass the hub's bound of ${bound}; split its data into more documents.` })

/** One actor's changes: the text object, then `count` changes inserting `chars` characters each (an op each). */
const typing = (count: number, chars: number, actor = "aa".repeat(16)): A.Change[] => {
  let doc = A.from<Note>({ text: "" }, { actor })
  for (let i = 0; i < count; i++) doc = A.change(doc, (d) => A.splice(d, ["text"], d.text.length, 0, String.fromCharCode(97 + (i % 26)).repeat(chars)))
  const all = A.getAllChanges(doc)
  A.free(doc)
  return all
}

/** The text of a document made of the first `k` of `changes`. */
const textOf = (changes: ReadonlyArray<A.Change>, k: number): string => {
  const [doc] = A.applyChanges(A.init<Note>(), changes.slice(0, k))
  const s = doc.text ?? ""
  A.free(doc)
  return s
}

const opsOf = (changes: ReadonlyArray<A.Change>): number => changes.reduce((n, c) => n + A.decodeChange(c).ops.length, 0)

test("a document takes changes up to its op bound, refuses the one that could cross it, and still encodes, reloads and serves", async () => {
  const storage = new MemoryStorage()
  const h = host(storage, { maxDocOps: 500 })
  const doc = await h.open<AutomergeBox>("automerge", "full")
  const changes = typing(20, 50)
  let taken = 0
  let refused: unknown
  for (const c of changes) {
    const out = await doc.submit([c])
    if (out.rejected.length > 0) {
      refused = out.rejected
      break
    }
    expect(out.stored).toBe(1)
    taken++
  }
  expect(refused).toEqual([refusal("500 ops")])
  expect(opsOf(changes.slice(0, taken))).toBeLessThanOrEqual(500)
  expect(opsOf(changes.slice(0, taken + 1))).toBeGreaterThan(500)
  // Refused whole: the document is what the taken changes make.
  const text = textOf(changes, taken)
  expect((doc.doc.doc as Note).text).toBe(text)
  // Changes it has already are known, not refused, at the bound.
  expect(await doc.submit(changes.slice(0, taken))).toEqual({ stored: 0, known: taken, rejected: [] })
  // It encodes, and a fresh peer loads it.
  const fresh = A.load<Note>(doc.engine.encode(doc.doc))
  expect(fresh.text).toBe(text)
  A.free(fresh)
  await h.close()
  // It reloads from storage whole.
  const again = await host(storage, { maxDocOps: 500 }).open<AutomergeBox>("automerge", "full")
  expect((again.doc.doc as Note).text).toBe(text)
  expect(again.seq).toBe(taken)
})

test("deletes count: re-deletes of one text, which A.stats does not see, reach the op bound", async () => {
  const h = host(new MemoryStorage(), { maxDocOps: 350 })
  const doc = await h.open<AutomergeBox>("automerge", "redeletes")
  let writer = A.from<Note>({ text: "" }, { actor: "aa".repeat(16) })
  writer = A.change(writer, (d) => A.splice(d, ["text"], 0, 0, "x".repeat(100)))
  const insert = A.getAllChanges(writer)
  writer = A.change(writer, (d) => A.splice(d, ["text"], 0, 100))
  const del = A.decodeChange(A.getLastLocalChange(writer)!)
  A.free(writer)
  expect(await doc.submit(insert)).toMatchObject({ stored: 2, rejected: [] })
  // The same 100 deletes again and again, each by a fresh actor depending on the insert only.
  const redelete = (r: number) => A.encodeChange({ ...del, actor: (0xa000 + r).toString(16).padStart(32, "b"), seq: 1, deps: [A.decodeChange(insert[1]!).hash] })
  const outcomes: unknown[] = []
  for (let r = 0; r < 5; r++) {
    const out = await doc.submit([redelete(r)])
    outcomes.push(out.rejected[0] ?? out.stored)
    if (out.rejected.length > 0) break
  }
  // 1 + 100 ops, then 100 a re-delete: the third would hold 401.
  expect(outcomes).toEqual([1, 1, refusal("350 ops")])
  expect(A.stats(doc.doc.doc).numOps).toBeLessThan(110)
  expect((doc.doc.doc as Note).text).toBe("")
  await h.close()
})

test("a document takes changes up to its change bound, and a document chunk past a bound is refused all of it", async () => {
  const h = host(new MemoryStorage(), { maxDocChanges: 20 })
  const doc = await h.open<AutomergeBox>("automerge", "changes")
  const changes = typing(30, 1)
  const outcomes: unknown[] = []
  for (const c of changes) {
    const out = await doc.submit([c])
    outcomes.push(out.rejected[0] ?? out.stored)
    if (out.rejected.length > 0) break
  }
  expect(outcomes).toEqual([...Array(20).fill(1), refusal("20 changes")])
  expect(A.getAllChanges(doc.doc.doc).length).toBe(20)
  // A peer's whole document (what automerge-repo sends on first contact) that would pass the
  // bound: none of its changes is taken.
  const other = await h.open<AutomergeBox>("automerge", "chunk")
  let peer = A.from<Note>({ text: "" }, { actor: "cc".repeat(16) })
  for (let i = 0; i < 25; i++) peer = A.change(peer, (d) => A.splice(d, ["text"], i, 0, "y"))
  expect((await other.submit([A.save(peer)])).rejected).toEqual([refusal("20 changes")])
  expect(A.getHeads(other.doc.doc)).toEqual([])
  A.free(peer)
  await h.close()
})

test("a document stored past a lowered bound loads whole and takes no more", async () => {
  const storage = new MemoryStorage()
  const changes = typing(10, 50)
  const h = host(storage, { maxDocOps: 10_000 })
  const doc = await h.open<AutomergeBox>("automerge", "lowered")
  expect(await doc.submit(changes.slice(0, 8))).toMatchObject({ stored: 8, rejected: [] })
  await h.close()
  const lower = host(storage, { maxDocOps: 100 })
  const again = await lower.open<AutomergeBox>("automerge", "lowered")
  // Acknowledged edits are never dropped on load, whatever the bound is now.
  expect((again.doc.doc as Note).text).toBe(textOf(changes, 8))
  expect((await again.submit([changes[8]!])).rejected).toEqual([refusal("100 ops")])
  expect((again.doc.doc as Note).text).toBe(textOf(changes, 8))
  await lower.close()
})

test("maxDocOps and maxDocChanges are checked: whole numbers of at least 1", () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(() => automergeDocEngine({ maxDocOps: bad })).toThrow(/maxDocOps must be a whole number of at least 1/)
    expect(() => automergeDocEngine({ maxDocChanges: bad })).toThrow(/maxDocChanges must be a whole number of at least 1/)
  }
  expect(() => automergeDocEngine({ maxDocOps: 1, maxDocChanges: 1 })).not.toThrow()
})

test("automerge-repo route: the change that would cross the bound closes its socket 4400 with the reason; the document keeps serving", async () => {
  const reports: Array<{ code: string; message: string }> = []
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine({ maxDocOps: 500 })], (h) => [automergeRoute(h)], {
    onEvent: (e) => {
      if (e.type === "crdt" && e.event.type === "refused") reports.push(e.event)
    },
  })
  const base = url("/automerge")
  const docUrl = generateAutomergeUrl()
  const { documentId } = parseAutomergeUrl(docUrl)
  const adapter = new StoppableClientAdapter(`${base}?token=reader`, 200)
  const repo = new Repo({ network: [adapter], peerId: "late-reader" as never })
  const ws = new WebSocket(`${base}?token=writer`)
  try {
    const changes = typing(20, 50)
    let closed: { code: number; reason: string } | undefined
    ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
    const joined = new Promise<void>((resolve) => ws.on("message", (d) => decodeRepoMessage(new Uint8Array(d as Buffer))?.type === "peer" && resolve()))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    ws.send(encodeRepoMessage({ type: "join", senderId: "writer-peer", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
    await joined
    // All at once, each change in a sync message of its own: taken in order until one is refused.
    for (const c of changes) {
      const data = A.encodeSyncMessage({ heads: [A.decodeChange(c).hash], need: [], have: [], changes: [c] })
      ws.send(encodeRepoMessage({ type: "sync", senderId: "writer-peer", targetId: "canon-hub", documentId, data }))
    }
    expect(await until(() => closed !== undefined, 10_000)).toBe(true)
    expect(closed).toEqual({ code: 4400, reason: "update-too-large: The document would pass the hub's bound of 500 ops; split its data into more documents." })
    expect(reports).toContainEqual({ type: "refused", code: "update-too-large", message: expect.stringContaining(`${documentId}: The document would pass the hub's bound of 500 ops`) })

    const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", documentId)
    const text = (doc.doc.doc as Note).text
    const taken = changes.findIndex((_, k) => textOf(changes, k) === text)
    expect(taken).toBeGreaterThanOrEqual(5)
    expect(taken).toBeLessThan(changes.length)
    hub.crdtDocs.release(doc)

    // A fresh stock client syncs what the document holds.
    const handle = await repo.find<Note>(docUrl)
    expect(await until(() => handle.doc()?.text === text, 10_000)).toBe(true)
  } finally {
    ws.close()
    await until(() => adapter.socket === undefined || adapter.socket.readyState === 1, 5_000)
    await repo.shutdown().catch(() => {})
    await stop()
  }
}, 30_000)

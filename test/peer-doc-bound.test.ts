/**
 * A peer session bounds what a peer can make it hold and do, as the hub does for its clients.
 * YSyncSession bounded each update (1 MiB, 262,144 structs) and nothing else: a hostile peer
 * sending valid updates under its own clientID (each adding 140,000 binary items, ~820 KB)
 * grew a replica's document until a Node process with a 1 GiB heap died after ~12 MB. The
 * Automerge replica had the same gap. Now: a whole-document bound checked before applying
 * (`maxDocStructs`; `maxDocOps`, `maxDocChanges`) and a work budget per link (a TokenBucket;
 * an update past it is refused, `rate-limited`, and the handshake re-run once it is back).
 * Small option values keep the data small.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { memoryLinkPair } from "../core/crdt-docs/peer-link.js"
import { AutomergeReplica, YSyncSession } from "../adapters/peer/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"

const structCount = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) n += list.length
  return n
}

/** An update of `n` binary items (each its own struct: binary content never merges) pushed on `doc`'s array "bin". */
const binaryItems = (doc: Y.Doc, n: number): Uint8Array => {
  const before = Y.encodeStateVector(doc)
  doc.transact(() => {
    for (let i = 0; i < n; i++) doc.getArray<Uint8Array>("bin").push([new Uint8Array([i & 255])])
  })
  return Y.encodeStateAsUpdate(doc, before)
}

test("Yjs: a peer's updates past maxDocStructs are refused; the replica stays alive and serves honest peers", async () => {
  const MAX = 2_000
  const replica = new Y.Doc()
  const errors: string[] = []
  // The hostile peer's link: raw updates, each within the per-update bounds.
  const [hostileMine, hostileTheirs] = memoryLinkPair()
  const toHostile = new YSyncSession(replica, hostileMine, { maxDocStructs: MAX, onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  // An honest peer with its own session.
  const [honestMine, honestTheirs] = memoryLinkPair()
  const toHonest = new YSyncSession(replica, honestMine, { maxDocStructs: MAX })
  const honest = new Y.Doc()
  const honestSession = new YSyncSession(honest, honestTheirs)
  await honestSession.whenSynced()

  const evil = new Y.Doc()
  for (let i = 0; i < 10; i++) {
    hostileTheirs.send(encodeUpdate(binaryItems(evil, 400)))
    await until(() => false, 5)
  }
  expect(await until(() => errors.some((e) => e.startsWith("document-too-large")), 2_000)).toBe(true)
  expect(errors.find((e) => e.startsWith("document-too-large"))).toMatch(/maxDocStructs/)
  // 4,000 structs sent; the document holds at most MAX.
  expect(structCount(replica)).toBeLessThanOrEqual(MAX)
  expect(replica.getArray("bin").length).toBeLessThan(4_000)

  // The replica still serves: the honest peer's edit under the bound arrives, and the replica's reaches it.
  honest.getText("t").insert(0, "from the honest peer")
  expect(await until(() => replica.getText("t").toString() === "from the honest peer", 2_000)).toBe(true)
  replica.getText("t").insert(0, "> ")
  expect(await until(() => honest.getText("t").toString() === "> from the honest peer", 2_000)).toBe(true)
  expect(honest.getArray("bin").length).toBe(replica.getArray("bin").length)

  for (const s of [toHostile, toHonest, honestSession]) s.destroy()
}, 15_000)

test("Yjs: updates past a peer's work budget are refused (rate-limited), then synced by a handshake once it is back", async () => {
  const a = new Y.Doc()
  const b = new Y.Doc()
  const [la, lb] = memoryLinkPair()
  const errors: string[] = []
  // 2 µs a struct: a 5,000 burst is 2,500 structs, and as many come back each second.
  const sa = new YSyncSession(a, la, { updateWorkPerSecond: 5_000, updateWorkBurst: 5_000, onError: (e) => errors.push(e.code) })
  const sb = new YSyncSession(b, lb)
  await Promise.all([sa.whenSynced(), sb.whenSynced()])
  // The honest peer sends 10 updates of 500 structs at once (~10,000 of work): past the burst.
  for (let i = 0; i < 10; i++) binaryItems(b, 500)
  expect(await until(() => sa.rateLimited > 0, 2_000)).toBe(true)
  expect(errors).toContain("rate-limited")
  // Nothing is lost: what was refused arrives in the step2 of the handshake that follows.
  expect(await until(() => a.getArray("bin").length === 5_000, 5_000)).toBe(true)
  expect(Y.encodeStateVector(a)).toEqual(Y.encodeStateVector(b))
  sa.destroy()
  sb.destroy()
}, 15_000)

test("Automerge: a peer's changes past maxDocOps are refused; the replica stays alive and serves honest peers", async () => {
  const MAX_OPS = 1_000
  const errors: string[] = []
  const replica = new AutomergeReplica(A.from<{ items: number[]; note?: string }>({ items: [] }), { maxDocOps: MAX_OPS, onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  const hostile = new AutomergeReplica(A.clone(replica.doc))
  const honest = new AutomergeReplica(A.clone(replica.doc))
  const [h1, h2] = memoryLinkPair()
  const [o1, o2] = memoryLinkPair()
  const detach = [replica.attach(h1), hostile.attach(h2), replica.attach(o1), honest.attach(o2)]
  // 5 changes of 300 ops each: 1,500 ops past a bound of 1,000.
  for (let i = 0; i < 5; i++) hostile.change((d) => { for (let j = 0; j < 300; j++) d.items.push(j) })
  expect(await until(() => errors.some((e) => e.startsWith("document-too-large")), 3_000)).toBe(true)
  expect(errors.find((e) => e.startsWith("document-too-large"))).toMatch(/maxDocOps/)
  await replica.idle()
  expect(replica.doc.items.length).toBeLessThan(1_500)
  expect(replica.doc.items.length).toBeLessThanOrEqual(MAX_OPS)

  honest.change((d) => { d.note = "honest" })
  expect(await until(() => replica.doc.note === "honest", 3_000)).toBe(true)
  expect(await until(() => honest.doc.items.length === replica.doc.items.length, 3_000)).toBe(true)
  for (const d of detach) d()
  h1.close()
  o1.close()
}, 15_000)

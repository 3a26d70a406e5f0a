/**
 * A whole CRDT document's stored tail is compacted by its count of updates too, not only by its
 * bytes: a load merges the tail one update at a time, and a one-character update costs about
 * as much to merge as a large one. An attacker's tiny updates under a large base (the tail's
 * bytes never reaching the base's) made every load of the document hold the hub's event loop
 * for seconds (.scratch/s35/store/y-tail.mts: 60,000 one-character Yjs inserts under a 2 MiB
 * base, 5.9 s at each join after the room was unloaded).
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtDocStore } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"

const UPDATES = 2_048

/** A Yjs writer: one large insert (the base), then `n` one-character inserts at scattered places. */
const yjsTail = (n: number): { base: Uint8Array; tail: Uint8Array[] } => {
  const d = new Y.Doc()
  d.clientID = 11
  const out: Uint8Array[] = []
  d.on("update", (u: Uint8Array) => out.push(u))
  const t = d.getText("t")
  t.insert(0, "x".repeat(256 << 10))
  for (let i = 0; i < n; i++) t.insert((i * 7919) % (256 << 10), "y")
  return { base: out[0]!, tail: out.slice(1) }
}

test("Yjs: a tail of many tiny updates under a larger base is compacted by its count", async () => {
  const storage = new MemoryStorage()
  const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false })
  const doc = await h.open<Y.Doc>("yjs", "room")
  const { base, tail } = yjsTail(UPDATES + 10)
  expect((await doc.submit([base])).stored).toBe(1)
  // The base update alone is a tail at least its own size: compacted by bytes.
  const first = (await new CrdtDocStore(storage).load("room"))!
  expect(first.meta.baseSeq).toBe(1)
  const tailBytes = tail.reduce((n, u) => n + u.length, 0)
  // Far smaller than the base: the bytes rule alone never compacts this tail.
  expect(tailBytes * 4).toBeLessThan(first.base!.length)
  for (let i = 0; i < tail.length; i += 64) expect((await doc.submit(tail.slice(i, i + 64))).stored).toBe(Math.min(64, tail.length - i))
  const stored = (await new CrdtDocStore(storage).load("room"))!
  expect(stored.entries.length).toBeLessThan(UPDATES)
  expect(stored.meta.baseSeq).toBeGreaterThan(1)
  await h.close()
  const again = await new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false }).open<Y.Doc>("yjs", "room")
  expect(again.doc.getText("t").toString()).toBe(doc.doc.getText("t").toString())
})

test("Automerge: a tail of many tiny changes under a larger base is compacted by its count", async () => {
  const LENGTH = 160_000
  const storage = new MemoryStorage()
  const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false })
  const doc = await h.open<AutomergeBox>("automerge", "notes")
  // A value that does not compress (Automerge deflates a document's columns), so the base
  // stays large; the tiny changes go to a short text beside it.
  let seed = 7
  const noise = Array.from({ length: LENGTH }, () => String.fromCharCode(0x4e00 + ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % 20000)).join("")
  let d = A.change(A.init<{ t: string; big: A.ImmutableString }>({ actor: "aa".repeat(16) }), (x) => {
    x.t = "hello"
    x.big = new A.ImmutableString(noise)
  })
  expect((await doc.submit([A.getLastLocalChange(d)!])).stored).toBe(1)
  const first = (await new CrdtDocStore(storage).load("notes"))!
  expect(first.meta.baseSeq).toBe(1)
  const changes: Uint8Array[] = []
  for (let i = 0; i < UPDATES + 10; i++) {
    d = A.change(d, (x) => A.splice(x, ["t"], (i * 7919) % (i + 5), 0, "y"))
    changes.push(A.getLastLocalChange(d)!)
  }
  // Smaller than the base: the bytes rule alone never compacts this tail.
  expect(changes.reduce((n, u) => n + u.length, 0)).toBeLessThan(first.base!.length)
  for (let i = 0; i < changes.length; i += 64) expect((await doc.submit(changes.slice(i, i + 64))).stored).toBe(Math.min(64, changes.length - i))
  const stored = (await new CrdtDocStore(storage).load("notes"))!
  expect(stored.entries.length).toBeLessThan(UPDATES)
  expect(stored.meta.baseSeq).toBeGreaterThan(1)
  await h.close()
  const again = await new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false }).open<AutomergeBox>("automerge", "notes")
  expect((again.doc.doc as { t: string }).t).toBe(d.t)
})

test("compactAfterUpdates is the app's to set", async () => {
  const storage = new MemoryStorage()
  const h = new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false, compactAfterUpdates: 16 })
  const doc = await h.open<Y.Doc>("yjs", "small")
  const { base, tail } = yjsTail(20)
  await doc.submit([base])
  for (const u of tail.slice(0, 15)) await doc.submit([u])
  expect((await new CrdtDocStore(storage).load("small"))!.entries.length).toBe(15)
  await doc.submit([tail[15]!])
  expect((await new CrdtDocStore(storage).load("small"))!.entries.length).toBe(0)
  await h.close()
})

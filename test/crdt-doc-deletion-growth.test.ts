/**
 * Deletions on the /yjs route (whole Yjs documents keep a reserve; an update that only deletes
 * may use it). Found by the review of 3e49e1e, which charged a deletion three times its bytes:
 * stored bytes (base + tail) against maxDocumentBytes, a scattered delete of text written by many
 * Yjs clients at small clocks grew the compacted base by close to four times its bytes. One
 * batch of deletions took the document past max + reserve; the compaction it asked for found it
 * there, and nothing was taken again, not even a deletion of one character. Now a deletion is
 * charged what it can add less what it frees (adapters/yjs/deletion.ts). And a deletion refused
 * is told the limit it was refused for, not the one of inserts (max - reserve).
 */
import * as Y from "yjs"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { tombstoneReserve } from "../core/authority/size-bound.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { editOf } from "./support/yjs-edit.js"

const MAX = 64 << 10
let nextClient = 5_000
const RESERVE = tombstoneReserve(MAX)

/** A writer's edit of `hub` as it is now: the transaction's own update. */
const edit = (hub: Y.Doc, clientID: number, change: (t: Y.Text) => void): Uint8Array => editOf(hub, clientID, change)!

const scattered = (hub: Y.Doc, clientID: number, perUpdate: number): Uint8Array[] => {
  let x = 1
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648
  const mirror = new Y.Doc()
  Y.applyUpdate(mirror, Y.encodeStateAsUpdate(hub))
  const at: number[] = []
  for (let i = mirror.getText("t").length - 1; i >= 0; i -= 2 + Math.floor(rnd() * 4)) at.push(i)
  const out: Uint8Array[] = []
  for (let i = 0; i < at.length; i += perUpdate) {
    const u = edit(mirror, clientID, (t) => t.doc!.transact(() => { for (const p of at.slice(i, i + perUpdate)) t.delete(p, 1) }))
    Y.applyUpdate(mirror, u)
    out.push(u)
  }
  return out
}

test("/yjs: scattered deletions keep the stored document within max + reserve, and one past it still takes a deletion", async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX })
  const doc = await host.open<Y.Doc>("yjs", "d")
  // Text from 220 Yjs clients, 127 characters each (clocks 0..126), retried past refusals (each compacts).
  for (let c = 0; c < 220; c++) {
    const u = edit(doc.doc, 1_000_000 + c * 7919, (t) => t.insert(t.length, "x".repeat(127)))
    let out = await doc.submit([u])
    for (let tries = 0; out.rejected.length > 0 && tries < 5; tries++) out = await doc.submit([u])
    expect(out.rejected).toEqual([])
  }
  await doc.compact()
  const filled = doc.storedBytes.base
  const deletions = scattered(doc.doc, 43, 500)
  const out = await doc.submit(deletions)
  expect(out.stored).toBeGreaterThan(0)
  await doc.compact()
  const grown = doc.storedBytes.base + doc.storedBytes.tail
  // A writer then trims the document as told: a deletion of a character is taken.
  const all = await doc.submit([edit(doc.doc, 44, (t) => t.delete(0, 1))])
  // On 3e49e1e: filled ~30 KB, grown past 66560, the deletion of one character refused update-too-large.
  expect({ filled, grown, within: grown <= MAX + RESERVE, all: all.rejected.map((r) => r.code) }).toEqual({ filled, grown, within: true, all: [] })
  await host.close()
}, 120_000)

test("/yjs: a deletion refused is told the limit it was refused for (max + reserve), not the limit of inserts", async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX })
  const doc = await host.open<Y.Doc>("yjs", "d")
  for (let n = 4096, refusedOne = 0; refusedOne < 3;) {
    const out = await doc.submit([edit(doc.doc, nextClient++, (t) => t.insert(t.length, "x".repeat(n)))])
    if (out.rejected.length === 0) refusedOne = 0
    else if (n > 1) n = Math.floor(n / 2)
    else refusedOne++
  }
  // A scattered deletion too big for the reserve: refused, for max + reserve.
  const [big] = scattered(doc.doc, 43, 1500)
  expect(3 * big!.length).toBeGreaterThan(3 * RESERVE)
  const out = await doc.submit([big!])
  expect(out.rejected.map((r) => r.code)).toEqual(["update-too-large"])
  // On 3e49e1e: "... past 64512 bytes (the hub's maxDocumentBytes, 65536, less the last 1024 kept for deletions ...)".
  expect(out.rejected[0]!.message).toMatch(new RegExp(`past ${MAX + RESERVE} bytes`))
  await host.close()
}, 120_000)

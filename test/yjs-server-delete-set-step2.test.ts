/**
 * Attack / honest regression (05c6c5a: countV1Structs counts the delete set's ranges, on every
 * Yjs route): MAX_UPDATE_STRUCTS (262,144) now bounds structs PLUS delete ranges of one update.
 * But a Yjs sync step2 (`Y.encodeStateAsUpdate(doc, theirStateVector)`) always carries the
 * document's WHOLE delete set, whatever the state vector: a client with nothing new still sends
 * every deleted range the document has ever had (measured here: a diff against the document's
 * own state vector, 0 structs, carried all 140,000 ranges in 551 KB). The hub document, on the
 * other hand, grows its delete set through many small accepted updates, each under the bound.
 *
 * So once a document's delete set passes 262,144 ranges, EVERY y-websocket client's step2 to
 * the hub is refused (`update-too-large`) and its socket closed: its offline edits never
 * arrive, it reconnects and is closed again, and the document is unservable to every writer.
 * Any writer gets a document there with four updates of a few hundred KB (one insert of
 * 524,400 characters, three updates deleting every other one, each under the bound: about
 * 2.4 s of estimated work, inside one principal's 15 s burst). An honest long history gets
 * there too (measured, one author typing at a moving cursor with backspaces: 1,000,000 edits
 * left 121,807 ranges, 2,500,000 left 304,132; random-position edits: 300,000 left 18,309), and peer sessions (adapters/peer/yjs-sync.ts) refuse a step2 past
 * maxSyncStructs (1,048,576) the same way. Before 05c6c5a the ranges did not count.
 *
 * Attribution: the byte bound (1 MiB a Yjs update, older than 05c6c5a) refuses the same class a
 * little later: a range costs 3 to 5 bytes in V1 (absolute clock, length), so about 210,000 to
 * 350,000 ranges fill 1 MiB. Here carol's step2 is 1,040,558 bytes, under the byte bound: it is
 * 05c6c5a's count that refuses it. A fix has to cover both bounds (e.g. the hub does not count,
 * weigh or re-apply delete ranges it already has, or it takes a step2 in pieces).
 *
 * Expected: a step2 that carries the document's own delete set is accepted (e.g. ranges the
 * document already has weigh nothing and do not count toward the bound, or the bound on ranges
 * is one the hub's own accepted history cannot pass): carol's offline edit is stored, and dave,
 * with nothing new, is not refused. Observed: carol's step2 refused, update-too-large ("more than
 * 262144 structs and deleted ranges"); dave's carries the same delete set.
 */
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { MAX_UPDATE_STRUCTS } from "../adapters/yjs/integrable.js"

const varuint = (out: number[], x: number) => {
  for (; x >= 0x80; x = Math.floor(x / 0x80)) out.push((x % 0x80) | 0x80)
  out.push(x)
}

/** A V1 update with no structs and a delete set of `client`'s ranges [clock, clock + 1) for each clock given (what Yjs emits for those deletions). */
const deletions = (client: number, clocks: ReadonlyArray<number>): Uint8Array => {
  const out: number[] = []
  varuint(out, 0) // no structs
  varuint(out, 1) // one client in the delete set
  varuint(out, client)
  varuint(out, clocks.length)
  for (const c of clocks) varuint(out, c), varuint(out, 1)
  return Uint8Array.from(out)
}

test("a document whose delete set passes 262,144 ranges still takes its clients' step2", async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime: new VirtualRuntime(5) })
  const hub = await host.open<Y.Doc>("yjs", "page")

  // The document's history, in accepted updates each under the bound.
  const R = MAX_UPDATE_STRUCTS + 56 // 262,200 deleted ranges
  const writer = new Y.Doc()
  writer.clientID = 5
  const history: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => history.push(u))
  writer.getText("t").insert(0, "ab".repeat(R))
  const odd = Array.from({ length: R }, (_, i) => 2 * i + 1)
  for (let from = 0; from < R; from += 87_400) history.push(deletions(5, odd.slice(from, from + 87_400)))
  for (const u of history) {
    const o = await hub.submit([u], undefined, "mallory", "p:mallory")
    expect(o.rejected).toEqual([])
  }
  expect(hub.doc.getText("t").length).toBe(R)

  // Carol has the same document (she synced it) and typed one character offline.
  const carol = new Y.Doc()
  carol.clientID = 9
  Y.applyUpdate(carol, Y.encodeStateAsUpdate(hub.doc))
  carol.getText("t").insert(0, "X")
  const carolStep2 = Y.encodeStateAsUpdate(carol, Y.encodeStateVector(hub.doc))
  expect(carolStep2.length).toBeLessThan(1 << 20)
  const c = await hub.submit([carolStep2], undefined, "carol", "p:carol")
  expect(c.rejected.map((r) => r.code)).toEqual([])
  expect(c.stored).toBe(1)
  expect(hub.doc.getText("t").toString().startsWith("Xa")).toBe(true)

  // Dave has nothing new: his step2 is the delete set alone.
  const dave = new Y.Doc()
  Y.applyUpdate(dave, Y.encodeStateAsUpdate(hub.doc))
  const daveStep2 = Y.encodeStateAsUpdate(dave, Y.encodeStateVector(hub.doc))
  const d = await hub.submit([daveStep2], undefined, "dave", "p:dave")
  expect(d.rejected.map((r) => r.code)).toEqual([])
  await host.close()
}, 120_000)

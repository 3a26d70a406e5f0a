/**
 * An untrusted Automerge change starts at most one above the highest op counter of the
 * document and what came before it (adapters/automerge/validate.ts). Automerge starts a change
 * right above the counters it knows; only `startOp > histMax` was checked, and A.load allocates
 * per counter up to an actor's highest: a 77-byte change of one op at 2^24 made each compaction
 * of the document (a save and a reload) take seconds and about 1.2 GB, and at 2^27 the save no
 * longer loaded, so the document never compacted again (found by a measuring helper). Both
 * routes judge changes the same way (Overlay): a whole document and a machine's field.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { AutomergeHandle, automergeEngine } from "../adapters/automerge/engine.js"

/** A one-op change by a new actor on `heads`, starting at op `startOp` (hand-made, as a hostile peer may send it). */
const startingAt = (heads: A.Heads, startOp: number): A.Change =>
  A.encodeChange({ actor: "bb".repeat(16), seq: 1, startOp, time: 0, message: null, deps: heads, ops: [{ action: "set", obj: "_root", key: "k", value: 1, datatype: "int", pred: [] }] } as unknown as A.DecodedChange)

test("/automerge: a change starting far above the document's counters is refused; the document still compacts", async () => {
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const first = A.change(A.init<Record<string, number>>({ actor: "aa".repeat(16) }), { time: 0 }, (d) => void (d.x = 1))
  expect((await doc.submit([A.getLastLocalChange(first)!])).rejected).toEqual([])
  const out = await doc.submit([startingAt(A.getHeads(first), 2 ** 27)])
  // Before: accepted, and the compaction below threw ("does not load back").
  expect(out.rejected.map((r) => [r.code, r.message])).toEqual([["update-malformed", expect.stringMatching(/starts at op 134217728; the highest op counter of the document is 1, and a change starts at most one above it/)]])
  // One above is what Automerge makes, and is taken.
  expect((await doc.submit([startingAt(A.getHeads(first), 2)])).rejected).toEqual([])
  await doc.compact()
  expect(doc.storedBytes.base).toBeGreaterThan(0)
  await host.close()
})

test("a machine's Automerge field refuses a change starting far above its counters, and takes one that starts right above", () => {
  const field = automergeEngine("map", { n: 0 } as Record<string, number>, (d) => new AutomergeHandle(d)).create()
  const doc = field.handle.doc
  const heads = A.getHeads(doc)
  const top = Math.max(0, ...heads.map((h) => A.getBackend(doc).getChangeMetaByHash(h)!.maxOp))
  const far = field.validate([startingAt(heads, 2 ** 24)], { clientId: "hostile", trusted: false })
  expect(far).toMatchObject({ ok: false, rejection: { message: expect.stringMatching(/^crdt-invalid: .*starts at op 16777216; the highest op counter of the document is/) } })
  const near = field.validate([startingAt(heads, top + 1)], { clientId: "hostile", trusted: false })
  expect(near.ok).toBe(true)
})

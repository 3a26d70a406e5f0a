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
  expect(out.rejected.map((r) => [r.code, r.message])).toEqual([["update-malformed", expect.stringMatching(/starts at op 134217728; the highest op counter of the document and of what comes with it is 1, and a change starts at most one above it/)]])
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
  expect(far).toMatchObject({ ok: false, rejection: { message: expect.stringMatching(/^crdt-invalid: .*starts at op 16777216; the highest op counter of the document and of what comes with it is/) } })
  const near = field.validate([startingAt(heads, top + 1)], { clientId: "hostile", trusted: false })
  expect(near.ok).toBe(true)
})

/**
 * A change made with A.changeAt on older heads starts above everything its writer knows, a
 * concurrent change it holds included (two tabs of an app, say): sent in one update with that
 * change, in either order, it is taken (a review found it refused when it came first). Counters
 * still climb only by the ops that come with it: a change far above the rest of its update is
 * refused all the same.
 */
describe("a change made on older heads, in one update with the concurrent change it starts above", () => {
  const made = () => {
    const field = automergeEngine("text", { t: "" } as { t: string }, (d) => new AutomergeHandle(d)).create()
    let b = A.clone(field.handle.doc, { actor: "b1".repeat(16) })
    let p = A.clone(field.handle.doc, { actor: "e1".repeat(16) })
    p = A.change(p, (d) => A.splice(d, ["t"], 0, 0, "peer text"))
    const P = A.getLastLocalChange(p)!
    const old = A.getHeads(b)
    ;[b] = A.applyChanges(b, [P])
    const B = A.getLastLocalChange(A.changeAt(b, old, (d) => A.splice(d, ["t"], 0, 0, "mine")).newDoc)!
    return { field, P, B }
  }

  test("a machine's field takes [B, P] and [P, B]", () => {
    for (const order of ["BP", "PB"]) {
      const { field, P, B } = made()
      expect(A.decodeChange(B).startOp).toBeGreaterThan(A.decodeChange(P).startOp + 1)
      const r = field.validate(order === "BP" ? [B, P] : [P, B], { clientId: "tabs", trusted: false })
      expect([order, r.ok]).toEqual([order, true])
    }
  })

  test("/automerge takes them in one update; a change far above the rest of its update is refused", async () => {
    const { P, B } = made()
    const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false })
    const doc = await host.open<AutomergeBox>("automerge", "d")
    const initial = A.getAllChanges(made().field.handle.doc)
    expect((await doc.submit(initial)).rejected).toEqual([])
    // One update (a document chunk of both, B first, as a sync message may carry them).
    const both = A.saveSince(A.applyChanges(A.init<{ t: string }>(), [...initial, B, P])[0], A.getHeads(A.applyChanges(A.init(), initial)[0]))
    expect((await doc.submit([both])).rejected).toEqual([])
    const far = startingAt(A.getHeads(doc.doc.doc), 2 ** 27)
    expect((await doc.submit([far])).rejected.map((r) => r.code)).toEqual(["update-malformed"])
    await host.close()
  })
})

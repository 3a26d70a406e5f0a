/**
 * Writer ownership of whole CRDT documents (core/crdt-docs/authority.ts): the first principal
 * to write as a Yjs clientID or an Automerge actor owns it, durably; another principal's
 * update that adds data under it is refused (`not-owner`), relaying known data is not writing,
 * and submits that name no principal are not judged. Plus a fuzz of interleaved principals
 * over both engines: whatever the order, each writer's data comes from one principal only.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import fc from "fast-check"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { MAX_CLAIMED_WRITERS, MAX_CLAIMS_PER_PRINCIPAL } from "../core/crdt-docs/authority.js"
import type { KVStore } from "../core/ports/storage.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"

const host = (storage: KVStore, compactAfterBytes = 1 << 30) =>
  new CrdtDocHost({ engines: [yjsDocEngine(), automergeDocEngine()], storage, sync: false, compactAfterBytes })

/**
 * A Y.Doc writing as `clientID`, that records its updates; `from` is the state it starts with
 * (applied first: Yjs would pick a new clientID on seeing its own in a remote update).
 */
const ydoc = (clientID: number, from?: Y.Doc) => {
  const d = new Y.Doc()
  if (from !== undefined) Y.applyUpdate(d, Y.encodeStateAsUpdate(from))
  d.clientID = clientID
  const updates: Uint8Array[] = []
  d.on("update", (u: Uint8Array) => updates.push(u))
  return { d, updates, type: (s: string) => d.getText("t").insert(d.getText("t").length, s) }
}

test("Yjs: another principal's new structs under a clientID someone owns are refused; the owner's next edits still land", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<Y.Doc>("yjs", "y1")
  const ann = ydoc(7)
  ann.type("ann:")
  expect(await doc.submit(ann.updates.splice(0), undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.ownerOf("7")).toBe("ann")

  // Mallory forges clientID 7's next clock: the edit ann is about to make.
  const forged = ydoc(7, doc.doc)
  forged.type("FORGED")
  const out = await doc.submit(forged.updates, undefined, "mallory")
  expect(out.stored).toBe(0)
  expect(out.rejected).toEqual([{ index: 0, code: "not-owner", message: expect.stringContaining("writes as 7") }])
  expect(out.rejected[0]!.message).not.toContain("ann")
  expect(doc.doc.getText("t").toString()).toBe("ann:")

  // Ann's own next edit (the same clock) is taken, and everyone sees ann's text.
  ann.type("hello")
  expect(await doc.submit(ann.updates.splice(0), undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.doc.getText("t").toString()).toBe("ann:hello")

  // Relaying what the hub has (another principal's step2 carrying ann's structs) is not writing.
  const bob = ydoc(9, doc.doc)
  bob.type(" bob")
  const relay = Y.encodeStateAsUpdate(bob.d)
  expect(await doc.submit([relay], undefined, "bob")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.ownerOf("9")).toBe("bob")
  expect(doc.ownerOf("7")).toBe("ann")
  // Deleting another's text is editing, not writing as them.
  bob.d.getText("t").delete(0, 4)
  expect(await doc.submit(bob.updates.splice(-1), undefined, "bob")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.doc.getText("t").toString()).toBe("hello bob")
})

test("ownership is durable: it survives a reload and a compaction, and a store from before it binds anew", async () => {
  const storage = new MemoryStorage()
  let h = host(storage, 1)
  let doc = await h.open<Y.Doc>("yjs", "y2")
  const ann = ydoc(11)
  ann.type("a")
  await doc.submit(ann.updates.splice(0), undefined, "ann")
  ann.type("b")
  await doc.submit(ann.updates.splice(0), undefined, "ann")
  // compactAfterBytes 1: the first edit was folded into the base.
  expect(doc.storedBytes.base).toBeGreaterThan(0)
  await h.close()

  h = host(storage)
  doc = await h.open<Y.Doc>("yjs", "y2")
  expect(doc.ownerOf("11")).toBe("ann")
  const forged = ydoc(11, doc.doc)
  forged.type("X")
  expect((await doc.submit(forged.updates, undefined, "mallory")).rejected[0]?.code).toBe("not-owner")
  await h.close()
})

// A clientID is shown (awareness) before it writes: bound to who showed it, durably, so a
// collaborator who saw it cannot write as it first while its owner is offline.
test("a claimed writer identity is owned before it writes: durably, refused to others, bounded per principal and per document", async () => {
  const storage = new MemoryStorage()
  let h = host(storage)
  let doc = await h.open<Y.Doc>("yjs", "y4")
  expect(doc.claim("21", "ann")).toBe(true)
  expect(doc.claim("21", "ann")).toBe(true)
  expect(doc.claim("21", "mallory")).toBe(false)
  expect(doc.ownerOf("21")).toBe("ann")
  const forged = ydoc(21)
  forged.type("~")
  expect((await doc.submit(forged.updates.splice(0), undefined, "mallory")).rejected[0]?.code).toBe("not-owner")
  await h.close()

  // Stored without any update of its own; the owner then writes as it.
  h = host(storage)
  doc = await h.open<Y.Doc>("yjs", "y4")
  expect(doc.ownerOf("21")).toBe("ann")
  expect(doc.seq).toBe(0)
  const ann = ydoc(21)
  ann.type("offline paragraph")
  expect(await doc.submit(ann.updates.splice(0), undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })

  // One principal's claims stop binding at MAX_CLAIMS_PER_PRINCIPAL: past it, first writer owns, as before.
  for (let i = 0; i < MAX_CLAIMS_PER_PRINCIPAL; i++) expect(doc.claim(String(1000 + i), "squatter")).toBe(true)
  expect(doc.claim("5000", "squatter")).toBe(true)
  expect(doc.ownerOf(String(1000 + MAX_CLAIMS_PER_PRINCIPAL - 1))).toBe("squatter")
  expect(doc.ownerOf("5000")).toBeUndefined()
  // And nothing more binds once the document holds MAX_CLAIMED_WRITERS identities.
  for (let p = 0; doc.claim(`w${p}`, `p${p >> 8}`) && doc.ownerOf(`w${p}`) !== undefined; p++) expect(p).toBeLessThan(MAX_CLAIMED_WRITERS)
  expect(doc.claim("late", "newcomer")).toBe(true)
  expect(doc.ownerOf("late")).toBeUndefined()
  await h.close()
})

test("only submits naming their principal are judged, and one batch binds in order", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<Y.Doc>("yjs", "y3")
  const a = ydoc(21)
  a.type("trusted")
  // A trusted caller (no principal): taken, binds nothing.
  expect(await doc.submit(a.updates.splice(0))).toMatchObject({ stored: 1 })
  expect(doc.ownerOf("21")).toBeUndefined()

  // Two principals' submits of the same new clientID land in one batch: the first binds it.
  const b1 = ydoc(22, doc.doc)
  const b2 = ydoc(22, doc.doc)
  b1.type("one")
  // Longer, so it still adds structs once p1's are in (clocks a document has count as known).
  b2.type("twooo")
  const [first, second] = await Promise.all([doc.submit(b1.updates, undefined, "p1"), doc.submit(b2.updates, undefined, "p2")])
  expect(first).toMatchObject({ stored: 1, rejected: [] })
  expect(second.rejected[0]?.code).toBe("not-owner")
  expect(doc.ownerOf("22")).toBe("p1")
  expect(doc.doc.getText("t").toString()).toBe("trustedone")
  await h.close()
})

test("Automerge: another principal's change of an owned actor is refused, known changes relay freely", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<AutomergeBox>("automerge", "am1")
  let ann = A.from({ text: "hi" }, { actor: "aa".repeat(16) })
  expect(await doc.submit(A.getAllChanges(ann), undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.ownerOf("aa".repeat(16))).toBe("ann")

  // Mallory writes ann's next seq (a valid change: same actor, right seq, right deps).
  const forged = A.change(A.clone(ann, { actor: "aa".repeat(16) }), (d) => A.splice(d, ["text"], 2, 0, " forged"))
  const out = await doc.submit([A.getLastLocalChange(forged)!], undefined, "mallory")
  expect(out.rejected[0]?.code).toBe("not-owner")
  expect((doc.doc.doc as { text: string }).text).toBe("hi")

  // Ann's own next change lands.
  ann = A.change(ann, (d) => A.splice(d, ["text"], 2, 0, "!"))
  expect(await doc.submit([A.getLastLocalChange(ann)!], undefined, "ann")).toMatchObject({ stored: 1, rejected: [] })
  // Bob relays the whole document (ann's changes, known) plus one of his own.
  let bob = A.clone(ann, { actor: "bb".repeat(16) })
  bob = A.change(bob, (d) => A.splice(d, ["text"], 0, 0, ">"))
  expect(await doc.submit([A.save(bob)], undefined, "bob")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.ownerOf("bb".repeat(16))).toBe("bob")
  expect((doc.doc.doc as { text: string }).text).toBe(">hi!")
  await h.close()
  const again = await host(storage).open<AutomergeBox>("automerge", "am1")
  expect(again.ownerOf("aa".repeat(16))).toBe("ann")
  expect(again.ownerOf("bb".repeat(16))).toBe("bob")
})

test("fuzz: principals interleaving writes under shared Yjs clientIDs: each clientID's structs come from its owner only", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ principal: fc.constantFrom("p0", "p1", "p2"), client: fc.constantFrom(1, 2, 3), text: fc.string({ minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 12 }),
      async (steps) => {
        const h = host(new MemoryStorage())
        const doc = await h.open<Y.Doc>("yjs", "fz")
        const firstWriter = new Map<number, string>()
        const accepted: string[] = []
        for (const step of steps) {
          const w = ydoc(step.client, doc.doc)
          w.type(step.text)
          const out = await doc.submit(w.updates, undefined, step.principal)
          const owner = firstWriter.get(step.client) ?? step.principal
          firstWriter.set(step.client, owner)
          if (owner === step.principal) {
            expect(out).toMatchObject({ stored: 1, rejected: [] })
            accepted.push(step.text)
          } else expect(out.rejected[0]?.code).toBe("not-owner")
        }
        expect(doc.doc.getText("t").toString()).toBe(accepted.join(""))
        for (const [client, owner] of firstWriter) expect(doc.ownerOf(String(client))).toBe(owner)
        await h.close()
      },
    ),
    { numRuns: 60 },
  )
})

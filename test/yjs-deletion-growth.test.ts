/**
 * adapters/yjs/deletion.ts `deletionGrowth` against the deletions a review built to pass it
 * (each passed it before the fix, by far): a deletion of a nested type, whose whole subtree
 * the hub's document turns into GC structs; a delete set naming one range many times, which
 * Yjs deletes once and the estimate counted as freed each time; and a batch of deletions of
 * the same text, each weighed on the document before the batch (core/crdt-docs/authority.ts
 * `fitting`), each counted as freeing it. The figure checked is what the hub stores: the V2
 * encoding of its document (adapters/yjs-server `encode`).
 */
import * as Y from "yjs"
import { deletionGrowth } from "../adapters/yjs/deletion.js"
import { newHubYDoc, yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { deletionOf, updateOf } from "./support/yjs-edit.js"
import { yText } from "../adapters/yjs/index.js"

/** A writer's update of `hub` as it is now. */
const edit = (hub: Y.Doc, clientID: number, change: (d: Y.Doc) => void): Uint8Array => updateOf(hub, clientID, change)!

const deletion = deletionOf

/** `u` passes the whole-document engine's checks (as the hub runs them before it weighs an update). */
const taken = async (engine: ReturnType<typeof yjsDocEngine>, u: Uint8Array): Promise<void> => {
  expect(engine.check(u).ok).toBe(true)
  expect((await engine.prepare!(u)).ok).toBe(true)
}

const v2 = (d: Y.Doc) => Y.encodeStateAsUpdateV2(d).length

/** The estimate of `u` on `hub`, and what applying it grew the encoding by. */
const judge = (hub: Y.Doc, u: Uint8Array): { estimate: number; grew: number } => {
  const estimate = deletionGrowth(hub, Y.decodeUpdate(u).ds.clients, u.length)
  const before = v2(hub)
  Y.applyUpdate(hub, u)
  return { estimate, grew: v2(hub) - before }
}

/** A hub document with an array N in root "a" holding `n` items of writer 5, one at a time between writer 5's items of "a". */
const nested = (n: number): Y.Doc => {
  const hub = newHubYDoc()
  Y.applyUpdate(hub, edit(hub, 2, (d) => d.getArray("a").insert(0, [new Y.Array<number>()])))
  for (let i = 0; i < n; i++) {
    Y.applyUpdate(hub, edit(hub, 5, (d) => (d.getArray("a").get(0) as Y.Array<number>).push([i])))
    Y.applyUpdate(hub, edit(hub, 5, (d) => d.getArray("a").push([i])))
  }
  return hub
}

test("deleting a nested type is charged for its subtree, which the hub's document collects (deleted children too)", () => {
  const hub = nested(300)
  // Its children deleted first (two ordinary deletions), then the array itself, as Yjs writes it.
  Y.applyUpdate(hub, edit(hub, 5, (d) => d.getArray("a").delete(1, 300)))
  Y.applyUpdate(hub, edit(hub, 5, (d) => (d.getArray("a").get(0) as Y.Array<number>).delete(0, 300)))
  const { estimate, grew } = judge(hub, edit(hub, 3, (d) => d.getArray("a").delete(0, 1)))
  // Before the fix: estimate 29, grew about 1,200.
  expect(grew).toBeGreaterThan(500)
  expect(grew).toBeLessThanOrEqual(estimate)
})

test("a delete set naming only a nested type while its children are live is charged for them", () => {
  const hub = nested(300)
  const { estimate, grew } = judge(hub, deletion([[2, [[0, 1]]]]))
  expect(grew).toBeGreaterThan(500)
  expect(grew).toBeLessThanOrEqual(estimate)
})

test("a range named many times in one delete set frees its text once", () => {
  const hub = newHubYDoc()
  Y.applyUpdate(hub, edit(hub, 2, (d) => d.getText("t").insert(0, "x".repeat(1000))))
  Y.applyUpdate(hub, edit(hub, 3, (d) => d.getText("t").insert(1000, "y".repeat(4000))))
  // 200 copies of writer 2's text, and every other character of writer 3's.
  const u = deletion([[2, Array.from({ length: 200 }, () => [0, 1000] as [number, number])], [3, Array.from({ length: 2000 }, (_, i) => [2 * i + 1, 1] as [number, number])]])
  const { estimate, grew } = judge(hub, u)
  // Before the fix: estimate -29,483 (always taken), grew 9,019.
  expect(grew).toBeGreaterThan(0)
  expect(grew).toBeLessThanOrEqual(estimate)
})

test("deletions of one batch, weighed on the document before it, free the same text once", async () => {
  const engine = yjsDocEngine()
  const doc = engine.empty()
  const take = (u: Uint8Array) => taken(engine, u)
  for (const u of [edit(doc, 2, (d) => d.getText("t").insert(0, "x".repeat(1000)))]) {
    await take(u)
    await engine.apply(doc, [u])
  }
  const more = edit(doc, 3, (d) => d.getText("t").insert(1000, "y".repeat(2 * 8 * 100)))
  await take(more)
  await engine.apply(doc, [more])
  // 100 deletions, none repeating a range: each the same 1,000 characters and 8 of its own.
  const updates = Array.from({ length: 100 }, (_, k) => deletion([[2, [[0, 1000]]], [3, Array.from({ length: 8 }, (_, i) => [2 * (k * 8 + i) + 1, 1] as [number, number])]]))
  const batch = {}
  let charged = 0
  for (const u of updates) {
    await take(u)
    charged += engine.deletionGrowth!(doc, u, batch)!
  }
  const before = engine.encode(doc).length
  expect((await engine.apply(doc, updates)).every((r) => r === true || r instanceof Uint8Array)).toBe(true)
  const grew = engine.encode(doc).length - before
  // Before the fix each was weighed at about -230: all taken, together they grew it by thousands.
  expect(grew).toBeGreaterThan(0)
  expect(grew).toBeLessThanOrEqual(charged)
})

test("a nested type with more structs under it than the estimate walks (10,000) is charged for every struct of the document", () => {
  // Two writers take turns pushing into N (and into "a"), each update passed on as it is made:
  // 12,000 structs under N. Then their items are deleted, and then N, which turns every one of
  // them into a GC struct (as in the first case, which walks them all).
  const hub = newHubYDoc()
  const writers = [5, 6].map((id) => {
    const w = new Y.Doc()
    w.clientID = id
    return w
  })
  const share = (from: Y.Doc, change: () => void) => {
    let u: Uint8Array | undefined
    const take = (x: Uint8Array) => void (u = x)
    from.on("update", take)
    from.transact(change)
    from.off("update", take)
    for (const d of [hub, ...writers]) if (d !== from) Y.applyUpdate(d, u!)
  }
  share(writers[0]!, () => writers[0]!.getArray("a").insert(0, [new Y.Array<number>()]))
  for (let i = 0; i < 6_000; i++) {
    for (const w of writers) {
      share(w, () => (w.getArray("a").get(0) as Y.Array<number>).push([i]))
      share(w, () => w.getArray("a").push([i]))
    }
  }
  share(writers[0]!, () => {
    writers[0]!.getArray("a").delete(1, writers[0]!.getArray("a").length - 1)
    const n = writers[0]!.getArray("a").get(0) as Y.Array<number>
    n.delete(0, n.length)
  })
  const { estimate, grew } = judge(hub, edit(hub, 3, (d) => d.getArray("a").delete(0, 1)))
  expect(grew).toBeGreaterThan(10_000)
  expect(grew).toBeLessThanOrEqual(estimate)
})

/**
 * An update with content is charged three times its bytes, which weighed its delete set as
 * nothing: one character typed with every other character of another writer's long item
 * deleted (its right origin a third writer, both clientIDs 53-bit, so each piece's origins
 * alternate in V2's client column) grew the stored encoding 12.35 times its bytes (review of
 * this session). Now its deletions are charged on top (extraGrowth), on both routes.
 */
const mixed = async (apply: (u: Uint8Array, clientId: string) => unknown, state: () => Y.Doc): Promise<Uint8Array> => {
  const writer = (id: number) => {
    const d = new Y.Doc()
    Y.applyUpdate(d, Y.encodeStateAsUpdate(state()))
    d.clientID = id
    return d
  }
  const diff = (w: Y.Doc) => Y.encodeStateAsUpdate(w, Y.encodeStateVector(state()))
  const c = writer(Number.MAX_SAFE_INTEGER)
  c.getText("t").insert(0, "c")
  await apply(diff(c), "victim-c")
  const a = writer(Number.MAX_SAFE_INTEGER - 1)
  a.getText("t").insert(0, "a".repeat(4_000))
  await apply(diff(a), "victim-a")
  const b = writer(2)
  const t = b.getText("t")
  b.transact(() => {
    for (let k = 3_998; k >= 1; k -= 2) t.delete(k, 1)
    t.insert(t.length, "x")
  })
  return diff(b)
}

test("an update with content that also deletes is charged for its deletions (whole documents)", async () => {
  const engine = yjsDocEngine()
  const doc = engine.empty()
  const take = (u: Uint8Array) => taken(engine, u)
  const u = await mixed(async (x) => {
    await take(x)
    await engine.apply(doc, [x])
  }, () => doc)
  await take(u)
  expect(engine.deletionGrowth!(doc, u, {})).toBeUndefined()
  const charged = u.length * 3 + (engine.extraGrowth?.(doc, u, {}) ?? 0)
  const before = engine.encode(doc).length
  expect((await engine.apply(doc, [u]))[0]).toBeInstanceOf(Uint8Array)
  const grew = engine.encode(doc).length - before
  expect(grew).toBeGreaterThan(u.length * 3)
  expect(grew).toBeLessThanOrEqual(charged)
})

test("an update with content that also deletes is charged for its deletions (a machine's Yjs field)", async () => {
  const field = yText().engine.create()
  const send = (u: Uint8Array, clientId: string) => {
    const v = field.validate(u, { clientId, trusted: false })
    if (!v.ok) throw new Error(`${clientId}: ${JSON.stringify(v)}`)
    return v.update
  }
  // The field's own Y.Doc (internal), for the writers' copies.
  const state = () => (field as unknown as { doc: Y.Doc }).doc
  const u = await mixed((x, who) => field.apply([send(x, who)]), state)
  const v = send(u, "attacker")
  expect(field.fills?.(v)).toBe(false)
  const charged = u.length * 3 + (field.extraGrowth?.(v) ?? 0)
  const before = field.encode().length
  field.apply([v])
  const grew = field.encode().length - before
  expect(grew).toBeGreaterThan(u.length * 3)
  expect(grew).toBeLessThanOrEqual(charged)
})

/**
 * An Automerge change is charged for the rows its ops add among the document's
 * (adapters/automerge/growth.ts), on top of three times its bytes, on both routes. Before, three
 * times its bytes was all: a change of a few hundred bytes inserting a null after each element
 * of another writer's long list, or putting a short key into each of many maps whose rows sat
 * between rows of one 40 KB key (the save then holds that key once more a row), grew the
 * stored document far past maxDocumentBytes, and the measure that followed found it there for
 * good (an Automerge document does not shrink).
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { hubField } from "./support/automerge-field.js"
import { noise } from "./support/noise.js"

const MAX = 256 << 10
type Doc = { l?: null[]; m?: Record<string, Record<string, number>> }

/** A change of `doc` by a new actor. */
const changeOf = (doc: A.Doc<Doc>, actor: string, f: (d: Doc) => void): A.Change => A.getLastLocalChange(A.change(A.clone(doc, { actor }), { time: 0 }, f))!

/**
 * Two attacks: the victims' changes each fit the bound (the document compacted after each, so
 * measured), and the attacker's change is a few hundred bytes.
 */
const attacks: Array<{ name: string; max: number; victims: Array<(d: Doc) => void>; attacker: (d: Doc) => void }> = [
  {
    name: "a null inserted after each of 20,000 list elements",
    max: 64 << 10,
    victims: [(d) => void (d.l = new Array(20_000).fill(null))],
    attacker: (d) => { for (let k = 19_999; k >= 1; k--) (d.l as unknown as A.List<null>).insertAt(k, null) },
  },
  {
    name: "a short key put into each of 60 maps holding a 40 KB key",
    max: 1 << 20,
    victims: [
      (d) => {
        d.m = {}
        for (let o = 0; o < 60; o++) d.m[`o${o}`] = {}
      },
      // Five maps at a time: the key once in each change, and its rows one run in the save.
      ...Array.from({ length: 12 }, (_, i) => (d: Doc) => { for (let o = 5 * i; o < 5 * i + 5; o++) d.m![`o${o}`]![KEY] = o }),
    ],
    attacker: (d) => { for (let o = 0; o < 60; o++) d.m![`o${o}`]!.a = 1 },
  },
  {
    // An object without rows has its first one land between other objects' rows (a review found
    // the field route charging it only the update's own strings: 775 times the charge).
    name: "a key put into each of 30 empty maps between maps holding a 40 KB key",
    max: 1 << 20,
    victims: [
      (d) => {
        d.m = {}
        for (let o = 0; o <= 60; o++) d.m[`o${String(o).padStart(3, "0")}`] = {}
      },
      ...Array.from({ length: 8 }, (_, i) => (d: Doc) => { for (let o = 8 * i; o < 8 * i + 8 && o <= 60; o += 2) d.m![`o${String(o).padStart(3, "0")}`]![KEY] = o }),
    ],
    attacker: (d) => { for (let o = 1; o < 60; o += 2) d.m![`o${String(o).padStart(3, "0")}`]!.a = 1 },
  },
]

const KEY = noise(40_000, 7)

test.each(attacks)("/automerge: $name is refused before it takes the stored document past its bound", async ({ max, victims, attacker }) => {
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: max, compactAfterBytes: 1 << 30 })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  for (const victim of victims) {
    expect((await doc.submit([changeOf(doc.doc.doc as A.Doc<Doc>, "aa".repeat(16), victim)])).rejected).toEqual([])
    await doc.compact()
  }
  const u = changeOf(doc.doc.doc as A.Doc<Doc>, "bb".repeat(16), attacker)
  expect(u.length).toBeLessThan(1_000)
  const out = await doc.submit([u])
  await doc.compact()
  const stored = doc.storedBytes.base + doc.storedBytes.tail
  // Before: accepted (charged 3 x its bytes), and the document stored past the bound.
  expect({ refused: out.rejected.map((r) => r.code), within: stored <= max }).toEqual({ refused: ["update-too-large"], within: true })
  await host.close()
})

test.each(attacks)("a machine's Automerge field charges $name at least what it grows the field", ({ victims, attacker }) => {
  const { field, send, saved } = hubField({} as Doc)
  for (const victim of victims) field.apply([send(changeOf(field.handle.doc as A.Doc<Doc>, "aa".repeat(16), victim), "victim")])
  const u = changeOf(field.handle.doc as A.Doc<Doc>, "bb".repeat(16), attacker)
  const v = send(u, "attacker")
  const charged = 3 * u.length + field.extraGrowth!(v)
  const before = saved()
  field.apply([v])
  const grew = saved() - before
  expect(grew).toBeGreaterThan(3 * u.length)
  expect(grew).toBeLessThanOrEqual(charged)
})

/**
 * A row splits only runs of its own object's strings, so it is charged its object's longest key
 * or mark name, not the document's: charged the document's, one writer's 200 KB key made one
 * in five single characters typed into a text of the same document refused in a 1 MiB document
 * holding 125 KB (found by a review).
 */
test("/automerge: one long key in a map does not weigh on edits of another object", async () => {
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: 1 << 20 })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const edit = async (actor: string, f: (d: { t?: string; m?: Record<string, number> }) => void) =>
    (await doc.submit([A.getLastLocalChange(A.change(A.clone(doc.doc.doc as A.Doc<{ t?: string; m?: Record<string, number> }>, { actor }), f))!])).rejected.map((r) => r.code)
  expect(await edit("aa".repeat(16), (d) => { d.t = noise(5_000, 4); d.m = {} })).toEqual([])
  expect(await edit("ee".repeat(16), (d) => { d.m![noise(200_000, 8)] = 1 })).toEqual([])
  await doc.compact()
  const refused: string[] = []
  for (let i = 0, at = 1; i < 40; i++, at = (at * 7919) % 5_000) refused.push(...(await edit("bb".repeat(16), (d) => A.splice(d, ["t"], at, 0, "q"))))
  expect(refused).toEqual([])
  await host.close()
}, 60_000)

/**
 * A whole-document chunk (what automerge-repo sends first) deflates its columns, and what folds
 * in the chunk need not fold in the document: a change pasting one 32 KB string after each of
 * 8 anchors folds to almost nothing in a chunk of its own, and each copy lands after the
 * document's own 32 KB paste there. Charged three times its deflated bytes, a 23 KB chunk grew a
 * save by 293 KB, past a 256 KiB bound (a review; the bound here is 512 KiB, since the document
 * is measured with its columns plain now, its own pastes 260 KB). Its deflated parts are weighed as inflated.
 */
test("/automerge: a document chunk is weighed by its columns inflated", async () => {
  const K = 8
  // The document's own 8 pastes (260 KB) fit; the chunk's 8 more do not.
  const MAX_CHUNKED = 512 << 10
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX_CHUNKED, compactAfterBytes: 1 << 30 })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  type Text = { t?: string }
  const put = async (u: Uint8Array) => {
    expect((await doc.submit([u])).rejected).toEqual([])
    await doc.compact()
  }
  const mine = (f: (d: Text) => void) => A.getLastLocalChange(A.change(A.clone(doc.doc.doc as A.Doc<Text>, { actor: "aa".repeat(16) }), { time: 0 }, f))!
  await put(mine((d) => void (d.t = "|".repeat(K))))
  const anchors = A.getHeads(doc.doc.doc)
  const own = noise(32_505, 2)
  for (let k = K - 1; k >= 0; k--) await put(mine((d) => A.splice(d, ["t"], k + 1, 0, own)))
  // The attacker's document: the anchors, and its own string after each of them.
  let fork = A.clone(A.view(doc.doc.doc as A.Doc<Text>, anchors), { actor: "bb".repeat(16) })
  fork = A.change(fork, { time: 0 }, (d) => { for (let k = K - 1; k >= 0; k--) A.splice(d, ["t"], k + 1, 0, noise(32_505, 1)) })
  const chunk = A.save(fork)
  expect(chunk.length).toBeLessThan(30_000)
  const out = await doc.submit([chunk])
  await doc.compact()
  const stored = doc.storedBytes.base + doc.storedBytes.tail
  // Before: accepted, and stored past the bound.
  expect({ refused: out.rejected.map((r) => r.code), within: stored <= MAX_CHUNKED }).toEqual({ refused: ["update-too-large"], within: true })
  await host.close()
}, 60_000)

/**
 * A save sorts objects by their counter, so an object a change makes is charged nothing for
 * neighbours only if it is numbered above every op there is. A change made on older heads
 * starts lower, and its objects sort among the others: 100 maps made so, each beside one of
 * another writer's maps holding the same 190 KB key (one run in the save), grew a save by
 * 18.8 MB, charged 17 KB (a review). Here 12 maps beside 12 holding one 40 KB key.
 */
describe("objects made by a change that starts below the document's top counter", () => {
  const L = 40_000, M = 12
  const LONG = noise(L, 11)
  type Listed = { l?: Array<Record<string, number>> }
  const init = A.getLastLocalChange(A.change(A.init<Listed>({ actor: "aa".repeat(16) }), { time: 0 }, (d) => void (d.l = [])))!
  /** The attacker's change: M maps pushed on the heads of the list's creation, before the victim's. */
  const attack = (): A.Change => {
    const [fork] = A.applyChanges(A.init<Listed>({ actor: "bb".repeat(16) }), [init])
    return A.getLastLocalChange(A.change(fork, { time: 0 }, (d) => { for (let i = 0; i < M; i++) d.l!.push({ a: 1 }) }))!
  }
  const push = (doc: A.Doc<Listed>, i: number) => A.getLastLocalChange(A.change(A.clone(doc, { actor: "aa".repeat(16) }), { time: 0 }, (d) => void d.l!.push({ [LONG]: i })))!

  test("/automerge: are refused before they take the stored document past its bound", async () => {
    const MAX = 256 << 10
    const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX, compactAfterBytes: 1 << 30 })
    const doc = await host.open<AutomergeBox>("automerge", "d")
    const live = () => doc.doc.doc as A.Doc<Listed>
    expect((await doc.submit([init])).rejected).toEqual([])
    for (let i = 0; i < M; i++) {
      expect((await doc.submit([push(live(), i)])).rejected).toEqual([])
      await doc.compact()
    }
    const u = attack()
    expect(A.decodeChange(u).startOp).toBe(2)
    const out = await doc.submit([u])
    await doc.compact()
    // Before: accepted, and the store grew by 12 copies of the key (about 480 KB).
    expect({ refused: out.rejected.map((r) => r.code), within: doc.storedBytes.base + doc.storedBytes.tail <= MAX }).toEqual({ refused: ["update-too-large"], within: true })
    await host.close()
  }, 60_000)

  test("a machine's Automerge field charges them at least what they grow the field", () => {
    const { field, send, saved } = hubField({} as Listed)
    field.apply([send(init, "victim")])
    for (let i = 0; i < M; i++) field.apply([send(push(field.handle.doc as A.Doc<Listed>, i), "victim")])
    const u = attack()
    const v = send(u, "attacker")
    const charged = 3 * u.length + field.extraGrowth!(v)
    const before = saved()
    field.apply([v])
    const grew = saved() - before
    expect(grew).toBeGreaterThan(M * L * 0.9)
    expect(grew).toBeLessThanOrEqual(charged)
  }, 60_000)
})

/**
 * A save lists its actors in order and names them by index in every actor column, so a writer
 * new to the document that sorts below the others moves each of them one up, and the one moved
 * to index 128 takes a byte more in every entry naming it. An empty 68-byte change, charged 204
 * bytes, grew a 511 KB save by 40 KB, past its bound (a review). Here X, the 128th actor, typed
 * every other character of a 16,000-character text (its entries do not fold into runs).
 */
describe("a new writer sorting below the 128th actor", () => {
  const N = 8_000
  const hex = (b: number, i = 0) => b.toString(16).padStart(2, "0") + i.toString(16).padStart(30, "0")
  const X = hex(0xfe), Y = hex(0x01)
  type Texted = { t?: string } & Record<string, unknown>
  /** Y's text, X's character after each of Y's, and 126 writers between them in the save's order: X is the last of 128. */
  const changes = (): A.Change[] => {
    const out: A.Change[] = []
    let doc = A.init<Texted>({ actor: Y })
    const step = (actor: string, f: (d: Texted) => void) => {
      doc = A.change(A.clone(doc, { actor }), { time: 0 }, f)
      out.push(A.getLastLocalChange(doc)!)
    }
    step(Y, (d) => void (d.t = "y".repeat(N)))
    step(X, (d) => { for (let k = N; k >= 1; k--) A.splice(d, ["t"], k, 0, "x") })
    for (let i = 0; i < 126; i++) step(hex(0x02 + i, 1), (d) => void (d[`f${i}`] = 1))
    return out
  }
  const FIRST = hex(0x00, 5)

  test("/automerge: an empty change of one is refused before it takes the stored document past its bound", async () => {
    const storage = new MemoryStorage()
    // Built under a large bound, then measured and opened again under one just above it.
    const big = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, maxDocumentBytes: 64 << 20 })
    const built = await big.open<AutomergeBox>("automerge", "d")
    expect((await built.submit(changes())).rejected).toEqual([])
    await built.compact()
    const size = built.storedBytes.base
    await big.close()
    const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, maxDocumentBytes: size + 2_000, compactAfterBytes: 1 << 30 })
    const doc = await host.open<AutomergeBox>("automerge", "d")
    const u = A.getLastLocalChange(A.emptyChange(A.clone(doc.doc.doc as A.Doc<Texted>, { actor: FIRST }), { time: 0 }))!
    const out = await doc.submit([u])
    await doc.compact()
    // Before: accepted (charged 3 x its bytes), and the store grew by about one byte per X character.
    expect({ refused: out.rejected.map((r) => r.code), within: doc.storedBytes.base + doc.storedBytes.tail <= size + 2_000 }).toEqual({ refused: ["update-too-large"], within: true })
    await host.close()
  }, 60_000)

  test("a machine's Automerge field charges an empty change of one at least what it grows the field", () => {
    const { field, send, saved } = hubField({} as Texted)
    for (const c of changes()) field.apply([send(c)])
    const u = A.getLastLocalChange(A.emptyChange(A.clone(field.handle.doc as A.Doc<Texted>, { actor: FIRST }), { time: 0 }))!
    const v = send(u)
    const charged = 3 * u.length + field.extraGrowth!(v)
    const before = saved()
    field.apply([v])
    const grew = saved() - before
    expect(grew).toBeGreaterThan(N / 2)
    expect(grew).toBeLessThanOrEqual(charged)
  }, 60_000)
})

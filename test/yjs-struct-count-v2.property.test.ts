/**
 * countV2Structs (adapters/yjs/integrable.ts) reads a V2 update's structs without decoding it,
 * so a CRDT field's stored or snapshot state is bounded before Yjs decodes it. It must agree
 * with `Y.decodeUpdateV2` (structs, a shared type weighing 4; a subdocument refused) on every
 * update Yjs makes: random documents of every type and content, whole and incremental, with
 * and without garbage collection; and refuse a forged update whose run-length columns claim
 * more structs than the bound, before reading them.
 */
import fc from "fast-check"
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { countV2Structs } from "../adapters/yjs/integrable.js"
import { v2Bomb } from "./support/yjs-v2-bomb.js"
import { apply, yjsOp } from "./support/yjs-random-docs.js"

const op = yjsOp(2)

type Decoded = { structs: Array<{ content?: unknown }> }

/** What countV2Structs must say of `u`, from Yjs's own decoding. */
const expected = (u: Uint8Array): number | string => {
  const structs = (Y.decodeUpdateV2(u) as unknown as Decoded).structs
  if (structs.some((x) => x.content instanceof Y.ContentDoc)) return "Yjs subdocuments are not supported."
  return structs.length + 3 * structs.filter((x) => x.content instanceof Y.ContentType).length
}

test("countV2Structs agrees with Y.decodeUpdateV2 on whole and incremental V2 updates", () => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 2 ** 30 }), fc.boolean(), (ops, clientID, gc) => {
    // Two writers, so structs of one client interleave with the other's and stay unmerged.
    const doc = new Y.Doc({ gc })
    doc.clientID = clientID
    const other = new Y.Doc({ gc })
    other.clientID = clientID + 1
    const updates: Uint8Array[] = []
    doc.on("updateV2", (u: Uint8Array) => updates.push(u))
    for (const [i, o] of ops.entries()) {
      if (i % 3 === 2) {
        apply(other, o)
        Y.applyUpdateV2(doc, Y.encodeStateAsUpdateV2(other, Y.encodeStateVector(doc)))
      } else apply(doc, o)
    }
    for (const u of [...updates, Y.encodeStateAsUpdateV2(doc), Y.encodeStateAsUpdateV2(doc, Y.encodeStateVector(other))]) {
      const want = expected(u)
      expect(countV2Structs(u, 1 << 20)).toBe(want)
      if (typeof want === "number" && want > 0) expect(countV2Structs(u, want - 1)).toBeUndefined()
    }
  }), { numRuns: 300 })
})

test("a V2 update whose run-length columns claim 10^8 structs is refused before any is read", () => {
  const bomb = v2Bomb(1e8)
  expect(bomb.length).toBeLessThan(64)
  const t0 = performance.now()
  expect(countV2Structs(bomb, 1 << 22)).toBeUndefined()
  // A bound against reading the 10^8 claimed structs one by one, not a speed target.
  expect(performance.now() - t0).toBeLessThan(1_000)
  // Under the bound it is counted as Yjs would decode it (one run, read without an object per struct).
  expect(countV2Structs(v2Bomb(1000), 1 << 22)).toBe((Y.decodeUpdateV2(v2Bomb(1000)) as unknown as Decoded).structs.length)
})

test("bytes that are not a V2 update, or columns that end where Yjs would read past them, are refused with a sentence", () => {
  const notV2 = (u: Uint8Array) => expect(countV2Structs(u, 1 << 20)).toEqual(expect.stringMatching(/^The bytes are not a Yjs V2 update \(/))
  notV2(new Uint8Array([1, 2, 3]))
  notV2(new Uint8Array(0))
  // A truncated honest update.
  const doc = new Y.Doc()
  doc.getText("t").insert(0, "hello", { bold: true })
  const u = Y.encodeStateAsUpdateV2(doc)
  notV2(u.subarray(0, u.length - 4))
  // An empty info column (lib0 reads `undefined` forever, which Yjs takes for GC structs).
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  for (let i = 0; i < 9; i++) encoding.writeVarUint8Array(e, new Uint8Array(0))
  for (const x of [1, 5, 1, 0]) encoding.writeVarUint(e, x)
  notV2(encoding.toUint8Array(e))
})

/**
 * An Automerge document is stored and measured with its columns plain (validate.ts
 * `savePlain`), so content repeated many times counts every copy against the bound. Measured
 * deflated (`A.save`), a text or list holding a 32 KB string a hundred times measured as about
 * one copy (deflate folds a repeat within 32 KiB of the last), and a change of a few hundred
 * bytes putting one character before each copy pushed every copy out of deflate's reach: a
 * 330-byte change, charged 3,577 bytes, grew a save by 3.8 MB, 3.76 times a 1 MiB bound
 * (a review). Here both routes keep such a document within its bound, and the Canon field's
 * charge covers what the change grows its encoding by.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { savePlain } from "../adapters/automerge/validate.js"
import { hubField } from "./support/automerge-field.js"
import { noise } from "./support/noise.js"

type Doc = { t?: string; l?: unknown[] }
/** Just under deflate's 32 KiB window: each copy folds onto the one before it. */
const S = noise(32_506, 3)
const VICTIM = "aa".repeat(16)
const ATTACKER = "bb".repeat(16)

const changeOf = (doc: A.Doc<Doc>, actor: string, f: (d: Doc) => void): A.Change => A.getLastLocalChange(A.change(A.clone(doc, { actor }), { time: 0 }, f))!

/** The victim's edits, one copy of S each, and the attacker's: one short element before each copy but the first. */
const shapes = {
  text: {
    init: (d: Doc) => void (d.t = ""),
    copy: (k: number) => (d: Doc) => A.splice(d, ["t"], k * S.length, 0, S),
    copies: (d: A.Doc<Doc>) => d.t!.length / S.length,
    attack: (n: number) => (d: Doc) => { for (let k = n - 1; k >= 1; k--) A.splice(d, ["t"], k * S.length, 0, "#") },
  },
  list: {
    init: (d: Doc) => void (d.l = []),
    copy: () => (d: Doc) => void d.l!.push(new A.ImmutableString(S)),
    copies: (d: A.Doc<Doc>) => d.l!.length,
    attack: (n: number) => (d: Doc) => { for (let k = n - 1; k >= 1; k--) (d.l as A.List<unknown>).insertAt(k, new A.ImmutableString("#")) },
  },
}

test.each(["text", "list"] as const)("/automerge: 16 copies of a 32 KB string in a %s, then a row before each, stay within a 256 KiB bound", async (shape) => {
  const MAX = 256 << 10
  const { init, copy, copies, attack } = shapes[shape]
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX, compactAfterBytes: 1 << 30 })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const live = () => doc.doc.doc as A.Doc<Doc>
  expect((await doc.submit([changeOf(live(), VICTIM, init)])).rejected).toEqual([])
  // Refusals are the bound at work: each copy is sent until 16 are in or one is refused after a measure.
  for (let k = 0; k < 16; k++) {
    const out = await doc.submit([changeOf(live(), VICTIM, copy(copies(live())))])
    await doc.compact()
    if (out.rejected.length > 0) break
  }
  const n = copies(live())
  expect(n).toBeGreaterThan(3)
  const u = changeOf(live(), ATTACKER, attack(n))
  expect(u.length).toBeLessThan(1_000)
  await doc.submit([u])
  await doc.compact()
  // Before: all 16 copies in (about 30 KB stored), then the attacker's change took the store to 520 KB.
  expect({ copies: n <= 8, plain: savePlain(live()).length <= MAX, stored: doc.storedBytes.base + doc.storedBytes.tail <= MAX }).toEqual({ copies: true, plain: true, stored: true })
  await host.close()
}, 60_000)

test.each(["text", "list"] as const)("a machine's Automerge field encodes every copy in a %s, and charges a row before each what it grows the field", (shape) => {
  const { init, copy, copies, attack } = shapes[shape]
  const { field, send, saved: encoded } = hubField({} as Doc)
  const live = () => field.handle.doc as A.Doc<Doc>
  field.apply([send(changeOf(live(), VICTIM, init), "victim")])
  for (let k = 0; k < 8; k++) field.apply([send(changeOf(live(), VICTIM, copy(copies(live()))), "victim")])
  // What a Canon document's bound measures holds each copy (before: about one).
  expect(encoded()).toBeGreaterThan(8 * S.length)
  const u = changeOf(live(), ATTACKER, attack(8))
  const v = send(u, "attacker")
  const charged = 3 * u.length + field.extraGrowth!(v)
  const before = encoded()
  field.apply([v])
  expect(encoded() - before).toBeLessThanOrEqual(charged)
}, 60_000)

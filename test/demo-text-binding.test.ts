/**
 * The description textarea's arithmetic (apps/demo/web/text-binding.ts): the smallest edit
 * between two texts (what one input event becomes), and where a caret goes through a remote
 * change (a Yjs delta). Checked against Yjs itself: applying the diff to a Y.Text gives the
 * new text, and a caret mapped through a real remote update stays next to the same character.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { diff, mapPosition } from "../apps/demo/web/text-binding.js"

const docs: Y.Doc[] = []
const ydoc = (): Y.Doc => {
  const d = new Y.Doc()
  docs.push(d)
  return d
}
afterEach(() => {
  for (const d of docs.splice(0)) d.destroy()
})

test("diff: applied to a Y.Text, the smallest edit turns one text into the other", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (before, after) => {
      const [at, removed, inserted] = diff(before, after)
      const t = ydoc().getText("t")
      t.insert(0, before)
      if (removed > 0) t.delete(at, removed)
      if (inserted !== "") t.insert(at, inserted)
      expect(t.toString()).toBe(after)
      // Smallest: nothing removed and inserted again at either end.
      expect(removed === 0 || inserted === "" || before[at] !== inserted[0]).toBe(true)
    }),
    { numRuns: 300 },
  )
  expect(diff("abc", "abXc")).toEqual([2, 0, "X"])
  expect(diff("abcd", "ad")).toEqual([1, 2, ""])
})

test("mapPosition: a caret keeps its neighbours through someone else's insert and delete", () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.nat(),
      fc.nat(),
      fc.string({ maxLength: 5 }),
      fc.nat(6),
      (base, caretSeed, atSeed, insert, deleteCount) => {
        const mine = ydoc()
        const theirs = ydoc()
        mine.getText("t").insert(0, base)
        Y.applyUpdate(theirs, Y.encodeStateAsUpdate(mine))
        const caret = caretSeed % (base.length + 1)
        const at = atSeed % (base.length + 1)
        const text = theirs.getText("t")
        theirs.transact(() => {
          const n = Math.min(deleteCount, base.length - at)
          if (n > 0) text.delete(at, n)
          if (insert !== "") text.insert(at, insert)
        })
        let delta: ReadonlyArray<{ insert?: unknown; delete?: number; retain?: number }> = []
        mine.getText("t").observe((e) => {
          delta = e.delta as typeof delta
        })
        Y.applyUpdate(mine, Y.encodeStateAsUpdate(theirs))
        const after = mine.getText("t").toString()
        const mapped = mapPosition(delta, caret)
        const n = Math.min(deleteCount, base.length - at)
        // Before the change (or exactly at a pure insert): unmoved. After it: moved by what it
        // added and removed. Inside what was replaced: after the replacement.
        const want = caret <= at ? caret : caret >= at + n ? caret - n + insert.length : at + insert.length
        expect(mapped).toBe(want)
        // The neighbours: what was before a caret ahead of the change is still before it; what
        // was after a caret behind the change is still after it.
        if (caret <= at) expect(after.slice(0, mapped)).toBe(base.slice(0, caret))
        if (caret > at && caret >= at + n) expect(after.slice(mapped)).toBe(base.slice(caret))
      },
    ),
    { numRuns: 300 },
  )
})

/**
 * A whole Yjs document (the /yjs route's) full to its bound is trimmed by deleting some of its
 * text, as the refusal says ("Delete something from it first"). Its updates were all charged
 * three times their bytes, a deletion too, so in a document full to the byte a writer's delete
 * was refused `update-too-large` as well, and nothing could ever make room in it again.
 */
import * as Y from "yjs"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { editOf } from "./support/yjs-edit.js"

/** A writer's edit of the hub's document as it is now (a new clientID each time). */
let nextClient = 100
const edit = (hub: Y.Doc, change: (t: Y.Text) => void): Uint8Array => editOf(hub, nextClient++, change)!

test("a whole Yjs document full to the byte takes a deletion of its text, and then new text", async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: 64 << 10 })
  const doc = await host.open<Y.Doc>("yjs", "d")
  const text = () => doc.doc.getText("t")
  // Typed, halving the run at each refusal, until even one character is refused three times
  // in a row (compactions that measure included).
  for (let n = 4096, refusedOne = 0; refusedOne < 3;) {
    const out = await doc.submit([edit(doc.doc, (t) => t.insert(t.length, "x".repeat(n)))])
    if (out.rejected.length === 0) refusedOne = 0
    else {
      expect(out.rejected[0]!.code).toBe("update-too-large")
      if (n > 1) n = Math.floor(n / 2)
      else refusedOne++
    }
  }
  const full = text().length
  expect(full).toBeGreaterThan(10_000)

  // The first run typed (4,096 characters, one writer) deleted, less 96: a delete set of one range.
  const trimmed = await doc.submit([edit(doc.doc, (t) => t.delete(0, 4_000))])
  expect({ rejected: trimmed.rejected, length: text().length }).toEqual({ rejected: [], length: full - 4_000 })
  // The room it freed is found (the deletion had the document measured again).
  const typed = await doc.submit([edit(doc.doc, (t) => t.insert(0, "y".repeat(1_000)))])
  expect({ rejected: typed.rejected, length: text().length }).toEqual({ rejected: [], length: full - 3_000 })
  await host.close()
})

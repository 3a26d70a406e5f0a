/**
 * What a whole document's bound keeps of an accepted update is what the update was charged
 * (core/crdt-docs/authority.ts). The charge of a Yjs update with content that also deletes is
 * three times its bytes and what its deletions can add (adapters/yjs/deletion.ts), but the bound
 * kept only the three times its bytes: each such update fitted on its own, and together, in
 * submits one after another, they grew the stored document past maxDocumentBytes before any
 * was refused. The compaction the first refusal asked for then found the document past its
 * bound. Here a writer deletes every other character of other writers' text, typing one
 * character too, round after round (each update grows the encoding about 12 times its bytes),
 * with compactions (which measure the document) far apart, as an operator may set them.
 */
import * as Y from "yjs"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { editOf } from "./support/yjs-edit.js"

const MAX = 1 << 20

test("/yjs: updates that type and delete, submitted one after another, keep the stored document within its bound", async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, maxDocumentBytes: MAX, compactAfterBytes: 4 << 20 })
  const doc = await host.open<Y.Doc>("yjs", "d")
  let refused = 0
  for (let round = 0; round < 200 && refused === 0; round++) {
    // Two writers with 53-bit ids: the attacker's pieces alternate origins between them.
    const c = editOf(doc.doc, Number.MAX_SAFE_INTEGER - 2 * round, (t) => t.insert(t.length, "c"))!
    refused += (await doc.submit([c])).rejected.length
    const at = doc.doc.getText("t").length - 1
    const a = editOf(doc.doc, Number.MAX_SAFE_INTEGER - 2 * round - 1, (t) => t.insert(at, "a".repeat(4_000)))!
    refused += (await doc.submit([a])).rejected.length
    if (refused > 0) break
    const b = editOf(doc.doc, 2, (t) => {
      for (let k = at + 3_998; k >= at + 1; k -= 2) t.delete(k, 1)
      t.insert(t.length, "x")
    })!
    refused += (await doc.submit([b])).rejected.length
  }
  expect(refused).toBeGreaterThan(0)
  await doc.compact()
  const stored = doc.storedBytes.base + doc.storedBytes.tail
  // Before the fix: 1,720,714 bytes stored when the first update was refused, in round 23.
  expect({ stored, within: stored <= MAX }).toEqual({ stored, within: true })
  await host.close()
}, 120_000)

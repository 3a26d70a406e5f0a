/**
 * An engine that throws while weighing an update (core/crdt-docs/authority.ts `fitting`:
 * deletionGrowth, extraGrowth) has that update refused, `update-malformed`, and the others of
 * the submit go on, as when reading its writers throws. The Automerge engine throws there for
 * an update it was not given to prepare.
 */
import * as Y from "yjs"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { editOf } from "./support/yjs-edit.js"

test("/yjs: an update the engine cannot weigh is refused, and the rest of its submit is taken", async () => {
  const engine = yjsDocEngine()
  let calls = 0
  const host = new CrdtDocHost({
    engines: [{ ...engine, extraGrowth: (doc, u, batch) => (calls++ === 0 ? (() => { throw new Error("cannot weigh") })() : engine.extraGrowth!(doc, u, batch)) }],
    storage: new MemoryStorage(),
    sync: false,
  })
  const doc = await host.open<Y.Doc>("yjs", "d")
  const first = editOf(doc.doc, 7, (t) => t.insert(0, "a"))!
  const second = editOf(doc.doc, 8, (t) => t.insert(0, "b"))!
  const out = await doc.submit([first, second])
  expect(out.rejected).toEqual([{ code: "update-malformed", index: 0, message: "The update could not be weighed (cannot weigh)." }])
  expect(doc.doc.getText("t").toString()).toBe("b")
  await host.close()
})

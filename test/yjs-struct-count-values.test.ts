/**
 * ATTACK REVIEW 3 (low, refuses what honest Yjs sends; inconsistent bound): countV1Structs
 * refuses an honest update whose any-value (a plain JSON value set on a Y.Map / pushed to a
 * Y.Array) nests more than 128 plain objects, calling it "not a Yjs V1 update", on every
 * Yjs route (hub, CRDT field, peer session - where a refused step2 means a replica never
 * syncs with that peer at all, since the whole document is one step2).
 *
 * Mechanism: skipAny recurses through objects only (skipAnyValue, `depth > MAX_TYPE_DEPTH`
 * -> RangeError -> the "not a Yjs V1 update" string) but loops through arrays without any
 * bound. MAX_TYPE_DEPTH is the bound for nested *shared types*; Yjs itself (lib0 readAny)
 * decodes both, and Canon's own values nest up to MAX_DEPTH = 512. So 129 nested objects
 * are refused while 4,000 nested arrays (or arrays of objects 128 deep each) pass: the
 * bound neither protects anything nor matches honest data.
 *
 * Measured on b72dad4: 128 nested objects {"ok":true}; 129 -> update-malformed "The bytes are
 * not a Yjs V1 update (values nest too deep)."; 4,000 nested arrays {"ok":true}.
 */
import * as Y from "yjs"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const updateWith = (value: unknown): Uint8Array => {
  const d = new Y.Doc()
  d.getMap("m").set("k", value)
  return Y.encodeStateAsUpdate(d)
}

test("an honest Y.Map value of 129 nested objects is accepted like 4,000 nested arrays", async () => {
  let objects: unknown = 1
  for (let i = 0; i < 129; i++) objects = { a: objects }
  let arrays: unknown = 1
  for (let i = 0; i < 4_000; i++) arrays = [arrays]
  const engine = yjsDocEngine()
  const o = await engine.check(updateWith(objects))
  const a = await engine.check(updateWith(arrays))
  console.log(`129 nested objects: ${JSON.stringify(o)}; 4,000 nested arrays: ${JSON.stringify(a)}`)
  expect(a.ok).toBe(true)
  expect(o.ok).toBe(true)
})

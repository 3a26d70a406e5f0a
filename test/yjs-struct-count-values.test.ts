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
 *
 * Since then values are bounded the same way whatever they nest (MAX_VALUE_DEPTH, Canon's
 * own 512): 4,000 nested arrays are refused, and that bound does protect something. lib0
 * reads values recursively, so Node's stack ends near 4,000-5,000 levels (5,000 threw in
 * Y.applyUpdate here), sooner in a deep call or another engine: a document holding such a
 * value is one that some reader cannot load (test/yjs-value-depth.test.ts).
 */
import * as Y from "yjs"
import { MAX_VALUE_DEPTH } from "../adapters/yjs/integrable.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const updateWith = (value: unknown): Uint8Array => {
  const d = new Y.Doc()
  d.getMap("m").set("k", value)
  return Y.encodeStateAsUpdate(d)
}

const nest = (levels: number, wrap: (v: unknown) => unknown): unknown => {
  let v: unknown = 1
  for (let i = 0; i < levels; i++) v = wrap(v)
  return v
}

test("honest values are bounded alike: 129 nested objects and 512 of either are taken, 4,000 arrays refused", async () => {
  const engine = yjsDocEngine()
  const objects = await engine.check(updateWith(nest(129, (a) => ({ a }))))
  const atBound = [await engine.check(updateWith(nest(MAX_VALUE_DEPTH, (a) => ({ a })))), await engine.check(updateWith(nest(MAX_VALUE_DEPTH, (a) => [a])))]
  const arrays = await engine.check(updateWith(nest(4_000, (a) => [a])))
  expect(objects.ok).toBe(true)
  expect(atBound.map((r) => r.ok)).toEqual([true, true])
  expect(arrays.ok ? "accepted" : arrays.message).toMatch(/^A value nests deeper than 512 levels/)
})

/**
 * Property tests over the structure of CRDT updates from peers, for both libraries' shared
 * validators (adapters/yjs/integrable.ts, adapters/automerge/validate.ts): random trees of
 * nested maps (depths around the bound, keys including prototype names). An update is
 * refused exactly when it nests past the bound or uses the key `__proto__`; what is accepted
 * can be read back as plain data (no inherited properties) by a fresh peer.
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { MAX_TYPE_DEPTH, MAX_UPDATE_STRUCTS, countV1Structs, notIntegrable } from "../adapters/yjs/integrable.js"
import { MAX_OBJECT_DEPTH, OpIndex, Overlay } from "../adapters/automerge/validate.js"
import { automergeChangeOf, tree, yjsUpdateOf } from "./support/nested-trees.js"

const noInherited = (v: unknown): boolean => {
  if (typeof v !== "object" || v === null) return true
  if (!Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype) return false
  return Object.values(v).every(noInherited)
}

test("Yjs: refused exactly past the depth bound or with a __proto__ key; what passes reads back as plain data", () => {
  fc.assert(fc.property(tree(MAX_TYPE_DEPTH), ({ tree: t, depth, proto }) => {
    const update = yjsUpdateOf(t)
    // As every route checks: the bytes first (keys such as __proto__), then the decoded structs (depth).
    const counted = countV1Structs(update, MAX_UPDATE_STRUCTS)
    const verdict = typeof counted === "string" ? counted : notIntegrable(update, Y.decodeUpdate(update) as never, () => 0, new Y.Doc())
    // The root map is depth 0: `depth` nested maps reach depth `depth`.
    expect(verdict !== undefined).toBe(depth > MAX_TYPE_DEPTH || proto)
    if (verdict === undefined) {
      const peer = new Y.Doc()
      Y.applyUpdate(peer, update)
      expect(noInherited(peer.getMap("m").toJSON())).toBe(true)
    }
  }), { numRuns: 40 })
})

test("Automerge: refused exactly past the depth bound or with a __proto__ key; what passes reads back as plain data", () => {
  const base = A.init<Record<string, unknown>>({ actor: "aa".repeat(16) })
  fc.assert(fc.property(tree(MAX_OBJECT_DEPTH), ({ tree: t, depth, proto }) => {
    const change = automergeChangeOf(base, t)
    const verdict = new Overlay(OpIndex.of(base)).check(A.decodeChange(change))
    expect(verdict !== undefined).toBe(depth > MAX_OBJECT_DEPTH || proto)
    if (verdict === undefined) {
      const [peer] = A.applyChanges(A.clone(base), [change])
      expect(noInherited(A.toJS(peer))).toBe(true)
    }
  }), { numRuns: 40 })
})

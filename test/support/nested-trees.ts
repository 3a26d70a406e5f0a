/**
 * Random trees of nested maps for the property tests over CRDT structure
 * (test/crdt-structure-limits.property.test.ts, test/crdt-routes.property.test.ts): a spine
 * nested around a depth bound, small branches, keys including prototype names.
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import * as Y from "yjs"

/** A tree of maps: each node a list of (key, child) pairs; leaves are numbers. */
export type Tree = ReadonlyArray<readonly [string, Tree | number]>

const KEYS = ["a", "b", "constructor", "toString", "__proto__", "x"]

/** Trees whose deepest map is around the bound (a spine of `depth` maps with small branches). */
export const tree = (bound: number): fc.Arbitrary<{ readonly tree: Tree; readonly depth: number; readonly proto: boolean }> =>
  fc.record({
    depth: fc.integer({ min: bound - 3, max: bound + 3 }),
    branches: fc.array(fc.tuple(fc.integer({ min: 0, max: bound + 3 }), fc.constantFrom(...KEYS)), { maxLength: 4 }),
    spineKey: fc.constantFrom("a", "x", "__proto__"),
  }).map(({ depth, branches, spineKey }) => {
    // The spine: `depth` nested maps under spineKey; a branch (level, key) puts a leaf on the spine's map at that level.
    const build = (level: number): Tree => {
      const here: Array<readonly [string, Tree | number]> = branches.filter(([at]) => at === level).map(([, key]) => [key === spineKey ? `${key}-leaf` : key, level] as const)
      if (level <= depth) here.push([spineKey, build(level + 1)])
      return here
    }
    const root = build(1)
    const keys = new Set<string>()
    const walk = (t: Tree): void => t.forEach(([k, v]) => (keys.add(k), typeof v !== "number" && walk(v)))
    walk(root)
    return { tree: root, depth, proto: keys.has("__proto__") }
  })


/** A Yjs update that writes `tree` under map "m" of a fresh document. */
export const yjsUpdateOf = (tree: Tree, clientID?: number): Uint8Array => {
  const src = new Y.Doc()
  if (clientID !== undefined) src.clientID = clientID
  const fill = (m: Y.Map<unknown>, node: Tree): void => {
    for (const [k, v] of node) {
      if (typeof v === "number") m.set(k, v)
      else {
        const c = new Y.Map<unknown>()
        m.set(k, c)
        fill(c, v)
      }
    }
  }
  src.transact(() => fill(src.getMap("m"), tree))
  return Y.encodeStateAsUpdate(src)
}

/** One Automerge change, on `base`'s history, that writes `tree` at the root (Automerge's own API). */
export const automergeChangeOf = (base: A.Doc<unknown>, tree: Tree): Uint8Array => {
  const h = A.getBackend(A.clone(base, { actor: "bb".repeat(16) }))
  const fill = (obj: string, node: Tree): void => {
    for (const [k, v] of node) {
      if (typeof v === "number") h.put(obj, k, v)
      else fill(h.putObject(obj, k, {}), v)
    }
  }
  fill("_root", tree)
  h.commit("", 0)
  return h.getLastLocalChange()!
}

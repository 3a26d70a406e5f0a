/**
 * Random trees of nested maps for the property tests over CRDT structure
 * (test/crdt-structure-limits.property.test.ts, test/crdt-routes.property.test.ts): a spine
 * nested around a depth bound, small branches, keys including prototype names.
 */
import fc from "fast-check"

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


/** The ordered map behind MemoryStorage, against a plain sorted-array model. */
import fc from "fast-check"
import { SortedBytesMap, compareBytes } from "../adapters/memory/sorted-map.js"

const key = fc.uint8Array({ maxLength: 3 })
const op = fc.oneof(
  fc.record({ t: fc.constant("set" as const), k: key, v: fc.uint8Array({ maxLength: 2 }) }),
  fc.record({ t: fc.constant("del" as const), k: key }),
)

test("random sets, deletes and ranges agree with a sorted-array model (blocks split and empty out)", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 3000 }), key, key, fc.nat(50), fc.boolean(), (ops, a, b, limit, reverse) => {
      const map = new SortedBytesMap()
      const model = new Map<string, [Uint8Array, Uint8Array]>()
      for (const o of ops) {
        if (o.t === "set") {
          map.set(o.k, o.v)
          model.set(o.k.join(","), [o.k, o.v])
        } else {
          map.delete(o.k)
          model.delete(o.k.join(","))
        }
      }
      const sorted = [...model.values()].sort((x, y) => compareBytes(x[0], y[0]))
      expect(map.size).toBe(sorted.length)
      for (const [k, v] of sorted) expect(map.get(k)).toEqual(v)
      const [gte, lt] = compareBytes(a, b) <= 0 ? [a, b] : [b, a]
      let want = sorted.filter(([k]) => compareBytes(k, gte) >= 0 && compareBytes(k, lt) < 0)
      if (reverse) want = want.reverse()
      want = want.slice(0, limit)
      expect(map.range(gte, lt, limit, reverse)).toEqual(want)
      expect(map.range(undefined, undefined, Infinity, false)).toEqual(sorted)
    }),
    { numRuns: 200 },
  )
})

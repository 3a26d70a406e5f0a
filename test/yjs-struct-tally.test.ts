/** The Yjs field's type tally (weighedStructs) never falls below the true weighed count, and an exact recount matches it and the load check's measure (a review of 991743c; random nested, remote and deleted types, gc on and off). */
import * as Y from "yjs"
import { countV2Structs, weighedStructs, structCount } from "../adapters/yjs/integrable.js"

const truth = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) for (const s of list) n += (s as any).content instanceof Y.ContentType ? 4 : 1
  return n
}

let seed = 12345
const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }

test.each([true, false])("zz-rev3 tally >= truth, exact recount == load measure (gc %s)", (gc) => {
  for (let round = 0; round < 30; round++) {
    const a = new Y.Doc({ gc }), b = new Y.Doc({ gc })
    a.on("update", (u: Uint8Array) => { if (rnd(3) > 0) Y.applyUpdate(b, u) })
    const m = a.getMap("m"), arr = a.getArray("a"), bm = b.getMap("m")
    weighedStructs(a); weighedStructs(b)
    for (let step = 0; step < 80; step++) {
      const op = rnd(9)
      if (op === 0) m.set(`k${rnd(4)}`, new Y.Map())
      else if (op === 1) { const inner = m.get(`k${rnd(4)}`); if (inner instanceof Y.Map) inner.set(`x${rnd(3)}`, new Y.Array()) }
      else if (op === 2) arr.insert(rnd(arr.length + 1), [new Y.Text("hi")])
      else if (op === 3 && arr.length > 0) arr.delete(rnd(arr.length), 1)
      else if (op === 4) m.delete(`k${rnd(4)}`)
      else if (op === 5) bm.set(`k${rnd(4)}`, new Y.Map())
      else if (op === 6) Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
      else if (op === 7) Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
      else a.transact(() => { const t = new Y.Map(); arr.insert(0, [t]); t.set("z", new Y.Text("q")); arr.delete(0, 1) })
      for (const d of [a, b]) {
        const t = truth(d)
        expect(structCount(d)).toBeLessThanOrEqual(t)
        expect(weighedStructs(d)).toBeGreaterThanOrEqual(t)
        expect(weighedStructs(d, true)).toBe(t)
        const v2 = countV2Structs(Y.encodeStateAsUpdateV2(d), 1 << 22)
        if (d.store.pendingStructs === null) expect(v2).toBeLessThanOrEqual(weighedStructs(d))
      }
    }
  }
})

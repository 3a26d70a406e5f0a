/**
 * adapters/yjs/tombstone.ts: a writer's chain of updates with one refused. The hub takes the
 * ones before, the refused one's tombstone, and the ones after: it accepts all of them (the
 * engine's own untrusted checks), shows nothing the refused update wrote, shows everything
 * else the writer shows (and what only the refused update deleted), in the writer's order.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { dependsOn, tombstoneOf } from "../adapters/yjs/tombstone.js"
import type { CrdtField } from "../core/crdt/engine.js"

type Op = { readonly del: boolean; readonly at: number; readonly text: string; readonly len: number }
const op = fc.record({ del: fc.boolean(), at: fc.nat(60), text: fc.stringMatching(/^[a-d]{1,6}$/), len: fc.integer({ min: 1, max: 5 }) })

type Node = { id: { client: number; clock: number }; length: number; deleted: boolean; countable: boolean; right: Node | null }
/** Each visible unit of a list type, as "client:clock". */
const visibleIds = (t: Y.AbstractType<any>): string[] => {
  const out: string[] = []
  for (let n = (t as unknown as { _start: Node | null })._start; n !== null; n = n.right) {
    if (!n.deleted && n.countable) for (let j = 0; j < n.length; j++) out.push(`${n.id.client}:${n.id.clock + j}`)
  }
  return out
}

const accept = (field: CrdtField, update: unknown, clientId: string): void => {
  const r = field.validate(update, { clientId, trusted: false })
  if (!r.ok) throw new Error(`refused: ${r.rejection.message}`)
  field.apply([r.update])
}

/** The writer's updates, one per transaction, on top of a base another client wrote. */
const writeChain = (base: string, txs: ReadonlyArray<ReadonlyArray<Op>>) => {
  const engine = yjsEngine<Y.Text>("text")
  const other = engine.create()
  other.handle.insert(0, base)
  const baseUpdate = Y.encodeStateAsUpdate((other as unknown as { doc: Y.Doc }).doc)
  const writer = engine.create()
  accept(writer, baseUpdate, "base")
  const updates: Uint8Array[] = []
  writer.onLocalChange((u) => updates.push(u as Uint8Array))
  for (const ops of txs) {
    const before = updates.length
    const t = writer.handle
    t.doc!.transact(() => {
      for (const o of ops) {
        if (o.del) {
          if (t.length > 0) t.delete(o.at % t.length, Math.min(o.len, t.length - (o.at % t.length)))
        } else t.insert(o.at % (t.length + 1), o.text)
      }
    })
    if (updates.length === before) updates.push(new Uint8Array([0, 0])) // nothing changed: an empty update keeps indices aligned
  }
  return { engine, baseUpdate, writer, updates }
}

test("a refused text update's tombstone lets every later update of its writer land, and shows nothing of it", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[xyz]{0,12}$/),
      fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 10 }),
      fc.nat(),
      (base, txs, pick) => {
        const { engine, baseUpdate, writer, updates } = writeChain(base, txs)
        const i = pick % updates.length
        const refused = updates[i]!
        const tomb = writer.tombstone!(refused)
        const rd = Y.decodeUpdate(refused)
        // Every update that holds clocks of the chain has one (one of deleted items only too).
        expect(tomb !== undefined).toBe(rd.structs.some((s) => s instanceof Y.Item))

        const hub = engine.create()
        accept(hub, baseUpdate, "base")
        for (let k = 0; k < i; k++) accept(hub, updates[k]!, "w")
        if (tomb !== undefined) accept(hub, tomb, "w")
        for (let k = i + 1; k < updates.length; k++) {
          // Refused without the tombstone only if it needs what the refused one wrote.
          if (tomb === undefined) continue
          accept(hub, updates[k]!, "w")
        }
        if (tomb === undefined) return
        // A refused tombstone of deleted items has one more form, GC ranges, and that one none.
        const gcOnly = (u: unknown) => Y.decodeUpdate(u as Uint8Array).structs.every((s) => s instanceof Y.GC)
        const last = gcOnly(tomb) ? tomb : hub.tombstone!(tomb)
        expect(last !== undefined && gcOnly(last)).toBe(true)
        expect(hub.tombstone!(last)).toBeUndefined()

        const refusedIds = new Set<string>()
        for (const s of rd.structs) for (let j = 0; j < s.length; j++) refusedIds.add(`${s.id.client}:${s.id.clock + j}`)
        const refusedDeletes = new Set<string>()
        for (const [client, ranges] of rd.ds.clients) for (const r of ranges) for (let j = 0; j < r.len; j++) refusedDeletes.add(`${client}:${r.clock + j}`)
        const w = visibleIds(writer.handle)
        const h = visibleIds(hub.handle)
        const inW = new Set(w)
        const inH = new Set(h)
        expect(h.filter((id) => refusedIds.has(id))).toEqual([])
        expect(w.filter((id) => !refusedIds.has(id) && !inH.has(id))).toEqual([])
        expect(h.filter((id) => !inW.has(id) && !refusedDeletes.has(id))).toEqual([])
        expect(h.filter((id) => inW.has(id))).toEqual(w.filter((id) => inH.has(id)))
      },
    ),
    { numRuns: 300 },
  )
})

test("a refused map set is a GC range: the value before it stays (a later set of the key on top of it is lost with it)", () => {
  const engine = yjsEngine<Y.Map<unknown>>("map")
  const writer = engine.create()
  const updates: Uint8Array[] = []
  writer.onLocalChange((u) => updates.push(u as Uint8Array))
  writer.handle.set("a", 1)
  writer.handle.set("b", 1)
  writer.handle.set("a", 2) // refused
  writer.handle.set("b", 2) // refused
  writer.handle.set("b", 3) // on top of the refused b
  writer.handle.set("c", 1)
  writer.handle.doc!.transact(() => {
    writer.handle.set("c", 2)
    writer.handle.set("c", 3)
  }) // refused: a key set twice in one change
  const hub = engine.create()
  accept(hub, updates[0]!, "w")
  accept(hub, updates[1]!, "w")
  accept(hub, writer.tombstone!(updates[2]!), "w")
  accept(hub, writer.tombstone!(updates[3]!), "w")
  accept(hub, updates[4]!, "w")
  accept(hub, updates[5]!, "w")
  accept(hub, writer.tombstone!(updates[6]!), "w")
  expect(hub.handle.toJSON()).toEqual({ a: 1, b: 1, c: 1 })
})

test("a refused change that formats, or a refused tombstone, is tombstoned as GC ranges", () => {
  const { engine, baseUpdate, writer, updates } = writeChain("hello world", [])
  writer.handle.format(0, 11, { bold: true }) // refused
  writer.handle.format(2, 3, { bold: null })
  const formats = updates.at(-2)!
  const gcOnly = (u: unknown) => Y.decodeUpdate(u as Uint8Array).structs.every((s) => s instanceof Y.GC)
  expect(gcOnly(writer.tombstone!(formats))).toBe(true)
  writer.handle.insert(11, "!")
  writer.handle.doc!.transact(() => {
    for (let i = 0; i < 10; i += 2) writer.handle.insert(i, "Q")
  })
  const many = updates.at(-1)!
  expect(Y.decodeUpdate(many).structs.length).toBeGreaterThan(1)
  // First as deleted items, one for each struct; that one refused too (the field is full of
  // structs, say), as one GC range; that one has no further form.
  const first = writer.tombstone!(many) as Uint8Array
  expect(Y.decodeUpdate(first).structs.length).toBe(Y.decodeUpdate(many).structs.length)
  expect(gcOnly(first)).toBe(false)
  const last = writer.tombstone!(first) as Uint8Array
  const fewest = Y.decodeUpdate(last).structs
  expect(fewest.length).toBe(1)
  expect(fewest[0]).toBeInstanceOf(Y.GC)
  expect(writer.tombstone!(last)).toBeUndefined()
  // Still a tombstone the hub takes, after which the writer's later changes land.
  const hub = engine.create()
  accept(hub, baseUpdate, "base")
  for (const u of updates.slice(0, -1)) accept(hub, u, "w")
  accept(hub, last, "w")
  expect(hub.handle.toString()).toBe(writer.handle.toString().replace(/Q/g, ""))
})

test("dependsOn: what continues the refused writer's chain, sits next to what it wrote, or deletes it", () => {
  const { writer, updates } = writeChain("xyz", [
    [{ del: false, at: 1, text: "PP", len: 1 }], // refused
    [{ del: false, at: 2, text: "q", len: 1 }], // inside the refused insert, same writer
  ])
  expect(dependsOn(updates[1], updates[0])).toBe(true)
  expect(dependsOn(updates[0], updates[1])).toBe(false)
  // Another writer's insert inside the refused text, and its delete of it.
  const other = yjsEngine<Y.Text>("text").create()
  Y.applyUpdate((other as unknown as { doc: Y.Doc }).doc, Y.encodeStateAsUpdate((writer as unknown as { doc: Y.Doc }).doc))
  const mine: Uint8Array[] = []
  other.onLocalChange((u) => mine.push(u as Uint8Array))
  other.handle.insert(2, "o")
  other.handle.delete(1, 1)
  other.handle.insert(0, "n")
  expect(dependsOn(mine[0], updates[0])).toBe(true)
  expect(dependsOn(mine[1], updates[0])).toBe(true)
  expect(dependsOn(mine[2], updates[0])).toBe(false)
})

/**
 * Nesting depth of Yjs types is bounded where updates enter (adapters/yjs/integrable.ts,
 * MAX_TYPE_DEPTH, for CRDT fields and whole documents alike). Before, the hub's check
 * bounded bytes, clocks, ownership and dependencies, but not how deep shared types nest. A 55 KB update (within the
 * 256 KiB update limit and the 64 KiB coalescing budget), made with the public API by any
 * peer, puts a chain of 5,000 nested Y.Maps in a yMap field. Yjs walks nested types
 * recursively: every replica's `toJSON()` of the field throws RangeError (Maximum call stack
 * size exceeded) for good, and deleting the chain throws in Yjs's garbage collection
 * (Item.gc -> ContentType.gc -> Item.gc ...), on the deleting replica and on the hub, which
 * marks the field broken, refuses the delete (crdt-failed) and reloads the document: nobody
 * can ever remove it. The document is poisoned for good.
 */
import * as Y from "yjs"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yMap } from "../adapters/yjs/index.js"
import { crdtReason } from "../adapters/yjs/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Card = defineMachine({
  name: "card",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { labels: yMap<unknown>() },
  commands: {},
})

const DEPTH = 5000

test("a deeply nested chain of Yjs types is refused at the hub; every replica still reads the field", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hub = new Hub({ machines: [Card], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name })
    return client.open(Card, "c1")
  }
  const mallory = await open("mallory")
  const honest = await open("honest")
  await settleWithTurns(rt, 100)
  honest.crdt.labels.set("prio", "high")
  await settleWithTurns(rt, 200)

  const rejections: string[] = []
  mallory.on("rejected", (e) => rejections.push(crdtReason(e.rejection) ?? e.rejection.code))
  const labels = mallory.crdt.labels
  labels.doc!.transact(() => {
    let m: Y.Map<unknown> = labels
    for (let i = 0; i < DEPTH; i++) {
      const c = new Y.Map<unknown>()
      m.set("x", c)
      m = c
    }
  })
  await settleWithTurns(rt, 1000)

  // The hub refused the chain (a typed rejection), and every replica reads and writes the field.
  expect(rejections[0]).toMatch(/crdt-invalid/)
  expect(() => honest.crdt.labels.toJSON()).not.toThrow()
  const honestRejections: string[] = []
  honest.on("rejected", (e) => honestRejections.push(crdtReason(e.rejection) ?? e.rejection.code))
  expect(() => honest.crdt.labels.delete("x")).not.toThrow()
  await settleWithTurns(rt, 1000)
  expect(honestRejections).toEqual([])
  const authority = await hub.doc("c1", Card)
  expect(authority.stateHash()).toBe(honest.confirmedHash())
  expect(honest.crdt.labels.has("x")).toBe(false)
})

test("nesting up to the bound is accepted, one deeper is refused, for a whole Yjs document too", async () => {
  const { MAX_TYPE_DEPTH, notIntegrable } = await import("../adapters/yjs/integrable.js")
  const nest = (levels: number, base?: Y.Doc): Uint8Array => {
    const doc = new Y.Doc()
    if (base !== undefined) Y.applyUpdate(doc, Y.encodeStateAsUpdate(base))
    const before = Y.encodeStateVector(doc)
    doc.transact(() => {
      // Continue below the deepest map of `base`, if any.
      let m: Y.Map<unknown> = doc.getMap("m")
      while (m.get("x") instanceof Y.Map) m = m.get("x") as Y.Map<unknown>
      for (let i = 0; i < levels; i++) {
        const c = new Y.Map<unknown>()
        m.set("x", c)
        m = c
      }
    })
    return Y.encodeStateAsUpdate(doc, before)
  }
  const check = (update: Uint8Array, doc = new Y.Doc()) => {
    const sv = Y.decodeStateVector(Y.encodeStateVector(doc))
    return notIntegrable(update, Y.decodeUpdate(update) as never, (c) => sv.get(c) ?? 0, doc)
  }
  expect(check(nest(MAX_TYPE_DEPTH))).toBeUndefined()
  expect(check(nest(MAX_TYPE_DEPTH + 1))?.reason).toBe("malformed")
  // Half in the document, half in the update: the depth counts through what the document has.
  const doc = new Y.Doc()
  Y.applyUpdate(doc, nest(MAX_TYPE_DEPTH / 2))
  expect(check(nest(MAX_TYPE_DEPTH / 2, doc), doc)).toBeUndefined()
  expect(check(nest(MAX_TYPE_DEPTH / 2 + 1, doc), doc)?.reason).toBe("malformed")
})

test("a key __proto__ in a peer's merge is refused at the hub, as a map key or inside a value: no replica reads an object with a prototype of the peer's choosing", async () => {
  const rt = new VirtualRuntime(12)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hub = new Hub({ machines: [Card], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const open = async (name: string) => (await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name })).open(Card, "c1")
  const mallory = await open("mallory")
  const honest = await open("honest")
  await settleWithTurns(rt, 100)
  const rejections: string[] = []
  mallory.on("rejected", (e) => rejections.push(crdtReason(e.rejection) ?? e.rejection.code))
  // What a replica that accepted them would read: objects inheriting the peer's values.
  mallory.crdt.labels.set("__proto__", { isAdmin: true })
  await settleWithTurns(rt, 500)
  mallory.crdt.labels.set("card", JSON.parse('{"title":"hi","__proto__":{"isAdmin":true}}'))
  await settleWithTurns(rt, 500)
  expect(rejections).toEqual([expect.stringMatching(/crdt-invalid/), expect.stringMatching(/crdt-invalid/)])
  expect(honest.crdt.labels.toJSON()).toEqual({})
  expect(honest.crdt.labels.has("card")).toBe(false)
  expect(await hub.doc("c1", Card).then((d) => d.stateHash())).toBe(honest.confirmedHash())
})

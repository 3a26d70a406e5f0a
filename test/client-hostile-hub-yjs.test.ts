/**
 * A hostile hub against a CanonClient's Yjs field: 5,000 nested maps (past MAX_TYPE_DEPTH,
 * where every `toJSON()` of the field overflows the stack) or a key `__proto__` (which would
 * make a value of the hub's the prototype of what the app reads), in an entry it ordered or in
 * a snapshot's V2 field state. Entries skipped the depth check client-submitted updates get,
 * and V2 states were counted but their keys not read. Now each is refused where it arrives,
 * with a typed error (`crdt-invalid` for an entry, `snapshot-invalid` for a state): the
 * replica's field, its plain state and its store stay as they were, and it stays usable.
 */
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { CanonClient, defineMachine, encodeCanonical, type ServerMessage } from "../core/index.js"
import { hashBytes } from "../core/internal.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { scriptedTransport } from "./support/scripted-hub.js"
import { yMap } from "../adapters/yjs/index.js"

const DOC = "card"
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

const Card = defineMachine({
  name: "card",
  version: 1,
  initial: () => ({ title: "" }),
  commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: { title: string }, a: { title: string }) => void (s.title = a.title) } },
  crdt: { labels: yMap<unknown>() },
})

const setup = async (storage: MemoryStorage) => {
  const hub = scriptedTransport()
  const client = await CanonClient.open({ transport: hub.transport, runtime: new VirtualRuntime(1), storage, clientId: "c1", machines: [Card] })
  await flush()
  hub.deliver({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Card, DOC)
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  await flush()
  return { hub, client, doc, errors }
}

const snapshotStream = (bytes: Uint8Array, seq: number): ServerMessage[] => [
  { type: "snapshot-begin", docId: DOC, snapshotId: seq, seq, hash: hashBytes(bytes), size: bytes.length },
  { type: "snapshot-chunk", docId: DOC, snapshotId: seq, offset: 0, bytes },
  { type: "snapshot-end", docId: DOC, snapshotId: seq },
]

/** A hub's Y.Doc for the field (map "m") holding `levels` nested maps under key "x". */
const nested = (levels: number): Y.Doc => {
  const doc = new Y.Doc()
  doc.transact(() => {
    let m = doc.getMap<unknown>("m")
    for (let i = 0; i < levels; i++) {
      const c = new Y.Map<unknown>()
      m.set("x", c)
      m = c
    }
  })
  return doc
}
const withProtoKey = (): Y.Doc => {
  const doc = new Y.Doc()
  doc.getMap("m").set("__proto__", { isAdmin: true })
  return doc
}

/** A replica at seq 3 with the hub's label, a label of its own and a stored state. */
const started = async () => {
  const storage = new MemoryStorage()
  const s = await setup(storage)
  const hubs = new Y.Doc()
  hubs.getMap("m").set("from-hub", 1)
  for (const m of snapshotStream(encodeCanonical({ title: "hub's", $crdt: { labels: encodeCanonical(["y1", Y.encodeStateAsUpdateV2(hubs), []]) } }), 3)) s.hub.deliver(m)
  await s.doc.whenStored()
  s.doc.crdt.labels.set("mine", 2)
  await s.doc.whenStored()
  return { ...s, storage }
}

/** What the app reads, and what a client opened on the same storage reads. */
const expectUnchanged = async (s: Awaited<ReturnType<typeof started>>) => {
  expect(() => s.doc.crdt.labels.toJSON()).not.toThrow()
  expect(s.doc.crdt.labels.toJSON()).toEqual({ "from-hub": 1, mine: 2 })
  expect(Object.getPrototypeOf(s.doc.crdt.labels.toJSON())).toBe(Object.prototype)
  expect(s.doc.state).toEqual({ title: "hub's" })
  await s.doc.whenStored()
  await s.client.close()
  const again = await setup(s.storage)
  expect(again.doc.crdt.labels.toJSON()).toEqual({ "from-hub": 1, mine: 2 })
  expect(again.doc.state).toEqual({ title: "hub's" })
  await again.client.close()
}

describe("an entry the hub ordered", () => {
  test.each([
    ["5,000 nested maps", () => nested(5000), /^crdt-invalid: .*Shared types nest deeper than 128 levels/],
    ["a map key __proto__", withProtoKey, /^crdt-invalid: .*The key "__proto__" is refused/],
  ])("%s: refused with crdt-invalid; field, state and store unchanged", async (_name, make, error) => {
    const s = await started()
    const update = Y.encodeStateAsUpdate(make())
    const t0 = performance.now()
    expect(() => s.hub.deliver({ type: "entries", docId: DOC, entries: [{ seq: 4, time: 0, clientId: "c2", clientSeq: 1, name: "$crdt.labels", args: update }] })).not.toThrow()
    const ms = performance.now() - t0
    await flush()
    expect(ms).toBeLessThan(2_000)
    expect(s.errors).toEqual([expect.stringMatching(error)])
    await expectUnchanged(s)
  })
})

describe("a snapshot's field state", () => {
  test.each([
    ["5,000 nested maps", () => nested(5000), /^snapshot-invalid: .*Shared types nest deeper than 128 levels/],
    ["a map key __proto__", withProtoKey, /^snapshot-invalid: .*The key "__proto__" is refused/],
  ])("%s: refused with snapshot-invalid; field, state and store unchanged", async (_name, make, error) => {
    const s = await started()
    const state = encodeCanonical({ title: "hostile", $crdt: { labels: encodeCanonical(["y1", Y.encodeStateAsUpdateV2(make()), []]) } })
    const t0 = performance.now()
    for (const m of snapshotStream(state, 7)) expect(() => s.hub.deliver(m)).not.toThrow()
    const ms = performance.now() - t0
    await flush()
    expect(ms).toBeLessThan(2_000)
    expect(s.doc.confirmedSeq).toBe(3)
    expect(s.errors).toEqual([expect.stringMatching(error)])
    await expectUnchanged(s)
  })
})

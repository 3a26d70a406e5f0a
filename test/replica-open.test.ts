/**
 * A stored CRDT change waiting to go again (a queue record, core/crdt/replica.ts) reopened by
 * a build that cannot send it: its field removed, retyped, or no fields at all. Its record was
 * never deleted: tried again at every open with the same `error` (or, with no fields left,
 * dropped without a word and kept on disk forever). Now core/store/replica-open.ts deletes it
 * and the app is told once, when the document connects. And a stored merge command of a field
 * the build lacks applies as nothing: it was run as a merge into the build's first field, and
 * the app was told of a refused merge into that field.
 */
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import * as K from "../core/store/keys.js"
import { encodeOutbox, encodeReplicaMeta } from "../core/store/records.js"
import { offlineTransport } from "./support/offline.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const V1 = defineMachine({ name: "pad", version: 1, initial: () => ({}), crdt: { title: yText(), body: yText() }, commands: {} })
const builds = [
  ["the same build", V1, "confirmed"],
  ["body removed", defineMachine({ name: "pad", version: 1, initial: () => ({}), crdt: { title: yText() }, commands: {} }), "unknown-command"],
  ["body now Automerge", defineMachine({ name: "pad", version: 1, initial: () => ({}), crdt: { title: yText(), body: automergeText() }, commands: {} }), "invalid-args"],
  ["no fields left", defineMachine({ name: "pad", version: 1, initial: () => ({ n: 0 }), commands: { incr: { args: Schema.Struct({}), apply: (s) => { s.n++ } } } }), "unknown-command"],
] as const

test.each(builds)("a queued change of a field, reopened by %s: sent, or told once and its record deleted", async (_, build, expected) => {
  const rt = new VirtualRuntime(2)
  const disk = new MemoryStorage()
  const first = await running(rt, CanonClient.open({ transport: offlineTransport, runtime: rt, storage: disk, autoConnect: false }))
  await running(rt, first.open(V1, "d"))
  await running(rt, first.close())
  // What a refusal leaves: a Yjs change of "body" waiting to go again.
  const y = new Y.Doc()
  y.getText("t").insert(0, "queued words")
  await disk.batch([
    { type: "put", key: K.replicaMeta("d"), value: encodeReplicaMeta({ machine: "pad", version: 1, confirmedSeq: 0, nextClientSeq: 1 }) },
    { type: "put", key: K.replicaQueued("d", 0), value: encodeOutbox("body", Y.encodeStateAsUpdate(y)) },
  ])
  const prefix = K.replicaQueuePrefix("d")
  const records = async () => (await disk.range({ gte: prefix, lt: K.prefixEnd(prefix) })).length

  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [build], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const heard: string[][] = []
  for (let round = 0; round < 2; round++) {
    const client = await running(rt, CanonClient.open({ transport: net.transport(`p${round}`), runtime: rt, storage: disk, autoConnect: false }))
    const doc = await running(rt, client.open(build as typeof V1, "d"))
    const told: string[] = []
    doc.on("error", (e) => told.push(e.code))
    doc.on("confirmed", () => told.push("confirmed"))
    client.connect()
    await settleWithTurns(rt, 1000)
    heard.push(told)
    await running(rt, client.close())
    expect(await records()).toBe(0)
  }
  expect(heard).toEqual([[expected], []])
  await hub.close()
})

test("a stored merge of a removed field is rejected unknown-command, and no other field hears of it", async () => {
  const rt = new VirtualRuntime(5)
  const disk = new MemoryStorage()
  const first = await running(rt, CanonClient.open({ transport: offlineTransport, runtime: rt, storage: disk, autoConnect: false }))
  const d1 = await running(rt, first.open(V1, "n"))
  ;(d1.crdt.title as unknown as { insert(i: number, s: string): void }).insert(0, "Title")
  await settleWithTurns(rt, 50)
  ;(d1.crdt.body as unknown as { insert(i: number, s: string): void }).insert(0, "BODY TEXT")
  await settleWithTurns(rt, 50)
  expect(d1.pending.map((p) => p.name)).toEqual(["$crdt.title", "$crdt.body"])
  await running(rt, first.close())

  const build = defineMachine({ name: "pad", version: 1, initial: () => ({}), crdt: { title: yText() }, commands: {} })
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [build], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const second = await running(rt, CanonClient.open({ transport: net.transport("p"), runtime: rt, storage: disk, autoConnect: false }))
  const doc = await running(rt, second.open(build, "n"))
  const told: string[] = []
  doc.on("error", (e) => told.push(`error ${e.code}: ${e.message}`))
  doc.on("rejected", (e) => told.push(`rejected ${e.command} ${e.rejection.code}`))
  doc.on("confirmed", (e) => told.push(`confirmed ${e.command}`))
  second.connect()
  await settleWithTurns(rt, 2000)
  expect(told).toEqual(["confirmed $crdt.title", "rejected $crdt.body unknown-command"])
  expect(doc.crdt.title.toString()).toBe("Title")
  await running(rt, second.close())
  await hub.close()
})

/**
 * A hub restarted with a lower `maxCommandBytes` still serves its whole log to every version.
 * The bound core/schema/serve.ts puts on a converted entry (a migration may grow what a client
 * sent) was the hub's limit of today alone, so an entry logged under the old limit stopped
 * every older-version reader at it (`update-required`, which no update fixes) while readers
 * of the logged version were sent it as it is. A conversion may now take an entry up to the
 * larger of today's limit and its size as logged.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { entriesForVersion } from "../core/schema/serve.js"
import { encodeCanonical } from "../core/canonical.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { NoteV1, NoteV1InHistory as V1, NoteV2 } from "./support/versioned-note.js"

const DOC = "n"

const Short = defineMachine({
  name: "blob",
  version: 1,
  initial: () => ({ v: "" }),
  commands: { put: { args: Schema.Struct({ v: Schema.String }), apply: (s: { v: string }, a) => { s.v = a.v } } },
})
// v2 keeps half the value: its downcast doubles it back.
const Doubling = evolve(Short, {
  version: 2,
  migrateState: (s) => s,
  commands: { put: { args: Schema.Struct({ v: Schema.String }), apply: (s: { v: string }, a) => { s.v = a.v + a.v } } },
  downcast: { put: (a) => ({ name: "put" as const, args: { v: a.v + a.v } }) },
})
const BIG = "x".repeat(3000)

test("the conversion: an entry as big as logged passes; one a migration grows past today's limit is a barrier", () => {
  const h = historyOf(NoteV2)!
  const e = { seq: 1, time: 0, clientId: "w", clientSeq: 1, name: "rename", args: { title: BIG } }
  const size = encodeCanonical(e.args).length
  // Logged under a larger limit; today's is smaller: a v1 reader is sent it as a v2 one is.
  const down = entriesForVersion(h, [e], 1, () => 2, 2048)
  expect(size).toBeGreaterThan(2048)
  expect(down.barrier).toBeUndefined()
  expect(down.entries).toEqual([e])
  // What a conversion grows is still held to the larger of the two.
  const grows = historyOf(Doubling)!
  const small = { ...e, name: "put", args: { v: "y".repeat(1500) } }
  expect(entriesForVersion(grows, [small], 1, () => 2, 2048).barrier).toBe(1)
  expect(entriesForVersion(grows, [small], 1, () => 2, 4096).barrier).toBeUndefined()
})

test("a v1 reader of a hub restarted with a lower maxCommandBytes is sent what was logged under the old one", async () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hubStore = new MemoryStorage()
  let hub: Hub | undefined
  const start = async (maxCommandBytes: number) => {
    if (hub !== undefined) {
      await hub.close()
      net.stopServer()
    }
    hub = new Hub({ machines: [NoteV2], storage: hubStore, runtime: rt, maxCommandBytes, snapshots: { tailBytes: Infinity } })
    net.listen(hub)
  }
  const run = (ms: number) => settleWithTurns(rt, ms)
  const open = async <M extends typeof NoteV1 | typeof NoteV2>(m: M, name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage: new MemoryStorage() })
    const doc = await client.open(m, DOC)
    const errors: string[] = []
    doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
    doc.on("rejected", (e) => errors.push(`rejected ${e.rejection.code}: ${e.rejection.message}`))
    return { doc, errors }
  }

  await start(64 << 10)
  const w = await open(NoteV2, "w")
  await run(100)
  w.doc.submit("rename", { title: BIG })
  w.doc.crdt.body.insert(0, BIG)
  await run(2000)
  expect(w.doc.pendingCount).toBe(0)
  expect(w.errors).toEqual([])

  await start(2048)
  const v2 = await open(NoteV2, "r2")
  const v1 = await open(V1, "r1")
  await run(3000)
  for (const r of [v2, v1]) {
    expect(r.errors).toEqual([])
    expect(r.doc.state.title).toBe(BIG)
    expect(r.doc.crdt.body.toString()).toBe(BIG)
  }
  // New commands are held to today's limit.
  v1.doc.submit("rename", { title: BIG })
  await run(2000)
  expect(v1.errors.some((e) => e.includes("command-too-large"))).toBe(true)
})

/**
 * A Yjs delete in a document full to its bound. The refusal's sentence tells the writer to
 * "Delete something from it first", and a delete of a Yjs field is how a writer of a text does
 * that; it was refused as the document being full (the bound charges a merge at three times
 * its bytes, whatever it does), so a document filled by its text could never be trimmed by
 * its writers again. A delete carries no content and frees what it deletes.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { body: yText() },
  commands: { title: { args: Schema.Struct({ s: Schema.String }), apply: (st, { s }) => { st.title = s } } },
})

test("a document filled by its Yjs text takes a delete of that text, and then room is found again", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 64 << 10 })
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const w = await client.open(Note, "d")
  const told: string[] = []
  w.on("rejected", (e) => told.push(`${e.rejection.code}: ${e.rejection.message}`))
  await run(50)
  // Read again each time: a field reloaded from the hub's state is a new object.
  const body = () => w.crdt.body
  // Typed, halving the run at each refusal, until the hub refuses even one character three
  // times in a row (measures included): full to the byte for what is not a tombstone.
  for (let n = 4096, refusedOne = 0; refusedOne < 3;) {
    const before = told.length
    body().insert(body().length, "x".repeat(n))
    await run(400)
    if (told.length === before) refusedOne = 0
    else if (n > 1) n = Math.floor(n / 2)
    else refusedOne++
  }
  expect(told.length).toBeGreaterThan(0)
  expect(told.every((t) => t.startsWith("command-too-large"))).toBe(true)
  const full = body().length
  expect(full).toBeGreaterThan(10_000)

  // The writer does what the refusal says: it deletes most of the text.
  told.length = 0
  body().delete(0, full - 100)
  await run(2_000)
  expect({ told, pending: w.pendingCount, length: body().length }).toEqual({ told: [], pending: 0, length: 100 })
  // And the room is found again: new text is taken.
  body().insert(0, "y".repeat(2_000))
  await run(3_000)
  expect({ told, pending: w.pendingCount, length: body().length }).toEqual({ told: [], pending: 0, length: 2_100 })
  await client.close()
  await hub.close()
})

test("a document past its bound (the hub restarted with a lower maxDocumentBytes) takes a deletion that frees text, and then writes again", async () => {
  const rt = new VirtualRuntime(12)
  const storage = new MemoryStorage()
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  let hub = new Hub({ machines: [Note], storage, runtime: rt, maxDocumentBytes: 64 << 10 })
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const w = await client.open(Note, "d")
  const told: string[] = []
  w.on("rejected", (e) => told.push(`${e.rejection.code}: ${e.rejection.message}`))
  await run(50)
  for (let i = 0; i < 8; i++) {
    w.crdt.body.insert(w.crdt.body.length, `${i}`.repeat(2_000))
    await run(300)
  }
  expect({ told, length: w.crdt.body.length }).toEqual({ told: [], length: 16_000 })

  // The operator cuts the bound to half the document: it is past it, and only what frees room is
  // taken. (A write refused there cannot even leave its tombstone: core/crdt/README.md, Limits.)
  net.drop("w")
  await hub.close()
  hub = new Hub({ machines: [Note], storage, runtime: rt, maxDocumentBytes: 8 << 10 })
  net.listen(hub)
  await run(3_000)

  // Deleting most of the text is taken (it frees more than it adds), and room is found again.
  w.crdt.body.delete(0, 15_000)
  await run(2_000)
  w.crdt.body.insert(0, "again")
  await run(3_000)
  expect({ told, pending: w.pendingCount, text: w.crdt.body.toString().slice(0, 5), length: w.crdt.body.length }).toEqual({ told: [], pending: 0, text: "again", length: 1_005 })
  await client.close()
  await hub.close()
})

/**
 * A refused Automerge merge that carries several changes (coalesced: made in one tick, or
 * while a merge of the field was in flight) is made again like one that carries one: its
 * writer's later merges, refused for needing it (`crdt-missing-deps`), land. Each change of
 * the coalesced update names the one before it by hash, so the update's own changes are among
 * the deps of its later ones (adapters/automerge/remake.ts `remakeWithout`; simulator seed 21,
 * 5 replicas, at fcd5918).
 */
import * as A from "@automerge/automerge"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { automergeText } from "../adapters/automerge/index.js"
import { remakeWithout } from "../adapters/automerge/remake.js"

const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: automergeText() }, commands: {} })

test("remakeWithout takes out a refused update of several changes of one writer", () => {
  let doc = A.from<{ t: string }>({ t: "" }, { actor: "aa" })
  doc = A.change(doc, (d) => A.splice(d, ["t"], 0, 0, "abc"))
  const base = A.getHeads(doc)
  doc = A.change(doc, (d) => A.splice(d, ["t"], 0, 0, "P"))
  doc = A.change(doc, (d) => A.splice(d, ["t"], 1, 0, "x"))
  const refused = A.getChanges(A.view(doc, base), doc) // two changes, the second depending on the first
  doc = A.change(doc, (d) => A.splice(d, ["t"], 0, 0, "later "))
  const r = remakeWithout(doc, refused, "bb", { bytes: 1 << 20, ops: 1 << 20 })
  expect(r).toBeDefined()
  expect(r!.changes.length).toBe(1)
  expect(r!.doc.t).toBe("later abc")
  expect(r!.covered.ids.size).toBe(3)
})

test("a writer's merges behind a refused coalesced one land", async () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 100_000 } as never))
  const run = (ms: number) => settleWithTurns(rt, ms)
  const open = async (clientId: string) => {
    const client = await CanonClient.open({ transport: net.transport(clientId), runtime: rt, clientId, storage: new MemoryStorage() })
    return client.open(Note, "d")
  }
  const w = await open("w")
  const rejected: string[] = []
  const resent: string[] = []
  w.on("rejected", (e) => rejected.push(e.rejection.message))
  w.on("resent", (e) => resent.push(e.rejection.message))
  await run(50)
  w.crdt.body.splice(0, 0, "a".repeat(20_000))
  await run(500)
  expect(w.pendingCount).toBe(0)

  net.partition("w")
  net.drop("w")
  await run(50)
  // One tick: one merge of two changes. Refused: the document is full.
  w.crdt.body.splice(10_000, 0, "P".repeat(20_000))
  w.crdt.body.splice(0, 0, "Q".repeat(25_000))
  await run(20)
  for (let i = 0; i < 3; i++) {
    w.crdt.body.splice(0, 0, `typed${i} `) // each its own merge, needing the refused one
    await run(20)
  }
  expect(w.pendingCount).toBe(4)
  net.heal("w")
  await run(3000)

  expect(rejected.length).toBe(1)
  expect(rejected[0]).toMatch(/full/)
  expect(resent.length).toBe(3)
  const r = await open("r")
  await run(1000)
  expect(r.crdt.body.text === `typed2 typed1 typed0 ${"a".repeat(20_000)}`).toBe(true)
  expect(w.crdt.body.text === r.crdt.body.text).toBe(true)
}, 60_000)

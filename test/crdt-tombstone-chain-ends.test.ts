/**
 * A chain of refused tombstones ends. 8ca391f's last form keeps as deleted items what the
 * writer's pending changes are placed against; refused too (here: the field is full of
 * structs), it was tombstoned again into the same bytes and sent again, for ever (about 4,000
 * outcomes in 8 s; a review found it). The replica now counts how deep each tombstone is
 * (core/crdt/replica.ts `#tombstoneLevel`): the form after that one is GC ranges only, whose
 * refusal ends the chain. What the writer typed next to the refused change is then lost, as
 * before 8ca391f, and the app is told (rejected); the reader and the writer agree.
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"

const commands = {}
const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands })
/** The same machine as a hub whose operator lowered the field's struct bound has it (not in the fingerprint). */
const NoteLowered = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText({ maxStructs: 6 }) }, commands })

test("a tombstone that keeps what pending changes need, refused too, goes next as GC ranges only: no endless resubmits, and the peers agree", async () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [NoteLowered], storage: new MemoryStorage(), runtime: rt }))
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await rt.run({ forMs: 5 })
      await new Promise((r) => setImmediate(r))
    }
  }
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r", storage: new MemoryStorage() })
  const w = await client.open(Note, "d")
  const r = await reader.open(Note, "d")
  const told: string[] = []
  const outcomes: string[] = []
  w.on("rejected", (e) => told.push(`#${e.clientSeq} rejected ${e.rejection.message.split(":")[0]}`))
  w.on("error", (e) => told.push(`error ${e.code}`))
  w.on("confirmed", (e) => outcomes.push(`#${e.clientSeq} confirmed`))
  w.on("resent", (e) => outcomes.push(`#${e.clientSeq} resent`))
  w.on("rejected", (e) => outcomes.push(`#${e.clientSeq} rejected`))
  await run(50)
  w.crdt.body.insert(0, "head tail")
  await run(300)
  net.partition("w")
  net.drop("w")
  await run(50)

  // Offline, each change is its own command. The first writes six items ("1" in the middle of
  // its clocks): too many structs for the hub, and its tombstone of six deleted items too.
  w.crdt.body.doc!.transact(() => {
    w.crdt.body.insert(9, "6")
    w.crdt.body.insert(6, "4")
    w.crdt.body.insert(1, "1")
    w.crdt.body.insert(4, "3")
    w.crdt.body.insert(10, "5")
    w.crdt.body.insert(7, "2")
  })
  await run(20)
  expect(w.crdt.body.toString()).toBe("h1ea3d 2t4a5il6")
  // Y between "h" and the refused "1" (one live neighbour, one refused), then Z between Y and "1".
  w.crdt.body.insert(1, "Y")
  await run(20)
  w.crdt.body.insert(2, "Z")
  await run(20)
  expect(w.crdt.body.toString()).toBe("hYZ1ea3d 2t4a5il6")
  net.heal("w")
  await run(8000)
  const n1 = outcomes.length
  await run(8000)
  // No endless round of submit/refuse: nothing new happens in a further 8 s.
  expect({ grew: outcomes.length - n1, pending: w.pendingCount, last: outcomes.slice(-6) }).toEqual({ grew: 0, pending: 0, last: expect.anything() })

  expect(w.pendingCount).toBe(0)
  // The writer and the reader agree, and every refusal the writer was told is one.
  expect(w.crdt.body.toString()).toBe(r.crdt.body.toString())
  expect(told.every((t) => / rejected crdt-/.test(t))).toBe(true)
  await client.close()
  await reader.close()
})

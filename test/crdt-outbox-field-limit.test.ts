/**
 * Local CRDT changes coalesced while a merge is in flight stay within the field's own update
 * limit, not only the command budget (core/crdt/outbox.ts): changes that each fit the field
 * must not add up to one update it refuses (`crdt-too-large`), which would lose them all.
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"

const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText({ maxUpdateBytes: 30_000 }) }, commands: {} })
const ANote = defineMachine({ name: "anote", version: 1, initial: () => ({}), crdt: { body: automergeText({ maxUpdateBytes: 30_000 }) }, commands: {} })

test.each([
  ["Yjs", YNote, (doc: any, s: string) => doc.crdt.body.insert(doc.crdt.body.length, s), (doc: any) => doc.crdt.body.toString()],
  ["Automerge", ANote, (doc: any, s: string) => doc.crdt.body.splice(doc.crdt.body.text.length, 0, s), (doc: any) => doc.crdt.body.text],
] as const)("%s: edits typed during a round trip are coalesced within the field's update limit", async (_, machine, append, textOf) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 20, encode: true })
  net.listen(new Hub({ machines: [YNote, ANote], storage: new MemoryStorage(), runtime: rt }))
  const run = (ms: number) => settleWithTurns(rt, ms)
  const open = async (clientId: string) => (await CanonClient.open({ transport: net.transport(clientId), runtime: rt, clientId, storage: new MemoryStorage() })).open(machine as typeof YNote, "d")
  const w = await open("w")
  const rejected: string[] = []
  w.on("rejected", (e) => rejected.push(e.rejection.message.slice(0, 60)))
  await run(100)
  append(w, "a")
  await new Promise((r) => setImmediate(r)) // the first goes; the next two wait for its answer
  append(w, "x".repeat(19_000))
  append(w, "y".repeat(19_000))
  await run(6000)
  expect(rejected).toEqual([])
  const r = await open("r")
  await run(1000)
  expect(textOf(r).length).toBe(38_001)
  expect(textOf(w) === textOf(r)).toBe(true)
}, 30_000)

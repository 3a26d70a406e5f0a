/**
 * A local change that the field itself refuses (over the field's update limit) is this app's
 * own doing, not a hostile hub's: the `error` event says so and what to do. The replica runs
 * its own merge commands through the same check as the hub's entries (fields.ts `merge`), and
 * that check used to report every refusal as "a merge that the hub ordered ... (a hub sending
 * it is broken or hostile)".
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"

const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText({ maxUpdateBytes: 1_000 }) }, commands: {} })
const ANote = defineMachine({ name: "anote", version: 1, initial: () => ({}), crdt: { body: automergeText({ maxUpdateBytes: 1_000 }) }, commands: {} })

const world = () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [YNote, ANote], storage: new MemoryStorage(), runtime: rt }))
  const run = (ms: number) => settleWithTurns(rt, ms)
  return { rt, net, run }
}

test.each([
  ["Yjs", YNote, (doc: any) => doc.crdt.body.insert(0, "P".repeat(2_000)), (doc: any) => doc.crdt.body.toString()],
  ["Automerge", ANote, (doc: any) => doc.crdt.body.splice(0, 0, "P".repeat(2_000)), (doc: any) => doc.crdt.body.text],
] as const)("%s: a local change over the field's update limit is reported as this app's own", async (_, machine, paste, textOf) => {
  const { rt, net, run } = world()
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const doc = await client.open(machine as typeof YNote, "d")
  const errors: string[] = []
  const rejected: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  doc.on("rejected", (e) => rejected.push(e.rejection.message))
  await run(50)
  paste(doc)
  await run(1000)
  expect(rejected.length).toBe(1)
  expect(rejected[0]).toMatch(/^crdt-too-large/)
  expect(errors.length).toBeGreaterThan(0)
  for (const e of errors) {
    expect(e).not.toMatch(/hub ordered|hostile/)
    expect(e).toMatch(/^crdt-too-large: A change made here to field "body" of "d" is one the field does not take.*: The (Yjs|Automerge) update has \d+ bytes; a field accepts at most 1000\.$/)
  }
  expect(textOf(doc)).toBe("")
}, 30_000)

/**
 * A hub whose Yjs text field holds few structs (its operator lowered `maxStructs`), a writer
 * "w" that typed "head tail" and went offline, and a reader "r": the world of the tests of
 * changes the hub refuses and the tombstones that take their place (test/crdt-gc-tombstone-hub,
 * test/yjs-tombstone-keeping-form). The writer makes its offline edits, then `comeBack()`.
 */
import { CanonClient, Hub, defineMachine } from "../../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { yText } from "../../adapters/yjs/index.js"

const commands = {}
export const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands })
/** The same machine as a hub whose operator lowered the field's struct bound has it (not in the fingerprint). */
const lowered = (maxStructs: number) => defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText({ maxStructs }) }, commands })

export async function offlineWriter(maxStructs: number) {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [lowered(maxStructs)], storage: new MemoryStorage(), runtime: rt }))
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
  /** What the writer's app was told: rejections (code only) and errors. */
  const told: string[] = []
  /** Every outcome of the writer's commands, in order. */
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
  const comeBack = async () => {
    net.heal("w")
    await run(8000)
  }
  const close = async () => {
    await client.close()
    await reader.close()
  }
  return { w, r, told, outcomes, run, comeBack, close }
}

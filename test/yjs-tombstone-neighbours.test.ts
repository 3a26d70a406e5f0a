/**
 * Typing next to a refused paste lands. A hub whose Yjs field limit is lower than the writer's
 * (`maxUpdateBytes` lowered on the hub, or `maxCommandBytes`) refuses a paste for its bytes
 * (`crdt-too-large`). The replica fills the paste's clocks with a tombstone so the writer's
 * later changes still merge (adapters/yjs/tombstone.ts). That tombstone was made of GC
 * structs (the "fewest" form, meant for a change refused for its struct count): what the
 * writer typed right after the paste has its origin in a collected range, so Yjs makes it a
 * GC struct too, and it was gone from every replica while the app was told it was confirmed.
 * Next to a second refused paste tombstoned the other way (as deleted items), an edit had one
 * collected neighbour and one live one: the hub refused it as malformed, and then every later
 * change of the writer for what it needs. The simulator found both (hub processes with
 * lowered limits, test/sim/simulation.ts `hubLimits`).
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"

const commands = {}
const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands })
/** The same machine as a hub whose operator lowered the field's update limit has it (not in the fingerprint). */
const NoteLowered = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText({ maxUpdateBytes: 24 << 10 }) }, commands })

const world = (hubOptions: { maxCommandBytes?: number } = {}) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [NoteLowered], storage: new MemoryStorage(), runtime: rt, ...hubOptions }))
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await rt.run({ forMs: 5 })
      await new Promise((r) => setImmediate(r))
    }
  }
  return { rt, net, run }
}

const offline = async (net: MemoryNetwork, run: (ms: number) => Promise<void>) => {
  net.partition("w")
  net.drop("w")
  await run(50)
}

/** A writer and a reader of "head tail", the writer gone offline; what the writer's document is told. */
const writerOffline = async ({ rt, net, run }: ReturnType<typeof world>) => {
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r", storage: new MemoryStorage() })
  const w = await client.open(Note, "d")
  const r = await reader.open(Note, "d")
  const told: string[] = []
  w.on("rejected", (e) => told.push(`rejected ${e.rejection.code}`))
  w.on("error", (e) => told.push(`error ${e.code}`))
  await run(50)
  w.crdt.body.insert(0, "head tail")
  await run(300)
  await offline(net, run)
  return { net, run, client, reader, w, r, told }
}

test("what the writer types right after a paste refused for its bytes lands on every replica", async () => {
  const { net, run, client, reader, w, r, told } = await writerOffline(world())
  w.crdt.body.insert(5, "P".repeat(40_000)) // over the hub's 24 KiB: refused
  await run(20)
  for (const [i, c] of [..."typed"].entries()) {
    w.crdt.body.insert(40_005 + i, c) // right after the paste, one key at a time
    await run(20)
  }
  net.heal("w")
  await run(5000)
  expect(told).toEqual(["rejected command-too-large"])
  expect(w.pendingCount).toBe(0)
  expect(r.crdt.body.toString()).toBe("head typedtail")
  expect(w.crdt.body.toString()).toBe("head typedtail")
  await client.close()
  await reader.close()
})

test("an edit between two refused pastes does not cut the writer's chain", async () => {
  // The first paste is refused by the hub's maxCommandBytes, the second by the field's limit.
  const { net, run, client, reader, w, r, told } = await writerOffline(world({ maxCommandBytes: 48 << 10 }))
  w.crdt.body.insert(5, "A".repeat(60_000)) // over maxCommandBytes
  await run(20)
  w.crdt.body.insert(5, "B".repeat(30_000)) // before it; over the field's limit
  await run(20)
  w.crdt.body.insert(30_005, "-") // between the two pastes
  await run(20)
  w.crdt.body.insert(0, ">> ") // elsewhere, later: only the clock chain ties it to them
  await run(20)
  net.heal("w")
  await run(5000)
  expect(told.sort()).toEqual(["rejected command-too-large", "rejected command-too-large"])
  expect(w.pendingCount).toBe(0)
  expect(r.crdt.body.toString()).toBe(">> head -tail")
  expect(w.crdt.body.toString()).toBe(">> head -tail")
  await client.close()
  await reader.close()
})

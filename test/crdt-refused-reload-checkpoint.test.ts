/**
 * A replica whose own CRDT change the hub refused still holds it in its field until the
 * authority's state is installed: a change cannot be taken out of a CRDT, and a Yjs tombstone
 * of the same clocks changes nothing where Yjs already has those structs. That state can take
 * a while: asked-for states are paced per document and per client (followers.ts `mustWait`;
 * simulator seed 46 waited 11.6 s behind a snapshot that took 1.3 s). Meanwhile the replica's
 * own merges drained, and every checkpoint of someone else's edit was compared with a field
 * holding the refused paste: a `desync` at each (seed 46: at 186, 192, 208, 214), though the
 * replica knew its field differed and had already asked for the state. Its local snapshots in
 * that window stored the refused paste as confirmed, and a reconnect forgot the state asked for.
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"

const commands = {}
const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands })
/** The same machine as a hub whose operator lowered the field's update limit has it (not in the fingerprint). */
const NoteLowered = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText({ maxUpdateBytes: 24 << 10 }) }, commands })

const world = () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  // Every seq checkpointed; a client's second asked-for state waits ~256 s (its bucket in debt after the first).
  net.listen(new Hub({
    machines: [NoteLowered], storage: new MemoryStorage(), runtime: rt, checkpointEvery: 1,
    limits: { stateBytesPerSecond: 1024, stateBurstBytes: 1024 },
  }))
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await rt.run({ forMs: 5 })
      await new Promise((r) => setImmediate(r))
    }
  }
  return { rt, net, run }
}

/** A writer whose second refused paste waits for the state, with a reader typing meanwhile. */
const setup = async (snapshotEvery?: number) => {
  const { rt, net, run } = world()
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage, ...(snapshotEvery !== undefined ? { snapshotEvery } : {}) })
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r", storage: new MemoryStorage() })
  const w = await client.open(Note, "d")
  const r = await reader.open(Note, "d")
  const told: string[] = []
  w.on("rejected", (e) => told.push(`rejected ${e.rejection.code}`))
  w.on("desync", (d) => told.push(`desync at ${d.seq}`))
  w.on("snapshot", (s) => { if (s.received === s.size) told.push("snapshot") })
  await run(50)
  w.crdt.body.insert(0, "head tail")
  await run(300)
  // The first refusal's state is served at once (and puts this client's bucket in debt).
  w.crdt.body.insert(5, "P".repeat(30_000))
  await run(1000)
  expect(told).toEqual(["rejected command-too-large", "snapshot"])
  expect(w.crdt.body.toString()).toBe("head tail")
  // The second refusal's state waits.
  w.crdt.body.insert(5, "Q".repeat(30_000))
  await run(500)
  for (const c of "typed") {
    w.crdt.body.insert(w.crdt.body.length, c)
    await run(200)
  }
  // Someone else's edits, checkpointed while the writer has nothing pending.
  for (const c of "> ") {
    r.crdt.body.insert(0, c)
    await run(200)
  }
  expect(w.pendingCount).toBe(0)
  expect(r.crdt.body.toString()).toBe(" >head tailtyped")
  return { rt, net, run, storage, client, reader, w, r, told }
}

test("a replica waiting for the state after a refused merge does not desync on the checkpoints meanwhile", async () => {
  const { run, client, reader, w, r, told } = await setup()
  // It holds the refused paste until the state comes, and says nothing more.
  expect(w.crdt.body.length).toBe(30_016)
  expect(told).toEqual(["rejected command-too-large", "snapshot", "rejected command-too-large"])
  await run(300_000)
  expect(told).toEqual(["rejected command-too-large", "snapshot", "rejected command-too-large", "snapshot"])
  expect(w.crdt.body.toString()).toBe(" >head tailtyped")
  expect(w.confirmedHash()).toBe(r.confirmedHash())
  await client.close()
  await reader.close()
})

test("the state asked for after a refused merge is asked for again on a new connection", async () => {
  const { net, run, client, reader, w, r, told } = await setup()
  net.drop("w")
  await run(2000)
  r.crdt.body.insert(0, "!")
  await run(300_000)
  expect(told).toEqual(["rejected command-too-large", "snapshot", "rejected command-too-large", "snapshot"])
  expect(w.crdt.body.toString()).toBe("! >head tailtyped")
  expect(w.confirmedHash()).toBe(r.confirmedHash())
  await client.close()
  await reader.close()
})

test("no local snapshot stores a refused paste as confirmed", async () => {
  const { rt, net, storage, client, reader } = await setup(1)
  await client.close()
  // Reopened offline from its own storage: the confirmed state it stored.
  net.partition("w")
  const again = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage, snapshotEvery: 1 })
  const w2 = await again.open(Note, "d")
  expect(w2.crdt.body.toString()).toBe(" >head tailtyped")
  await again.close()
  await reader.close()
})

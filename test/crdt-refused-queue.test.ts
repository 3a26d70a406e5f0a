/**
 * A change that needs one waiting in the replica's queue to go again is not lost.
 *
 * A Yjs change refused for needing a refused one goes again; refused again (what it needs was
 * refused again: here a paste that fit no more once what it needed was there), it waits in a
 * queue and goes once the one before it is answered (core/crdt/replica.ts `refused`). A
 * change sent after the tombstones of the holes it could be in (here: typed while a
 * connection was down between two answers, so it went after the first paste's tombstone's
 * hole was made and before the second's) was taken for one that can only need what the hub
 * refused: refused for needing a change still waiting in the queue, it matched no hole, and no
 * command sent after it was one it needs (the queue's change in flight is another writer's),
 * so it was told `rejected` and lost, and with it every later change of its writer
 * (simulator seeds 161, 163 and 164 under lowered field limits). It now waits in the queue
 * behind what it needs.
 */
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"

const commands = {}
const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands })
/** The same machine as a hub whose operator lowered the field's update limit has it (not in the fingerprint). */
const NoteLowered = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText({ maxUpdateBytes: 24 << 10 }) }, commands })

/** A hub with documents of at most `cap` bytes and Yjs updates of at most 24 KiB. */
const world = (cap: number) => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [NoteLowered], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: cap } as never))
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      await rt.run({ forMs: 5 })
      await new Promise((r) => setImmediate(r))
    }
  }
  return { rt, net, run }
}

test("what is typed next to a change waiting in the queue to go again lands", async () => {
  const { rt, net, run } = world(60_000)
  // One command in flight at a time: the hub answers each before the next goes (as a hub
  // holding a connection for its command rate does), and a connection can drop between two.
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage(), sendWindow: 1 })
  let w = await client.open(Note, "d")
  await run(50)
  w.crdt.body.insert(0, ".".repeat(15_000))
  await run(500)
  expect(w.pendingCount).toBe(0)

  net.partition("w")
  net.drop("w")
  await run(50)
  w.crdt.body.insert(10_000, "W".repeat(20_000)) // refused: the document is full
  await run(20)
  w.crdt.body.insert(30_000, "Q".repeat(20_000)) // refused for needing W; sent again: full
  await run(20)
  w.crdt.body.insert(50_000, "P".repeat(30_000)) // refused: over the field's 24 KiB
  await run(20)
  w.crdt.body.insert(65_000, "1") // inside P: sent again, then waits in the queue
  await run(20)
  // Reopened offline, the document types under a new Yjs client.
  await w.close()
  w = await client.open(Note, "d")
  await run(20)
  w.crdt.body.insert(w.crdt.body.toString().indexOf("1") + 1, "22") // after 1: waits in the queue behind it
  await run(20)
  const told: string[] = []
  w.on("rejected", (e) => told.push(/is full/.test(e.rejection.message) ? "full" : e.rejection.message.replace(/:.*/s, "")))
  // Q was sent again (behind W's tombstone): the connection drops before P is answered, and
  // the writer types right after 2. It goes out after Q's tombstone, and needs 2, which by
  // then waits in the queue behind 1.
  let typed = false
  w.on("resent", () => {
    if (typed) return
    typed = true
    net.partition("w")
    net.drop("w")
    w.crdt.body.insert(w.crdt.body.toString().indexOf("122") + 2, "3") // between the two: it needs them only
  })
  net.heal("w")
  await run(300)
  expect(typed).toBe(true)
  net.heal("w")
  await run(5000)

  // The app hears only of the three pastes: two the document had no room for, one too large.
  expect(told.sort()).toEqual(["crdt-too-large", "full", "full"])
  const reader = await (await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r" })).open(Note, "d")
  await run(1000)
  const text = reader.crdt.body.toString()
  expect(text).toBe(`${".".repeat(10_000)}1232${".".repeat(5_000)}`)
  expect(w.crdt.body.toString()).toBe(text)
  expect(w.pendingCount).toBe(0)
}, 60_000)

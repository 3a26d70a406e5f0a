/**
 * Exactly-once across two devices of one clientId. A user's second device may reuse a
 * clientId (a new incarnation, same principal): the hub numbers its commands after the first
 * device's and keeps each outcome with the incarnation that sent it. Acknowledgements were
 * per clientId: the second device acknowledging its own numbers also forgot the first
 * device's outcome that had not reached it (its answer lost with the connection), and a retry
 * at or below what was acknowledged counts as a client that lost its storage: the first
 * device was told to renumber, and its command was applied a second time (found by a helper
 * attacking identities; with compaction the first device cannot see its entry in the log
 * either). An incarnation now acknowledges only what it recorded: the acknowledgement stops
 * below another incarnation's outcome (core/authority/client-table.ts `ack`).
 */
import { CanonClient, Hub } from "../core/index.js"
import { ClientTable } from "../core/authority/client-table.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

test("an incarnation's acknowledgement does not forget another incarnation's outcome", async () => {
  const table = new ClientTable("d", new AuthorityStore(new MemoryStorage()), 1000)
  await table.load(["c"])
  table.record("c", 1, 1, { hash: 11, seq: 1 })
  table.record("c", 1, 2, { hash: 12, seq: 2 }) // device 1's answer is lost
  table.record("c", 2, 3, { hash: 13, seq: 3 }) // device 2, renumbered after it
  table.record("c", 2, 4, { hash: 14, seq: 4 })
  table.ack("c", 2, 4)
  // Device 1's retry of #2 is answered with its outcome, not a renumbering.
  expect(table.classify("c", 1, 2, 12, 4)).toEqual({ kind: "duplicate", outcome: { clientSeq: 2, seq: 2 } })
  // Device 1 acknowledges through #2; device 2's next acknowledgement then covers its own.
  table.ack("c", 1, 2)
  table.ack("c", 2, 4)
  expect(table.mark("c").acked).toBe(4)
  // Acknowledged outcomes are kept a while (a store restored from a backup resends them):
  // the same command is answered with its outcome, another one under its number renumbered.
  expect(table.classify("c", 2, 3, 13, 4)).toEqual({ kind: "duplicate", outcome: { clientSeq: 3, seq: 3 } })
  expect(table.classify("c", 2, 3, 99, 4)).toEqual({ kind: "conflict", resumeAt: 5 })
})

test("an honest second device on the same clientId does not make the first device's unanswered command apply twice", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const hub = new Hub({
    machines: [Todo], storage: new MemoryStorage(), runtime: rt,
    authenticate: (hello) => ({ id: hello.credentials ?? "guest" }),
    // The log is compacted past the first device's command while it is away.
    snapshots: { minLogBytes: 512, logRatio: 0.01, tailBytes: 0 }, checkpointEvery: 4,
  })
  net.listen(hub)
  const drive = async <T>(p: Promise<T>): Promise<T> => {
    let done = false
    p.then(() => { done = true }, () => { done = true })
    for (let t = 0; !done && t < 60_000; t += 10) await rt.run({ forMs: 10 })
    return p
  }
  const open = async (name: string, clientId?: string, credentials?: string) => {
    const client = await drive(CanonClient.open({ transport: net.transport(name), runtime: rt, machines: [Todo], storage: new MemoryStorage(), backoff: { baseMs: 20, maxMs: 200 }, ...(clientId ? { clientId } : {}), ...(credentials ? { credentials } : {}) }))
    const doc = await drive(client.open(Todo, "list"))
    await rt.run({ forMs: 50 })
    return { client, doc }
  }
  const first = await open("first")
  const other = await open("other", undefined, "bob")
  await drive(other.doc.submit("add", { id: "x", title: "invoice 17 paid?" }))
  await drive(first.doc.submit("note", { text: "v1" }))
  // The first device's toggle reaches the hub; its answer does not reach the device.
  net.stall("first")
  const toggled = first.doc.submit("toggle", { id: "x" })
  toggled.catch(() => {})
  await rt.run({ forMs: 30 })
  net.partition("first")
  net.unstall("first")
  await rt.run({ forMs: 30 })
  // The same user's second device, reusing the clientId, writes and acknowledges its own.
  const second = await open("second", first.client.clientId)
  await drive(second.doc.submit("note", { text: "B1" }))
  await drive(second.doc.submit("note", { text: "B2" }))
  await rt.run({ forMs: 200 })
  await drive(second.client.close())
  for (let i = 0; i < 60; i++) await drive(other.doc.submit("note", { text: `bob ${i} ${"x".repeat(40)}` }))
  await rt.run({ forMs: 3000 })
  net.heal("first")
  await drive(toggled).catch(() => undefined)
  await rt.run({ forMs: 1000 })
  // Toggled once.
  expect(other.doc.state.items.x!.done).toBe(true)
  expect(first.doc.state.items.x!.done).toBe(true)
  await drive(first.client.close())
  await drive(other.client.close())
  await hub.close()
})

/**
 * A hub's answer "applied at seq X" settles a command once the replica reaches X. An answer
 * from an earlier connection may be of a hub that is gone: restored from an older backup, it
 * does not hold the command, and seq X holds another one. Kept across the reconnect, the
 * answer settled the command when the catch-up reached X (before the resent command's new
 * answer came): told confirmed at a seq holding another client's command, and taken out of
 * the outbox, so it was lost if the new hub had not got it yet. An answer settles only on the
 * connection that brought it; the resend brings the current one.
 *
 * An earlier connection's answer still keeps the command's number until the replica reaches
 * X: the same hub may have forgotten the command since (its outcome dropped from the kept
 * ones), and then refuses its resend with sequence-reset, before any answer. Dropping the
 * answer at the reconnect (the first version of the fix) let that renumbering move it, and it
 * applied again (found by a review).
 */
import { CanonClient, Hub, replicaStorage, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { backupOf } from "./support/backup.js"

const flush = (): Promise<void> => new Promise((r) => setImmediate(r))
const note = (seq: number, clientId: string, clientSeq: number, text: string) => ({ seq, time: seq, clientId, clientSeq, name: "note", args: { text } })

test("an answer of an earlier connection does not settle a command: the resend's answer does", async () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  const sent: ClientMessage[] = []
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      listener = l
      queueMicrotask(() => l.onOpen?.())
      return { send: (m: ClientMessage) => void sent.push(m), close: () => {}, bufferedAmount: 0 }
    },
  }
  const client = await CanonClient.open({ transport, runtime: new VirtualRuntime(1), storage: new MemoryStorage(), clientId: "c1", machines: [Todo], backoff: { baseMs: 1, maxMs: 1 } })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Todo, "d")
  const told: string[] = []
  doc.on("confirmed", (e) => told.push(`${e.command} ${e.clientSeq} at ${e.seq}`))
  const receipt = doc.submit("note", { text: "mine" })
  await receipt.persisted
  await flush()
  expect(sent.some((m) => m.type === "submit")).toBe(true)
  // The first hub's answer: applied at 3; the replica is at 0 (its catch-up not in yet).
  listener!.onMessage({ type: "results", docId: "d", outcomes: [{ clientSeq: 1, seq: 3 }] })
  await flush()
  expect(doc.pendingCount).toBe(1)

  // That hub is replaced by one restored from an older backup: at 3 it holds another command.
  client.disconnect()
  client.connect()
  await flush()
  sent.length = 0
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  await flush()
  expect(sent.filter((m) => m.type === "submit").length).toBe(1)
  listener!.onMessage({ type: "entries", docId: "d", entries: [note(1, "o", 1, "a"), note(2, "o", 2, "b"), note(3, "o", 3, "c")] })
  await flush()
  // Still pending: what decides is the new hub's answer to the resend.
  expect([doc.pendingCount, told]).toEqual([1, []])
  listener!.onMessage({ type: "results", docId: "d", outcomes: [{ clientSeq: 1, seq: 4 }] })
  listener!.onMessage({ type: "entries", docId: "d", entries: [note(4, "c1", 1, "mine")] })
  await flush()
  expect([doc.pendingCount, told]).toEqual([0, ["note 1 at 4"]])
  await expect(receipt).resolves.toEqual({ seq: 4 })
  await client.close()
})

test.each([
  ["a window of 4 outcomes, 6 new commands", 4, 6, 200],
  ["the default window (1,000 acknowledged outcomes kept), 1,001 new commands", undefined, 1_001, 300],
] as const)("an answer of an earlier connection keeps the command's number: the hub that forgot it since does not apply it twice (%s)", async (_, window, news, dropAt) => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  // The hub reads slowly (40 ms a page of 2): the replica is behind its answers.
  const hubDisk = new MemoryStorage({ latency: { runtime: rt, ms: () => 1, readMs: () => 40 } })
  const hub = new Hub({ machines: [Todo], storage: hubDisk, runtime: rt, catchUpPage: 2, ...(window !== undefined && { maxOutcomesPerClient: window }) })
  net.listen(hub)
  const disk = new MemoryStorage()
  const first = await CanonClient.open({ transport: net.transport("first"), runtime: rt, machines: [Todo], storage: replicaStorage(disk) })
  const doc = await first.open(Todo, "d")
  const other = await CanonClient.open({ transport: net.transport("other"), runtime: rt, machines: [Todo], storage: new MemoryStorage() })
  const od = await other.open(Todo, "d")
  await rt.run({ forMs: 500 })
  // x made offline and backed up; 20 commands of another client; x confirmed at 21, then a0.
  net.partition("first")
  const x = doc.submit("note", { text: "x" })
  await x.persisted
  const backup = await backupOf(disk)
  for (let i = 0; i < 20; i++) od.submit("note", { text: `o${i}` })
  await rt.run({ forMs: 3_000 })
  net.heal("first")
  await rt.run({ forMs: 3_000 })
  expect((await x).seq).toBe(21)
  doc.submit("note", { text: "a0" })
  await rt.run({ forMs: 2_000 })
  await first.close()

  // The backup restored: its outbox holds x; it writes new commands offline, then syncs. x is
  // answered (21) and the new commands applied, which pushes x's outcome out of the hub's
  // table; the connection drops before the replica reaches 21.
  net.partition("restored")
  const restored = await CanonClient.open({ transport: net.transport("restored"), runtime: rt, machines: [Todo], storage: replicaStorage(backup), backoff: { baseMs: 5, maxMs: 5 } })
  const again = await restored.open(Todo, "d")
  for (let i = 0; i < news; i++) again.submit("note", { text: `z${i}` })
  await again.whenStored()
  net.heal("restored")
  await rt.run({ forMs: dropAt })
  expect(again.confirmedSeq).toBeLessThan(21)
  net.drop("restored")
  await rt.run({ forMs: 20_000 })
  const reading = new AuthorityStore(hubDisk).entries("d", 0, 10_000)
  await rt.run({ forMs: 500 })
  const texts = (await reading).map((e) => (e.args as { text: string }).text)
  expect(texts.filter((t, i) => texts.indexOf(t) !== i)).toEqual([])
  expect(texts.filter((t) => t === "x")).toHaveLength(1)
  // And it gets there: a reset that moves nothing waits for the catch-up before the outbox goes
  // again (each resend was refused and restarted the slow catch-up: stuck at seq 8, 7 pending).
  expect([again.pendingCount, again.confirmedSeq]).toEqual([0, texts.length])
  await restored.close()
  await other.close()
  await hub.close()
}, 120_000)

/**
 * A hub's answer "applied at seq X" settles a command once the replica reaches X. An answer
 * from an earlier connection may be of a hub that is gone: restored from an older backup, it
 * does not hold the command, and seq X holds another one. Kept across the reconnect, the
 * answer settled the command when the catch-up reached X (before the resent command's new
 * answer came): told confirmed at a seq holding another client's command, and taken out of
 * the outbox, so it was lost if the new hub had not got it yet. An answer lasts the
 * connection that brought it; the resend brings the current one.
 */
import { CanonClient, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

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

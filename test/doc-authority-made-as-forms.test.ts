/**
 * A renumbered command (protocol 3, `madeAs`) that comes back in another version's form: the
 * hub looks it up in every form a retry can take, on the next-number path as on the conflict
 * path. The case: an app newer than its hub sent a command downcast (the old form is what the
 * hub hashed), the answer was lost, the command was renumbered up, and after the hub's upgrade
 * it comes in the new form under its new number, saying the number it was made under.
 */
import { secretFor } from "./support/secrets.js"
import { Hub, type ClientMessage, type Outcome, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"

const session = (net: MemoryNetwork, machine: typeof TodoV1 | typeof TodoV2) => {
  const got: ServerMessage[] = []
  const conn = net.transport("a").connect({ onOpen: () => {}, onMessage: (m: ServerMessage) => void got.push(m), onClose: () => {} })
  conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId: "a", secret: secretFor("a"), machines: [describeMachine(machine)] })
  conn.send({ type: "subscribe", docId: "d", machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  return {
    send: (m: ClientMessage) => conn.send(m),
    outcomes: (): Outcome[] => got.flatMap((m) => (m.type === "results" ? [...m.outcomes] : [])),
    close: () => conn.close(),
  }
}

test.each([
  ["next number", 2, 1],
  ["a number another command holds", 1, 1],
])("a renumbered command in its newer form under %s is answered with its first outcome", async (_, clientSeq, madeAs) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [TodoV2], storage, runtime: rt })
  net.listen(hub)
  await rt.run({ forMs: 5 })
  // The v1 form (a v2 app's downcast, or the app before its upgrade), taken as seq 1.
  const old = session(net, TodoV1)
  await rt.run({ forMs: 50 })
  old.send({ type: "submit", docId: "d", commands: [{ clientSeq: 1, name: "add", args: { id: "x", title: "X" } }], ackedClientSeq: 0 })
  await rt.run({ forMs: 50 })
  expect(old.outcomes()).toEqual([{ clientSeq: 1, seq: 1 }])
  old.close()
  await rt.run({ forMs: 50 })
  // The same command in v2's form; it was made under 1 (madeAs 1 under number 1 is no move: the conflict path).
  const now = session(net, TodoV2)
  await rt.run({ forMs: 50 })
  const cmd = { clientSeq, name: "add", args: { id: "x", title: "X", priority: 0 }, ...(madeAs !== clientSeq ? { madeAs } : {}) }
  now.send({ type: "submit", docId: "d", commands: [cmd], ackedClientSeq: 0 })
  await rt.run({ forMs: 50 })
  expect(now.outcomes()).toEqual([{ clientSeq, seq: 1 }])
  const log = await new AuthorityStore(storage).entries("d", 0, 100)
  expect(log.filter((e) => e.name === "add").length).toBe(1)
  await hub.close()
})

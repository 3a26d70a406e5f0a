/**
 * `doc.whenStored()` resolves once what was submitted before it is in the outbox's storage:
 * an app awaits it before it lets a page close. It resolved before the outbox write of a
 * command submitted in the same turn (the write is queued on a microtask), and before a Yjs
 * edit had even joined the outbox (a CRDT field submits its edit on a microtask): `stored`
 * was still false when it resolved (found by a newcomer's pass over the README).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { body: yText() },
  commands: { title: { args: Schema.Struct({ s: Schema.String }), apply: (st, { s }) => { st.title = s } } },
})

test("whenStored covers a command submitted in the same turn, and a Yjs edit made just before", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  // Writes take 5 ms of (virtual) time, as a disk's do.
  const storage = new MemoryStorage({ latency: { runtime: rt, ms: () => 5 } })
  /** Awaits `p` while virtual time runs (a write in flight needs it to land). */
  const drive = async <T>(p: Promise<T>): Promise<T> => {
    let done = false
    void p.finally(() => (done = true)).catch(() => {})
    for (let i = 0; i < 200 && !done; i++) await settleWithTurns(rt, 10)
    return p
  }
  const client = await drive(CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage }))
  const doc = await drive(client.open(Note, "d"))
  await settleWithTurns(rt, 50)
  net.partition("w") // nothing is confirmed meanwhile: the outbox holds what is sent

  const seen: Array<ReadonlyArray<{ name: string; stored: boolean }>> = []
  void doc.submit("title", { s: "one" }).catch(() => {})
  const first = doc.whenStored().then(() => seen.push(doc.pending.map((p) => ({ name: p.name, stored: p.stored }))))
  await settleWithTurns(rt, 50)
  await first

  doc.crdt.body.insert(0, "typed")
  const second = doc.whenStored().then(() => seen.push(doc.pending.map((p) => ({ name: p.name, stored: p.stored }))))
  await settleWithTurns(rt, 50)
  await second

  expect(seen).toEqual([
    [{ name: "title", stored: true }],
    [{ name: "title", stored: true }, { name: "$crdt.body", stored: true }],
  ])
  await drive(client.close())
  await drive(hub.close())
})

/**
 * A hub restarted with a lower `maxCommandBytes` still knows the commands it logged under the
 * higher one. The size check came before the exactly-once table: a retry of such a command
 * (its answer lost with the connection) was hashed as nothing, taken for another command
 * under the same number, and answered `sequence-reset`; a client that had not seen its entry
 * (caught up by a snapshot) renumbered it, sent it as new, and was told `command-too-large`
 * for a command that is in the log.
 */
import * as Schema from "effect/Schema"
import { Hub, defineMachine, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { running } from "./support/virtual-time.js"

const Notes = defineMachine({
  name: "notes",
  version: 1,
  initial: () => ({ notes: {} as Record<string, string> }),
  commands: { put: { args: Schema.Struct({ id: Schema.String, text: Schema.String }), apply: (s, a) => { s.notes[a.id] = a.text } } },
})

/** A connection that keeps what the hub sends it. */
const peer = () => {
  const got: ServerMessage[] = []
  return { got, conn: { send: (m: ServerMessage) => void got.push(m), close() {}, bufferedAmount: 0 } }
}

test("a retry of a command logged under a larger maxCommandBytes gets its outcome from a hub restarted with a smaller one", async () => {
  const rt = new VirtualRuntime(1)
  const storage = new MemoryStorage()
  const big = { clientSeq: 1, name: "put", args: { id: "a", text: "x".repeat(4000) } }
  const first = new Hub({ machines: [Notes], storage, runtime: rt })
  const a = peer()
  ;(await running(rt, first.doc("d", Notes))).submit(a.conn, "c1", { type: "submit", docId: "d", commands: [big], ackedClientSeq: 0 })
  await rt.run({ forMs: 100 })
  expect(a.got.filter((m) => m.type === "results")).toEqual([expect.objectContaining({ outcomes: [{ clientSeq: 1, seq: 1 }] })])
  await running(rt, first.close())

  const second = new Hub({ machines: [Notes], storage, runtime: rt, maxCommandBytes: 1024 })
  const doc = await running(rt, second.doc("d", Notes))
  const b = peer()
  // The retry, and a new command of the same size, which the new bound refuses.
  doc.submit(b.conn, "c1", { type: "submit", docId: "d", commands: [big, { ...big, clientSeq: 2, args: { id: "b", text: big.args.text } }], ackedClientSeq: 0 })
  await rt.run({ forMs: 100 })
  expect(b.got.filter((m) => m.type === "results" || m.type === "error")).toEqual([
    expect.objectContaining({ type: "results", outcomes: [{ clientSeq: 1, seq: 1 }, { clientSeq: 2, rejection: expect.objectContaining({ code: "command-too-large" }) }] }),
  ])
  expect(doc.headSeq).toBe(1)
  await running(rt, second.close())
})

/**
 * Group commit of the authority (core/authority/doc-authority.ts): submits that arrive in the
 * same task (the frames of one socket read, a burst a client split into several submit
 * messages) go out as one storage batch: one write, one fsync.
 */
import { Hub, type Connection, type ServerMessage, type Submit } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Counter } from "./support/machines.js"

const DOC = "group-commit"

class Collecting implements Connection<ServerMessage> {
  readonly bufferedAmount = 0
  readonly received: ServerMessage[] = []
  send(m: ServerMessage): void {
    this.received.push(m)
  }
  close(): void {}
  accepted(): number[] {
    return this.received.flatMap((m) => (m.type === "results" ? m.outcomes.flatMap((o) => ("seq" in o ? [o.seq] : [])) : []))
  }
}

const submit = (from: number, n: number): Submit => ({
  type: "submit", docId: DOC, ackedClientSeq: from - 1,
  commands: Array.from({ length: n }, (_, i) => ({ clientSeq: from + i, name: "incr", args: { by: 1 } })),
})

const setup = async () => {
  const runtime = new VirtualRuntime(1)
  const storage = new MemoryStorage()
  const batches: number[] = []
  const batch = storage.batch.bind(storage)
  storage.batch = (ops, options) => {
    batches.push(ops.length)
    return batch(ops, options)
  }
  const hub = new Hub({ machines: [Counter], storage, runtime })
  const doc = await hub.doc(DOC, Counter)
  const conn = new Collecting()
  doc.subscribe(conn, "client-a", 0, 0)
  await runtime.run({ forMs: 10 })
  return { runtime, hub, doc, conn, batches }
}

describe("group commit", () => {
  test("submits of the same task are one storage batch", async () => {
    const { runtime, hub, doc, conn, batches } = await setup()
    const before = batches.length
    doc.submit(conn, "client-a", submit(1, 3))
    doc.submit(conn, "client-a", submit(4, 3))
    doc.submit(conn, "client-a", submit(7, 2))
    await runtime.run({ forMs: 10 })
    expect(batches.length - before).toBe(1)
    expect(conn.accepted()).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(doc.headSeq).toBe(8)
    expect(doc.state.value).toBe(8)
    await hub.close()
  })

  test("a submit of a later task is a batch of its own", async () => {
    const { runtime, hub, doc, conn, batches } = await setup()
    const before = batches.length
    doc.submit(conn, "client-a", submit(1, 2))
    await runtime.run({ forMs: 10 })
    doc.submit(conn, "client-a", submit(3, 2))
    await runtime.run({ forMs: 10 })
    expect(batches.length - before).toBe(2)
    expect(conn.accepted()).toEqual([1, 2, 3, 4])
    await hub.close()
  })
})

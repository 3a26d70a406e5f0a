/**
 * A replica keeps at most 64 checkpoints announced for seqs it has not reached
 * (replica-state.ts `#expected`): now the nearest 64. It kept the first 64 that came, for as
 * long as the document was open (across reconnects), so 64 checkpoints for seqs far ahead,
 * sent once (by a hub, or a man in the middle on ws://), took every slot: a hub's periodic
 * checkpoints, which come in the entries message that reaches their seq and so are ahead of
 * the replica when read, were never checked, and a replica that diverged was never told
 * (`desync`), also after reconnecting to an honest hub. Found by a helper's attack review.
 */
import { CanonClient, type ConnectionListener, type Entry, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const DOC = "list"
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

const run = async (inject: boolean): Promise<number[]> => {
  let listener: ConnectionListener<ServerMessage> | undefined
  let connects = 0
  const rt = new VirtualRuntime(1)
  const transport = { connect(l: ConnectionListener<ServerMessage>) { listener = l; connects++; queueMicrotask(() => l.onOpen?.()); return { send: () => {}, close: () => {}, bufferedAmount: 0 } } }
  const client = await CanonClient.open({ transport, runtime: rt, storage: new MemoryStorage(), clientId: "c1", machines: [Todo], backoff: { baseMs: 1, maxMs: 1 } })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Todo, DOC)
  await flush()
  const desyncs: number[] = []
  doc.on("desync", (d) => desyncs.push(d.seq))
  // Injected once: 64 checkpoints for seqs the document will not reach for a long time.
  if (inject) for (let i = 0; i < 64; i++) listener!.onMessage({ type: "checkpoint", docId: DOC, seq: 1e12 + i, hash: "x" })
  // The connection drops; the replica follows an honest hub from then on.
  const before = listener!
  before.onClose({ code: "unreachable", reason: "gone" })
  for (let i = 0; i < 20 && listener === before; i++) {
    await rt.run({ forMs: 50 })
    await flush()
  }
  expect(connects).toBe(2)
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  await flush()
  // The honest hub announces its checkpoint at seq 1 with its entry; this replica's state at
  // seq 1 differs from the hub's (a non-deterministic command, a damaged store: what
  // checkpoints are for). The hash here is not this replica's: it must report a desync.
  const entry: Entry = { seq: 1, time: 0, clientId: "c2", clientSeq: 1, name: "add", args: { id: "a", title: "A" } }
  // (As a hub sends its every-K-entries checkpoint: inside the entries message that reaches it.)
  listener!.onMessage({ type: "entries", docId: DOC, entries: [entry], checkpoint: { seq: 1, hash: "the-hubs-hash" } })
  await flush()
  expect(doc.confirmedSeq).toBe(1)
  await client.close()
  return desyncs
}

test("without the injection the divergence is reported (control)", async () => {
  expect(await run(false)).toEqual([1])
})

test("checkpoints for far-away seqs do not stop later checkpoints from being checked", async () => {
  expect(await run(true)).toEqual([1])
})

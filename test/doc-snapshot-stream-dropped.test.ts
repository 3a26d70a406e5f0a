/**
 * A snapshot stream cut by a disconnect is kept to resume (core/replica/doc.ts `#receiver`),
 * and let go when the next connection's hub answers the subscribe with `synced` instead of
 * resuming it (`#receiverCarried`). It was let go only by another stream's begin, its end, a
 * bad chunk or a size over the limit: a hostile hub (or a man in the middle on ws://) began a
 * stream of up to maxSnapshotBytes (1 GiB by default), sent part of it and dropped the
 * connection, and the buffer (up to twice what was sent) stayed in the tab for as long as the
 * document was open, under an honest hub that served the document by entries. Found by an
 * attack review; fails before (0 MiB freed).
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { CanonClient, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

const DOC = "list"
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))
const external = (): number => {
  gc()
  return process.memoryUsage().arrayBuffers
}

test("a stream cut by a disconnect is not held once an honest hub has served the document", async () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  let connects = 0
  const rt = new VirtualRuntime(1)
  const transport = { connect(l: ConnectionListener<ServerMessage>) { listener = l; connects++; queueMicrotask(() => l.onOpen?.()); return { send: () => {}, close: () => {}, bufferedAmount: 0 } } }
  const client = await CanonClient.open({ transport, runtime: rt, storage: new MemoryStorage(), clientId: "c1", machines: [Todo], backoff: { baseMs: 1, maxMs: 1 } })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  const doc = await client.open(Todo, DOC)
  await flush()

  const base = external()
  // The hostile hub: a stream of 1 GiB claimed, 33 MiB sent.
  const chunk = new Uint8Array(1 << 20)
  listener!.onMessage({ type: "snapshot-begin", docId: DOC, snapshotId: 9, seq: 50, hash: "h", size: 1 << 30 })
  for (let i = 0; i < 33; i++) listener!.onMessage({ type: "snapshot-chunk", docId: DOC, snapshotId: 9, offset: i << 20, bytes: chunk })
  const during = external()
  const first = listener!
  first.onClose({ code: "unreachable", reason: "gone" })
  for (let i = 0; i < 20 && listener === first; i++) {
    await rt.run({ forMs: 50 })
    await flush()
  }
  expect(connects).toBe(2)

  // The honest hub: the document is at seq 0 and it says so (no snapshot needed).
  listener!.onMessage({ type: "welcome", protocol: 1, clientId: "c1" })
  await flush()
  listener!.onMessage({ type: "entries", docId: DOC, entries: [{ seq: 1, time: 0, clientId: "c2", clientSeq: 1, name: "add", args: { id: "a", title: "A" } }] })
  listener!.onMessage({ type: "synced", docId: DOC, seq: 1 })
  await flush()
  await doc.whenStored()
  expect(doc.confirmedSeq).toBe(1)
  expect(doc.synced).toBe(true)
  const freed = during - external()
  expect(during - base).toBeGreaterThan(32 << 20)
  expect(freed).toBeGreaterThan(32 << 20)
  await client.close()
})

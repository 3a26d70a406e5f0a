/**
 * A snapshot stream that starts again from the beginning, on the same connection, below what
 * the replica already has: a chunk read failed half-way and the hub streamed the snapshot anew
 * (followers.ts `failed`). The replica ignored bytes it had and acknowledged none of them; the
 * hub's sender, which takes an acknowledgement as credit and never as a skip, sent a window
 * and waited for credit that never came, for the rest of the connection (a 6 MB snapshot:
 * nothing confirmed after 120 s; found by a review). Bytes streamed again are acknowledged as
 * new ones are (core/replica/snapshot-receiver.ts).
 */
import { CanonClient, Hub, type KVStore } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import * as K from "../core/store/keys.js"
import { Todo } from "./support/machines.js"
import { running, settleWithTurns } from "./support/virtual-time.js"
import { intercepted } from "./support/intercepted.js"

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

test("a snapshot streamed again from the start after a failed chunk read reaches the replica", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const disk = new MemoryStorage()
  // Chunk reads slow (300 ms: the replica is well into the stream when one fails), one failing once.
  const state = { slow: false, failAt: undefined as Uint8Array | undefined }
  const storage: KVStore = {
    get: async (k) => {
      if (state.slow && k[1] === K.authChunkPrefix("d")[1]) await new Promise<void>((r) => rt.setTimer(300, r))
      if (state.failAt !== undefined && same(k, state.failAt)) {
        state.failAt = undefined
        throw Object.assign(new Error("The disk did not answer."), { code: "storage-failed" })
      }
      return disk.get(k)
    },
    range: (o) => disk.range(o),
    batch: (ops, o) => disk.batch(ops, o),
    close: () => disk.close(),
  }
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, snapshotLagEntries: 16 } as never)
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const writer = await running(rt, (await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w" }))).open(Todo, "d"))
  for (let i = 0; i < 3000; i++) writer.submit("add", { id: `a${i}`, title: "x".repeat(2000) }).catch(() => {})
  await run(5_000)
  expect(writer.pendingCount).toBe(0)
  const meta = await running(rt, (await running(rt, hub.doc("d", Todo))).snapshotNow())
  expect(meta.chunks).toBeGreaterThan(20)
  state.slow = true
  state.failAt = K.authChunk("d", meta.seq, 14)

  const begins: number[] = []
  const inner = net.transport("r")
  const link = intercepted(inner, {
    message: (m, deliver) => {
      if (m.type === "snapshot-begin") begins.push(rt.now())
      deliver(m)
    },
  })
  const reader = await running(rt, (await running(rt, CanonClient.open({ transport: link, runtime: rt, clientId: "r" }))).open(Todo, "d"))
  await run(120_000)
  expect(state.failAt).toBeUndefined()
  // The stream the failed read cut, and the hub's own retry (the replica does not start a third).
  expect(begins.length).toBe(2)
  expect(reader.synced).toBe(true)
  expect(Object.keys(reader.state.items).length).toBe(3000)
}, 120_000)

/**
 * A connection the hub closes itself is also forgotten by it. Transports do not call
 * `onClose` after a close the hub asked for, so a session closed without being dropped
 * stayed in the hub for good, following its documents: they never went idle and unloaded,
 * and `stats().connections` counted it. Three such closes: a document broken by a failed
 * write (its followers are told to reconnect), a message the transport cannot send, and a
 * document dropping a slow consumer. Now every close of a hub connection forgets its
 * session (core/authority/guarded-connection.ts).
 */
import { CanonClient, Hub, type ServerMessage } from "../core/index.js"
import type { BatchOp, Connection, ConnectionAcceptor } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Counter } from "./support/machines.js"
import { hubWorld } from "./support/hub-wire.js"
import { DEFAULT_IDLE_DOCUMENTS } from "../core/authority/idle-documents.js"

/** Past the time a document nobody follows is kept loaded. */
const IDLE_KEPT_MS = DEFAULT_IDLE_DOCUMENTS.ms + 1_000

test("followers of a document broken by a failed write are forgotten once closed; the document unloads when idle", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  let failNext = false
  const storage = new MemoryStorage({ failWrite: (_ops: ReadonlyArray<BatchOp>) => (failNext ? ((failNext = false), true) : false) })
  const hub = new Hub({ machines: [Counter], storage, runtime: rt, idleUnloadMs: 250 })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("c"), runtime: rt, machines: [Counter] })
  const doc = await client.open(Counter, "d")
  await rt.run({ forMs: 100 })
  failNext = true
  doc.submit("incr", { by: 1 }).catch(() => {})
  await rt.run({ forMs: 3_000 })
  expect(doc.pendingCount).toBe(0)
  // The client reconnected once: one connection, not the closed one as well.
  expect(hub.stats().connections).toBe(1)
  await client.close()
  await rt.run({ forMs: IDLE_KEPT_MS })
  expect(hub.stats()).toMatchObject({ documents: 0, connections: 0, queuedMessages: 0 })
})

test("a connection whose message cannot be sent is closed and forgotten", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: rt, idleUnloadMs: 250 })
  // The transport cannot encode entries for this one connection (say a frame over its limit).
  let broken: Connection<ServerMessage> | undefined
  const acceptor: ConnectionAcceptor = {
    accept: (conn, info) => {
      const wrapped: Connection<ServerMessage> = {
        send: (m) => {
          if (wrapped === broken && m.type === "entries") throw new Error("cannot encode")
          conn.send(m)
        },
        close: (c, r) => conn.close(c, r),
        get bufferedAmount() { return conn.bufferedAmount },
      }
      broken ??= wrapped
      return hub.accept(wrapped, info)
    },
  }
  net.listen(acceptor)
  const reader = await CanonClient.open({ transport: net.transport("reader"), runtime: rt, machines: [Counter], backoff: { baseMs: 60_000, maxMs: 60_000 } })
  await reader.open(Counter, "d")
  const writer = await CanonClient.open({ transport: net.transport("writer"), runtime: rt, machines: [Counter] })
  const wdoc = await writer.open(Counter, "d")
  await rt.run({ forMs: 100 })
  wdoc.submit("incr", { by: 1 }).catch(() => {})
  await rt.run({ forMs: 500 })
  // The reader's connection was closed (and it waits a minute to come back): only the writer's is left.
  expect(hub.stats().connections).toBe(1)
  await writer.close()
  // The reader client too (it would come back after its backoff); a session of it the hub kept would follow "d" still.
  await reader.close()
  await rt.run({ forMs: IDLE_KEPT_MS })
  expect(hub.stats()).toMatchObject({ documents: 0, connections: 0, queuedMessages: 0 })
})

test("a reader dropped as a slow consumer by one document is forgotten: its other documents unload when idle", async () => {
  const KiB = 1024
  // Hard limit under the high-water mark: the reader is dropped rather than paused.
  const w = hubWorld({ highWaterMark: 1024 * KiB, hardLimit: 64 * KiB, idleUnloadMs: 250 })
  const reader = await w.peer()
  // As the ws and memory transports do: no onClose for a close the hub asked for.
  const listener = reader.listener
  reader.listener = { onMessage: (m) => listener.onMessage(m), onClose: () => {} }
  w.subscribe(reader, "busy")
  w.subscribe(reader, "quiet")
  await w.run(20)
  const writer = await w.peer()
  w.subscribe(writer, "busy")
  await w.run(20)
  reader.stall()
  for (let i = 1; i <= 40 && reader.closed === undefined; i++) {
    writer.send({ type: "submit", docId: "busy", ackedClientSeq: 0, commands: [{ clientSeq: i, name: "add", args: { id: `i${i}`, title: "t".repeat(8 * KiB) } }] })
    await w.run(5)
  }
  expect(reader.closed).toBe("slow-consumer")
  await w.run(IDLE_KEPT_MS)
  // The writer and its document are left; the reader and "quiet", which only it followed, are gone.
  expect(w.hub.stats()).toMatchObject({ documents: 1, connections: 1, queuedMessages: 0 })
})

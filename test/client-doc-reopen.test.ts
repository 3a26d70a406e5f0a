/**
 * A document closed and opened again at once on one client (an effect's cleanup, not awaited,
 * then the effect again: React's StrictMode does exactly this) while the closed document's
 * writes are still on their way to the disk. The new document read the store before they
 * landed: it numbered its next command with a number the first had taken, and its outbox
 * record overwrote that command (lost, its receipt saying it stayed in the outbox); online,
 * the two lanes wrote the document's records independently and an older meta landed over a
 * newer one, and every later open failed `storage-corrupt`. One writer per document now: an
 * open reads the store after the last close's writes (client.ts #openDoc).
 */
import { CanonClient, CanonError, Hub, replicaStorage } from "../core/index.js"
import { ReplicaStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"
import { heldDisk } from "./support/held-disk.js"

const tick = () => new Promise((r) => setImmediate(r))

test("offline: a command made before the close and one made after the reopen are both in the outbox, numbered 1 and 2", async () => {
  const disk = heldDisk()
  const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), storage: replicaStorage(disk.storage), autoConnect: false })
  const first = await client.open(Todo, "list")
  disk.hold()
  const r1 = first.submit("add", { id: "a", title: "made before the cleanup" })
  void first.close()
  const reopening = client.open(Todo, "list")
  await tick()
  await disk.release()
  const second = await reopening
  const r2 = second.submit("add", { id: "b", title: "made after" })
  await r1.catch(() => {})
  await client.close()
  expect([r1.clientSeq, r2.clientSeq]).toEqual([1, 2])
  const stored = await new ReplicaStore(disk.inner).load("list")
  expect(stored?.outbox.map((o) => [o.clientSeq, (o.args as { id: string }).id])).toEqual([[1, "a"], [2, "b"]])
})

test("a client closed while a document it closed earlier is still writing lets go of the store after those writes", async () => {
  const disk = heldDisk()
  const storage = replicaStorage(disk.storage)
  const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), storage, autoConnect: false })
  const doc = await client.open(Todo, "list")
  disk.hold()
  doc.submit("add", { id: "a", title: "kept" }).catch(() => {})
  void doc.close()
  let closed = false
  const closing = client.close().then(() => (closed = true))
  for (let i = 0; i < 10; i++) await tick()
  expect(closed).toBe(false)
  await disk.release()
  await closing
  const again = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(2), storage, autoConnect: false })
  const reopened = await again.open(Todo, "list")
  expect(reopened.pending.map((p) => p.clientSeq)).toEqual([1])
  await again.close()
})

test("online, with entries arriving: the store stays openable and holds every command", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const disk = heldDisk()
  const storage = replicaStorage(disk.storage)
  const a = await CanonClient.open({ transport: net.transport("a"), runtime: rt, machines: [Todo], storage })
  const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt, machines: [Todo] })
  const docB = await b.open(Todo, "d")
  let docA = await a.open(Todo, "d")
  await rt.run({ forMs: 50 })
  disk.hold()
  for (let i = 0; i < 3; i++) docB.submit("add", { id: `b${i}`, title: "B" })
  await rt.run({ forMs: 20 })
  void docA.state
  await tick()
  docA.submit("add", { id: "a1", title: "A's item" }).catch(() => {})
  await tick()
  void docA.close()
  for (let i = 3; i < 5; i++) docB.submit("add", { id: `b${i}`, title: "B" })
  await rt.run({ forMs: 20 })
  const reopening = a.open(Todo, "d")
  await rt.run({ forMs: 20 })
  await disk.release()
  docA = await reopening
  await rt.run({ forMs: 100 })
  void docA.state
  await rt.run({ forMs: 100 })
  await a.close()
  const again = await CanonClient.open({ transport: net.transport("a2"), runtime: rt, machines: [Todo], storage })
  const reopened = await again.open(Todo, "d").then((d) => Object.keys(d.state.items).sort().join(","), (e) => (e instanceof CanonError ? `${e.code}: ${e.message}` : String(e)))
  await again.close()
  await b.close()
  await hub.close()
  expect(reopened).toBe("a1,b0,b1,b2,b3,b4")
})

test("an open is not held up by other documents closing meanwhile (a list opening and closing a document per row)", async () => {
  const inner = new MemoryStorage()
  // Reads take a moment, as on a disk: other documents close during this open's read.
  const slow = { ...inner, get: (k: Uint8Array) => new Promise<Uint8Array | undefined>((r) => setTimeout(() => r(inner.get(k) as never), 2)), range: inner.range.bind(inner), batch: inner.batch.bind(inner), claim: inner.claim.bind(inner), close: inner.close.bind(inner) }
  const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), storage: replicaStorage(slow as never), autoConnect: false })
  let churning = true
  const churn = (async () => {
    for (let i = 0; churning && i < 2000; i++) await (await client.open(Todo, `row${i % 20}`)).close()
  })()
  const opened = await Promise.race([client.open(Todo, "x").then(() => "opened"), new Promise((r) => setTimeout(() => r("still waiting"), 3000))])
  churning = false
  await churn
  await client.close()
  expect(opened).toBe("opened")
})

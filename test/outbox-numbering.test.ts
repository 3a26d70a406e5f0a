/**
 * A client's command numbers (clientSeqs) have no holes, in the stored outbox or on the wire:
 * the hub refuses a hole (sequence-gap), so a hole stored on disk would leave the client's
 * outbox unsendable for good.
 *
 * Found by the client crash test (test/crash/client-crash.ts, seed 251190864): the stored
 * "next clientSeq" of an outbox write counted commands submitted while the write waited in
 * the storage lane, whose own write came later. Killed between the two writes, the restarted
 * client numbered new commands past a hole. Fixes: the stored next number covers stored
 * commands only; and a client told of a hole that none of its commands holds closes it (for
 * stores written before the fix).
 */
import { CanonClient, Hub, replicaStorage, type BatchOp, type ClientMessage, type ConnectionListener, type KVStore, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { ReplicaStore } from "../core/internal.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"
import { SimProcess } from "./sim/process.js"
import { running, settle } from "./support/virtual-time.js"

const DOC = "list"

const world = (seed: number, diskMs: () => number) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hubStore = new MemoryStorage()
  const hub = new Hub({ machines: [Todo], storage: hubStore, runtime: rt })
  net.listen(hub)
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: diskMs } })
  const start = async (autoConnect: boolean) => {
    const proc = new SimProcess("a", rt, disk)
    const client = await CanonClient.open({ transport: proc.wrapTransport(net.transport("a")), runtime: proc.runtime, clientId: "a", storage: replicaStorage(proc.storage), backoff: { baseMs: 50, maxMs: 200 }, autoConnect })
    const doc = await client.open(Todo, DOC)
    const errors: string[] = []
    doc.on("error", (e) => errors.push(e.code))
    return { proc, client, doc, errors }
  }
  return { rt, net, hub, disk, start }
}

test("commands submitted while an outbox write waits in the lane leave no hole after a crash", async () => {
  const w = world(31, () => 100)
  const first = await running(w.rt, w.start(false))
  // Command 1's write is on the disk for 100 ms; 2 is flushed behind it; 3 is submitted while
  // 2's write waits in the lane (so its number is taken before 2's write runs).
  first.doc.submit("add", { id: "a", title: "A" })
  await w.rt.run({ forMs: 1 })
  first.doc.submit("add", { id: "b", title: "B" })
  await w.rt.run({ forMs: 1 })
  first.doc.submit("add", { id: "c", title: "C" })
  // 1 and 2 are stored (t = 200 ms); 3's write is in flight when the process dies.
  await w.rt.run({ forMs: 250 })
  first.proc.kill()
  w.net.drop("a")

  const second = await running(w.rt, w.start(false))
  expect(second.doc.pending.map((p) => p.clientSeq)).toEqual([1, 2])
  const receipt = second.doc.submit("add", { id: "d", title: "D" })
  expect(receipt.clientSeq).toBe(3)
  second.client.connect()
  await settle(w.rt)
  expect(second.errors).toEqual([])
  expect(second.doc.pendingCount).toBe(0)
  expect(Object.keys((await w.hub.doc(DOC, Todo)).state.items).sort()).toEqual(["a", "b", "d"])
  await running(w.rt, second.client.close())
  await w.hub.close()
})

test("a stored outbox with a hole before it (written before the fix) is renumbered and sent, once", async () => {
  const w = world(32, () => 1)
  // What the faulty write left: commands 1 and 2 in the outbox, the next number 6.
  const store = new ReplicaStore(w.disk)
  await running(w.rt, store.confirm(DOC, { meta: { machine: Todo.name, version: Todo.version, confirmedSeq: 0, nextClientSeq: 6 }, entries: [], settled: [], outbox: [
    { clientSeq: 1, name: "add", args: { id: "a", title: "A" } },
    { clientSeq: 2, name: "add", args: { id: "b", title: "B" } },
  ] }))
  const first = await running(w.rt, w.start(false))
  // Numbered past the hole, as the faulty store says; the hub expects 3.
  const late = first.doc.submit("add", { id: "c", title: "C" })
  expect(late.clientSeq).toBe(6)
  await settle(w.rt, 500)
  first.client.connect()
  await settle(w.rt)
  // Told once of the hole, it closed it: every command applied once, in order.
  expect(first.errors).toEqual(["sequence-gap"])
  expect(first.doc.pendingCount).toBe(0)
  expect(late.clientSeq).toBe(3)
  expect(await late).toMatchObject({ seq: 3 })
  const log = (await w.hub.doc(DOC, Todo)).state.items
  expect(Object.keys(log).sort()).toEqual(["a", "b", "c"])
  // The next command follows on, stored and on the wire.
  expect(first.doc.submit("add", { id: "d", title: "D" }).clientSeq).toBe(4)
  await settle(w.rt)
  expect(first.errors).toEqual(["sequence-gap"])
  expect(first.doc.pendingCount).toBe(0)
  await running(w.rt, first.client.close())

  // After a restart the stored numbers are contiguous too.
  const again = await running(w.rt, w.start(false))
  expect(again.doc.submit("add", { id: "e", title: "E" }).clientSeq).toBe(5)
  again.client.connect()
  await settle(w.rt)
  expect(again.errors).toEqual([])
  expect(Object.keys((await w.hub.doc(DOC, Todo)).state.items).sort()).toEqual(["a", "b", "c", "d", "e"])
  await running(w.rt, again.client.close())
  await w.hub.close()
})

test("a stored next number behind the stored outbox (a damaged meta) never reuses a stored command's number", async () => {
  const storage = new MemoryStorage()
  await new ReplicaStore(storage).confirm(DOC, { meta: { machine: "todo", version: 1, confirmedSeq: 0, nextClientSeq: 1 }, entries: [], settled: [], outbox: [
    { clientSeq: 1, name: "add", args: { id: "a", title: "A" } },
    { clientSeq: 2, name: "add", args: { id: "b", title: "B" } },
  ] })
  const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), clientId: "a", storage, autoConnect: false })
  const doc = await client.open(Todo, DOC)
  const receipt = doc.submit("add", { id: "c", title: "C" })
  await receipt.persisted
  expect(receipt.clientSeq).toBe(3)
  expect((await new ReplicaStore(storage).load(DOC))!.outbox.map((o) => o.clientSeq)).toEqual([1, 2, 3])
  await client.close()
})

/** A hub that is the test: it records the clientSeqs submitted and delivers what the test says. */
const fakeHub = () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  const sent: number[] = []
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      listener = l
      queueMicrotask(() => l.onOpen?.())
      return { send: (m: ClientMessage) => void (m.type === "submit" && sent.push(...m.commands.map((c) => c.clientSeq))), close() {}, bufferedAmount: 0 }
    },
  }
  return { transport, sent, hub: (m: ServerMessage) => listener!.onMessage(m) }
}
const flushes = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}
/** A client on `storage`, welcomed by the scripted hub `f`, with document DOC open. */
const connected = async (f: ReturnType<typeof fakeHub>, storage: KVStore, runtime = new VirtualRuntime(1)) => {
  const client = await CanonClient.open({ transport: f.transport, runtime, storage: replicaStorage(storage), clientId: "c1", machines: [Todo] })
  await flushes(1)
  f.hub({ type: "welcome", protocol: 1, clientId: "c1" })
  return { client, doc: await client.open(Todo, DOC) }
}

test("commands renumbered by the hub are not sent under their new numbers before those are stored", async () => {
  // Sent as 10 and 11 while the disk still held them as 1 and 2, a crash between the two
  // left the old numbers: sent again after the restart, the hub (already past 11) said
  // numbering resumes higher, and applied the same commands a second time.
  const { heldDisk } = await import("./support/held-disk.js")
  const disk = heldDisk()
  const f = fakeHub()
  const { client, doc } = await connected(f, disk.storage)
  doc.submit("add", { id: "a", title: "A" }).catch(() => {})
  doc.submit("add", { id: "b", title: "B" }).catch(() => {})
  await doc.whenStored()
  await flushes()
  expect(f.sent).toEqual([1, 2])
  disk.hold()
  f.hub({ type: "error", docId: DOC, code: "sequence-reset", seq: 10, message: "" })
  // Anything that frees the send window (another client's entry) must not send them yet.
  f.hub({ type: "entries", docId: DOC, entries: [{ seq: 1, time: 1, clientId: "x", clientSeq: 1, name: "add", args: { id: "z", title: "Z" } }] })
  // A second renumbering before the first is stored: released only under the newest numbers.
  f.hub({ type: "error", docId: DOC, code: "sequence-reset", seq: 20, message: "" })
  await flushes()
  expect(f.sent).toEqual([1, 2])
  // Stored all the same, under their old numbers: a crash now loses nothing.
  expect(doc.pending.map((p) => [p.clientSeq, p.stored])).toEqual([[20, true], [21, true]])
  await disk.release()
  await flushes()
  expect(f.sent).toEqual([1, 2, 20, 21])
  expect((await new ReplicaStore(disk.inner).load(DOC))!.outbox.map((o) => o.clientSeq)).toEqual([20, 21])
  await client.close()
})

test("a document closed after a failed renumbering write says the command stays in the outbox, as it does", async () => {
  // Told "closed before it was stored: it is lost" while the outbox held it under its old
  // number, an app that believed it submitted it again, and it applied twice (a review).
  let failing = false
  const storage = new MemoryStorage({ failWrite: () => failing })
  const f = fakeHub()
  const rt = new VirtualRuntime(1)
  const { client, doc } = await connected(f, storage, rt)
  const outcome = doc.submit("add", { id: "a", title: "A" }).then(() => "confirmed", (e) => `${e.code}`)
  await doc.whenStored()
  await flushes()
  expect(f.sent).toEqual([1])
  failing = true
  f.hub({ type: "error", docId: DOC, code: "sequence-reset", seq: 10, message: "" })
  await flushes()
  await doc.close()
  await flushes()
  failing = false
  await client.close()
  expect(await outcome).toBe("closed")
  const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, storage: replicaStorage(storage), clientId: "c1", autoConnect: false })
  expect((await again.open(Todo, DOC)).pending.map((p) => [p.clientSeq, p.name])).toEqual([[1, "add"]])
  await again.close()
})

/** A disk whose writes, while held, wait for the test, one at a time; `failNext` fails the next write. */
const gatedDisk = () => {
  const inner = new MemoryStorage()
  const queue: Array<() => Promise<void>> = []
  const s = { held: false, failNext: 0 }
  const storage: KVStore = {
    get: (k) => inner.get(k), range: (o) => inner.range(o), close: () => inner.close(), claim: () => inner.claim(),
    batch: (ops: ReadonlyArray<BatchOp>, o) => {
      if (s.failNext > 0) {
        s.failNext--
        return Promise.reject(new Error("disk"))
      }
      if (!s.held) return inner.batch(ops, o)
      const copy = ops.map((op) => ({ ...op }))
      return new Promise<void>((resolve, reject) => queue.push(() => inner.batch(copy, o).then(resolve, reject)))
    },
  }
  const outbox = async () => (await new ReplicaStore(inner).load(DOC))!.outbox.map((o) => [o.clientSeq, (o.args as { id: string }).id])
  return { inner, storage, queue, s, outbox }
}

test("commands renumbered again while the write carrying their first move is on the disk are sent only once stored under their newest numbers", async () => {
  const d = gatedDisk()
  const f = fakeHub()
  const { client, doc } = await connected(f, d.storage)
  doc.on("error", () => {})
  doc.submit("add", { id: "a", title: "A" }).catch(() => {})
  await doc.whenStored()
  await flushes()
  expect(f.sent).toEqual([1])
  // The reset's move (1 -> 10) fails to write.
  d.s.failNext = 1
  f.hub({ type: "error", docId: DOC, code: "sequence-reset", seq: 10, message: "" })
  await flushes()
  expect(d.s.failNext).toBe(0)
  // A new command: its outbox write carries a (as 10) and b (11), and is on the disk...
  d.s.held = true
  doc.submit("add", { id: "b", title: "B" }).catch(() => {})
  await flushes()
  expect(d.queue.length).toBe(1)
  // ...when a second reset (an earlier copy of a's submit answered) moves them to 20, 21.
  f.hub({ type: "error", docId: DOC, code: "sequence-reset", seq: 20, message: "" })
  await flushes()
  expect(doc.pending.map((p) => p.clientSeq)).toEqual([20, 21])
  // The outbox write lands; the move to 20, 21 not yet.
  await d.queue.shift()!()
  await flushes()
  // Before: { disk: [[10, "a"], [11, "b"]], sent: [1, 20, 21] }. Killed now, they come back as
  // 10 and 11; the hub (past 21) says numbering resumes higher and applies them a second time.
  expect({ disk: await d.outbox(), sent: f.sent }).toEqual({ disk: [[10, "a"], [11, "b"]], sent: [1] })
  d.s.held = false
  while (d.queue.length > 0) await d.queue.shift()!()
  await flushes()
  expect(f.sent).toEqual([1, 20, 21])
  await client.close()
})

test("a sequence-gap renumbering while a new command's outbox write waits in the lane overwrites no stored command's record", async () => {
  const d = gatedDisk()
  // A store written before the hole fix: command "b" as 2, nothing at 1.
  await new ReplicaStore(d.inner).confirm(DOC, { meta: { machine: Todo.name, version: Todo.version, confirmedSeq: 0, nextClientSeq: 3 }, entries: [], settled: [], outbox: [
    { clientSeq: 2, name: "add", args: { id: "b", title: "B" } },
  ] })
  const f = fakeHub()
  const { client, doc } = await connected(f, d.storage)
  doc.on("error", () => {})
  await flushes()
  expect(f.sent).toEqual([2])
  d.s.held = true
  // Another client's entry: its confirm write is on the (slow) disk.
  f.hub({ type: "entries", docId: DOC, entries: [{ seq: 1, time: 1, clientId: "x", clientSeq: 1, name: "add", args: { id: "z", title: "Z" } }] })
  await flushes()
  // "c" is submitted as 3; its outbox write waits behind the confirm.
  doc.submit("add", { id: "c", title: "C" }).catch(() => {})
  await flushes()
  // The hub: missing 1. b 2 -> 1, c 3 -> 2.
  f.hub({ type: "error", docId: DOC, code: "sequence-gap", seq: 1, message: "" })
  await flushes()
  expect(doc.pending.map((p) => [p.clientSeq, p.name])).toEqual([[1, "add"], [2, "add"]])
  // Each write lands; after each (a crash point), "b" is on the disk.
  const crashPoints: unknown[] = []
  while (d.queue.length > 0) {
    await d.queue.shift()!()
    await flushes()
    crashPoints.push(await d.outbox())
  }
  d.s.held = false
  // Before: [[[2, "b"]], [[2, "c"]], [[1, "b"], [2, "c"]]]: after c's outbox write, record 2 is c
  // and "b" (stored, and sent as 2) is nowhere: killed then, it is lost without a word.
  expect(crashPoints.filter((o) => !(o as string[][]).some(([, id]) => id === "b"))).toEqual([])
  await client.close()
})

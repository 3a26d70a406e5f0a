/**
 * One open client per storage. Two clients on one storage share its clientId and command
 * numbers: the hub took the second one's command for a retry of the first's (same name, same
 * arguments, same number) and answered it with the first one's outcome, so a click was lost
 * while both receipts said confirmed. Now `open` holds the store (`KVStore.claim`) and a
 * second one is refused `storage-in-use`: MemoryStorage here, IndexedDB across tabs with a
 * Web Lock (test/storage-indexeddb-tabs.test.ts, in Chromium).
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { CanonClient, CanonError, Hub, type KVStore, replicaStorage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { Counter } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"

const setup = () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}

const codeOf = (e: unknown) => (e instanceof CanonError ? e.code : String(e))

test("a second client on a storage in use is refused storage-in-use; two clients never both submit under one clientId", async () => {
  const env = setup()
  const shared = new MemoryStorage()
  const a = await CanonClient.open({ transport: env.net.transport("a"), runtime: env.rt, machines: [Counter], storage: shared })
  const second = await CanonClient.open({ transport: env.net.transport("b"), runtime: env.rt, machines: [Counter], storage: shared }).then(() => "opened", codeOf)
  expect(second).toBe("storage-in-use")
  const doc = await a.open(Counter, "d")
  const first = doc.submit("incr", { by: 1 })
  await env.rt.run({ forMs: 200 })
  await first
  // Closed, the storage is free again: the next client is the same replica (same clientId), and its count adds up.
  await a.close()
  const b = await CanonClient.open({ transport: env.net.transport("b"), runtime: env.rt, machines: [Counter], storage: shared })
  expect(b.clientId).toBe(a.clientId)
  const again = await b.open(Counter, "d")
  const done = again.submit("incr", { by: 1 })
  await env.rt.run({ forMs: 200 })
  await done
  expect((await env.hub.doc("d", Counter)).state.value).toBe(2)
  await b.close()
})

test("the store's claim: refused by another holder, let go on close, and let go when open fails", async () => {
  const env = setup()
  let holder: string | undefined
  const events: string[] = []
  const lockable = (name: string): KVStore => {
    const inner = new MemoryStorage()
    return {
      get: (k) => inner.get(k), batch: (ops, o) => inner.batch(ops, o), range: (o) => inner.range(o), close: () => inner.close(),
      claim: async () => {
        if (holder !== undefined) throw new CanonError({ code: "storage-in-use", message: `held by ${holder}` })
        holder = name
        events.push(`claim ${name}`)
        return () => {
          holder = undefined
          events.push(`release ${name}`)
        }
      },
    }
  }
  // Two store objects standing for one database in two tabs.
  const a = await CanonClient.open({ transport: env.net.transport("a"), runtime: env.rt, machines: [Counter], storage: replicaStorage(lockable("tab1")) })
  const refused = await CanonClient.open({ transport: env.net.transport("b"), runtime: env.rt, machines: [Counter], storage: replicaStorage(lockable("tab2")) }).catch((e: unknown) => e)
  expect(codeOf(refused)).toBe("storage-in-use")
  expect((refused as CanonError).message).toBe("held by tab1")
  await a.close()
  expect(events).toEqual(["claim tab1", "release tab1"])
  // A storage that fails while the client loads its identity: the claim is let go.
  const broken = lockable("tab3")
  const failing: KVStore = { ...broken, get: () => Promise.reject(new CanonError({ code: "storage-failed", message: "disk gone" })) }
  expect(codeOf(await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], storage: replicaStorage(failing) }).catch((e: unknown) => e))).toBe("storage-failed")
  expect(events).toEqual(["claim tab1", "release tab1", "claim tab3", "release tab3"])
  const c = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], storage: replicaStorage(broken) })
  await c.close()
})

/** Runs the virtual clock until `p` settles. */
const drive = async <T>(rt: VirtualRuntime, p: Promise<T>): Promise<T> => {
  let done = false
  p.then(() => (done = true), () => (done = true))
  for (let i = 0; i < 100 && !done; i++) await rt.run({ until: () => done, forMs: 1000 })
  return p
}

const offline = (rt: VirtualRuntime | typeof systemRuntime, storage: KVStore) =>
  CanonClient.open({ transport: offlineTransport, runtime: rt, machines: [Counter], storage: replicaStorage(storage), autoConnect: false })

test("one LevelStorage object handed to two clients of one process: the second is refused (the directory lock only covers a second open)", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "canon-claim-"))
  const storage = await LevelStorage.open(path.join(dir, "db"))
  try {
    const a = await offline(systemRuntime, storage)
    expect(codeOf(await offline(systemRuntime, storage).catch((e: unknown) => e))).toBe("storage-in-use")
    await a.close()
  } finally {
    await storage.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test("close() called twice: the store is let go only once the first call's writes are done", async () => {
  const rt = new VirtualRuntime(3)
  const shared = new MemoryStorage({ latency: { runtime: rt, ms: () => 50 } })
  const a = await drive(rt, offline(rt, shared))
  const docA = await drive(rt, a.open(Counter, "d"))
  docA.submit("incr", { by: 1 }).catch(() => {})
  const first = a.close()
  const second = a.close()
  expect(second).toBe(first)
  // Still writing the outbox: another client waits until it is let go, then loads that command.
  let opened: CanonClient | undefined
  void offline(rt, shared).then((b) => (opened = b))
  await rt.run({ forMs: 10 })
  expect(opened).toBeUndefined()
  await drive(rt, first)
  await rt.run({ forMs: 10 })
  expect(opened?.clientId).toBe(a.clientId)
  const docB = await drive(rt, opened!.open(Counter, "d"))
  expect(docB.pending.map((p) => p.clientSeq)).toEqual([1])
  expect(docB.submit("incr", { by: 2 }).clientSeq).toBe(2)
  await drive(rt, opened!.close())
})

test("a document opening while its client closes is refused closed, never handed out live on a store let go", async () => {
  const rt = new VirtualRuntime(3)
  const shared = new MemoryStorage({ latency: { runtime: rt, ms: () => 5, readMs: () => 20 } })
  const a = await drive(rt, offline(rt, shared))
  const opening = a.open(Counter, "d")
  await drive(rt, a.close())
  expect(codeOf(await drive(rt, opening.then((d) => d, (e: unknown) => e)))).toBe("closed")
})

test("close() not awaited, then a new client on the same store (an effect's cleanup and the effect again): it waits and opens", async () => {
  const storage = new MemoryStorage()
  const a = await offline(systemRuntime, storage)
  const doc = await a.open(Counter, "d")
  doc.submit("incr", { by: 1 }).catch(() => {})
  void a.close()
  const b = await offline(systemRuntime, storage)
  expect(b.clientId).toBe(a.clientId)
  expect((await b.open(Counter, "d")).pendingCount).toBe(1)
  await b.close()
})

test("a transport whose close throws: the client still lets go of its store", async () => {
  const storage = new MemoryStorage()
  const throwingClose = { connect: () => ({ send() {}, close() { throw new Error("socket already gone") }, bufferedAmount: 0 }) }
  const a = await CanonClient.open({ transport: throwingClose, runtime: systemRuntime, machines: [Counter], storage })
  const doc = await a.open(Counter, "d")
  expect(String(await a.close().catch((e: unknown) => e))).toMatch(/socket already gone/)
  // Its documents are closed all the same: nothing of it writes the store any more.
  expect(a.status).toBe("closed")
  expect(doc.isClosed).toBe(true)
  const b = await offline(systemRuntime, storage)
  await b.close()
})

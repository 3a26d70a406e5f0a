/**
 * The replica layer (core/store/replica-store.ts) comes with the storage, not with
 * CanonClient: the adapters' stores carry it (REPLICA_STORE) and are given as they are; a
 * KVStore of one's own is wrapped with `replicaStorage(kv)`. An app that passes no storage
 * does not ship that code (test/bundle-size.test.ts weighs bundle (a), which passes none).
 */
import { CanonClient, CanonError, REPLICA_STORE, replicaStorage, type KVStore, type ReplicaStorage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { offlineTransport } from "./support/offline.js"

/** A KVStore of one's own: every call goes to a MemoryStorage. */
const ownStore = (inner = new MemoryStorage()): KVStore => ({
  get: (k) => inner.get(k),
  batch: (ops, o) => inner.batch(ops, o),
  range: (o) => inner.range(o),
  close: () => inner.close(),
  claim: () => inner.claim(),
})

const open = (storage: ReplicaStorage) => CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), storage, autoConnect: false })

test("an adapter's store is a ReplicaStorage as it is; replicaStorage gives it back unchanged", () => {
  const memory = new MemoryStorage()
  expect(typeof memory[REPLICA_STORE]).toBe("function")
  expect(replicaStorage(memory)).toBe(memory)
})

test("a KVStore of one's own, not wrapped, is refused by open with a sentence that says what to do, before it is touched", async () => {
  let touched = 0
  const kv = ownStore()
  const counting: KVStore = { ...kv, get: (k) => (touched++, kv.get(k)), claim: () => (touched++, kv.claim!()) }
  const e = await open(counting as ReplicaStorage).catch((x: unknown) => x)
  expect(e).toBeInstanceOf(CanonError)
  expect(e).toMatchObject({ code: "storage-failed" })
  expect((e as CanonError).message).toMatch(/replicaStorage\(kv\)/)
  expect(touched).toBe(0)
})

test("replicaStorage(kv): the same kv gives the same storage; a client keeps its replica there across a restart", async () => {
  const kv = ownStore()
  const storage = replicaStorage(kv)
  expect(replicaStorage(kv)).toBe(storage)
  const first = await open(storage)
  const doc = await first.open(Todo, "list")
  await doc.submit("add", { id: "a", title: "A" }).persisted
  await first.close()
  const second = await open(replicaStorage(kv))
  expect(second.clientId).toBe(first.clientId)
  expect((await second.open(Todo, "list")).pending.map((p) => p.name)).toEqual(["add"])
  await second.close()
})

test("replicaStorage(kv) holds the store through kv.claim: a second client on it is refused storage-in-use", async () => {
  const kv = ownStore()
  const a = await open(replicaStorage(kv))
  await expect(open(replicaStorage(kv))).rejects.toMatchObject({ code: "storage-in-use" })
  await a.close()
})

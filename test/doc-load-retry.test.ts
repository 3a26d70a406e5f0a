/**
 * A document the hub could not read from its storage (its load failed on a disk error,
 * `storage-failed`) is asked for again on the same connection, after a backoff
 * (core/replica/doc.ts STORAGE_RETRY_MS); so are submits the hub refused unjudged because it
 * could not read the client's records. Before, the hub's error was the end of it until the
 * next connection: the hub answered the document's submits `not-subscribed` and forgot them,
 * the receipts waited, and a reader saw nothing new, for as long as the connection lasted. A
 * store found damaged (`storage-corrupt`) is not asked for again: the receipts settle `refused`.
 */
import { CanonClient, Hub, type ClientTransport, type KVStore } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import * as K from "../core/store/keys.js"
import { Todo } from "./support/machines.js"
import { running, settleWithTurns } from "./support/virtual-time.js"
import { intercepted } from "./support/intercepted.js"

const HEAD = K.authHead("d")
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/**
 * A hub whose storage fails reads of `state.key` while `failing` is set: document "d"'s head
 * (its load fails), or a client's record of it (its submits cannot be judged).
 */
const world = () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const disk = new MemoryStorage()
  const state = { failing: false, code: "storage-failed", key: HEAD }
  const storage: KVStore = {
    get: (k) => (state.failing && same(k, state.key) ? Promise.reject(Object.assign(new Error("The disk did not answer."), { code: state.code })) : disk.get(k)),
    range: (o) => disk.range(o),
    batch: (ops, o) => disk.batch(ops, o),
    close: () => disk.close(),
  }
  net.listen(new Hub({ machines: [Todo], storage, runtime: rt }))
  /** A new hub process on the same storage: no document loaded. */
  const restart = () => {
    net.stopServer()
    net.listen(new Hub({ machines: [Todo], storage, runtime: rt }))
  }
  return { rt, net, state, restart, run: (ms: number) => settleWithTurns(rt, ms) }
}

/** The subscribes a client sends for document "d". */
const counting = (inner: ClientTransport) => {
  const subscribes: number[] = []
  const transport = intercepted(inner, {
    send: (m, send) => {
      if (m.type === "subscribe" && m.docId === "d") subscribes.push(1)
      send(m)
    },
  })
  return { transport, subscribes }
}

/** A client with document "d" open offline, its events recorded; it connects when `net.heal`s it. */
const offlineDoc = async ({ rt, net, run }: ReturnType<typeof world>, name: string) => {
  net.partition(name)
  const link = counting(net.transport(name))
  const client = await running(rt, CanonClient.open({ transport: link.transport, runtime: rt, clientId: name, storage: new MemoryStorage() }))
  const doc = await running(rt, client.open(Todo, "d"))
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  await run(50)
  return { doc, errors, subscribes: link.subscribes }
}

test("a load that failed (storage-failed) is asked for again: a command submitted meanwhile is confirmed once the disk answers", async () => {
  const code = "storage-failed"
  const w = world()
  const { doc, errors } = await offlineDoc(w, "a")
  w.state.failing = true
  let receipt = "waiting"
  doc.submit("add", { id: "1", title: "x" }).then(() => (receipt = "confirmed"), (e) => (receipt = `rejected ${e.code}`))
  w.net.heal("a")
  await w.run(500)
  expect(errors.length).toBeGreaterThan(0)
  // The disk's own text goes to the operator (onEvent), not to the peer (test/hub-hook-failures.test.ts).
  expect(errors[0]).toBe(`${code}: The hub's storage failed reading "d". Trying again in 1 s.`)
  expect(receipt).toBe("waiting")
  w.state.failing = false
  await w.run(3_000)
  expect(receipt).toBe("confirmed")
  expect(doc.pendingCount).toBe(0)
})

test("a document found damaged (storage-corrupt) is a refusal: receipts settle refused, the command stays for the next connection", async () => {
  const w = world()
  const { doc, errors, subscribes } = await offlineDoc(w, "a")
  w.state.code = "storage-corrupt"
  w.state.failing = true
  let receipt = "waiting"
  doc.submit("add", { id: "1", title: "x" }).then(() => (receipt = "confirmed"), (e) => (receipt = `rejected ${e.code}`))
  w.net.heal("a")
  await w.run(10_000)
  expect(errors[0]).toBe(`storage-corrupt: The hub's storage failed reading "d".`)
  expect(receipt).toBe("rejected refused")
  expect(subscribes.length).toBe(1)
  expect(doc.pendingCount).toBe(1)
  // Repaired, and a new connection: the command goes.
  w.state.failing = false
  w.net.drop("a")
  await w.run(10_000)
  expect(doc.pendingCount).toBe(0)
  expect(Object.keys(doc.state.items)).toEqual(["1"])
})

test("a reader whose document failed to load follows it once the disk answers; the retries back off", async () => {
  const w = world()
  const writer = await offlineDoc(w, "w")
  w.net.heal("w")
  await w.run(500)
  await running(w.rt, writer.doc.submit("add", { id: "1", title: "before" }))
  w.net.partition("w")
  w.restart()
  const reader = await offlineDoc(w, "r")
  w.state.failing = true
  w.net.heal("r")
  // Five minutes of a disk that does not answer: 1, 2, 4 ... 32 s, then every 60 s.
  await w.run(300_000)
  expect(reader.subscribes.length).toBeGreaterThanOrEqual(8)
  expect(reader.subscribes.length).toBeLessThanOrEqual(12)
  expect(reader.errors.at(-1)).toMatch(/ Trying again in 60 s\.$/)
  expect(reader.doc.state.items).toEqual({})
  w.state.failing = false
  await w.run(61_000)
  expect(Object.keys(reader.doc.state.items)).toEqual(["1"])
  // Synced: no more subscribes.
  const n = reader.subscribes.length
  await w.run(300_000)
  expect(reader.subscribes.length).toBe(n)
  w.net.heal("w")
  await w.run(30_000)
  await running(w.rt, writer.doc.submit("add", { id: "2", title: "after" }))
  await w.run(100)
  expect(Object.keys(reader.doc.state.items).sort()).toEqual(["1", "2"])
})

test("submits the hub could not judge (it failed to read the client's record) are sent again: confirmed once the disk answers", async () => {
  const w = world()
  const { doc, errors } = await offlineDoc(w, "a")
  let receipt = "waiting"
  doc.submit("add", { id: "1", title: "x" }).then(() => (receipt = "confirmed"), (e) => (receipt = `rejected ${e.code}`))
  w.state.key = K.authMark("d", "a")
  w.state.failing = true
  w.net.heal("a")
  await w.run(500)
  // Followed, but the command was refused unjudged (and forgotten by the hub).
  expect(doc.synced).toBe(true)
  expect(errors.length).toBeGreaterThan(0)
  expect(errors[0]).toBe(`storage-failed: The hub's storage failed reading this client's records of "d". Trying again in 1 s.`)
  expect(receipt).toBe("waiting")
  w.state.failing = false
  await w.run(3_000)
  expect(receipt).toBe("confirmed")
  expect(doc.pendingCount).toBe(0)
})

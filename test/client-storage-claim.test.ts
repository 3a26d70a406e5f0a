/**
 * One open client per storage. Two clients on one storage share its clientId and command
 * numbers: the hub took the second one's command for a retry of the first's (same name, same
 * arguments, same number) and answered it with the first one's outcome, so a click was lost
 * while both receipts said confirmed. Now `open` holds the store (`KVStore.claim`) and a
 * second one is refused `storage-in-use`: MemoryStorage here, IndexedDB across tabs with a
 * Web Lock (test/storage-indexeddb-tabs.test.ts, in Chromium).
 */
import { CanonClient, CanonError, Hub, type KVStore } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Counter } from "./support/machines.js"

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
  const a = await CanonClient.open({ transport: env.net.transport("a"), runtime: env.rt, machines: [Counter], storage: lockable("tab1") })
  const refused = await CanonClient.open({ transport: env.net.transport("b"), runtime: env.rt, machines: [Counter], storage: lockable("tab2") }).catch((e: unknown) => e)
  expect(codeOf(refused)).toBe("storage-in-use")
  expect((refused as CanonError).message).toBe("held by tab1")
  await a.close()
  expect(events).toEqual(["claim tab1", "release tab1"])
  // A storage that fails while the client loads its identity: the claim is let go.
  const broken = lockable("tab3")
  const failing: KVStore = { ...broken, get: () => Promise.reject(new CanonError({ code: "storage-failed", message: "disk gone" })) }
  expect(codeOf(await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], storage: failing }).catch((e: unknown) => e))).toBe("storage-failed")
  expect(events).toEqual(["claim tab1", "release tab1", "claim tab3", "release tab3"])
  const c = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Counter], storage: broken })
  await c.close()
})

/**
 * An app at an older version that the hub cannot serve because the log it would need is
 * compacted (behind a snapshot of the newer version) is told so. It was told the document
 * "has changes from seq 1 that this app version (v1) cannot show", seq 1 being a plain v1
 * command it can show: a newcomer following the README found it misleading (the real reason
 * was the snapshot the hub took at the version change, which compacted the log behind it).
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { historyOf } from "../core/schema/versions.js"
import { TodoV1, TodoV2 } from "./support/versioned-machines.js"

const DOC = "list"
const V1 = historyOf(TodoV2)!.at(1)!

const settle = async (rt: VirtualRuntime, ms = 3000) => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

test("a v1 app behind the compaction horizon of a v2 document is told the log it needs is gone", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hubStore = new MemoryStorage()
  let hub = new Hub({ machines: [TodoV1], storage: hubStore, runtime: rt })
  net.listen(hub)
  const w = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const wd = await w.open(TodoV1, DOC)
  void wd.submit("add", { id: "a", title: "A" })
  await settle(rt)
  await w.close()
  await hub.close()
  net.stopServer()
  // The hub is upgraded; a v2 app joins and writes (the hub snapshots at the version change
  // for it, and compacts the log behind the snapshot).
  hub = new Hub({ machines: [TodoV2], storage: hubStore, runtime: rt })
  net.listen(hub)
  const n = await CanonClient.open({ transport: net.transport("n"), runtime: rt, clientId: "n", storage: new MemoryStorage() })
  const nd = await n.open(TodoV2, DOC)
  void nd.submit("add", { id: "b", title: "B", priority: 1 })
  await settle(rt)
  expect(nd.confirmedSeq).toBe(3)
  // A v1 app new to the document.
  const o = await CanonClient.open({ transport: net.transport("o"), runtime: rt, clientId: "o", storage: new MemoryStorage() })
  const od = await o.open(V1, DOC)
  await settle(rt)
  expect(od.updateRequired?.message).toMatch(/^Document "list" is compacted through seq 1 into a state of v2, which this app version \(v1\) cannot start from: update the app\./)
  // An app at v2 is served as before.
  expect(nd.state).toEqual({ items: { a: { title: "A", done: false, priority: 0 }, b: { title: "B", done: false, priority: 1 } } })
  await Promise.all([n.close(), o.close()])
  await hub.close()
})

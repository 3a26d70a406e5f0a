import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

test("two clients converge through a hub", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 5 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const a = await CanonClient.open({ transport: net.transport("a"), runtime: rt })
  const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt })
  const da = await a.open(Todo, "list")
  const db = await b.open(Todo, "list")
  const r1 = da.submit("add", { id: "x", title: "milk" })
  expect(da.state.items["x"]?.title).toBe("milk")
  db.submit("add", { id: "y", title: "eggs" })
  await rt.run({ forMs: 1000 })
  await expect(r1).resolves.toEqual({ seq: expect.any(Number) })
  expect(Object.keys(da.state.items).sort()).toEqual(["x", "y"])
  expect(da.confirmedHash()).toBe(db.confirmedHash())
  expect(da.pendingCount).toBe(0)
})

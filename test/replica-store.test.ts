/**
 * A store is one replica: one clientId, one numbering of its commands (core/store/replica-store.ts
 * `hold`). Opening it with another `clientId` option (an app update that derives the id from
 * the signed-in user) sent the stored outbox under the new id: the hub, which had applied a
 * command whose answer the last process never got, took it as a new command and applied it
 * again, and nobody was told. With changes not yet sent, another id is refused
 * (`client-id-changed`); once they are sent, the store takes the new id.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Counter } from "./support/machines.js"
import { running, settle } from "./support/virtual-time.js"

test("a store whose outbox holds a command the hub applied is not opened as another clientId, so the command is applied once", async () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 20, encode: true })
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const disk = new MemoryStorage()
  const first = await running(rt, CanonClient.open({ transport: net.transport("p1"), runtime: rt, storage: disk }))
  const d1 = await running(rt, first.open(Counter, "c"))
  await settle(rt, 200)
  void d1.submit("incr", { by: 1 })
  // The command reaches the hub and is applied; the process is gone before the answer comes.
  await rt.run({ forMs: 30 })
  net.partition("p1")
  await running(rt, first.close())
  net.heal("p1")

  const open = (clientId?: string) => CanonClient.open({ transport: net.transport(`p-${clientId}`), runtime: rt, storage: disk, ...(clientId === undefined ? {} : { clientId }) })
  await expect(running(rt, open("user-42"))).rejects.toMatchObject({ code: "client-id-changed", message: expect.stringContaining(`numbered as client "${first.clientId}"`) })
  // Opened as itself, it sends the command, which the hub answers as the retry it is.
  const second = await running(rt, open())
  const d2 = await running(rt, second.open(Counter, "c"))
  expect(d2.pendingCount).toBe(1)
  await settle(rt, 2000)
  expect(d2.pendingCount).toBe(0)
  expect(d2.state.value).toBe(1)
  await running(rt, second.close())
  // Nothing unsent: the store takes the new id, and its commands count from there.
  const third = await running(rt, open("user-42"))
  expect(third.clientId).toBe("user-42")
  const d3 = await running(rt, third.open(Counter, "c"))
  void d3.submit("incr", { by: 10 })
  await settle(rt, 2000)
  expect(d3.pendingCount).toBe(0)
  expect(d3.state.value).toBe(11)
  await running(rt, third.close())
  await hub.close()
})

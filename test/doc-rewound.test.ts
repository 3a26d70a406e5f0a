/**
 * A hub restored from an older backup is behind what its replicas confirmed. They converge
 * to it (they are sent its state), and the app is told that confirmed history is gone
 * (`rewound`), so it can say so instead of silently showing less than before.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Counter } from "./support/machines.js"
import { backupOf as backup } from "./support/backup.js"

test("a hub restored from an older backup: the replica is told its confirmed history from there is gone, and converges", async () => {
  const rt = new VirtualRuntime(2)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const storage = new MemoryStorage()
  let hub = new Hub({ machines: [Counter], storage, runtime: rt })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("c"), runtime: rt, machines: [Counter] })
  const doc = await client.open(Counter, "d")
  const rewound: Array<{ from: number; to: number }> = []
  doc.on("rewound", (e) => rewound.push(e))
  for (let i = 0; i < 3; i++) doc.submit("incr", { by: 1 }).catch(() => {})
  await rt.run({ forMs: 500 })
  expect(doc.confirmedSeq).toBe(3)
  const old = await backup(storage)
  for (let i = 0; i < 3; i++) doc.submit("incr", { by: 10 }).catch(() => {})
  await rt.run({ forMs: 500 })
  expect(doc.confirmedSeq).toBe(6)
  // An ordinary reconnect says nothing.
  net.drop("c")
  await rt.run({ forMs: 3_000 })
  expect(rewound).toEqual([])

  await hub.close()
  net.stopServer()
  hub = new Hub({ machines: [Counter], storage: old, runtime: rt })
  net.listen(hub)
  await rt.run({ forMs: 5_000 })
  expect(rewound).toEqual([{ from: 6, to: 3 }])
  const authority = await hub.doc("d", Counter)
  expect(doc.confirmedSeq).toBe(3)
  expect(doc.state).toEqual({ value: 3 })
  // And it writes on from there.
  const receipt = doc.submit("incr", { by: 100 })
  await rt.run({ forMs: 2_000 })
  await expect(receipt).resolves.toEqual(expect.objectContaining({ seq: 4 }))
  expect(doc.confirmedHash()).toBe(authority.stateHash())
  expect(rewound).toHaveLength(1)
  await client.close()
  await hub.close()
})

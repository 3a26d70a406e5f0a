/**
 * Compat mode (an app newer than its hub) on a store restored from a backup. Its own entries
 * come converted from the hub's version, so the replica matched them to pending commands by
 * number alone: a command made on the restored store under a number its old life had used was
 * "confirmed" by the old command's entry, taken out of the outbox, and never applied (found by
 * a review of the restored-backup work). An own entry now confirms a pending command only if
 * the hub logged that command's form (core/schema/compat.ts `upcast` marks the others
 * `foreign`); the other one is renumbered by the hub and applied.
 */
import { CanonClient, Hub, replicaStorage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { ColorV1, ColorV2 } from "./support/color-machines.js"
import { backupOf } from "./support/backup.js"

test("compat mode: a command made on a restored store under a number its old life used is applied, not confirmed by the old command's entry", async () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [ColorV1], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const disk = new MemoryStorage()
  const first = await CanonClient.open({ transport: net.transport("first"), runtime: rt, storage: replicaStorage(disk) })
  const doc = await first.open(ColorV2, "c")
  await rt.run({ forMs: 200 })
  net.partition("first")
  await doc.submit("setColor", { hex: "#010101" }).persisted
  const backup = await backupOf(disk)
  net.heal("first")
  // After the backup: #020202 under 2 and #030303 under 3, acknowledged.
  for (const hex of ["#020202", "#030303"]) doc.submit("setColor", { hex })
  await rt.run({ forMs: 2_000 })
  net.drop("first")
  await rt.run({ forMs: 3_000 })
  expect(doc.pendingCount).toBe(0)
  await first.close()

  const restored = await CanonClient.open({ transport: net.transport("restored"), runtime: rt, storage: replicaStorage(backup) })
  net.partition("restored")
  const again = await restored.open(ColorV2, "c")
  const told: string[] = []
  again.on("confirmed", (e) => told.push(`confirmed ${e.clientSeq} at ${e.upperBound === true ? "most " : ""}${e.seq}`))
  // Made under 2, the number #020202 has.
  const n = again.submit("setColor", { hex: "#0a0a0a" })
  expect(n.clientSeq).toBe(2)
  await n.persisted
  net.heal("restored")
  await rt.run({ forMs: 5_000 })
  expect(again.pendingCount).toBe(0)
  expect(told).toEqual(["confirmed 1 at 1", "confirmed 4 at 4"])
  expect((await n).seq).toBe(4)
  const authority = await hub.doc("c", ColorV1)
  expect([authority.headSeq, authority.state]).toEqual([4, { rgb: [10, 10, 10] }])
  expect(again.state).toEqual({ hex: "#0a0a0a" })
})

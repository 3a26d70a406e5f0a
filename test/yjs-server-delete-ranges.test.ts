/**
 * Attack (work budget, adapters/yjs-server/engine.ts): the Yjs engine weighs an update as
 * `2 * structs` and ignores its delete set. A V1 update with no structs and a delete set of
 * 150,000 one-clock ranges (592 KB, under the 1 MiB frame limit) weighs 0, yet the hub decodes
 * the ranges and Yjs applies them synchronously, splitting the deleted item at every range:
 * measured here ~1.4 s of hub work (74 ms check, the rest one uninterrupted apply) for one
 * frame. The text it cuts up can be the attacker's own: one insert of 300,000 characters is one
 * struct (weight 2). So a principal stalls the hub for seconds per frame, any number of times,
 * and is never in debt: its budget is never charged, and other users wait behind the stalls.
 *
 * Expected: a delete set's ranges are paid for like structs (they cost the hub per range), so
 * after such an update the principal is in debt: its next submit waits on the runtime's clock
 * (virtual here, so the wait is exact) and goes once the clock has moved.
 */
import * as Y from "yjs"
import * as enc from "lib0/encoding"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { settle } from "./support/crdt-work.js"

/** A V1 update with no structs that deletes every other clock of `client` in [0, 2n). */
const deletesOnly = (client: number, n: number): Uint8Array => {
  const e = enc.createEncoder()
  enc.writeVarUint(e, 0) // clients with structs
  enc.writeVarUint(e, 1) // clients with deletions
  enc.writeVarUint(e, client)
  enc.writeVarUint(e, n)
  for (let i = 0; i < n; i++) {
    enc.writeVarUint(e, 2 * i)
    enc.writeVarUint(e, 1)
  }
  return enc.toUint8Array(e)
}

test("a delete-set-only Yjs update of 150,000 ranges puts its principal in debt", async () => {
  const runtime = new VirtualRuntime(51)
  // 0.1 s of work at once, 0.1 s a second.
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 100_000, microsPerSecond: 100_000 } })
  const doc = await host.open<Y.Doc>("yjs", "d")
  const own = new Y.Doc()
  own.clientID = 5
  own.getText("t").insert(0, "x".repeat(300_000))
  expect(await doc.submit([Y.encodeStateAsUpdate(own)], undefined, "mallory", "mallory")).toMatchObject({ stored: 1, rejected: [] })
  const cut = deletesOnly(5, 150_000)
  expect(cut.length).toBeLessThan(1 << 20)
  expect(await doc.submit([cut], undefined, "mallory", "mallory")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.doc.getText("t").length).toBe(150_000)
  // The hub split one item into 300,000 for her: her next update should wait off that work.
  let next: string | undefined
  const more = new Y.Doc()
  more.clientID = 6
  more.getText("u").insert(0, "y")
  const nextDone = doc.submit([Y.encodeStateAsUpdate(more)], undefined, "mallory", "mallory").then((o) => (next = `stored ${o.stored}`))
  await settle(20)
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 600_000 })
  await settle(20)
  await nextDone
  expect(next).toBe("stored 1")
  await host.close()
}, 60_000)

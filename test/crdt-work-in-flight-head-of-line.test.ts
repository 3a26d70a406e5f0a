/**
 * Attack (05c6c5a: WorkInFlight, core/crdt-docs/work-budget.ts and CrdtDocAuthority.commit):
 * `commit` takes the host-wide WorkInFlight slot for each queued item INSIDE the document's
 * queue. While a heavy item (estimated work over LIGHT_WORK, 0.1 s) waits there for capacity
 * held by heavy work on OTHER documents, the whole document's queue stands still: every later
 * submit on that document, however light and whoever sent it, waits for the hub-wide backlog
 * of heavy work ahead of that one item, not for the work on its own document.
 *
 * The backlog is large and cheap to build: each anonymous connection is its own payer with a
 * 15 s burst, so a few sockets put minutes of heavy uploads (e.g. 262,144-change Automerge
 * chunks of about 150 bytes, 14 s each to prepare and apply, bench row 7) into WorkInFlight's
 * FIFO. Then ONE heavy-ish update on a shared document (an Automerge chunk of 3,000 changes,
 * weight 105,000 µs, a few KB; or an honest client's first sync of a mid-sized document) freezes
 * that document for every editor until the whole backlog has drained. Before 05c6c5a, the
 * same item was decoded in slices next to the others and the document waited for its own
 * work only.
 *
 * Here: the slot holder on the other document is an engine whose `prepare` stalls on a gate
 * (standing in for a long heavy upload or a backlog of them), so the test is exact without
 * clocks. On the shared Automerge document, mallory submits a real 3,000-change chunk (just
 * over light), then bob submits a real one-change edit (light).
 *
 * Expected: bob's light edit on the shared document is applied while the unrelated heavy work
 * on the other document is still in flight (e.g. the slot is taken before an item enters its
 * document's queue, or a waiting heavy item does not hold the queue of other users' updates).
 * Observed: bob's edit is not applied until the other document's heavy work finishes.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { settle, stallingEngine } from "./support/crdt-work.js"

test("a light edit on a document does not wait for heavy work in flight on another document", async () => {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const host = new CrdtDocHost({ engines: [automergeDocEngine(), stallingEngine(gate)], storage: new MemoryStorage(), sync: false, runtime: new VirtualRuntime(3) })
  const other = await host.open<object>("stall", "other")
  const shared = await host.open<AutomergeBox>("automerge", "shared")

  // Heavy work in flight elsewhere (holds the whole 1 s capacity).
  const otherDone = other.submit([new Uint8Array([1])], undefined, undefined, "p:eve")
  await settle(200)

  // Mallory: a real chunk of 3,000 empty changes (weight 105,000 µs, just over light).
  let m = A.init<unknown>({ actor: "0a".repeat(16) })
  for (let i = 0; i < 3_000; i++) m = A.emptyChange(m)
  const chunk = A.save(m)
  expect(chunk.length).toBeLessThan(10_000)
  const malloryDone = shared.submit([chunk], undefined, "mallory", "p:mallory")

  // Bob: one small honest edit (light: it should go at once).
  const b = A.change(A.init<Record<string, string>>({ actor: "0b".repeat(16) }), (d) => {
    d.title = "hello"
  })
  let bob: string | undefined
  const bobDone = shared.submit([A.getLastLocalChange(b)!], undefined, "bob", "p:bob").then((o) => (bob = o.rejected[0]?.code ?? `stored ${o.stored}`))

  await settle(200)
  // Give any slicing a chance to finish (no clock involved: the gate is the only thing held).
  for (let i = 0; i < 20 && bob === undefined; i++) await settle(200)
  const before = bob
  open()
  await Promise.all([otherDone, malloryDone, bobDone])
  expect(bob).toBe("stored 1")
  expect(before).toBe("stored 1")
  await host.close()
}, 60_000)

test("control: without the heavy item on the shared document, bob's edit goes while the other document's work is in flight", async () => {
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const host = new CrdtDocHost({ engines: [automergeDocEngine(), stallingEngine(gate)], storage: new MemoryStorage(), sync: false, runtime: new VirtualRuntime(4) })
  const other = await host.open<object>("stall", "other")
  const shared = await host.open<AutomergeBox>("automerge", "shared")
  const otherDone = other.submit([new Uint8Array([1])], undefined, undefined, "p:eve")
  await settle(200)
  const b = A.change(A.init<Record<string, string>>({ actor: "0b".repeat(16) }), (d) => {
    d.title = "hello"
  })
  let bob: string | undefined
  const bobDone = shared.submit([A.getLastLocalChange(b)!], undefined, "bob", "p:bob").then((o) => (bob = o.rejected[0]?.code ?? `stored ${o.stored}`))
  for (let i = 0; i < 20 && bob === undefined; i++) await settle(200)
  expect(bob).toBe("stored 1")
  open()
  await Promise.all([otherDone, bobDone])
  await host.close()
}, 60_000)

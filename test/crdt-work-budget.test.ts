/**
 * Each principal's share of the hub's work on whole CRDT documents (core/crdt-docs/work-budget.ts).
 * A 200-byte Automerge chunk can stand for seconds of decoding, and byte or message limits do
 * not see it; one user with many sockets multiplied it. Engines weigh each checked update
 * (estimated microseconds); the submitting principal pays, and while in debt its next submits
 * wait, in order, on the runtime's clock. Other principals are not slowed; nothing is refused.
 * Virtual time: the waits are asserted exactly, not timed.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost, CrdtWorkBudget, WorkInFlight, workPayer } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { emptyChangesChunk, settle } from "./support/crdt-work.js"

test("the engines weigh what they check: Automerge by changes, ops and bytes, Yjs by structs, deleted ranges and bytes, before any budget pays", async () => {
  const am = automergeDocEngine()
  const chunk = emptyChangesChunk(1_000, "0a".repeat(16))
  expect(am.check(chunk)).toEqual({ ok: true, weight: 35 * 1_000 + Math.ceil(0.3 * chunk.length) })
  const y = new Y.Doc()
  y.getText("t").insert(0, "abc")
  y.getMap("m").set("k", 1)
  const update = Y.encodeStateAsUpdate(y)
  const structs = Y.decodeUpdate(update).structs.length
  // A KiB weighs 8 (an 8 MiB update of one struct: 80 ms to decode, merge and encode); the
  // map entry's value 1 (each value is decoded into an object of its own).
  expect(yjsDocEngine().check(update)).toEqual({ ok: true, weight: 2 * structs + 1 + Math.ceil(update.length / 128) })
  const big = new Y.Doc()
  big.getText("t").insert(0, "x".repeat(1 << 20))
  const bigUpdate = Y.encodeStateAsUpdate(big)
  expect(yjsDocEngine().check(bigUpdate)).toEqual({ ok: true, weight: 2 + Math.ceil(bigUpdate.length / 128) })
  // A deleted range weighs 9.
  y.getText("t").delete(1, 1)
  const withRange = Y.encodeStateAsUpdate(y)
  expect(yjsDocEngine().check(withRange)).toEqual({ ok: true, weight: 2 * Y.decodeUpdate(withRange).structs.length + 1 + 9 + Math.ceil(withRange.length / 128) })
})

test("a principal in debt waits off its debt before its next submit is queued; another principal does not wait", async () => {
  const runtime = new VirtualRuntime(7)
  // 1 s of work at once, 0.1 s a second: a 2,000-change chunk (70 ms) is cheap, 40,000 (1.4 s) is debt.
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 1_000_000, microsPerSecond: 100_000 } })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const heavy = emptyChangesChunk(40_000, "0a".repeat(16))
  expect(await doc.submit([heavy], undefined, undefined, "mallory")).toMatchObject({ stored: 1, rejected: [] })
  // 1.4 s of work against a 1 s burst: 0.4 s of debt, paid off at 0.1 s a second = 4,000 ms.
  let next: string | undefined
  const nextDone = doc.submit([emptyChangesChunk(1, "0b".repeat(16))], undefined, undefined, "mallory").then((o) => (next = `stored ${o.stored}`))
  const other = await doc.submit([emptyChangesChunk(1, "0c".repeat(16))], undefined, undefined, "alice")
  expect(other).toMatchObject({ stored: 1, rejected: [] })
  await settle()
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 3_990 })
  await settle()
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 20 })
  await settle()
  await nextDone
  expect(next).toBe("stored 1")
  await host.close()
}, 60_000)

test("a principal's waiting submits keep their order (a socket's updates must not overtake each other)", async () => {
  const runtime = new VirtualRuntime(8)
  const work = new CrdtWorkBudget(runtime, { burstMicros: 100, microsPerSecond: 100 })
  work.pay("p", 1_000)
  const order: number[] = []
  const waits = [1, 2, 3].map((i) => work.turn("p")!.then(() => order.push(i)))
  expect(work.turn("q")).toBeUndefined()
  await runtime.run({ forMs: 20_000 })
  await Promise.all(waits)
  expect(order).toEqual([1, 2, 3])
  // Out of debt and nobody waiting: no wait at all.
  expect(work.turn("p")).toBeUndefined()
})

test("without a runtime nothing is metered (an embedded host with no clock)", async () => {
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  for (let i = 0; i < 3; i++) expect(await doc.submit([emptyChangesChunk(5_000, `0${i}`.repeat(16))], undefined, undefined, "p")).toMatchObject({ stored: 1 })
  await host.close()
}, 60_000)

test("the payer is the principal, except that every anonymous connection pays on its own", () => {
  const one = {}, two = {}
  expect(workPayer("alice", one)).toBe("p:alice")
  expect(workPayer("alice", two)).toBe("p:alice")
  expect(workPayer("anonymous", one)).toBe(workPayer("anonymous", one))
  expect(workPayer("anonymous", one)).not.toBe(workPayer("anonymous", two))
  expect(workPayer("anonymous", one)).not.toBe("anonymous")
})

test("heavy work in flight is bounded host-wide: light work goes at once, heavy work waits its turn in order, one too large runs alone", async () => {
  const limit = new WorkInFlight(1_000, 100)
  const order: string[] = []
  const light = await limit.take(100)
  const a = await limit.take(600)
  const b = limit.take(600).then((release) => (order.push("b"), release))
  const huge = limit.take(5_000).then((release) => (order.push("huge"), release))
  const c = limit.take(300).then((release) => (order.push("c"), release))
  await settle()
  expect(order).toEqual([]) // b does not fit beside a; those behind b wait their turn
  light()
  a()
  const releaseB = await b
  await settle()
  expect(order).toEqual(["b"]) // huge waits until nothing heavy is in flight
  releaseB()
  const releaseHuge = await huge
  await settle()
  expect(order).toEqual(["b", "huge"])
  releaseHuge()
  ;(await c)()
  expect(order).toEqual(["b", "huge", "c"])
})

test("a payer's light update waits behind its own heavy one that waits for the host's bound (no overtaking, no missing dependencies)", async () => {
  const engine = automergeDocEngine()
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const held = emptyChangesChunk(5_000, "0a".repeat(16)) // another payer's heavy work, stalled while it holds the bound
  const gated = { ...engine, prepare: async (u: Uint8Array) => (u === held ? gate.then(() => engine.prepare!(u)) : engine.prepare!(u)) }
  const host = new CrdtDocHost({ engines: [gated], storage: new MemoryStorage(), sync: false })
  const [x, y] = await Promise.all([host.open<AutomergeBox>("automerge", "x"), host.open<AutomergeBox>("automerge", "y")])
  const other = y.submit([held], undefined, undefined, "p:other")
  let d = A.init<Record<string, number>>({ actor: "0b".repeat(16) })
  for (let i = 0; i < 40_000; i++) d = A.emptyChange(d)
  const heavy = A.save(d)
  d = A.change(d, (v) => { v.after = 1 })
  const light = A.getLastLocalChange(d)!
  const order: string[] = []
  const first = x.submit([heavy], undefined, undefined, "p:mine").then((o) => (order.push("heavy"), o))
  const second = x.submit([light], undefined, undefined, "p:mine").then((o) => (order.push("light"), o))
  await settle()
  expect(order).toEqual([]) // both wait: the heavy one for the bound, the light one behind it
  open()
  expect(await first).toMatchObject({ stored: 1, rejected: [] })
  expect(await second).toMatchObject({ stored: 1, rejected: [] })
  expect(order).toEqual(["heavy", "light"])
  await other
  await host.close()
}, 60_000)

/**
 * Attack (05c6c5a: check/prepare split, WorkInFlight): the commit moved Automerge's decoding
 * from `check` (at submit) to `prepare` (on the update's turn, inside WorkInFlight), so the
 * decoded form of an update exists only while it is in flight. The Yjs hub engine
 * (adapters/yjs-server/engine.ts) has no `prepare`: its `check` still runs `Y.decodeUpdate`
 * at submit, synchronously, and keeps the result in `decodedCache` until `apply`. So every Yjs
 * update is decoded the moment its frame arrives, before the payer's turn (a payer in debt
 * still gets its updates decoded at once) and before WorkInFlight, and the decoded structs are
 * held while the update waits in the document's queue, in its payer's turn, or in WorkInFlight.
 * WorkInFlight bounds nothing for Yjs.
 *
 * Measured here: checking one 512 KB update of 262,143 GC structs (2 bytes each, under the
 * 262,144 bound and the 1 MiB byte bound) takes about 320 ms of synchronous event-loop time and
 * retains 24 MB of heap until it is applied. The y-websocket endpoint submits each frame as it
 * arrives, up to the socket's 8 MiB inflow: ONE socket can have 16 such frames decoded and held
 * at once (about 385 MB); 64 sockets (the default per address) about 25 GB. The hub dies of
 * heap exhaustion, taking every document with it.
 *
 * Scaled down: a child process with a 128 MB heap, one anonymous connection submitting 12 such
 * updates (6 MB, within one socket's inflow) to one document at once. The same 12 one after
 * the other survive in the same heap (the control), so the memory is enough for the work, only
 * not for holding every decoded update while it waits.
 *
 * Expected: a Yjs update is decoded only when its turn comes (a `prepare` inside WorkInFlight,
 * as for Automerge), or what waits holds only its bytes; the child prints "survived 12/12" and
 * exits 0. Observed: FATAL ERROR: Reached heap limit (signal 6).
 *
 * The same through the work budget: a payer in debt (1 µs budget, the virtual clock never
 * moves) submits 12 updates; 11 of them wait their turn forever, yet each was decoded at submit
 * (about 320 ms of event loop each: the debt slows none of the decoding) and is held while it
 * waits. Expected: the child prints "waiting 11" (what waits holds only its bytes). Observed:
 * heap exhaustion before the submits return.
 */
import { runWithHeap } from "./support/small-heap.js"

const run = (mode: "burst" | "sequential" | "debtor") => runWithHeap(128, "test/support/yjs-held-child.ts", ["12", "262143", mode])

test("control: twelve 262,143-struct Yjs updates one after the other fit a 128 MB heap", async () => {
  const r = await run("sequential")
  expect(r.out).toContain("survived 12/12")
  expect(r.code).toBe(0)
}, 180_000)

test("one socket's twelve 262,143-struct Yjs updates at once do not exhaust a 128 MB heap (decoded only on their turn)", async () => {
  const r = await run("burst")
  expect(r.out.split("\n").find((l) => /survived|heap limit/.test(l))).toBe("survived 12/12")
  expect(r.code).toBe(0)
}, 180_000)

test("a payer in debt: eleven Yjs updates waiting their turn are not decoded and held meanwhile", async () => {
  const r = await run("debtor")
  expect(r.out.split("\n").find((l) => /waiting|heap limit/.test(l))).toBe("waiting 11")
  expect(r.code).toBe(0)
}, 180_000)

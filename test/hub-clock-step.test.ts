/**
 * A hub whose wall clock steps (NTP after a boot with a fast clock, a VM resumed) measures its
 * rates and pacing on the runtime's steady clock (core/ports/runtime.ts `steadyNow`). Before,
 * every rate bucket refilled by the wall clock's difference: stepped back an hour, each went an
 * hour's worth of tokens into debt, and the next messages were refused ("More than 1000
 * messages per second; slow down and reconnect.") and commands held for the hour.
 */
import { CanonClient, Hub, type Runtime } from "../core/index.js"
import { TokenBucket } from "../core/authority/limits.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const HOUR = 3_600_000

test.each([-HOUR, HOUR])("a hub's wall clock stepped by %i ms: the clients' commands go on being confirmed at once", async (step) => {
  const rt = new VirtualRuntime(3)
  let offset = 0
  // The system runtime: a wall clock (Date.now) that can step, and a steady one (performance.now).
  const hubRuntime: Runtime = { now: () => rt.now() + offset, monotonic: () => rt.now(), setTimer: (ms, fn) => rt.setTimer(ms, fn), random: () => rt.random() }
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: hubRuntime }))
  const run = (ms: number) => settleWithTurns(rt, ms)
  const doc = await running(rt, (await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w" }))).open(Todo, "d"))
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  await run(100)
  await running(rt, doc.submit("add", { id: "before", title: "x" }))
  offset = step
  const receipts = Array.from({ length: 20 }, (_, i) => doc.submit("add", { id: `after${i}`, title: "x" }))
  await run(2_000)
  expect(errors).toEqual([])
  expect(doc.pendingCount).toBe(0)
  await Promise.all(receipts)
  expect(Object.keys(doc.state.items).length).toBe(21)
})

test("a token bucket whose clock went back refills nothing and takes nothing away", () => {
  const bucket = new TokenBucket(10, 5, 1_000_000)
  expect(bucket.take(5, 1_000_000)).toBe(true)
  // Back an hour: as if no time had passed (empty, not an hour in debt).
  expect(bucket.take(1, 1_000_000 - HOUR)).toBe(false)
  expect(bucket.borrow(0, 1_000_000 - HOUR)).toBe(0)
  // And it refills from there.
  expect(bucket.take(5, 1_000_000 - HOUR + 500)).toBe(true)
})

/**
 * Attack (work budget, core/crdt-docs/work-budget.ts): the budget remembers at most 65,536
 * accounts and forgets the least recently used one, even when that account is in debt with
 * submits waiting on its `tail`. A flood of payers (cheap where guests are anonymous: every
 * anonymous connection is its own payer, so 65,536 short connections each sending one update)
 * evicts a victim's account while its submits wait. The victim's next submit then finds a fresh
 * account (full bucket, no tail) and is queued at once, AHEAD of its own earlier submits still
 * waiting: a socket's updates overtake each other (a Yjs update that depends on the earlier one
 * is refused as update-missing-deps and the socket closed; an Automerge change likewise), and
 * the debt is forgotten.
 *
 * Expected: a principal's submits keep their order whatever other principals do (an account
 * in debt or with waiting submits is not forgotten, or its order is kept otherwise).
 */
import { VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtWorkBudget } from "../core/crdt-docs/index.js"

test("a flood of other payers does not let a principal's later submit overtake its waiting one", async () => {
  const runtime = new VirtualRuntime(41)
  const work = new CrdtWorkBudget(runtime, { burstMicros: 1_000, microsPerSecond: 1_000 })
  work.pay("victim", 10_000_000) // ten thousand seconds of debt at 1 ms a second
  const order: string[] = []
  const first = work.turn("victim")
  expect(first).toBeDefined()
  void first!.then(() => order.push("first"))
  // 65,536 other payers, one submit each (anonymous connections: `\u0000connection N`).
  for (let i = 0; i < 65_536; i++) work.turn(`\u0000connection ${i}`)
  const second = work.turn("victim")
  if (second === undefined) order.push("second")
  else void second.then(() => order.push("second"))
  await runtime.run({ forMs: 20_000_000 })
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
  expect(order).toEqual(["first", "second"])
}, 60_000)

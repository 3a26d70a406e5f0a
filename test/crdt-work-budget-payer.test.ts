/**
 * Attack (work budget, core/crdt-docs/work-budget.ts): `workPayer` names each anonymous
 * connection's account `"\u0000connection N"`, N a module-wide counter, in the same namespace
 * as principal ids, which the app's authenticate hook chooses (often from what the user
 * typed: a user name, the token itself as in this repo's test hub, `id: hello.credentials ??
 * "anonymous"`). A hub that lets guests in as `anonymous` next to signed-in users therefore
 * lets a user whose principal id is `"\u0000connection 7"` share the account of the seventh
 * anonymous connection: the user's heavy uploads put that guest in debt and the guest's updates
 * wait (one user slowing another), and N is predictable (sequential).
 *
 * Expected: an anonymous connection's account can never be the account of a principal id
 * (a namespace principal ids cannot reach, or accounts keyed by the connection object).
 */
import { VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtWorkBudget, workPayer } from "../core/crdt-docs/index.js"

test("a principal id cannot name an anonymous connection's work account", () => {
  const guest = {}
  const guestPayer = workPayer("anonymous", guest)
  // A signed-in user whose id (chosen by the app from user input) is that very string.
  const mallory = workPayer(guestPayer, {})
  expect(mallory).not.toBe(guestPayer)
})

test("so a principal's debt never makes an anonymous guest wait", () => {
  const runtime = new VirtualRuntime(31)
  const work = new CrdtWorkBudget(runtime, { burstMicros: 1_000, microsPerSecond: 1 })
  const guest = {}
  // The guest's connection exists (its account name is fixed on first use)...
  const guestPayer = workPayer("anonymous", guest)
  // ...and a user authenticated as that string uploads something heavy.
  work.pay(workPayer(guestPayer, { socket: "mallory" }), 60_000_000)
  // The guest, who did nothing, must not wait.
  expect(work.turn(workPayer("anonymous", guest))).toBeUndefined()
})

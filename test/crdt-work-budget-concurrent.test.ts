/**
 * Attack (work budget, core/crdt-docs/work-budget.ts): the budget is charged only once an
 * update's checks settle (`CrdtDocAuthority.checked` pays after `await`ing them), and `turn`
 * only waits while the principal is already in debt. Submits a principal starts while its
 * earlier ones are still being checked therefore all see a clean account and all run: one user
 * with K sockets (or one socket following K documents; the Automerge check of a 262,000-change
 * chunk takes seconds in slices, so the window is wide) gets K full uploads of work at once,
 * the multiplication the budget was meant to stop ("one user's sockets multiplied it").
 *
 * Here mallory starts three uploads of 1.4 s of estimated work each, on three documents, at
 * once, against a 1 s burst. Expected: as with three uploads one after the other, only the
 * first runs while the clock stands still (it puts her in debt); the others wait their turn
 * on the runtime's clock, and all are stored once it has moved (nothing refused, nothing lost).
 * Observed: all three are checked and stored without the clock moving.
 */
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { emptyChangesChunk, settle } from "./support/crdt-work.js"

test("one principal's concurrent uploads (several sockets or documents) do not each get a clean budget", async () => {
  const runtime = new VirtualRuntime(21)
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 1_000_000, microsPerSecond: 100_000 } })
  const docs = await Promise.all(["d1", "d2", "d3"].map((id) => host.open<AutomergeBox>("automerge", id)))
  const uploads = docs.map((_, i) => emptyChangesChunk(40_000, `0${i + 1}`.repeat(16)))
  const stored: number[] = []
  let firstStored!: () => void
  const first = new Promise<void>((r) => (firstStored = r))
  const all = docs.map((doc, i) => doc.submit([uploads[i]!], undefined, undefined, "mallory").then((o) => {
    expect(o).toMatchObject({ stored: 1, rejected: [] })
    stored.push(i)
    firstStored()
  }))
  // One upload is stored; then let whatever else is free to run finish, without moving the clock.
  await first
  await Promise.race([Promise.all(all), (async () => { for (let i = 0; i < 40; i++) await settle() })()])
  expect(stored.length).toBe(1)
  await runtime.run({ forMs: 120_000 })
  await settle()
  await Promise.all(all)
  expect(stored.length).toBe(3)
  for (const d of docs) host.release(d)
  await host.close()
}, 90_000)

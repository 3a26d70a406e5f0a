/**
 * Core figure 4: what a client that says one made-under number on every command costs the
 * hub's client table (core/authority/client-table.ts). Renumbered commands are kept in an
 * index by (made-under number, hash, incarnation); a hostile client can send any number of
 * commands claiming one made-under number and one content. Each outcome that leaves the
 * window must cost what it costs for an honest client: once the index held a list per key,
 * and dropping outcomes from it was quadratic (10.2 s against 90 ms for 60,000 outcomes).
 *
 * A run records `records` outcomes with a window of `window` (so most are dropped again),
 * once all under one key and once each under its own, and returns the ratio of the times.
 */
import { ClientTable } from "../core/authority/client-table.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { check, now } from "./harness.js"

const recordAll = async (records: number, window: number, oneKey: boolean): Promise<number> => {
  const table = new ClientTable("bench-doc", new AuthorityStore(new MemoryStorage()), window)
  await table.load(["c"])
  const started = now()
  for (let i = 1; i <= records; i++) {
    table.record("c", 1, i, { hash: oneKey ? 7 : i, seq: i, madeAs: 1 })
    if (i % 1000 === 0) table.drain()
  }
  const ms = now() - started
  // The newest kept outcome of the key still answers; the window let the oldest go.
  check(table.classify("c", 1, records + 1, oneKey ? 7 : records, records, 1).kind === "duplicate", "the index finds the newest outcome")
  return ms
}

/** One run: ms under one key / ms under distinct keys. */
export const oneKeyRatio = async (records: number, window: number): Promise<number> => {
  const spread = await recordAll(records, window, false)
  const one = await recordAll(records, window, true)
  return one / spread
}

/**
 * Child process of test/yjs-server-decode-held.test.ts: a CrdtDocHost with the Yjs engine,
 * the default work budget (virtual clock) and the default WorkInFlight, and ONE anonymous
 * connection (one payer) that sends `K` Yjs updates of `N` GC structs each (about 512 KB
 * apiece: 16 of them fit one socket's default 8 MiB inflow) to one document, as fast as a
 * socket delivers frames (the endpoint submits each frame as it arrives). Update k continues
 * the same client's clock where update k-1 ended, so each depends on the one before and the
 * document itself stays small (one client's consecutive GC ranges). Prints "survived S/K"
 * and exits 0 if the host took them all.
 *
 * Modes: "burst" submits all K at once; "sequential" (the control) waits for each to settle;
 * "debtor": a work budget of 1 µs, so after the first update the payer is in debt for good (the
 * virtual clock never moves) and the other K-1 submits wait their turn forever; prints
 * "waiting K-1" once they are all submitted, then exits 0 without waiting for them.
 */
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { CrdtDocHost, workPayer } from "../../core/crdt-docs/index.js"
import type { SubmitOutcome } from "../../core/crdt-docs/authority.js"
import { yjsDocEngine } from "../../adapters/yjs-server/engine.js"
import type * as Y from "yjs"

const K = Number(process.argv[2] ?? 12)
const N = Number(process.argv[3] ?? 262_143)
const SEQUENTIAL = process.argv[4] === "sequential"
const DEBTOR = process.argv[4] === "debtor"

/** A V1 update of `n` GC structs (length 1 each) of client `client` from clock `from`; empty delete set. */
const gcUpdate = (n: number, client: number, from: number): Uint8Array => {
  const out: number[] = []
  const v = (x: number) => {
    while (x >= 0x80) {
      out.push((x & 0x7f) | 0x80)
      x = Math.floor(x / 128)
    }
    out.push(x)
  }
  v(1), v(n), v(client), v(from)
  for (let i = 0; i < n; i++) out.push(0), v(1)
  v(0)
  return Uint8Array.from(out)
}

const main = async () => {
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime: new VirtualRuntime(1), ...(DEBTOR ? { work: { burstMicros: 1, microsPerSecond: 1 } } : {}) })
  const doc = await host.open<Y.Doc>("yjs", "room")
  const socket = {}
  const payer = workPayer("anonymous", socket)
  const outcomes: SubmitOutcome[] = []
  if (DEBTOR) {
    const first = doc.submit([gcUpdate(N, 7, 0)], undefined, undefined, payer)
    const waiting = Array.from({ length: K - 1 }, (_, k) => doc.submit([gcUpdate(N, 7, (k + 1) * N)], undefined, undefined, payer))
    await first
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    console.log(`waiting ${waiting.length}`)
    process.exit(0)
  }
  if (SEQUENTIAL) {
    for (let k = 0; k < K; k++) outcomes.push(await doc.submit([gcUpdate(N, 7, k * N)], undefined, undefined, payer))
  } else {
    const all: Array<Promise<SubmitOutcome>> = []
    for (let k = 0; k < K; k++) all.push(doc.submit([gcUpdate(N, 7, k * N)], undefined, undefined, payer))
    outcomes.push(...(await Promise.all(all)))
  }
  const stored = outcomes.reduce((n, o) => n + o.stored, 0)
  console.log(`survived ${stored}/${K}`)
  await host.close()
}
main().catch((e) => {
  console.error(e)
  process.exit(2)
})

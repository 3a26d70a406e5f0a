/**
 * Attack (05c6c5a: work weighed where it enters, adapters/automerge-server/engine.ts): the
 * Automerge weight is `35 * changes + 15 * ops`, counted by `measureChunk`. It ignores the
 * size of the values: a COMPRESSED change chunk (type 2, raw DEFLATE) of about 16 KB on the
 * wire inflates to 15.5 MiB (under maxInflatedBytes, 16 MiB) holding ONE op that sets a
 * byte-array value of 15.5 MiB. It weighs 50 µs: light, so it skips WorkInFlight too.
 *
 * Measured on this machine (3 runs): check 8-18 ms (the inflate, at submit), prepare 3.7-4.7 s,
 * apply 0.2-0.25 s; the longest event-loop stall, one run, 3.3 s (1 MB raw, uncompressed: 0.28 s
 * for the same 50 µs). The prepare of a single change is one synchronous `A.decodeChange`
 * (admit.ts `changesOf`, no slices), so the hub's event loop is held about 4 s by a 16 KB frame
 * whose sender pays 50 µs: about 80,000 times less than the work. One socket's 8 MiB inflow
 * holds about 500 such frames (half an hour of a frozen hub), and the payer never goes into
 * debt, so the budget never slows it.
 *
 * Expected: the weight counts what decoding costs (e.g. inflated bytes, value bytes), so after
 * one such upload the principal is in debt and its next submit waits on the runtime's clock
 * (virtual here: it never moves, so "waits" is exact). Observed: the next submit goes at once.
 *
 * The test's values are 4 MiB, not 15.5: a quarter of the time in CI, and still 1.26 s of
 * weight at 0.3 µs a byte, past the burst below (at 50 µs, the next submit would go at once).
 */
import * as A from "@automerge/automerge"
import zlib from "node:zlib"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { settle } from "./support/crdt-work.js"

const leb = (x: number): number[] => {
  const out: number[] = []
  for (; x >= 0x80; x = Math.floor(x / 0x80)) out.push((x % 0x80) | 0x80)
  out.push(x)
  return out
}

/** The same change as a compressed change chunk (type 2): magic and checksum kept, body raw-deflated. */
const compressed = (change: Uint8Array): Uint8Array => {
  let at = 9, len = 0, mul = 1
  for (;;) {
    const b = change[at++]!
    len += (b & 0x7f) * mul
    mul *= 128
    if ((b & 0x80) === 0) break
  }
  const body = zlib.deflateRawSync(change.subarray(at, at + len), { level: 9 })
  return Uint8Array.from([...change.subarray(0, 8), 2, ...leb(body.length), ...body])
}

const bigValue = (actor: string): Uint8Array => {
  const d = A.change(A.init<Record<string, Uint8Array>>({ actor }), (x) => {
    x.blob = new Uint8Array(4 << 20)
  })
  const change = A.getLastLocalChange(d)!
  A.free(d)
  return compressed(change)
}

test("a few-KB compressed change that inflates to a 4 MiB value is weighed as the work it is: the next submit waits", async () => {
  const runtime = new VirtualRuntime(21)
  // 1 s of work at once, 0.1 s a second.
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 1_000_000, microsPerSecond: 100_000 } })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const first = bigValue("0a".repeat(16))
  expect(first.length).toBeLessThan(8_000)
  const o = await doc.submit([first], undefined, "mallory", "p:mallory")
  // Accepted: it is a valid change, only heavy.
  expect(o.rejected).toEqual([])
  expect(o.stored).toBe(1)

  let next: string | undefined
  const nextDone = doc.submit([bigValue("0b".repeat(16))], undefined, "mallory", "p:mallory").then((r) => (next = r.rejected[0]?.code ?? "stored"))
  await settle()
  // Seconds of decoding for mallory: her next upload should wait off that work.
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 600_000 })
  await settle()
  await nextDone
  expect(next).toBe("stored")
  await host.close()
}, 120_000)

/**
 * Attack (work budget, core/crdt-docs/work-budget.ts): an update the engine refuses AFTER it
 * did the expensive decoding pays nothing. `CrdtDocAuthority.checked` adds `weight` only for
 * checks that passed, and the engines return a weight only with `ok: true`.
 *
 * Automerge: a ~200-byte document chunk of N empty changes followed by one more chunk passes
 * `measureChunk` (it counts the chunks), then `changesOfAsync` runs `A.load` over the whole
 * chunk (N changes: the 1.6 s stretch for 262,000) and only then refuses it ("a document chunk
 * followed by more chunks"). The check's rejection carries no weight, so the principal never
 * goes into debt and can repeat it (reconnecting after each 4400) at no cost to its budget,
 * while every honest upload of the same size is metered.
 *
 * Yjs: an update of many structs whose clocks pass 2^40 is fully decoded (`Y.decodeUpdate`)
 * before `unsupportedStructs` refuses it; it paid nothing either.
 *
 * Expected: the work a refused update made the hub do is paid like an accepted one's (e.g. the
 * weight measured before decoding is charged whatever the verdict), so after such an upload
 * the principal's next submit waits off the debt on the runtime's clock. Virtual time: the
 * clock never moves here, so "waits" is exact.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { emptyChangesChunk, settle } from "./support/crdt-work.js"
import { bytes } from "./support/hostile-frames.js"

test("automerge: a document chunk refused after A.load (a chunk after it) is paid for: the next submit waits", async () => {
  const runtime = new VirtualRuntime(11)
  // 1 s of work at once: 40,000 changes weigh 1.4 s.
  const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 1_000_000, microsPerSecond: 100_000 } })
  const doc = await host.open<AutomergeBox>("automerge", "d")
  const trailer = A.getLastLocalChange(A.change(A.init<Record<string, number>>({ actor: "0f".repeat(16) }), (d) => { d.x = 1 }))!
  const heavy = bytes(emptyChangesChunk(40_000, "0a".repeat(16)), trailer)
  expect(heavy.length).toBeLessThan(1_000)
  const first = await doc.submit([heavy], undefined, undefined, "mallory")
  expect(first.rejected[0]?.code).toBe("update-malformed")
  // The hub loaded 40,000 changes for mallory. Her next upload should wait off that work.
  let next: string | undefined
  const nextDone = doc.submit([heavy], undefined, undefined, "mallory").then((o) => (next = o.rejected[0]?.code ?? "stored"))
  await settle()
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 60_000 })
  await settle()
  await nextDone
  expect(next).toBe("update-malformed")
  await host.close()
}, 60_000)

test("yjs: an update decoded in full then refused (clocks past 2^40) is paid for: the next submit waits", async () => {
  const runtime = new VirtualRuntime(12)
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime, work: { burstMicros: 10_000, microsPerSecond: 100 } })
  const doc = await host.open<Y.Doc>("yjs", "d")
  // 20,000 GC structs of one client starting at clock 2^40: counted (cheap), decoded
  // (Y.decodeUpdate), then refused by unsupportedStructs. (A subdocument, the first version of
  // this test, is refused by the counter before any decoding, so it costs no more than its bytes.)
  const n = 20_000
  const varuint = (x: number): number[] => {
    const out: number[] = []
    for (; x >= 0x80; x = Math.floor(x / 0x80)) out.push((x % 0x80) | 0x80)
    out.push(x)
    return out
  }
  const update = new Uint8Array([1, ...varuint(n), 77, ...varuint(2 ** 40), ...new Array<number>(n).fill(0).flatMap(() => [0, 1]), 0])
  const first = await doc.submit([update], undefined, undefined, "mallory")
  expect(first.rejected[0]?.code).toBe("update-malformed")
  let next: string | undefined
  const nextDone = doc.submit([update], undefined, undefined, "mallory").then((o) => (next = o.rejected[0]?.code ?? "stored"))
  await settle()
  expect(next).toBeUndefined()
  await runtime.run({ forMs: 3_600_000 })
  await settle()
  await nextDone
  expect(next).toBe("update-malformed")
  await host.close()
}, 60_000)

/**
 * The hub's Automerge engine does an update's work in slices (adapters/automerge-server/engine.ts,
 * adapters/automerge/admit.ts). A 150-byte document chunk can carry 262,144 empty changes;
 * decoding, admitting and applying them was one synchronous stretch (15.2 s for 262,000
 * measured), during which the hub served no other document and no other socket.
 *
 * Asserted as mechanisms, not durations: timers get turns while such a chunk is decoded
 * (prepare) and applied, another document's update is stored before the chunk is, and the
 * chunk still ends up in the document whole. Arrival order on one document is kept, and a
 * submit's updates are decoded one at a time.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { DECODE_SLICE } from "../adapters/automerge/admit.js"

const CHANGES = 20_000

/** A document chunk of `n` empty changes (about 120 bytes). */
const emptyChanges = (n: number, actor: string): { chunk: Uint8Array; doc: A.Doc<unknown> } => {
  let d = A.init<unknown>({ actor })
  for (let i = 0; i < n; i++) d = A.emptyChange(d)
  return { chunk: A.save(d), doc: d }
}

const host = () => new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, compactAfterBytes: 1 << 30 })

test(`a document chunk of ${CHANGES.toLocaleString("en")} changes is checked and applied in slices: timers run, and another document is served first`, async () => {
  const h = host()
  const big = await h.open<AutomergeBox>("automerge", "big")
  const small = await h.open<AutomergeBox>("automerge", "small")
  const { chunk, doc: uploaded } = emptyChanges(CHANGES, "0a".repeat(16))
  expect(chunk.length).toBeLessThan(200)
  const one = A.change(A.init<Record<string, unknown>>({ actor: "0b".repeat(16) }), (d) => { d.x = 1 })

  let ticks = 0
  let ticking = true
  const tick = () => {
    ticks++
    if (ticking) setTimeout(tick, 0)
  }
  setTimeout(tick, 0)

  const order: string[] = []
  const bigDone = big.submit([chunk]).then((o) => {
    order.push("big")
    return o
  })
  // Submitted on a later turn, as another socket's frame would arrive.
  const smallDone = new Promise((r) => setTimeout(r, 0)).then(() => small.submit([A.getLastLocalChange(one)!])).then((o) => {
    order.push("small")
    return o
  })
  const [bigOutcome, smallOutcome] = await Promise.all([bigDone, smallDone])
  ticking = false

  expect(bigOutcome).toEqual({ stored: 1, known: 0, rejected: [] })
  expect(smallOutcome).toEqual({ stored: 1, known: 0, rejected: [] })
  expect(order).toEqual(["small", "big"])
  // At least one turn per slice of decoding; admitting adds as many again.
  expect(ticks).toBeGreaterThanOrEqual(CHANGES / DECODE_SLICE)
  expect(A.getHeads(big.doc.doc)).toEqual(A.getHeads(uploaded))
  expect(A.getAllChanges(big.doc.doc).length).toBe(CHANGES)
  await h.close()
}, 60_000)

test("a slow prepare never lets a later update on the same document overtake it", async () => {
  const h = host()
  const doc = await h.open<AutomergeBox>("automerge", "d")
  const actor = "0c".repeat(16)
  const { chunk, doc: base } = emptyChanges(3 * DECODE_SLICE, actor)
  // Depends on the chunk's last change: refused (missing dependencies) if it were applied first.
  const next = A.change(A.clone(base, { actor }), (d: any) => { d.after = true })
  const [first, second] = await Promise.all([doc.submit([chunk]), doc.submit([A.getLastLocalChange(next)!])])
  expect(first).toEqual({ stored: 1, known: 0, rejected: [] })
  expect(second).toEqual({ stored: 1, known: 0, rejected: [] })
  expect((doc.doc.doc as { after?: boolean }).after).toBe(true)
  await h.close()
}, 60_000)

test("an update whose check throws or whose prepare rejects is refused, and no rejection is left unhandled", async () => {
  const engine = automergeDocEngine()
  const one = A.change(A.init<Record<string, unknown>>(), (d) => { d.x = 1 })
  for (const broken of [
    { ...engine, check: (): never => { throw new Error("engine bug") } },
    { ...engine, prepare: () => Promise.reject(new Error("engine bug")) },
  ]) {
    const h = new CrdtDocHost({ engines: [broken], storage: new MemoryStorage(), sync: false })
    const doc = await h.open<AutomergeBox>("automerge", "d")
    const outcome = await doc.submit([A.getLastLocalChange(one)!])
    expect(outcome.stored).toBe(0)
    expect(outcome.rejected).toEqual([{ code: "update-malformed", message: expect.stringContaining("engine bug"), index: 0 }])
    await h.close()
  }
})

test("a submit's updates are prepared (decoded) one at a time (each may hold a whole loaded document)", async () => {
  const engine = automergeDocEngine()
  let inFlight = 0
  let most = 0
  const counted = {
    ...engine,
    prepare: async (u: Uint8Array) => {
      most = Math.max(most, ++inFlight)
      try {
        return await engine.prepare!(u)
      } finally {
        inFlight--
      }
    },
  }
  const h = new CrdtDocHost({ engines: [counted], storage: new MemoryStorage(), sync: false })
  const doc = await h.open<AutomergeBox>("automerge", "d")
  const chunks = ["0d", "0e", "0f"].map((a) => emptyChanges(2 * DECODE_SLICE, a.repeat(16)).chunk)
  expect(await doc.submit(chunks)).toEqual({ stored: 3, known: 0, rejected: [] })
  expect(most).toBe(1)
  await h.close()
}, 60_000)

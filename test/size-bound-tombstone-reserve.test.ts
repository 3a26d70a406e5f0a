/**
 * The review of aa8e855 (a document with CRDT fields keeps the last 64th of its
 * maxDocumentBytes for the tombstones of refused Yjs changes, core/authority/size-bound.ts).
 *
 * 1. A write refused for the reserve was told "would take it past <maxDocumentBytes> bytes",
 *    which it would not: the limit it was refused for is the bound less the reserve, and the
 *    app is told so (and why).
 * 2. A document whose CRDT fields make no tombstones (Automerge: what came after a refused
 *    change is made again, engine.ts `remake`) kept the reserve all the same: the last 64th of
 *    its bound was refused to every write, and nothing could ever use it.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { SizeBound, tombstoneReserve } from "../core/authority/size-bound.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const pad = { args: Schema.Struct({ id: Schema.String, s: Schema.String }), apply: (st: { pads: Record<string, string> }, { id, s }: { id: string; s: string }) => { st.pads[id] = s } }
const YNote = defineMachine({ name: "ynote", version: 1, initial: () => ({ pads: {} as Record<string, string> }), crdt: { body: yText() }, commands: { pad } })
const AmNote = defineMachine({ name: "amnote", version: 1, initial: () => ({ pads: {} as Record<string, string> }), crdt: { body: automergeText() }, commands: { pad } })

const MAX = 64 << 10

/** Fills `docId` with pads, halving them at each refusal, until an empty one is refused three times in a row (measures included). */
const filled = async <M extends typeof YNote | typeof AmNote>(machine: M) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [YNote, AmNote], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: MAX })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a", storage: new MemoryStorage() })
  const doc = await client.open(machine as typeof YNote, "d")
  await settleWithTurns(rt, 50)
  const messages: string[] = []
  const submit = async (id: string, n: number) => {
    const p = doc.submit("pad", { id, s: "p".repeat(n) }).then(() => true, (e: { message: string }) => (messages.push(e.message), false))
    await settleWithTurns(rt, 100)
    return p
  }
  for (let n = 8192, i = 0, refusedEmpty = 0; refusedEmpty < 3; i++) {
    if (await submit(`p${i}`, n)) refusedEmpty = 0
    else if (n > 0) n = Math.floor(n / 2)
    else refusedEmpty++
  }
  const authority = await hub.doc("d", machine as typeof YNote)
  const size = (await running(rt, authority.snapshotNow())).size
  await client.close()
  await hub.close()
  return { size, messages }
}

test("a write refused for the reserve is told the limit it was refused for, not maxDocumentBytes", () => {
  const reserve = tombstoneReserve(100_000)
  const b = new SizeBound(100_000, 98_000, true, reserve)
  // 98,500 bytes would not take it past 100,000: it is refused for the reserve.
  expect(b.fits(500)).toBe(false)
  const message = b.rejection("d").message
  expect(message).not.toMatch(/past 100000 bytes \(the hub's maxDocumentBytes\)/)
  expect(message).toMatch(new RegExp(`past ${100_000 - reserve} bytes`))
  expect(message).toMatch(/tombstones/)
  // A tombstone (or a deletion) refused is refused for the bound and the reserve again.
  expect(b.full("d", "this update", true)).toMatch(new RegExp(`past ${100_000 + reserve} bytes \\(the hub's maxDocumentBytes, 100000, and ${reserve} more`))
  // No reserve: as before.
  expect(new SizeBound(100_000, 98_000, true).rejection("d").message).toMatch(/past 100000 bytes \(the hub's maxDocumentBytes\)\. Delete/)
})

test("a document with a Yjs field keeps its reserve, and its writes refused for it are told so", async () => {
  const { size, messages } = await filled(YNote)
  const reserve = tombstoneReserve(MAX)
  expect(size).toBeLessThanOrEqual(MAX - reserve)
  expect(messages.length).toBeGreaterThan(0)
  for (const m of messages) expect(m).toContain(`would take it past ${MAX - reserve} bytes`)
})

test("a document whose CRDT fields make no tombstones (Automerge) keeps no reserve: its writes may fill it to the bound", async () => {
  const { size, messages } = await filled(AmNote)
  // Within a few bytes of the bound (an empty pad is refused), not a 64th short of it.
  expect(MAX - size).toBeLessThan(tombstoneReserve(MAX) / 2)
  for (const m of messages) expect(m).toContain(`would take it past ${MAX} bytes (the hub's maxDocumentBytes)`)
})

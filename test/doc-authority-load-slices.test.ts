/**
 * A document's load decodes its stored snapshot and encodes its state in pieces, the event loop
 * turning between them (the hub's Turns), and charges what it took to whoever made it load
 * (`loadMicros`). One synchronous block decoded a 28 MiB snapshot of 500,000 cards: the hub
 * stalled up to 3 s at each join after the board was unloaded, uncharged
 * (.scratch/s35/store/m-bigstate-probe.mts: 3,014 ms before, 375 ms after).
 */
import * as Schema from "effect/Schema"
import { Hub, defineMachine } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import type { Turns } from "../core/authority/turns.js"
import { WirePeer } from "./support/hub-wire.js"
import { newClientSecret } from "../core/ports/runtime.js"

const Cards = defineMachine({
  name: "cards",
  version: 1,
  initial: () => ({ cards: {} as Record<string, { title: string; n: number }> }),
  commands: {
    add: { args: Schema.Struct({ from: Schema.Number, count: Schema.Number }), apply: (s, { from, count }) => { for (let i = from; i < from + count; i++) s.cards[`c${i}`] = { title: `t${i}`, n: i } } },
  },
})

/** A hub on `storage` that has written `commands` commands of 20,000 / `commands` cards each to `docId` (snapshotted after each, or never). */
const written = async (storage: MemoryStorage, rt: VirtualRuntime, docId: string, commands: number, snapshots: boolean): Promise<Hub> => {
  const hub = new Hub({ machines: [Cards], storage, runtime: rt, ...(snapshots ? { snapshots: { minLogBytes: 1 } } : {}) })
  const p = new WirePeer("peer000000000001")
  p.listener = hub.accept(p.conn, { remoteAddress: "test:p" })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: p.clientId, machines: [], secret: newClientSecret(rt) })
  await rt.run({ forMs: 5 })
  p.send({ type: "subscribe", docId, machine: Cards.name, version: Cards.version, fingerprint: Cards.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 10 })
  const count = 20_000 / commands
  for (let k = 0; k < commands; k++) {
    p.send({ type: "submit", docId, ackedClientSeq: 0, commands: [{ clientSeq: k + 1, name: "add", args: { from: k * count, count } }] })
    await rt.run({ forMs: 2_000 })
  }
  return hub
}

/** A hub whose documents' turns are counted: every piece asks for one, and `next` is a microtask. */
const countingHub = (storage: MemoryStorage, rt: VirtualRuntime) => {
  const hub = new Hub({ machines: [Cards], storage, runtime: rt, snapshots: { minLogBytes: 1 }, limits: { commandsPerSecond: 1e9, messagesPerSecond: 1e9 } as never })
  const turns = (hub as unknown as { turns: Turns }).turns
  const counted = { next: 0 }
  turns.over = () => true
  turns.next = () => (counted.next++, Promise.resolve(true))
  return { hub, counted }
}

test("a stored snapshot is decoded, and the loaded state encoded, in pieces with turns between them", async () => {
  const storage = new MemoryStorage()
  const rt = new VirtualRuntime(1)
  const first = await written(storage, rt, "big", 4, true)
  const loaded = await first.doc("big", Cards)
  expect(Object.keys((loaded.state as { cards: object }).cards)).toHaveLength(20_000)
  await first.close()

  // At the snapshot: decoded in pieces (20,000 cards, a pause each 2,048 values; before, only the entries replayed after the snapshot, at most 4).
  // Its steady clock ticks a millisecond at each read, so the load's work is seen to take time.
  let ticks = 0
  const ticking = Object.assign(Object.create(rt) as VirtualRuntime, { monotonic: () => ++ticks })
  const again = countingHub(storage, ticking)
  const doc = await again.hub.doc("big", Cards)
  expect(Object.keys((doc.state as { cards: object }).cards)).toHaveLength(20_000)
  expect(again.counted.next).toBeGreaterThanOrEqual(15)
  // Charged: each piece of the decode (its clock read at each pause) counts, not the replay alone.
  expect(doc.loadMicros).toBeGreaterThanOrEqual(15_000)
  await again.hub.close()
})

test("with a log after the snapshot, the state replayed is encoded in pieces too, to measure its size and hash", async () => {
  const storage = new MemoryStorage()
  const rt = new VirtualRuntime(2)
  // No snapshots: the whole state comes from the log, and its encoding is measured at load.
  const first = await written(storage, rt, "logged", 1, false)
  await first.close()
  const again = countingHub(storage, rt)
  const doc = await again.hub.doc("logged", Cards)
  expect(Object.keys((doc.state as { cards: object }).cards)).toHaveLength(20_000)
  // One entry replayed (one turn), then about 0.9 MB encoded in 64 KiB pieces.
  expect(again.counted.next).toBeGreaterThanOrEqual(10)
  await again.hub.close()
})

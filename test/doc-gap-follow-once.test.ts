/**
 * A replica that misses entries follows the document again once per position, not once per
 * entries message that shows the gap (simulator seed 340 with the hub's disk failing reads).
 * A replica discarded a corrupted snapshot stream and asked for the state; the hub's follower,
 * which had sent the snapshot, went on with the catch-up pages after it, and every page was a
 * gap. The hub was not reading that connection for a while (its command rate), so each page
 * sent another subscribe; read at last, each subscribe restarted the follower and its snapshot
 * stream, each installed state sent the outbox again, and past 16 of those the replica ended
 * the connection of an honest hub ("asked for the outbox ... again more than 16 times").
 */
import { CanonClient, Hub, type ClientMessage, type ClientTransport } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"
import { running, settleWithTurns } from "./support/virtual-time.js"
import { intercepted } from "./support/intercepted.js"

/** A reader's link: its first snapshot chunk corrupted; what it sends held while `holding`. */
const tamperedLink = (inner: ClientTransport) => {
  const sent: ClientMessage[] = []
  const held: ClientMessage[] = []
  const closes: string[] = []
  let holding = false
  let corrupted = false
  let send: ((m: ClientMessage) => void) | undefined
  const transport = intercepted(inner, {
    message: (m, deliver) => {
      if (m.type === "snapshot-chunk" && !corrupted && m.bytes.length > 0) {
        corrupted = true
        const bytes = m.bytes.slice()
        bytes[0] = bytes[0]! ^ 0xff
        return deliver({ ...m, bytes })
      }
      deliver(m)
    },
    send: (m, real) => {
      send = real
      sent.push(m)
      if (holding) held.push(m)
      else real(m)
    },
    closed: (info) => void closes.push(info.reason),
  })
  return {
    transport, sent, closes,
    get corrupted() { return corrupted },
    hold: () => void (holding = true),
    release: () => {
      holding = false
      for (const m of held.splice(0)) send!(m)
    },
  }
}

test("a replica behind a discarded snapshot subscribes again once, however many catch-up pages show the gap", async () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, catchUpPage: 8, snapshotLagEntries: 16 } as never)
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const writer = await running(rt, (await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w" }))).open(Todo, "d"))
  for (let i = 0; i < 100; i++) writer.submit("add", { id: `a${i}`, title: "x" }).catch(() => {})
  await run(2_000)
  await running(rt, (await running(rt, hub.doc("d", Todo))).snapshotNow())
  for (let i = 0; i < 100; i++) writer.submit("add", { id: `b${i}`, title: "x" }).catch(() => {})
  await run(2_000)
  expect(writer.pendingCount).toBe(0)

  // The reader joins: a snapshot at seq 100 (corrupted on the wire: discarded), then pages of
  // 8 entries after it, while the hub does not read the reader.
  const link = tamperedLink(net.transport("r"))
  const reader = await running(rt, (await running(rt, CanonClient.open({ transport: link.transport, runtime: rt, clientId: "r" }))).open(Todo, "d"))
  const subscribes = () => link.sent.filter((m) => m.type === "subscribe").length
  for (let i = 0; i < 200 && subscribes() === 0; i++) await run(1)
  link.hold()
  await run(500)
  expect(link.corrupted).toBe(true)
  // The first subscribe, and one more for the gap (not one per page).
  expect(subscribes()).toBe(2)
  link.release()
  await run(5_000)
  expect(link.closes).toEqual([])
  expect(Object.keys(reader.state.items).length).toBe(200)
  expect(subscribes()).toBe(2)
}, 60_000)

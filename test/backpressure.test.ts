/**
 * Slow consumers: a client that stops reading must not make the hub buffer without bound.
 * Entries wait in the log; the client catches up when it reads again (or reconnects after
 * being dropped at the hard limit).
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const world = async (limits: { highWaterMark: number; hardLimit: number }) => {
  const rt = new VirtualRuntime(9)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  let maxBuffered = 0
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, ...limits })
  // Watch what the hub leaves queued towards the slow client.
  net.listen({
    accept: (conn, info) => {
      const watched = {
        send: (m: Parameters<typeof conn.send>[0]) => {
          if (info?.remoteAddress === "memory:slow") maxBuffered = Math.max(maxBuffered, conn.bufferedAmount)
          conn.send(m)
        },
        close: (c?: string, r?: string) => conn.close(c, r),
        get bufferedAmount() { return conn.bufferedAmount },
      }
      return hub.accept(watched, info)
    },
  })
  const writer = await CanonClient.open({ transport: net.transport("writer"), runtime: rt })
  const slow = await CanonClient.open({ transport: net.transport("slow"), runtime: rt, backoff: { baseMs: 10, maxMs: 100 } })
  const w = await writer.open(Todo, "d")
  const s = await slow.open(Todo, "d")
  await rt.run({ forMs: 100 })
  return { rt, net, hub, w, s, slow, maxBuffered: () => maxBuffered }
}

test("a stalled reader is paused at the high-water mark and catches up when it reads again", async () => {
  const { rt, net, hub, w, s, maxBuffered } = await world({ highWaterMark: 10, hardLimit: 10_000 })
  net.stall("slow")
  for (let i = 0; i < 300; i++) {
    w.submit("note", { text: `n${i}` })
    await rt.run({ forMs: 5 })
  }
  await rt.run({ forMs: 500 })
  const authority = await hub.doc("d", Todo)
  expect(authority.headSeq).toBe(300)
  // Bounded: a few messages over the mark at most, not 300.
  expect(maxBuffered()).toBeLessThanOrEqual(12)
  net.unstall("slow")
  await rt.run({ forMs: 2_000 })
  expect(s.confirmedSeq).toBe(300)
  expect(s.confirmedHash()).toBe(authority.stateHash())
})

test("over the hard limit the reader is dropped with slow-consumer, then reconnects and catches up", async () => {
  const { rt, net, hub, w, s, slow } = await world({ highWaterMark: 1_000_000, hardLimit: 20 })
  const closes: string[] = []
  slow.onStatus((st, info) => { if (st === "offline" && info) closes.push(info.code) })
  net.stall("slow")
  for (let i = 0; i < 100; i++) {
    w.submit("note", { text: `n${i}` })
    await rt.run({ forMs: 5 })
  }
  await rt.run({ forMs: 200 })
  net.unstall("slow")
  await rt.run({ forMs: 3_000 })
  expect(closes).toContain("slow-consumer")
  const authority = await hub.doc("d", Todo)
  expect(s.confirmedSeq).toBe(authority.headSeq)
  expect(s.confirmedHash()).toBe(authority.stateHash())
})

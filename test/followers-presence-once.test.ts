/**
 * A newcomer is told each other client's presence once. When a client set its presence
 * while another subscribed, the newcomer was sent it twice in one tick on every other tick:
 * by its catch-up of who is here and by the relay of the change (the tick takes newcomers
 * and changes first in turn, and the change's relay skipped only newcomers not caught up
 * yet). A newcomer following the README saw one setPresence reach its listener twice.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const run = async (offsetMs: number): Promise<unknown[]> => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const a = await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a" })
  const b = await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b" })
  // Another document keeps the hub's ticks going, so the parity of the tick varies with the offset.
  const other = await a.open(Todo, "other")
  other.setPresence({ here: true })
  await rt.run({ forMs: 200 + offsetMs })
  // Both come to the board at once; a says who it is at once.
  const ad = await a.open(Todo, "board")
  const bd = await b.open(Todo, "board")
  const seen: unknown[] = []
  bd.on("presence", (e) => seen.push(e.state))
  ad.setPresence({ name: "Ada" })
  await rt.run({ forMs: 500 })
  const told = [...seen]
  await a.close()
  await b.close()
  await hub.close()
  return told
}

test("a client's presence set as another subscribes reaches the newcomer once", async () => {
  const runs: Array<{ offsetMs: number; seen: unknown[] }> = []
  for (let offsetMs = 0; offsetMs < 100; offsetMs += 5) runs.push({ offsetMs, seen: await run(offsetMs) })
  expect(runs.filter((r) => r.seen.length !== 1)).toEqual([])
  for (const r of runs) expect(r.seen).toEqual([{ name: "Ada" }])
})

/**
 * Messages stay under the frame limit whatever the commands weigh: submits, live fan-out and
 * catch-up pages are cut by size (the memory network here encodes real frames, which refuse
 * anything over 1 MiB).
 */
import { CanonClient, Hub, sizeBound } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { cutBySize } from "../core/authority/doc-authority.js"
import { Todo } from "./support/machines.js"

test("2 MB of commands in one tick reach a late joiner in frames under the limit", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const writer = await CanonClient.open({ transport: net.transport("w"), runtime: rt })
  const w = await writer.open(Todo, "big")
  await rt.run({ forMs: 20 })
  const title = "x".repeat(10_000)
  const receipts = Array.from({ length: 200 }, (_, i) => w.submit("add", { id: `i${i}`, title }))
  await rt.run({ forMs: 2_000 })
  await expect(Promise.all(receipts)).resolves.toHaveLength(200)
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt })
  const r = await reader.open(Todo, "big")
  await rt.run({ forMs: 2_000 })
  expect(r.confirmedSeq).toBe(200)
  expect(r.confirmedHash()).toBe(w.confirmedHash())
})

test("a single command too large for a frame is refused locally with a sentence", async () => {
  const rt = new VirtualRuntime(12)
  const client = await CanonClient.open({ transport: new MemoryNetwork(rt).transport("c"), runtime: rt, autoConnect: false })
  const doc = await client.open(Todo, "d")
  const receipt = doc.submit("add", { id: "huge", title: "y".repeat(600_000) })
  expect(receipt.clientSeq).toBe(-1)
  await expect(receipt).rejects.toMatchObject({ code: "command-too-large", message: expect.stringMatching(/take \d+ bytes; at most 262144 fit in a command/) })
  expect(doc.pendingCount).toBe(0)
})

test("cutBySize keeps every run under the bound and loses nothing", () => {
  const entries = Array.from({ length: 100 }, (_, i) => ({ seq: i + 1, time: 0, clientId: "c", clientSeq: i + 1, name: "add", args: { t: "z".repeat((i * 37) % 900) } }))
  const runs = cutBySize(entries, 5_000)
  expect(runs.flat()).toEqual(entries)
  for (const run of runs) {
    const size = run.reduce((n, e) => n + 32 + sizeBound(e.args), 0)
    expect(run.length === 1 || size <= 5_000).toBe(true)
  }
})

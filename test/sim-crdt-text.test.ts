/**
 * The simulator's typists (test/sim/crdt-text.ts) say which merge command carried each edit;
 * the text checker's verdicts rest on it. Here: one flush of the CRDT outbox cut into several
 * commands (core/crdt/outbox.ts, consecutive runs within the field's budget).
 */
import { CanonClient, Hub, type Receipt } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Typists, type Carrier } from "./sim/crdt-text.js"
import type { Submitted } from "./sim/checker.js"
import { seededRandom } from "../core/internal.js"
import { SimText } from "./sim/machines.js"

test("pastes buffered behind a merge in flight and cut into two commands by one flush: each is handed to the command that carries it (seed 186)", async () => {
  const rt = new VirtualRuntime(186)
  const net = new MemoryNetwork(rt, { latency: () => 20 })
  net.listen(new Hub({ machines: [SimText], storage: new MemoryStorage(), runtime: rt }))
  const client = await CanonClient.open({ transport: net.transport("r0"), runtime: rt, clientId: "r0" })
  const doc = await client.open(SimText, "text")
  await rt.run({ forMs: 200 })

  const typists = new Typists(seededRandom(7), () => rt.now())
  const sent: Array<{ key: string; args: Uint8Array }> = []
  typists.attach(doc, (name, args, receipt: Receipt): Carrier => {
    const key = `${name}#${receipt.clientSeq}`
    sent.push({ key, args: args as Uint8Array })
    return { key, entry: { clientSeq: receipt.clientSeq } as unknown as Submitted }
  })
  typists.edit("r0", doc, "text")
  await rt.run({ forMs: 0 }) // its merge goes out: in flight for 40 ms
  // 80 KB buffered: over the 64 KiB a replica coalesces into one command, so one flush, two commands.
  typists.edit("r0", doc, "text", 40_000)
  typists.edit("r0", doc, "text", 40_000)
  await rt.run({ forMs: 0 })

  expect(sent).toHaveLength(3)
  const inserts = typists.ledgers.get("text")!.edits
  expect(inserts).toHaveLength(3)
  const utf8 = new TextEncoder()
  const carries = (args: Uint8Array, marker: string) => Buffer.from(args).includes(Buffer.from(utf8.encode(marker)))
  for (const e of inserts) {
    const holder = sent.filter((c) => carries(c.args, e.markers[0]!))
    expect(holder).toHaveLength(1)
    expect(e.carrier?.key).toBe(holder[0]!.key)
  }
  await client.close()
})

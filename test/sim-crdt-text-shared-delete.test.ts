/**
 * The simulator's typists (test/sim/crdt-text.ts) hand an edit on to a later command that
 * carries the same change bytes (a Yjs change sent again after a refusal or a restart). Two
 * replicas deleting the same marker make the same bytes (a Yjs update that only deletes names
 * the item, not who deleted it): each delete must stay with its own replica's command. Seed
 * 200 with the held-version world: r0's confirmed delete was moved to r1's command, which was
 * lost unstored, and the checker reported the deleted insert missing.
 */
import { CanonClient, Hub, type Doc, type Receipt } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Typists, type Carrier } from "./sim/crdt-text.js"
import type { Submitted } from "./sim/checker.js"
import { seededRandom } from "../core/internal.js"
import { SimText } from "./sim/machines.js"

test("two replicas deleting the same marker at once make the same bytes: each delete is carried by its own replica's command", async () => {
  const rt = new VirtualRuntime(200)
  const net = new MemoryNetwork(rt, { latency: () => 20 })
  net.listen(new Hub({ machines: [SimText], storage: new MemoryStorage(), runtime: rt }))
  const typists = new Typists(seededRandom(7), () => rt.now())
  const sent: Array<{ key: string; args: Uint8Array }> = []
  const open = async (name: string): Promise<{ client: CanonClient; doc: Doc<typeof SimText> }> => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name })
    const doc = await client.open(SimText, "text")
    typists.attach(doc, (command, args, receipt: Receipt): Carrier => {
      const key = `${name}#${receipt.clientSeq}`
      sent.push({ key, args: args as Uint8Array })
      return { key, entry: { clientSeq: receipt.clientSeq } as unknown as Submitted }
    })
    return { client, doc }
  }
  const r0 = await open("r0")
  const r1 = await open("r1")
  await rt.run({ forMs: 200 })
  typists.edit("r0", r0.doc, "text")
  await rt.run({ forMs: 500 })
  expect(r1.doc.crdt.text.toString()).toBe(r0.doc.crdt.text.toString())

  // Both delete the one marker before either hears of the other's delete.
  expect(typists.edit("r0", r0.doc, "text", 0, 1)).toMatch(/^delete /)
  expect(typists.edit("r1", r1.doc, "text", 0, 1)).toMatch(/^delete /)
  await rt.run({ forMs: 0 })

  const deletes = sent.filter((c) => c.key !== sent[0]!.key)
  expect(deletes.map((c) => c.key)).toEqual(["r0#2", "r1#1"])
  expect(Buffer.from(deletes[0]!.args).equals(Buffer.from(deletes[1]!.args))).toBe(true)
  const edits = typists.ledgers.get("text")!.edits.filter((e) => e.kind === "delete")
  expect(edits.map((e) => [e.replica, e.carrier?.key])).toEqual([["r0", "r0#2"], ["r1", "r1#1"]])
  await r0.client.close()
  await r1.client.close()
})

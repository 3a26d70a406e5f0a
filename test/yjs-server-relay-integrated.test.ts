/**
 * The /yjs route relays and stores what the document took in, not the peer's bytes. A Yjs
 * update may carry IDs the document holds already with other content: Yjs skips them on the
 * hub, but the hub stored and sent on the writer's update whole when any part of it was new.
 * A reader still syncing integrated the other content under the first writer's clientID and
 * then skipped the true one in the hub's whole-document answer (same IDs): it showed the
 * attacker's words as alice's, for good (4 of 5 joiners in the review).
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

const open = async (url: string): Promise<{ ws: WebSocket; updates: Uint8Array[] }> => {
  const ws = new WebSocket(url)
  const updates: Uint8Array[] = []
  ws.on("message", (d) => {
    const m = decodeYMessage(new Uint8Array(d as Buffer))
    if (m.type === "update") updates.push(m.update)
  })
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  return { ws, updates }
}

test("a writer's update that repeats another writer's IDs with other content reaches readers and the store without it", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs")
  const alice = new Y.Doc()
  // Longer than the forged text: every ID of that is alice's already (past them is writing as her: not-owner).
  const truth = "hello from alice, " + "lorem ipsum ".repeat(10)
  alice.getText("t").insert(0, truth)
  const mallory = new Y.Doc()
  const forged = new Y.Doc()
  forged.clientID = alice.clientID
  forged.getText("t").insert(0, "EVIL: alice says mallory is right")
  const a = await open(`${base}/room?token=alice`)
  const m = await open(`${base}/room?token=mallory`)
  const reader = await open(`${base}/room?token=carol`)
  try {
    a.ws.send(encodeUpdate(Y.encodeStateAsUpdate(alice)))
    expect(await until(() => m.updates.length > 0 && reader.updates.length > 0, 5_000)).toBe(true)
    const seen = reader.updates.length
    // Alice's IDs with mallory's text, and one entry of mallory's own (new: the update is taken).
    mallory.getMap("m").set("k", 1)
    m.ws.send(encodeUpdate(Y.mergeUpdates([Y.encodeStateAsUpdate(forged), Y.encodeStateAsUpdate(mallory)])))
    expect(await until(() => reader.updates.length > seen, 5_000)).toBe(true)
    // A reader that got the relay before the whole document: alice's clientID holds no other text.
    const joiner = new Y.Doc()
    for (const u of reader.updates.slice(seen)) Y.applyUpdate(joiner, u)
    expect(joiner.getText("t").toString()).toBe("")
    expect(joiner.getMap("m").get("k")).toBe(1)
    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "room")
    Y.applyUpdate(joiner, Y.encodeStateAsUpdate(doc.doc))
    expect(joiner.getText("t").toString()).toBe(truth)
    hub.crdtDocs.release(doc)
    // And what was stored: read back from the store alone.
    const read = await hub.crdtDocs.open<Y.Doc>("yjs", "room")
    expect(read.doc.getText("t").toString()).toBe(truth)
    hub.crdtDocs.release(read)
  } finally {
    for (const s of [a, m, reader]) s.ws.close()
    await stop()
  }
}, 20_000)

test("an update of deletions only is stored and relayed as it came: Yjs's encoding of its transaction lists every range it deleted", async () => {
  const alice = new Y.Doc()
  alice.clientID = 1
  const t = alice.getText("t")
  t.insert(0, "x".repeat(2_000))
  // Every other character deleted, one at a time: the text is a thousand runs.
  for (let i = 1_998; i >= 0; i -= 2) t.delete(i, 1)
  const engine = yjsDocEngine()
  const doc = engine.empty()
  expect((await engine.apply(doc, [Y.encodeStateAsUpdate(alice)]))[0]).toBeInstanceOf(Uint8Array)
  // No structs; one delete range over all of alice's clocks (8 bytes).
  const oneRange = new Uint8Array([0, 1, 1, 1, 0, 0xd0, 0x0f])
  expect(engine.check(oneRange).ok).toBe(true)
  expect((await engine.prepare!(oneRange)).ok).toBe(true)
  // Taken as it came (before: its transaction's update of some 3,000 bytes, a range per run).
  expect(await engine.apply(doc, [oneRange])).toEqual([true])
  expect(doc.getText("t").toString()).toBe("")
})

test("an update of deletions only is kept as sent only when smaller than what the document took in: bytes past its delete set are not stored", async () => {
  const alice = new Y.Doc()
  alice.clientID = 1
  alice.getText("t").insert(0, "x".repeat(20))
  const engine = yjsDocEngine()
  const doc = engine.empty()
  await engine.apply(doc, [Y.encodeStateAsUpdate(alice)])
  // One deleted character, then a megabyte Yjs never reads (before: stored and relayed whole).
  const junk = new Uint8Array(7 + (1 << 20)).fill(7)
  junk.set([0, 1, 1, 1, 0, 1])
  expect(engine.check(junk).ok).toBe(true)
  expect((await engine.prepare!(junk)).ok).toBe(true)
  const [took] = await engine.apply(doc, [junk])
  expect(took).toBeInstanceOf(Uint8Array)
  expect((took as Uint8Array).length).toBeLessThan(32)
  expect(doc.getText("t").toString()).toBe("x".repeat(19))
})

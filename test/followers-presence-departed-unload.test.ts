/**
 * A connection that unsubscribes leaves a note of the clients it may have been shown (13efd32):
 * what the hub sent that subscription may still be on its way, and reach a Doc the app opens
 * again on the connection, so the newcomer is owed those clients' leaves. The note was kept by
 * the document, and went with it when the document was unloaded (nobody following it, idle
 * past `idleDocuments`, or pushed out by others going idle): a subscribe after that found a
 * document loaded afresh that knew of no departed client, and the state still on its way
 * showed a client gone for good. Found by the presence model check
 * (followers-presence-model.property, seed 375 of 1,000 at 200 steps: a document unloaded at once).
 */
import { hubWorld } from "./support/hub-wire.js"

test("a leave owed to a connection that unsubscribed reaches its next subscription after the document was unloaded", async () => {
  // Unloaded as soon as nobody follows it (the bound a busy hub reaches by its 64 idle documents).
  const w = hubWorld({ highWaterMark: 50, idleDocuments: { count: 0 } })
  const x = await w.peer()
  const n = await w.peer()
  for (const p of [x, n]) w.subscribe(p, "room")
  x.send({ type: "presence-set", docId: "room", state: { v: 0 } })
  await w.run(300)
  expect(n.of("presence", "room").at(-1)?.state).toEqual({ v: 0 })
  n.stall()
  // Into n's buffer: over the high-water mark.
  x.send({ type: "presence-set", docId: "room", state: { v: 1, pad: "p".repeat(100) } })
  await w.run(100)
  // X leaves the document: n is paused, owed the leave.
  x.send({ type: "unsubscribe", docId: "room" })
  await w.run(100)
  // n's app closes the document (nobody follows it: unloaded once idle, idleUnloadMs) and opens it again.
  n.send({ type: "unsubscribe", docId: "room" })
  await w.run(1_000)
  w.subscribe(n, "room")
  await w.run(100)
  n.read()
  await w.run(3_000)
  // What reached the reopened Doc about X ends with X gone.
  expect(n.of("presence", "room").filter((m) => m.clientId === x.clientId).map((m) => m.state)).toEqual([{ v: 0 }, { v: 1, pad: "p".repeat(100) }, null])
  await w.hub.close()
}, 30_000)

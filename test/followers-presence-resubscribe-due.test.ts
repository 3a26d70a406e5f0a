/**
 * A follower paused with a leave due (presenceDue) subscribes again on the same
 * connection after its buffer drained but before its drain timer fired. add() copies the due
 * into the new follower, which is not a newcomer (its catch-up was sent), and canSend is true,
 * so no drain timer is set for it; the old follower's timer returns (closed). Nothing sends
 * that due until some other presence relay reaches the follower: it showed the client for
 * good (a review; older than this session). Now add() waits for the new follower's drain.
 */
import { hubWorld } from "./support/hub-wire.js"

test("a leave owed to a follower that subscribes again is still sent", async () => {
  const w = hubWorld({ highWaterMark: 50 })
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
  // X leaves: n is paused, owed the leave.
  x.send({ type: "presence-set", docId: "room", state: null })
  await w.run(60)
  // n reads and, in the same instant (before its 50 ms drain poll), subscribes again.
  n.read()
  w.subscribe(n, "room", n.of("synced", "room").at(-1)?.seq ?? 0)
  await w.run(3_000)
  expect(n.of("presence", "room").filter((m) => m.clientId === x.clientId).at(-1)?.state).toBeNull()
  await w.hub.close()
}, 30_000)

test("control: the same without subscribing again is sent the leave", async () => {
  const w = hubWorld({ highWaterMark: 50 })
  const x = await w.peer()
  const n = await w.peer()
  for (const p of [x, n]) w.subscribe(p, "room")
  x.send({ type: "presence-set", docId: "room", state: { v: 0 } })
  await w.run(300)
  n.stall()
  x.send({ type: "presence-set", docId: "room", state: { v: 1, pad: "p".repeat(100) } })
  await w.run(100)
  x.send({ type: "presence-set", docId: "room", state: null })
  await w.run(60)
  n.read()
  await w.run(3_000)
  expect(n.of("presence", "room").filter((m) => m.clientId === x.clientId).at(-1)?.state).toBeNull()
  await w.hub.close()
}, 30_000)

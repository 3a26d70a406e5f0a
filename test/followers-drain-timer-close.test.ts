/**
 * Closed means quiet (DESIGN.md 10): a follower's drain timer (followers.ts
 * `resumeWhenDrained`, set for a paused follower, or for one owed presence as it subscribes)
 * was not kept, so a document closing, or the follower leaving, left it armed: it fired later
 * and did nothing. The simulator's presence churner (a connection subscribing again and again,
 * each owed a leave) left 162 armed when the hub's close() resolved. Now the follower keeps
 * its timer and `stop` cancels it. Found by an attack review.
 */
import { hubWorld } from "./support/hub-wire.js"

test("a follower owed presence as it subscribes again leaves no timer armed once the hub closed", async () => {
  const w = hubWorld()
  const x = await w.peer()
  const n = await w.peer()
  for (const p of [x, n]) w.subscribe(p, "room")
  x.send({ type: "presence-set", docId: "room", state: { v: 0 } })
  await w.run(300)
  // n closes the document and opens it again: it is owed X's leave, should X go.
  n.send({ type: "unsubscribe", docId: "room" })
  w.subscribe(n, "room")
  await w.run(1)
  await w.hub.close()
  expect(w.rt.armed).toBe(0)
})

test("a paused follower leaves no timer armed once the hub closed", async () => {
  const w = hubWorld({ highWaterMark: 50 })
  const x = await w.peer()
  const n = await w.peer()
  for (const p of [x, n]) w.subscribe(p, "room")
  await w.run(100)
  n.stall()
  x.send({ type: "presence-set", docId: "room", state: { pad: "p".repeat(100) } })
  x.send({ type: "presence-set", docId: "room", state: { pad: "q".repeat(100) } })
  await w.run(60)
  x.send({ type: "presence-set", docId: "room", state: { pad: "r".repeat(100) } })
  await w.run(51)
  await w.hub.close()
  expect(w.rt.armed).toBe(0)
})

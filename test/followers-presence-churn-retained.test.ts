/**
 * A client's presence change waits in the document's queue while its presence budget is in
 * debt (a relay costs its frame times the receivers). The queue kept, with the change, every
 * follower object that had made it, closed ones included: a connection subscribing, setting
 * a 4 KiB presence and unsubscribing in a loop (three messages a cycle, within the message
 * rate) left one follower, its presence and its bookkeeping in memory per cycle until the
 * client's relay went, some seconds on a busy document, and the next relay put the client in
 * debt again (49 held with 300 receivers, about 2,300 with 2,000). Only whether one follower
 * alone made the change matters: that is what is kept now. Found by an attack review.
 */
import { hubWorld } from "./support/hub-wire.js"
import { Todo } from "./support/machines.js"

/** Follower objects the document's queue of presence changes holds for `clientId` (white box: the memory in question). */
const heldFor = (followers: unknown, clientId: string): number => {
  const by = (followers as { presenceChanged: Map<string, unknown> }).presenceChanged.get(clientId)
  return by instanceof Set ? by.size : by === undefined || by === null ? 0 : 1
}

test("a connection churning its subscription while its presence waits for its budget leaves no followers behind", async () => {
  const w = hubWorld({})
  for (let i = 0; i < 300; i++) w.subscribe(await w.peer(), "room")
  const x = await w.peer()
  w.subscribe(x, "room")
  await w.run(100)
  // Relayed to 300 receivers: about 1.2 MB, past the client's burst.
  x.send({ type: "presence-set", docId: "room", state: { pad: "p".repeat(4000) } })
  await w.run(60)
  const followers = ((await w.hub.doc("room", Todo)) as unknown as { followers: unknown }).followers
  let most = 0
  for (let i = 0; i < 300; i++) {
    w.subscribe(x, "room")
    await w.run(1)
    x.send({ type: "presence-set", docId: "room", state: { pad: "p".repeat(4000), i } })
    x.send({ type: "unsubscribe", docId: "room" })
    await w.run(2)
    most = Math.max(most, heldFor(followers, x.clientId))
  }
  expect(x.closed).toBeUndefined()
  expect(most).toBeGreaterThan(0)
  expect(most).toBeLessThanOrEqual(2)
  await w.hub.close()
}, 60_000)

/**
 * A v1 app follows a document across the hub's upgrade to v2: it is sent the `$migrate`
 * marker (markers pass to older followers as they are) and keeps it in its stored log.
 * The app is then updated to v2 and opens its store: `upgradeStoredReplica` must migrate the
 * stored v1 state once. It replays the stored entries with `replayEntry` but ignores the
 * epoch it returns, so the marker migrates the state to v2 in the middle of the replay, and
 * the final `migrateState(…, 1, 2)` then runs the v1 -> v2 migration a second time on a v2
 * state. A migration that renames a field (not idempotent) throws there: the updated app
 * can never open the document, and its kept outbox is stuck behind it.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { settle } from "./support/virtual-time.js"

type S1 = { list: string[] }
type S2 = { items: string[] }

const ListV1 = defineMachine({
  name: "lst",
  version: 1,
  initial: (): S1 => ({ list: [] }),
  commands: { push: { args: Schema.Struct({ item: Schema.String }), apply: (s: S1, a) => { s.list.push(a.item) } } },
})
// v2 renames the field: the most ordinary of migrations, and not idempotent.
const ListV2 = evolve(ListV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ items: s.list.slice() }),
  commands: { push: { args: Schema.Struct({ item: Schema.String }), apply: (s: S2, a) => { s.items.push(a.item) } } },
})
const V1 = historyOf(ListV2)!.at(1)
const DOC = "l"


test("a v1 replica that stored the hub's $migrate marker opens after the app's update, its state migrated once, its outbox kept", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hubStore = new MemoryStorage()
  let hub = new Hub({ machines: [ListV1], storage: hubStore, runtime: rt })
  net.listen(hub)
  const store = new MemoryStorage()
  const c1 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store })
  const d1 = await c1.open(V1, DOC)
  d1.submit("push", { item: "a" })
  await settle(rt)
  expect(d1.confirmedSeq).toBe(1)

  // The hub is upgraded: the document moves to v2 at seq 2; the v1 app follows it there.
  await hub.close()
  net.stopServer()
  hub = new Hub({ machines: [ListV2], storage: hubStore, runtime: rt })
  net.listen(hub)
  await settle(rt, 15_000)
  expect(d1.confirmedSeq).toBe(2) // the marker, shown to v1 as nothing
  expect(d1.state).toEqual({ list: ["a"] })
  // Offline, the v1 app writes one more command (kept in its outbox).
  net.drop("c")
  await c1.close()
  const c1b = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store, autoConnect: false })
  const d1b = await c1b.open(V1, DOC)
  d1b.submit("push", { item: "b" })
  await d1b.whenStored()
  await c1b.close()

  // The app is updated to v2 and opens its store.
  const c2 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store, autoConnect: false })
  const d2 = await c2.open(ListV2, DOC)
  expect(d2.state).toEqual({ items: ["a", "b"] })
  expect(d2.pendingCount).toBe(1)
  c2.connect()
  await settle(rt, 5000)
  const hubDoc = await hub.doc(DOC, ListV2)
  expect(d2.pendingCount).toBe(0)
  expect(hubDoc.state).toEqual({ items: ["a", "b"] })
  expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
  await c2.close()
  await hub.close()
})

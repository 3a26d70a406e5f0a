/**
 * An app updated on a device migrates its stored replica with its `migrateState`
 * (core/schema/replica-upgrade.ts), on a state other clients wrote. When that throws, the
 * document still opens: at the new version's initial state at seq 0, its outbox of commands
 * written offline at v1 kept (and applied once by the hub), the app told `migration-failed`
 * when it connects, and the authority's state installed then. Before, `open` failed with
 * `migration-failed` at every try, and the outbox was never sent.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { historyOf } from "../core/schema/versions.js"
import { settle } from "./support/virtual-time.js"
import { NotesV2Throws } from "./support/notes-migration.js"

// The hub never migrates a state here (the document starts at v2); the app's replica does.
const V2 = NotesV2Throws
const V1 = historyOf(V2)!.at(1)

test("an updated app opens its stored v1 replica whose state its migrateState throws on: outbox kept, told migration-failed, the hub's state installed", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [V2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const other = await CanonClient.open({ transport: net.transport("h"), runtime: rt, clientId: "h", storage: new MemoryStorage() })
  const hd = await other.open(V1, "d")
  hd.submit("put", { id: "b", text: "!boom" }) // v1 arguments; the hub upcasts and applies them
  await settle(rt, 3000)
  const store = new MemoryStorage()
  let me = await CanonClient.open({ transport: net.transport("me"), runtime: rt, clientId: "me", storage: store })
  const md = await me.open(V1, "d")
  await settle(rt, 3000)
  expect(md.confirmedSeq).toBe(1)
  me.disconnect()
  md.submit("put", { id: "mine", text: "offline work" })
  await md.whenStored()
  await me.close()

  // The updated app: the document opens, its own offline command on its state at once.
  me = await CanonClient.open({ transport: net.transport("me"), runtime: rt, clientId: "me", storage: store })
  const d2 = await me.open(V2, "d")
  const errors: Array<{ code: string; message: string }> = []
  d2.on("error", (e) => errors.push(e))
  expect(d2.confirmedSeq).toBe(0)
  expect(d2.pendingCount).toBe(1)
  expect(d2.state.notes.mine).toEqual({ text: "offline work", n: 0 })
  await settle(rt, 3000)
  const authority = await hub.doc("d", V2)
  expect(errors.map((e) => e.code)).toEqual(["migration-failed"])
  expect(errors[0]!.message).toMatch(/could not be migrated to v2.*cannot parse !boom/)
  expect(authority.headSeq).toBe(2)
  expect(authority.state.notes.mine).toEqual({ text: "offline work", n: 0 })
  expect(d2.pendingCount).toBe(0)
  expect(d2.confirmedSeq).toBe(2)
  expect(d2.state).toEqual(authority.state)
  await d2.whenStored()
  await me.close()

  // Stored at v2 now, the authority's state: the next open reads it as it is.
  me = await CanonClient.open({ transport: net.transport("me"), runtime: rt, clientId: "me", storage: store })
  me.disconnect()
  const d3 = await me.open(V2, "d")
  expect(d3.confirmedSeq).toBe(2)
  expect(d3.state).toEqual(authority.state)
  await other.close()
  await me.close()
  await hub.close()
})

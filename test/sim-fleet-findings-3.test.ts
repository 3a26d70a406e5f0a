/**
 * An engine bug the simulator's mixed fleet (test/sim/versioned.ts) found, reduced to
 * deterministic tests.
 *
 * Seed 75 (5 replicas): an app at v1 follows a document of a hub at v3 (entries downcast to
 * v1), and is upgraded to v2 on its device. The upgrade migrates the state it followed, the
 * v1 view, to v2 (core/schema/replica-upgrade.ts) and asks the hub for the authority's state.
 * Downcasts may drop what v2 shows: a v3 `add` with a priority reaches v1 as an `add` without
 * one, and the migration to v2 sets every priority to 0. The hub cannot send a v2 app a
 * snapshot (it holds the v3 state), so it dropped the request and served the log from the
 * app's seq: the app followed on top of a state that is not the v2 view, silently and for
 * good (no checkpoints for an older version). The sim saw "r4 (v2) hash != the v2 view".
 * Fix (core/authority/followers.ts): an older-version follower that asks for the state gets
 * its version's initial state at seq 0 and the whole log converted, while the log has its
 * start; once compacted away, it is told update-required.
 *
 * With that fix a replica installs a state at a seq below the one it had (seq 0, under its
 * migrated state's). If that install's write failed, and so did the next one carrying it,
 * with the connection lost before more of the log came, the retry a second later stored the
 * meta at the old, higher seq over the seq-0 state and the entries after it: the next start
 * refused the store (storage-corrupt, "claims seq 8 but its state reaches 2"). Fix
 * (core/replica/doc.ts `#storeConfirmed`): a retry that carries an installed state stores the
 * seq that state and its entries reach.
 */
import { CanonClient, Hub, type ClientTransport, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { AuthorityStore } from "../core/store/authority-store.js"
import { TodoV1, TodoV2, TodoV3 } from "./support/versioned-machines.js"
import { settle } from "./support/virtual-time.js"

const DOC = "list"

interface WorldOptions {
  /** More of the document's life while the old app follows it (it stays at the head). */
  readonly more?: (rt: VirtualRuntime, writer: Doc<typeof TodoV3>) => Promise<void>
  readonly snapshots?: { readonly minLogBytes: number; readonly logRatio: number; readonly tailBytes: number; readonly chunkBytes: number }
  /** Entries per catch-up page. */
  readonly catchUpPage?: number
}

/** A hub at v3, a v3 writer, and an app at v1 that follows the writer's prioritised item (shown without its priority). */
const world = async (seed: number, o: WorldOptions = {}) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hubStore = new MemoryStorage()
  const hub = new Hub({ machines: [TodoV3], storage: hubStore, runtime: rt, ...(o.snapshots !== undefined ? { snapshots: o.snapshots } : {}), ...(o.catchUpPage !== undefined ? { catchUpPage: o.catchUpPage } : {}) })
  net.listen(hub)
  const w = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const writer = await w.open(TodoV3, DOC)
  const disk = { failNext: 0 }
  const store = new MemoryStorage({ failWrite: () => disk.failNext-- > 0 })
  const old = await CanonClient.open({ transport: net.transport("o"), runtime: rt, clientId: "o", storage: store })
  const docOld = await old.open(TodoV1, DOC)
  writer.submit("add", { id: "x", title: "X", priority: 2 })
  writer.submit("toggle", { id: "x" })
  await settle(rt)
  expect(docOld.state.items.x).toEqual({ title: "X", done: true })
  await o.more?.(rt, writer)
  expect(docOld.updateRequired).toBeUndefined()
  expect(docOld.confirmedSeq).toBe((await hub.doc(DOC, TodoV3)).headSeq)
  await old.close()
  /** The app updated to v2: the new code opens the v1 store (migrated there) and connects. */
  const upgrade = async (transport = net.transport("o")): Promise<{ client: CanonClient; doc: Doc<typeof TodoV2> }> => {
    const client = await CanonClient.open({ transport, runtime: rt, clientId: "o", storage: store })
    return { client, doc: await client.open(TodoV2, DOC) }
  }
  /** A v2 app following from the start: the v2 view of the document. */
  const freshV2 = async () => {
    const client = await CanonClient.open({ transport: net.transport("f"), runtime: rt, clientId: "f", storage: new MemoryStorage() })
    const doc = await client.open(TodoV2, DOC)
    await settle(rt)
    return { client, doc }
  }
  return { rt, net, hub, hubStore, w, writer, disk, upgrade, freshV2 }
}

test("an app upgraded below the hub's version gets its version's view, not its old view migrated (seed 75)", async () => {
  const { rt, hub, w, writer, upgrade, freshV2 } = await world(75)
  const { client, doc } = await upgrade()
  await settle(rt, 5000)
  writer.submit("add", { id: "y", title: "Y", priority: 3 })
  await settle(rt)
  const fresh = await freshV2()
  expect(fresh.doc.state.items.x).toEqual({ title: "X", done: true, priority: 2 })
  expect(doc.updateRequired).toBeUndefined()
  expect(doc.confirmedSeq).toBe((await hub.doc(DOC, TodoV3)).headSeq)
  expect(doc.state).toEqual(fresh.doc.state)
  expect(doc.confirmedHash()).toBe(fresh.doc.confirmedHash())
  // It writes again, and what it writes is applied once.
  const receipt = doc.submit("setPriority", { id: "y", priority: 1 })
  await settle(rt)
  expect((await receipt).seq).toBe(doc.confirmedSeq)
  expect((await hub.doc(DOC, TodoV3)).state.items.y?.priority).toBe(1)
  expect(doc.state).toEqual(fresh.doc.state)
  for (const c of [client, fresh.client, w]) await c.close()
  await hub.close()
})

test("an app upgraded below the hub's version, once the log's start is compacted away, is told update-required instead of following on a wrong state", async () => {
  const more = async (rt: VirtualRuntime, writer: Doc<typeof TodoV3>) => {
    for (let i = 0; i < 80; i++) {
      writer.submit("add", { id: `i${i}`, title: "x".repeat(40), priority: 0 })
      if (i % 20 === 19) await settle(rt, 500)
    }
    await settle(rt)
  }
  // Small: snapshots and compaction after a few dozen commands.
  const { rt, hub, hubStore, w, writer, upgrade } = await world(76, { more, snapshots: { minLogBytes: 2 << 10, logRatio: 0.5, tailBytes: 256, chunkBytes: 4 << 10 } })
  expect(await new AuthorityStore(hubStore).snapshots.horizon(DOC)).toBeGreaterThan(0)
  const { client, doc } = await upgrade()
  const told: number[] = []
  doc.on("updateRequired", (e) => told.push(e.seq))
  await settle(rt, 5000)
  // Its state is the v1 view migrated (x's priority lost): kept, read-only, and not built on.
  expect(told.length).toBe(1)
  expect(doc.updateRequired).toBeDefined()
  expect(doc.state.items.x).toEqual({ title: "X", done: true, priority: 0 })
  const at = doc.confirmedSeq
  writer.submit("add", { id: "late", title: "L", priority: 1 })
  await settle(rt)
  expect(doc.confirmedSeq).toBe(at)
  expect(doc.state.items.late).toBeUndefined()
  await expect(doc.submit("toggle", { id: "x" })).rejects.toMatchObject({ code: "update-required" })
  for (const c of [client, w]) await c.close()
  await hub.close()
})

test("an install at seq 0 whose write failed, carried by a write that failed too and then retried alone, stores a state the next start opens", async () => {
  const more = async (rt: VirtualRuntime, writer: Doc<typeof TodoV3>) => {
    for (let i = 0; i < 6; i++) writer.submit("toggle", { id: "x" })
    await settle(rt)
  }
  // Two entries a catch-up page: the old app is at seq 8, the log after the seq-0 state comes in pages.
  const { rt, net, hub, w, disk, upgrade, freshV2 } = await world(77, { more, catchUpPage: 2 })
  // The write of the seq-0 state fails, and so does the one of the first page (it carries the
  // state); the connection is lost after that page: only the retry a second later stores them.
  let stage = 0
  const cut: ClientTransport = {
    connect: (listener) => net.transport("o").connect({
      onOpen: () => listener.onOpen?.(),
      onClose: (info) => listener.onClose(info),
      onMessage: (m) => {
        if (stage === 0 && m.type === "snapshot-end" && m.snapshotId === 0) {
          stage = 1
          disk.failNext = 2
        }
        listener.onMessage(m)
        if (stage === 1 && m.type === "entries") {
          stage = 2
          net.partition("o")
        }
      },
    }),
  }
  const first = await upgrade(cut)
  const errors: string[] = []
  first.doc.on("error", (e) => errors.push(e.code))
  await settle(rt, 5000)
  expect(stage).toBe(2)
  expect(disk.failNext).toBeLessThanOrEqual(0)
  expect(errors.filter((c) => c === "storage-failed").length).toBe(2)
  expect(first.doc.confirmedSeq).toBe(2)
  await first.client.close()
  net.heal("o")
  // The next start opens what was stored, and follows to the v2 view.
  const again = await upgrade()
  expect(again.doc.confirmedSeq).toBe(2)
  await settle(rt)
  const fresh = await freshV2()
  expect(again.doc.confirmedSeq).toBe(8)
  expect(again.doc.confirmedHash()).toBe(fresh.doc.confirmedHash())
  expect(again.doc.state.items.x).toEqual({ title: "X", done: true, priority: 2 })
  for (const c of [again.client, fresh.client, w]) await c.close()
  await hub.close()
})

/**
 * A hub upgraded to a machine version whose `migrateState` throws on a stored document's state
 * (a helper that refuses a value the old schema accepts), or returns a state a snapshot cannot
 * hold (nested past the depth bound by what a client wrote): the document stays at the version
 * its state is stored at (core/authority/held-version.ts). Old apps keep syncing and writing
 * it; an app at the new version is refused `migration-failed` with a sentence; nothing is
 * rewritten (no `$migrate` marker, the head stays at v1), so a hub with a fixed migration
 * upgrades it at its next load, the writes of the meantime included.
 */
import { CanonClient, Hub, type HubEvent } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { settle } from "./support/virtual-time.js"
import { NotesV1, NotesV2Throws, putV2, type NotesV1State, type NotesV2State } from "./support/notes-migration.js"

type S1 = NotesV1State
type S2 = NotesV2State
const V1Only = NotesV1
const put2 = putV2
const ThrowsV2 = NotesV2Throws
// Its output nests with what a client wrote (a text made into a tree by its path).
const DeepV2 = evolve(V1Only, {
  version: 2,
  migrateState: (s: S1): S2 => {
    const notes: Record<string, any> = {}
    for (const [k, t] of Object.entries(s.notes)) {
      let node: any = { text: t, n: 0 }
      for (const part of t.split("/").slice(1)) node = { [part]: node }
      notes[k] = node
    }
    return { notes }
  },
  commands: { put: put2 },
})
// The app's fix: the same v2 (same schemas), a migration that handles every v1 state.
const FixedV2 = evolve(V1Only, {
  version: 2,
  migrateState: (s: S1): S2 => ({ notes: Object.fromEntries(Object.entries(s.notes).map(([k, t]) => [k, { text: t, n: t.length }])) }),
  commands: { put: put2 },
})
const DOC = "d"

for (const [label, BadV2, bad] of [["throws", ThrowsV2, "!boom"], ["returns a state too deep to store", DeepV2, "/x".repeat(600)]] as const) {
  test(`migrateState ${label} at the hub's upgrade: v1 apps keep the document, v2 apps are told migration-failed, a fixed hub upgrades it`, async () => {
    const rt = new VirtualRuntime(3)
    const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
    const store = new MemoryStorage()
    let hub = new Hub({ machines: [V1Only], storage: store, runtime: rt })
    net.listen(hub)
    const w = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
    const wd = await w.open(V1Only, DOC)
    wd.submit("put", { id: "a", text: "hello" })
    wd.submit("put", { id: "b", text: bad }) // valid v1 arguments
    await settle(rt, 3000)
    expect(wd.confirmedSeq).toBe(2)
    await w.close()
    await hub.close()
    net.stopServer()

    // The hub upgraded to the v2 whose migration fails on this document.
    const events: HubEvent[] = []
    hub = new Hub({ machines: [BadV2], storage: store, runtime: rt, onEvent: (e) => events.push(e) })
    net.listen(hub)
    const doc = await hub.doc(DOC, BadV2)
    expect(doc.version).toBe(1)
    expect(doc.migrationFailure?.code).toBe("migration-failed")
    expect(events.some((e) => e.type === "doc-report" && e.code === "migration-failed")).toBe(true)

    // A v1 app follows it and writes to it.
    const o = await CanonClient.open({ transport: net.transport("o"), runtime: rt, clientId: "o", storage: new MemoryStorage() })
    const od = await o.open(historyOf(BadV2)!.at(1), DOC)
    const receipt = od.submit("put", { id: "c", text: "written while held" })
    // A v2 app is told why it cannot have the document, once, with what to do.
    const r = await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r", storage: new MemoryStorage() })
    const rd = await r.open(BadV2, DOC)
    const errors: Array<{ code: string; message: string }> = []
    rd.on("error", (e) => errors.push(e))
    await settle(rt, 5000)
    expect((await receipt).seq).toBe(3)
    expect(od.synced).toBe(true)
    expect(od.state.notes.c).toBe("written while held")
    expect(errors.map((e) => e.code)).toEqual(["migration-failed"])
    expect(errors[0]!.message).toMatch(/stays at "notes" v1 .*migration of its state to v2 failed/)
    expect(rd.confirmedSeq).toBe(0)
    // A snapshot of the held document is of its v1 state, as its head says.
    const held = await hub.doc(DOC, BadV2)
    const snapshot = held.snapshotNow()
    await settle(rt, 1000)
    expect((await snapshot).seq).toBe(3)
    expect(held.state).toEqual(od.state)
    await o.close()
    await r.close()
    await hub.close()
    net.stopServer()

    // Nothing was rewritten: a hub with the fixed migration upgrades the document now.
    hub = new Hub({ machines: [FixedV2], storage: store, runtime: rt })
    net.listen(hub)
    const fixed = await hub.doc(DOC, FixedV2)
    expect(fixed.version).toBe(2)
    expect(fixed.migrationFailure).toBeUndefined()
    expect(fixed.headSeq).toBe(4) // the marker after the three v1 entries
    expect(fixed.state.notes.c).toEqual({ text: "written while held", n: 18 })
    const r2 = await CanonClient.open({ transport: net.transport("r2"), runtime: rt, clientId: "r2", storage: new MemoryStorage() })
    const rd2 = await r2.open(FixedV2, DOC)
    await settle(rt, 5000)
    expect(rd2.synced).toBe(true)
    expect(rd2.state).toEqual(fixed.state)
    await r2.close()
    await hub.close()
  })
}

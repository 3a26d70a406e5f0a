/**
 * A machine with CRDT fields gets new versions: `evolve` carries its fields over unchanged
 * (their merge commands `$crdt.<field>` are the same in every version, so they go up and down
 * as they are), and every migration of the plain state leaves the fields' content where it is:
 * the hub's upgrade at load (core/schema/serve.ts applyMigration), a stored replica opened by
 * a newer app (core/schema/replica-upgrade.ts) and a newer app's view of an older hub's
 * snapshot (core/schema/compat.ts). The app's `migrateState` sees the plain state only.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub } from "../core/index.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { NoteV1, NoteV1InHistory as V1, NoteV2, commandsV1, migrated as seen } from "./support/versioned-note.js"

const DOC = "n"

/** Small logs are compacted behind a snapshot: a newcomer starts from the snapshot. */
const COMPACTING = { minLogBytes: 2 << 10, logRatio: 1, tailBytes: 0, chunkBytes: 1 << 10 }

const world = (snapshots?: typeof COMPACTING) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hubStore = new MemoryStorage()
  let hub: Hub | undefined
  const start = async (m: typeof NoteV1 | typeof NoteV2) => {
    if (hub !== undefined) {
      await hub.close()
      net.stopServer()
    }
    hub = new Hub({ machines: [m], storage: hubStore, runtime: rt, quietCheckpointMs: 200, ...(snapshots !== undefined ? { snapshots } : {}) })
    net.listen(hub)
    return hub
  }
  const open = async <M extends typeof NoteV1 | typeof NoteV2>(m: M, name: string, storage = new MemoryStorage()) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage })
    const doc = await client.open(m, DOC)
    const errors: string[] = []
    doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
    doc.on("rejected", (e) => errors.push(`rejected ${e.rejection.code}: ${e.rejection.message}`))
    return { client, doc, errors, storage }
  }
  return { rt, net, start, open, run: (ms: number) => settleWithTurns(rt, ms) }
}

describe("evolve", () => {
  test("carries the CRDT fields; their merge commands go up and down as they are", () => {
    expect(Object.keys(NoteV2.crdt ?? {})).toEqual(["body"])
    expect(NoteV2.compiled.has("$crdt.body")).toBe(true)
    const h = historyOf(NoteV2)!
    const merge = { name: "$crdt.body", args: new Uint8Array([1, 2, 3]) }
    expect(h.convert([merge], 1, 2)).toEqual([merge])
    expect(h.convert([merge], 2, 1)).toEqual([merge])
  })

  test("refuses a version that declares the fields it has, or migrations of a merge command", () => {
    const migrateState = (s: { title: string }) => s
    const commands = commandsV1
    expect(() => evolve(NoteV1, { version: 2, migrateState, commands, crdt: { body: yText() } } as never)).toThrow(/"body" is v1's already/)
    expect(() => evolve(NoteV1, { version: 2, migrateState, commands, upcast: { "$crdt.body": (a: unknown) => a } } as never)).toThrow(/\$crdt\.body.*Canon's/)
    expect(() => evolve(NoteV1, { version: 2, migrateState, commands, downcast: { "$crdt.body": (a: unknown) => a } } as never)).toThrow(/\$crdt\.body.*Canon's/)
  })

  test("a merge never travels inside a $batch or $as (it would be applied as nothing); both run as the machine's commands do", () => {
    const merge = new Uint8Array([0, 0])
    for (const m of [NoteV2, V1]) {
      const as = m.compiled.get("$as")!
      const batch = m.compiled.get("$batch")!
      expect(JSON.stringify(as.decode({ v: 1, name: "$crdt.body", args: merge }))).toMatch(/travels as itself/)
      expect(JSON.stringify(batch.decode([["$crdt.body", merge]]))).toMatch(/travels as itself/)
      expect(JSON.stringify(batch.decode([["rename", { title: "t" }]]))).toMatch(/Success/)
      // Marked as the machine's own commands are: runApply finds the fields first and keeps `$crdt` out.
      expect([as.crdt?.decls, batch.crdt?.decls]).toEqual([NoteV1.crdt, NoteV1.crdt])
    }
  })

  test("a migration that returns the reserved $crdt key fails as a migration", () => {
    const Bad = evolve(NoteV1, { version: 2, migrateState: (s: { title: string }) => ({ ...s, $crdt: 1 }), commands: commandsV1 } as never)
    expect(() => historyOf(Bad)!.migrateState({ title: "t" }, 1, 2, { seq: 1, time: 0, random: () => 0 })).toThrow(/\$crdt/)
  })
})

describe("the text survives every migration", () => {
  test("a hub upgraded to v2 keeps the text; v1 and v2 writers type into it together", async () => {
    const w = world()
    await w.start(NoteV1)
    const a = await w.open(V1, "a")
    await w.run(100)
    a.doc.crdt.body.insert(0, "hello")
    a.doc.submit("rename", { title: "T" })
    await w.run(1000)
    expect(a.doc.pendingCount).toBe(0)

    seen.length = 0
    const hub = await w.start(NoteV2)
    const doc = await hub.doc(DOC, NoteV2)
    expect(doc.state).toEqual({ title: "T", tags: [] })
    // The app's migration saw the plain state only.
    expect(seen).toEqual([{ title: "T" }])

    const b = await w.open(NoteV2, "b")
    await w.run(1000)
    expect(b.doc.crdt.body.toString()).toBe("hello")
    b.doc.crdt.body.insert(5, " world")
    b.doc.submit("tag", { tag: "x" })
    a.doc.crdt.body.insert(0, ">")
    await w.run(2000)
    expect([...a.errors, ...b.errors]).toEqual([])
    expect(b.doc.crdt.body.toString()).toBe(">hello world")
    expect(a.doc.crdt.body.toString()).toBe(">hello world")
    expect(b.doc.state).toEqual({ title: "T", tags: ["x"] })
    expect(b.doc.confirmedHash()).toBe((await w.start(NoteV2).then((h) => h.doc(DOC, NoteV2))).stateHash())
    // Loaded again (from the snapshot after the upgrade, or the log): the text is still there.
    const c = await w.open(NoteV2, "c")
    await w.run(2000)
    expect(c.doc.crdt.body.toString()).toBe(">hello world")
    expect([...a.errors, ...b.errors, ...c.errors]).toEqual([])
  })

  test("a stored v1 replica opened by the v2 app keeps its confirmed and its unsent text", async () => {
    const w = world()
    await w.start(NoteV1)
    const a = await w.open(V1, "a")
    await w.run(100)
    a.doc.crdt.body.insert(0, "sent")
    await w.run(1000)
    w.net.partition("a")
    await w.run(100)
    a.doc.crdt.body.insert(4, "+offline")
    await w.run(100)
    expect(a.doc.pendingCount).toBeGreaterThan(0)
    await a.client.close()

    await w.start(NoteV2)
    const again = await w.open(NoteV2, "a", a.storage)
    expect(again.doc.crdt.body.toString()).toBe("sent+offline")
    expect(again.doc.state).toEqual({ title: "", tags: [] })
    w.net.heal("a")
    await w.run(2000)
    const b = await w.open(NoteV2, "b")
    await w.run(1000)
    expect(b.doc.crdt.body.toString()).toBe("sent+offline")
    expect(again.doc.crdt.body.toString()).toBe("sent+offline")
    expect([...again.errors, ...b.errors]).toEqual([])
  })

  test.each([["its log", undefined], ["its snapshot", COMPACTING]] as const)("a v2 app served by a v1 hub from %s sees the text, and a v1 app sees what it types", async (_, snapshots) => {
    const w = world(snapshots)
    const hub = await w.start(NoteV1)
    const a = await w.open(V1, "a")
    await w.run(100)
    const text = "old hub ".repeat(600)
    for (let i = 0; i < 4; i++) {
      a.doc.crdt.body.insert(a.doc.crdt.body.length, text.slice(i * 1200, (i + 1) * 1200))
      await w.run(100)
    }
    a.doc.submit("rename", { title: "T" })
    await w.run(1000)
    expect((await hub.doc(DOC, NoteV1)).latestSnapshot !== undefined).toBe(snapshots !== undefined)
    const b = await w.open(NoteV2, "b")
    await w.run(1500)
    expect([...a.errors, ...b.errors]).toEqual([])
    expect(b.doc.crdt.body.toString()).toBe(text)
    expect(b.doc.state).toEqual({ title: "T", tags: [] })
    b.doc.crdt.body.insert(0, "new app, ")
    await w.run(1500)
    expect(a.doc.crdt.body.toString()).toBe(`new app, ${text}`)
    expect([...a.errors, ...b.errors]).toEqual([])
  })
})

/**
 * Merges come only from a field's own edits and travel as themselves (review of 5a0a432): a
 * merge wrapped in `$as` passed the hub's CRDT work budget, which reads the command's name; an
 * app's upcast giving a merge among other commands was applied live as nothing in a `$batch`
 * and refused by replay (an acknowledged rename lost at restart); a migration returning a
 * non-object broke the document at every load instead of holding it at its version.
 */
describe("merges travel as themselves; migrations keep the state a fields machine needs", () => {
  const update: unknown = (() => {
    const f = NoteV1.crdt!.body.engine.create()
    const out: unknown[] = []
    f.onLocalChange((u) => out.push(u))
    ;(f.handle as { insert(i: number, s: string): void }).insert(0, "x")
    return out[0]
  })()

  test.each([1, 2])("a merge wrapped in $as by a v%i session is refused, not applied", async (v) => {
    const rt = new VirtualRuntime(7)
    const net = new MemoryNetwork(rt, { latency: () => 1 })
    const hub = new Hub({ machines: [NoteV2], storage: new MemoryStorage(), runtime: rt })
    net.listen(hub)
    const got: ServerMessage[] = []
    const conn = net.transport("c").connect({ onOpen: () => {}, onMessage: (m) => void got.push(m as ServerMessage), onClose: () => {} })
    await rt.run({ forMs: 5 })
    const machine = historyOf(NoteV2)!.at(v)
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "attacker000000", machines: [], secret: newClientSecret(rt) })
    conn.send({ type: "subscribe", docId: DOC, machine: "note", version: v, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 20 })
    conn.send({ type: "submit", docId: DOC, ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "$as", args: { v, name: "$crdt.body", args: update } }] })
    await rt.run({ forMs: 200 })
    const outcomes = got.flatMap((m) => (m.type === "results" ? m.outcomes : []))
    expect(outcomes).toEqual([{ clientSeq: 1, rejection: { code: "invalid-args", message: expect.stringMatching(/travels as itself/) } }])
    expect((await hub.doc(DOC, NoteV2)).headSeq).toBe(0)
    await hub.close()
  })

  test("an upcast or downcast that gives a merge is a failed migration, never a merge applied as nothing", () => {
    const U2 = evolve(NoteV1, {
      version: 2,
      migrateState: (s: unknown) => s,
      commands: { ...commandsV1, stamp: { args: Schema.Struct({ s: Schema.String }), apply: (st: { title: string }, a: { readonly s: string }) => { st.title = a.s } } },
      upcast: { rename: (a: unknown) => [{ name: "rename", args: a }, { name: "$crdt.body", args: update }] },
      downcast: { stamp: () => ({ name: "$crdt.body", args: update }) },
    } as never) as typeof NoteV1
    const h = historyOf(U2)!
    expect(() => h.convert([{ name: "rename", args: { title: "L" } }], 1, 2)).toThrow(/gave a CRDT merge/)
    expect(h.convert([{ name: "stamp", args: { s: "x" } }], 2, 1)).toBeUndefined()
    // The fields' own merges still pass both ways.
    expect(h.convert([{ name: "$crdt.body", args: update }], 1, 2)).toEqual([{ name: "$crdt.body", args: update }])
  })

  test("an upcast giving a merge is refused at the hub: nothing acknowledged is lost at a restart", async () => {
    const U2 = evolve(NoteV1, {
      version: 2,
      migrateState: (s: unknown) => s,
      commands: commandsV1,
      upcast: { rename: (a: unknown) => [{ name: "rename", args: a }, { name: "$crdt.body", args: update }] },
    } as never) as typeof NoteV1
    const w = world()
    const store = new MemoryStorage()
    const hub = new Hub({ machines: [U2], storage: store, runtime: w.rt })
    w.net.listen(hub)
    const a = await w.open(historyOf(U2)!.at(1) as typeof NoteV1, "a")
    await w.run(100)
    a.doc.submit("rename", { title: "L" })
    await w.run(1000)
    expect(a.errors).toEqual([expect.stringMatching(/^rejected command-failed: .*gave a CRDT merge/)])
    await hub.close()
    w.net.stopServer()
    const again = new Hub({ machines: [U2], storage: store, runtime: w.rt })
    expect([a.doc.state, (await again.doc(DOC, U2)).state]).toEqual([{ title: "" }, { title: "" }])
    await again.close()
  })

  test.each([["an array", (): unknown => ["x"]], ["null", (): unknown => null]] as const)("a migration that returns %s holds the document at v1, text served", async (_, out) => {
    const Bad = evolve(NoteV1, { version: 2, migrateState: out as never, commands: commandsV1 } as never) as typeof NoteV1
    const w = world()
    await w.start(NoteV1)
    const a = await w.open(NoteV1, "a")
    await w.run(100)
    a.doc.crdt.body.insert(0, "abc")
    a.doc.submit("rename", { title: "T" })
    await w.run(1000)
    await a.client.close()
    const hub = await w.start(Bad)
    const doc = await hub.doc(DOC, Bad)
    expect(doc.version).toBe(1)
    const b = await w.open(historyOf(Bad)!.at(1) as typeof NoteV1, "b")
    await w.run(1000)
    expect([b.doc.crdt.body.toString(), b.doc.state]).toEqual(["abc", { title: "T" }])
    expect(b.errors).toEqual([])
  })

  test("the previous version's commands may be passed on as they are (their merges included)", () => {
    const Same = evolve(NoteV1, { version: 2, migrateState: (s: { title: string }) => s, commands: NoteV1.commands } as never) as typeof NoteV1
    expect([...Same.compiled.keys()].filter((n) => !n.startsWith("$"))).toEqual(["rename"])
    expect(Same.compiled.has("$crdt.body")).toBe(true)
  })
})

test("a new document of a version whose default initial state migrates to a non-object fails as a migration (review of 65e127c)", async () => {
  const Bad = evolve(NoteV1, { version: 2, migrateState: ((s: { title: string }) => (s.title === "" ? null : s)) as never, commands: commandsV1 } as never) as typeof NoteV1
  const hub = new Hub({ machines: [Bad], storage: new MemoryStorage(), runtime: new VirtualRuntime(7) })
  await expect(hub.doc("fresh", Bad)).rejects.toMatchObject({ code: "migration-failed" })
  await hub.close()
})

/**
 * CRDT fields in machines, through a hub on the memory network: concurrent edits converge
 * with equal state hashes whatever the arrival order, a rebase never drops a concurrent
 * keystroke while ordered fields follow the authority's order, exactly-once on retries, a
 * joiner by snapshot gets the fields, and a replica restarted from its storage keeps them.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { seededRandom } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText, yMap } from "../adapters/yjs/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

export const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ title: "", log: [] as string[] }),
  crdt: { body: yText(), meta: yMap<string>() },
  commands: {
    rename: { args: Schema.Struct({ title: Schema.String }), apply: (s, { title }) => { s.title = title } },
    note: { args: Schema.Struct({ line: Schema.String }), apply: (s, { line }) => { s.log.push(line) } },
  },
})

const DOC = "n1"

const POLICY = { minLogBytes: 2 << 10, logRatio: 1, tailBytes: 0, chunkBytes: 1 << 10 }

const world = (seed = 1, latency: () => number = () => 5, hubStorage = new MemoryStorage(), snapshots?: typeof POLICY) => {
  const rt = new VirtualRuntime(seed)
  // Messages go through the wire codec (protocol 2: compact arguments).
  const net = new MemoryNetwork(rt, { latency, encode: true })
  const start = () => {
    const hub = new Hub({ machines: [Note], storage: hubStorage, runtime: rt, quietCheckpointMs: 200, ...(snapshots ? { snapshots } : {}) })
    net.listen(hub)
    return hub
  }
  return { rt, net, hub: start(), hubStorage, start }
}
type World = ReturnType<typeof world>

const open = async (w: World, name: string, storage?: MemoryStorage) => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, ...(storage ? { storage } : {}) })
  const doc = await client.open(Note, DOC)
  return { client, doc }
}


describe("CRDT fields through a hub", () => {
  test("three replicas typing concurrently converge, with equal hashes, nothing lost", async () => {
    const rnd = seededRandom(7)
    const w = world(7, () => 1 + Math.floor(rnd() * 20))
    const reps = await Promise.all(["a", "b", "c"].map((n) => open(w, n)))
    await settleWithTurns(w.rt, 200)
    for (let round = 0; round < 20; round++) {
      for (const [i, { doc }] of reps.entries()) {
        const t = doc.crdt.body
        t.insert(round % 2 === 0 ? 0 : t.length, `${"abc"[i]}${round};`)
        if (round % 4 === 3) doc.submit("note", { line: `${i}-${round}` })
        if (round % 6 === 5) doc.crdt.meta.set(`k${i}`, `v${round}`)
      }
      await w.rt.run({ forMs: 3 })
    }
    await settleWithTurns(w.rt, 3000)
    const texts = reps.map(({ doc }) => doc.crdt.body.toString())
    expect(new Set(texts).size).toBe(1)
    for (const i of [0, 1, 2]) for (let round = 0; round < 20; round++) expect(texts[0]).toContain(`${"abc"[i]}${round};`)
    const authority = await w.hub.doc(DOC, Note)
    const hashes = new Set([...reps.map(({ doc }) => doc.confirmedHash()), authority.stateHash()])
    expect(hashes.size).toBe(1)
    expect(reps.map(({ doc }) => doc.state.log)).toEqual([authority.state.log, authority.state.log, authority.state.log])
    expect(reps[0]!.doc.crdt.meta.toJSON()).toEqual({ k0: "v17", k1: "v17", k2: "v17" })
    for (const { doc } of reps) expect(doc.pendingCount).toBe(0)
  })

  test("a rebase keeps every concurrent keystroke while ordered commands follow the authority's order", async () => {
    const w = world(2, () => 20)
    const a = await open(w, "a")
    const b = await open(w, "b")
    await settleWithTurns(w.rt, 200)
    // b's ordered command and keystrokes reach the hub first; a's are pending meanwhile.
    b.doc.submit("note", { line: "b1" })
    b.doc.crdt.body.insert(0, "BBB")
    await w.rt.run({ forMs: 2 })
    a.doc.crdt.body.insert(0, "aaa")
    a.doc.submit("note", { line: "a1" })
    a.doc.crdt.body.insert(3, "AAA")
    expect(a.doc.crdt.body.toString()).toBe("aaaAAA")
    expect(a.doc.state.log).toEqual(["a1"])
    await settleWithTurns(w.rt, 1000)
    // a rebased onto b1: its own line after b's, and its keystrokes still there.
    expect(a.doc.state.log).toEqual(["b1", "a1"])
    expect(b.doc.state.log).toEqual(["b1", "a1"])
    const text = a.doc.crdt.body.toString()
    expect(text).toBe(b.doc.crdt.body.toString())
    expect([...text].sort().join("")).toBe("AAABBBaaa")
    expect(text).toContain("aaaAAA")
    expect(a.doc.confirmedHash()).toBe(b.doc.confirmedHash())
  })

  test("keystrokes typed while a merge is in flight are coalesced into one command", async () => {
    const w = world(4, () => 30)
    const a = await open(w, "a")
    await settleWithTurns(w.rt, 200)
    const t = a.doc.crdt.body
    for (let i = 0; i < 40; i++) {
      t.insert(t.length, String.fromCharCode(97 + (i % 26)))
      await w.rt.run({ forMs: 1 })
    }
    await settleWithTurns(w.rt, 1000)
    const authority = await w.hub.doc(DOC, Note)
    // 40 keystrokes over ~40 ms with a 60 ms round trip: far fewer than 40 commands.
    expect(authority.headSeq).toBeLessThanOrEqual(4)
    expect(authority.headSeq).toBeGreaterThanOrEqual(1)
    const c = await open(w, "c")
    await settleWithTurns(w.rt, 500)
    expect(c.doc.crdt.body.toString()).toBe(t.toString())
    expect(t.length).toBe(40)
  })

  test("exactly once: a merge retried after a lost connection is one entry", async () => {
    const w = world(5, () => 10)
    const a = await open(w, "a")
    await settleWithTurns(w.rt, 200)
    a.doc.crdt.body.insert(0, "hello")
    a.doc.submit("note", { line: "x" })
    await w.rt.run({ forMs: 12 }) // the submit reached the hub; the results did not come back
    w.net.drop("a")
    await settleWithTurns(w.rt, 2000)
    const authority = await w.hub.doc(DOC, Note)
    expect(authority.headSeq).toBe(2)
    expect(a.doc.pendingCount).toBe(0)
    expect(a.doc.crdt.body.toString()).toBe("hello")
    expect(authority.state.log).toEqual(["x"])
    expect(a.doc.confirmedHash()).toBe(authority.stateHash())
  })

  test("a replica joining by snapshot gets the fields; a restarted hub loads them from its snapshot", async () => {
    const w = world(6, () => 3, new MemoryStorage(), POLICY)
    const a = await open(w, "a")
    await settleWithTurns(w.rt, 100)
    for (let i = 0; i < 300; i++) {
      a.doc.crdt.body.insert(a.doc.crdt.body.length, `line ${i}\n`)
      if (i % 50 === 0) a.doc.crdt.meta.set("at", String(i))
      if (i % 100 === 0) a.doc.submit("note", { line: String(i) })
      await w.rt.run({ forMs: 2 })
    }
    await settleWithTurns(w.rt, 2000)
    const authority = await w.hub.doc(DOC, Note)
    expect(authority.latestSnapshot).toBeDefined()
    expect(authority.compactedThrough).toBeGreaterThan(0)
    const hash = authority.stateHash()
    const joiner = await open(w, "j")
    const snapshots: unknown[] = []
    joiner.doc.on("snapshot", (e) => snapshots.push(e))
    await settleWithTurns(w.rt, 2000)
    expect(snapshots.length).toBeGreaterThan(0)
    expect(joiner.doc.crdt.body.toString()).toBe(a.doc.crdt.body.toString())
    expect(joiner.doc.crdt.meta.get("at")).toBe("250")
    expect(joiner.doc.state.log).toEqual(["0", "100", "200"])
    expect(joiner.doc.confirmedHash()).toBe(hash)
    // The joiner types into the snapshot-loaded field: everyone gets it.
    joiner.doc.crdt.body.insert(0, "J:")
    await settleWithTurns(w.rt, 1000)
    expect(a.doc.crdt.body.toString().startsWith("J:line 0")).toBe(true)

    // A hub restarted on the same storage loads the snapshot and the log after it.
    await w.hub.close()
    const hub2 = w.start()
    const reloaded = await hub2.doc(DOC, Note)
    expect(reloaded.stateHash()).toBe(a.doc.confirmedHash())
  })

  test("a replica restarted from its storage keeps confirmed fields and offline keystrokes", async () => {
    const w = world(8, () => 5)
    const storage = new MemoryStorage()
    const first = await open(w, "a", storage)
    await settleWithTurns(w.rt, 100)
    first.doc.crdt.body.insert(0, "confirmed ")
    await settleWithTurns(w.rt, 500)
    w.net.partition("a")
    await settleWithTurns(w.rt, 50)
    first.doc.crdt.body.insert(first.doc.crdt.body.length, "offline")
    await settleWithTurns(w.rt, 50)
    await first.client.close()
    w.net.heal("a")
    const again = await open(w, "a", storage)
    expect(again.doc.crdt.body.toString()).toBe("confirmed offline")
    await settleWithTurns(w.rt, 1000)
    const other = await open(w, "b")
    await settleWithTurns(w.rt, 500)
    expect(other.doc.crdt.body.toString()).toBe("confirmed offline")
    expect(again.doc.pendingCount).toBe(0)
  })

  test("any schedule of edits, delays, drops and partitions converges: same text, same hash, nothing lost (property)", async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 1e6 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 9 })), { minLength: 10, maxLength: 40 }),
      async (seed, script) => {
        const rnd = seededRandom(seed)
        const w = world(seed, () => Math.floor(rnd() * 25))
        const reps = await Promise.all(["a", "b", "c"].map((n) => open(w, n)))
        await settleWithTurns(w.rt, 100)
        const typed: string[] = []
        for (const [k, [who, what]] of script.entries()) {
          const { doc } = reps[who]!
          const name = "abc"[who]!
          if (what < 6) {
            const mark = `<${name}${k}>`
            doc.crdt.body.insert(what % 2 === 0 ? 0 : doc.crdt.body.length, mark)
            typed.push(mark)
          } else if (what === 6) doc.submit("note", { line: `${name}${k}` })
          else if (what === 7) w.net.drop(name)
          else if (what === 8) w.net.partition(name)
          else w.net.heal()
          await w.rt.run({ forMs: Math.floor(rnd() * 8) })
        }
        w.net.heal()
        await settleWithTurns(w.rt, 3000)
        const texts = reps.map(({ doc }) => doc.crdt.body.toString())
        expect(new Set(texts).size).toBe(1)
        for (const m of typed) expect(texts[0]).toContain(m)
        const authority = await w.hub.doc(DOC, Note)
        expect(new Set([...reps.map(({ doc }) => doc.confirmedHash()), authority.stateHash()]).size).toBe(1)
        for (const { doc } of reps) expect(doc.state.log).toEqual(authority.state.log)
        for (const { client } of reps) await client.close()
      },
    ), { numRuns: 12 })
  })
})


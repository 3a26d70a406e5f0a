/**
 * CRDT fields in machines, through a hub on the memory network: concurrent edits converge
 * with equal state hashes whatever the arrival order, a rebase never drops a concurrent
 * keystroke while ordered fields follow the authority's order, exactly-once on retries, a
 * joiner by snapshot gets the fields, and a replica restarted from its storage keeps them.
 */
import * as Schema from "effect/Schema"
import * as Y from "yjs"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText, yMap } from "../adapters/yjs/index.js"

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

const world = (seed = 1, latency: () => number = () => 5, hubStorage = new MemoryStorage()) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency })
  const hub = new Hub({ machines: [Note], storage: hubStorage, runtime: rt })
  net.listen(hub)
  return { rt, net, hub, hubStorage }
}
type World = ReturnType<typeof world>

const open = async (w: World, name: string, storage?: MemoryStorage) => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, ...(storage ? { storage } : {}) })
  const doc = await client.open(Note, DOC)
  return { client, doc }
}

const settle = async (w: World, ms = 3000) => {
  for (let i = 0; i < ms / 10; i++) {
    await w.rt.run({ forMs: 10 })
    await new Promise((r) => setImmediate(r))
  }
}

describe("CRDT fields through a hub", () => {
  test("three replicas typing concurrently converge, with equal hashes, nothing lost", async () => {
    const w = world(7, () => 1 + Math.floor(Math.random() * 20))
    const reps = await Promise.all(["a", "b", "c"].map((n) => open(w, n)))
    await settle(w, 200)
    for (let round = 0; round < 20; round++) {
      for (const [i, { doc }] of reps.entries()) {
        const t = doc.crdt.body
        t.insert(round % 2 === 0 ? 0 : t.length, `${"abc"[i]}${round};`)
        if (round % 4 === 3) doc.submit("note", { line: `${i}-${round}` })
        if (round % 6 === 5) doc.crdt.meta.set(`k${i}`, `v${round}`)
      }
      await w.rt.run({ forMs: 3 })
    }
    await settle(w)
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
})

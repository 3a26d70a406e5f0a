/**
 * Automerge fields: concurrent edits through a hub converge (equal heads-based hashes), the
 * initial content is the same history everywhere, hostile changes are typed rejections, and
 * missing dependencies are refused with the reason `crdt-missing-deps`, never dropped.
 */
import * as Schema from "effect/Schema"
import * as A from "@automerge/automerge"
import { CanonClient, CommandRejected, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { automergeDoc, automergeText, crdtReason } from "../adapters/automerge/index.js"

const Sketch = defineMachine({
  name: "sketch",
  version: 1,
  initial: () => ({ name: "" }),
  crdt: { sketch: automergeDoc({ strokes: [] as number[][] }), notes: automergeText() },
  commands: {
    rename: { args: Schema.Struct({ name: Schema.String }), apply: (s, { name }) => { s.name = name } },
  },
})

const DOC = "s1"

const world = (seed = 1, latency: () => number = () => 5) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency })
  const hub = new Hub({ machines: [Sketch], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}
type World = ReturnType<typeof world>

const open = async (w: World, name: string) => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name })
  return { client, doc: await client.open(Sketch, DOC) }
}

const settle = async (w: World, ms = 2000) => {
  for (let i = 0; i < ms / 10; i++) {
    await w.rt.run({ forMs: 10 })
    await new Promise((r) => setImmediate(r))
  }
}

describe("Automerge fields through a hub", () => {
  test("concurrent edits from three replicas converge with equal hashes; nothing lost", async () => {
    const w = world(3, () => 1 + Math.floor(Math.random() * 15))
    const reps = await Promise.all(["a", "b", "c"].map((n) => open(w, n)))
    await settle(w, 100)
    for (let round = 0; round < 8; round++) {
      for (const [i, { doc }] of reps.entries()) {
        doc.crdt.sketch.change((d) => { d.strokes.push([i, round]) })
        doc.crdt.notes.splice(0, 0, `${"abc"[i]}${round};`)
      }
      if (round === 4) reps[0]!.doc.submit("rename", { name: "x" })
      await w.rt.run({ forMs: 4 })
    }
    await settle(w)
    const texts = reps.map(({ doc }) => doc.crdt.notes.text)
    expect(new Set(texts).size).toBe(1)
    for (const i of [0, 1, 2]) for (let round = 0; round < 8; round++) expect(texts[0]).toContain(`${"abc"[i]}${round};`)
    const strokes = reps.map(({ doc }) => JSON.stringify([...doc.crdt.sketch.doc.strokes].map((s) => [...s]).sort()))
    expect(new Set(strokes).size).toBe(1)
    expect(JSON.parse(strokes[0]!)).toHaveLength(24)
    const authority = await w.hub.doc(DOC, Sketch)
    expect(new Set([...reps.map(({ doc }) => doc.confirmedHash()), authority.stateHash()]).size).toBe(1)
    expect(reps.map(({ doc }) => doc.state.name)).toEqual(["x", "x", "x"])
  })

  test("a change whose dependency the hub lacks is rejected with crdt-missing-deps", async () => {
    const w = world()
    const { doc } = await open(w, "a")
    await settle(w, 100)
    // A second Automerge document with the same initial history makes two changes; only the
    // second is submitted.
    const other = A.clone(doc.crdt.sketch.doc, { actor: "abcdef0123456789abcdef0123456789" })
    const one = A.change(other, (d) => { d.strokes.push([1]) })
    const firstHash = A.decodeChange(A.getLastLocalChange(one)!).hash
    const two = A.change(one, (d) => { d.strokes.push([2]) })
    const second = A.getLastLocalChange(two)!
    const before = doc.crdt.sketch
    const receipt = doc.submit("$crdt.sketch" as never, [second] as never)
    await settle(w, 200)
    const error = await receipt.then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(CommandRejected)
    expect(crdtReason(error as CommandRejected)).toBe("crdt-missing-deps")
    expect((error as CommandRejected).message).toContain(firstHash)
    // The refused change was merged locally: the replica reloads its fields from the hub.
    await settle(w, 500)
    const authority = await w.hub.doc(DOC, Sketch)
    expect(doc.confirmedHash()).toBe(authority.stateHash())
    expect(doc.crdt.sketch).not.toBe(before)
    expect(A.getMissingDeps(doc.crdt.sketch.doc, [])).toEqual([])
    expect(doc.pendingCount).toBe(0)
  })
})

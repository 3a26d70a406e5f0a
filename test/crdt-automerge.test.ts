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
import { CrdtFields } from "../core/crdt/fields.js"
import { seededRandom } from "../core/internal.js"
import fc from "fast-check"
import { settleWithTurns } from "./support/virtual-time.js"

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


describe("Automerge fields through a hub", () => {
  test("concurrent edits from three replicas converge with equal hashes; nothing lost", async () => {
    const w = world(3, () => 1 + Math.floor(Math.random() * 15))
    const reps = await Promise.all(["a", "b", "c"].map((n) => open(w, n)))
    await settleWithTurns(w.rt, 100)
    for (let round = 0; round < 8; round++) {
      for (const [i, { doc }] of reps.entries()) {
        doc.crdt.sketch.change((d) => { d.strokes.push([i, round]) })
        doc.crdt.notes.splice(0, 0, `${"abc"[i]}${round};`)
      }
      if (round === 4) reps[0]!.doc.submit("rename", { name: "x" })
      await w.rt.run({ forMs: 4 })
    }
    await settleWithTurns(w.rt, 2000)
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
    await settleWithTurns(w.rt, 100)
    // A second Automerge document with the same initial history makes two changes; only the
    // second is submitted.
    const other = A.clone(doc.crdt.sketch.doc, { actor: "abcdef0123456789abcdef0123456789" })
    const one = A.change(other, (d) => { d.strokes.push([1]) })
    const firstHash = A.decodeChange(A.getLastLocalChange(one)!).hash
    const two = A.change(one, (d) => { d.strokes.push([2]) })
    const second = A.getLastLocalChange(two)!
    const before = doc.crdt.sketch
    const receipt = doc.submit("$crdt.sketch" as never, [second] as never)
    await settleWithTurns(w.rt, 200)
    const error = await receipt.then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(CommandRejected)
    expect(crdtReason(error as CommandRejected)).toBe("crdt-missing-deps")
    expect((error as CommandRejected).message).toContain(firstHash)
    // The refused change was merged locally: the replica reloads its fields from the hub.
    await settleWithTurns(w.rt, 500)
    const authority = await w.hub.doc(DOC, Sketch)
    expect(doc.confirmedHash()).toBe(authority.stateHash())
    expect(doc.crdt.sketch).not.toBe(before)
    expect(A.getMissingDeps(doc.crdt.sketch.doc, [])).toEqual([])
    expect(doc.pendingCount).toBe(0)
  })
})

/** Three writers' changes (text and list edits, partial merges), in the order they were made. */
const changesOf = (seed: number, ops: number): Uint8Array[] => {
  const rnd = seededRandom(seed)
  const pick = (n: number) => Math.floor(rnd() * n)
  const fields = [0, 1, 2].map(() => new CrdtFields({ notes: automergeText() }))
  const out: Uint8Array[] = []
  fields.forEach((f) => f.onLocalChange((_field, u) => out.push(...(u as Uint8Array[]))))
  for (let i = 0; i < ops; i++) {
    const h = fields[pick(3)]!.field("notes").handle as ReturnType<typeof automergeText>["engine"] extends { create(): { handle: infer H } } ? H : never
    const len = h.text.length
    if (len === 0 || pick(3) > 0) h.splice(pick(len + 1), 0, "abc".slice(0, 1 + pick(3)))
    else h.splice(pick(len), 1)
    if (pick(4) === 0) {
      // a partial merge: cross-writer dependencies
      const [x, y] = [fields[pick(3)]!, fields[pick(3)]!]
      if (x !== y) y.merge("notes", A.getAllChanges((x.field("notes").handle as { doc: A.Doc<unknown> }).doc), "peer")
    }
  }
  return out
}

const applyAll = (changes: Uint8Array[], batch = 1) => {
  const f = new CrdtFields({ notes: automergeText() })
  for (let i = 0; i < changes.length; i += batch) expect(f.merge("notes", changes.slice(i, i + batch), "c")).toBeUndefined()
  return f
}

describe("Automerge field engine", () => {
  test("the hash ignores arrival order and duplicates; snapshots reload to the same hash (property)", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 3, max: 20 }), (seed, ops) => {
      const changes = changesOf(seed, ops)
      // Any order that respects dependencies: here, writers' changes were made in a causal order.
      const forward = applyAll(changes)
      const batched = applyAll(changes, 7)
      const twice = applyAll([...changes, ...changes])
      expect(batched.hashes()).toEqual(forward.hashes())
      expect(twice.hashes()).toEqual(forward.hashes())
      const reloaded = new CrdtFields({ notes: automergeText() }, forward.encode())
      expect(reloaded.hashes()).toEqual(forward.hashes())
      expect((reloaded.field("notes").handle as { text: string }).text).toBe((forward.field("notes").handle as { text: string }).text)
    }), { numRuns: 12 })
  })

  test("two fields merging each other's changes in different orders agree (commutativity)", () => {
    const changes = changesOf(42, 40)
    const a = applyAll(changes)
    const b = new CrdtFields({ notes: automergeText() })
    // Reverse order in one update: the engine accepts a batch whose changes depend on later ones
    // only when trusted (ordered by the authority); Automerge sorts them out.
    expect(b.merge("notes", [...changes].reverse(), "c")).toBeUndefined()
    expect(b.hashes()).toEqual(a.hashes())
  })

  test("fuzzed changes: typed rejections, never a crash; the field keeps working", () => {
    const honest = changesOf(5, 30)
    const rnd = seededRandom(9)
    const f = applyAll(honest.slice(0, 10))
    let saved = f.encode()
    let rejected = 0
    for (let i = 0; i < 600; i++) {
      const base = honest[10 + (i % 20)]!
      const bad = new Uint8Array(base)
      const kind = i % 3
      let input: Uint8Array = bad
      if (kind === 0) { const j = Math.floor(rnd() * bad.length); bad[j] = bad[j]! ^ (1 << Math.floor(rnd() * 8)) }
      else if (kind === 1) input = bad.subarray(0, Math.floor(rnd() * bad.length))
      else input = Uint8Array.from({ length: 1 + Math.floor(rnd() * 100) }, () => Math.floor(rnd() * 256))
      const r = f.check("notes", [input], `m${i}`) ?? f.merge("notes", [input], `m${i}`)
      if (r !== undefined) {
        rejected++
        expect(crdtReason(r)).toBeDefined()
      }
      if (f.brokenField !== undefined) f.reloadField("notes", saved.notes)
      saved = f.encode()
    }
    expect(rejected).toBeGreaterThan(400)
    // Honest changes still merge.
    for (const c of honest.slice(10)) f.merge("notes", [c], "c")
    expect(f.brokenField).toBeUndefined()
    expect((f.field("notes").handle as { text: string }).text.length).toBeGreaterThan(0)
    // Not a list of bytes, too many bytes.
    expect(crdtReason(f.check("notes", "x", "m")!)).toBe("crdt-invalid")
    expect(crdtReason(f.check("notes", [new Uint8Array(300 << 10)], "m")!)).toBe("crdt-too-large")
  })
})


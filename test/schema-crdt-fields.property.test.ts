/**
 * Random histories of a machine with a Yjs text field crossing a version change: three
 * replicas of v1 type (online and offline), the hub is upgraded to v2 at a random point
 * (restarted on the same storage, its small log compacted behind snapshots, so a v1 app back
 * after it may be told `update-required`), replicas are upgraded to v2 at random points
 * (closed with unsent edits, opened by the v2 app on the same storage), and a v2 replica may
 * be served by the v1 hub before its upgrade. At the end every replica runs v2 and is online:
 * all texts are equal to the hub's, every insertion typed is in it exactly once (nothing here
 * deletes), and the states and hashes agree. See test/schema-crdt-fields.test.ts for the paths.
 * The second property runs the same histories with a v2 that adds a `notes` field, which v2
 * replicas also type into (test/schema-crdt-added-field.test.ts).
 */
import fc from "fast-check"
import { CanonClient, Hub, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { historyOf } from "../core/schema/versions.js"
import { NoteV1, NoteV1InHistory, NoteV2, NoteV2WithNotes } from "./support/versioned-note.js"

const DOC = "n"
const COMPACTING = { minLogBytes: 1 << 10, logRatio: 1, tailBytes: 0, chunkBytes: 1 << 10 }

type Step =
  | { readonly kind: "type"; readonly client: number; readonly at: number; readonly length: number }
  | { readonly kind: "offline" | "online" | "upgrade"; readonly client: number }
  | { readonly kind: "rename"; readonly client: number }
  | { readonly kind: "upgradeHub" }
  | { readonly kind: "wait"; readonly ms: number }

const client = fc.integer({ min: 0, max: 2 })
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("type" as const), client, at: fc.nat(), length: fc.integer({ min: 1, max: 120 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("offline" as const, "online" as const, "upgrade" as const, "rename" as const), client }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("upgradeHub" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 5, max: 400 }) }) },
)

type Replica = { name: string; storage: MemoryStorage; client: CanonClient; doc: Doc<typeof NoteV1> | Doc<typeof NoteV2>; version: 1 | 2; offline: boolean }

/** The two versions a history runs: v2 without or with an added field. */
type Pair = { readonly V1: typeof NoteV1; readonly V2: typeof NoteV2; readonly notes: boolean }
const PLAIN: Pair = { V1: NoteV1InHistory, V2: NoteV2, notes: false }
const ADDED: Pair = { V1: historyOf(NoteV2WithNotes)!.at(1) as typeof NoteV1, V2: NoteV2WithNotes as unknown as typeof NoteV2, notes: true }
/** A v2 doc's added field (only with ADDED). */
const notesOf = (doc: Replica["doc"]) => (doc as unknown as Doc<typeof NoteV2WithNotes>).crdt.notes

const run = async (steps: ReadonlyArray<Step>, seed: number, { V1, V2, notes }: Pair = PLAIN): Promise<void> => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 2 + (seed % 7), encode: true })
  const hubStore = new MemoryStorage()
  let hubVersion: 1 | 2 = 1
  let hub = new Hub({ machines: [NoteV1], storage: hubStore, runtime: rt, quietCheckpointMs: 100, snapshots: COMPACTING })
  net.listen(hub)
  const errors: string[] = []
  const open = async (name: string, storage: MemoryStorage, version: 1 | 2): Promise<Replica> => {
    const c = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage })
    const doc = version === 1 ? await c.open(V1, DOC) : await c.open(V2, DOC)
    // update-required is how a v1 app learns of the v2 hub; anything else is a failure here.
    // With an added field, a v2 app on the v1 hub is told its notes wait for the upgrade (schema-too-new).
    doc.on("error", (e) => { if (e.code !== "update-required" && !(notes && e.code === "schema-too-new")) errors.push(`${name}: ${e.code}: ${e.message}`) })
    doc.on("rejected", (e) => errors.push(`${name}: rejected ${e.rejection.code}: ${e.rejection.message}`))
    return { name, storage, client: c, doc, version, offline: false }
  }
  // A replica served by the older hub may already run v2 (compat mode).
  const replicas = [await open("a", new MemoryStorage(), 1), await open("b", new MemoryStorage(), 1), await open("c", new MemoryStorage(), seed % 3 === 0 ? 2 : 1)]
  const typed: string[] = []
  const typedNotes: string[] = []
  let n = 0
  await settleWithTurns(rt, 50)
  for (const s of steps) {
    if (s.kind === "wait") await settleWithTurns(rt, s.ms)
    else if (s.kind === "upgradeHub") {
      if (hubVersion === 2) continue
      await hub.close()
      net.stopServer()
      hub = new Hub({ machines: [V2], storage: hubStore, runtime: rt, quietCheckpointMs: 100, snapshots: COMPACTING })
      net.listen(hub)
      hubVersion = 2
    } else {
      const r = replicas[s.client]!
      if (s.kind === "type") {
        const inNotes = notes && r.version === 2 && s.length % 2 === 1
        const body = inNotes ? notesOf(r.doc) : r.doc.crdt.body
        const text = body.toString()
        // Between two insertions (never inside one), so each stays whole.
        const gaps = [0, ...[...text.matchAll(/>/g)].map((m) => m.index! + 1)]
        const mark = `<${r.name}${n++}${"x".repeat(s.length)}>`
        body.insert(gaps[s.at % gaps.length]!, mark)
        ;(inNotes ? typedNotes : typed).push(mark)
      } else if (s.kind === "rename") {
        if (r.doc.updateRequired === undefined) (r.doc as Doc<typeof NoteV1>).submit("rename", { title: `${r.name}${n++}` })
      } else if (s.kind === "offline" && !r.offline) {
        net.partition(r.name)
        r.offline = true
      } else if (s.kind === "online" && r.offline) {
        net.heal(r.name)
        r.offline = false
      } else if (s.kind === "upgrade" && r.version === 1) {
        await settleWithTurns(rt, 20)
        await r.client.close()
        replicas[s.client] = { ...(await open(r.name, r.storage, 2)), offline: r.offline }
      }
    }
  }
  // The end: the hub and every replica at v2, all online.
  if (hubVersion === 1) {
    await hub.close()
    net.stopServer()
    hub = new Hub({ machines: [V2], storage: hubStore, runtime: rt, quietCheckpointMs: 100, snapshots: COMPACTING })
    net.listen(hub)
  }
  net.heal()
  for (const [i, r] of replicas.entries()) {
    if (r.version === 1) {
      await settleWithTurns(rt, 20)
      await r.client.close()
      replicas[i] = await open(r.name, r.storage, 2)
    }
  }
  await settleWithTurns(rt, 4000)
  const authority = await hub.doc(DOC, V2)
  const texts = replicas.map((r) => r.doc.crdt.body.toString())
  const fresh = await open("d", new MemoryStorage(), 2)
  await settleWithTurns(rt, 1500)
  texts.push(fresh.doc.crdt.body.toString())
  if (notes) {
    const all = [...replicas, fresh].map((r) => notesOf(r.doc).toString())
    expect(new Set(all).size).toBe(1)
    expect([...(all[0]!.match(/<[^>]*>/g) ?? [])].sort()).toEqual([...typedNotes].sort())
  }
  expect(errors).toEqual([])
  expect(new Set(texts).size).toBe(1)
  const marks = texts[0]!.match(/<[^>]*>/g) ?? []
  expect([...marks].sort()).toEqual([...typed].sort())
  expect(replicas.map((r) => r.doc.pendingCount)).toEqual([0, 0, 0])
  expect(new Set([...replicas, fresh].map((r) => r.doc.confirmedHash())).size).toBe(1)
  expect([...replicas, fresh][0]!.doc.confirmedHash()).toBe(authority.stateHash())
  await Promise.all([...replicas, fresh].map((r) => r.client.close()))
  await hub.close()
}

test("random histories across a version change keep every insertion, once, and converge", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.integer({ min: 1, max: 1_000_000 }), (steps, seed) => run(steps, seed)),
    { numRuns: Number(process.env.CRDT_EVOLVE_RUNS ?? 50), seed: Number(process.env.CRDT_EVOLVE_SEED ?? 20261206), endOnFailure: true },
  )
}, 240_000)

test("the same with a v2 that adds a field v2 replicas type into: every insertion in its field, once", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.integer({ min: 1, max: 1_000_000 }), (steps, seed) => run(steps, seed, ADDED)),
    { numRuns: Number(process.env.CRDT_EVOLVE_RUNS ?? 50), seed: Number(process.env.CRDT_EVOLVE_SEED ?? 20261206) + 1, endOnFailure: true },
  )
}, 240_000)

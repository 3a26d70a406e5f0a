/**
 * Honest Automerge documents pass the hub's Automerge engine after the chunk rule of c2a0174
 * (a document chunk comes alone and loads whole: `measureChunk` counts chunks, `changesLoaded`
 * compares the loaded changes with the measured count). fast-check draws edits by up to four
 * actors (map puts and deletes, nested maps, text splices with long runs so columns get
 * deflated, list inserts and deletes, counters) with merges between them, then checks:
 * - `A.save` of the merged document (compressed document chunk) is accepted by `check`, and
 *   `apply` to an empty hub document yields the same heads;
 * - `A.saveIncremental` after each of one actor's edits (one change chunk each, or several back
 *   to back after a merge), submitted in order onto a hub document loaded from that actor's
 *   first save, is accepted, same heads;
 * - a whole sync exchange from the merged document to an empty hub document, and to one that
 *   has the actor's first half (every change list `generateSyncMessage` emits, checked and
 *   applied as the endpoint does) is accepted, same heads. The hub refused change chunks back
 *   to back as "several change chunks in one change", which a stock Repo sends for quick edits.
 * Bounded to a few seconds (numRuns 30, documents of at most ~40 edits).
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"

type Doc = { m?: Record<string, unknown>; text?: string; list?: unknown[]; n?: A.Counter; [k: string]: unknown }

type Step =
  | { readonly kind: "put"; readonly actor: number; readonly key: string; readonly value: number }
  | { readonly kind: "del"; readonly actor: number; readonly key: string }
  | { readonly kind: "nested"; readonly actor: number; readonly key: string; readonly value: string }
  | { readonly kind: "text"; readonly actor: number; readonly at: number; readonly del: number; readonly insert: string }
  | { readonly kind: "list"; readonly actor: number; readonly at: number; readonly del: number; readonly insert: number }
  | { readonly kind: "count"; readonly actor: number; readonly by: number }
  | { readonly kind: "merge"; readonly actor: number; readonly from: number }

const actorArb = fc.integer({ min: 0, max: 3 })
const keyArb = fc.constantFrom("a", "b", "c", "d")
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("put" as const), actor: actorArb, key: keyArb, value: fc.integer() }),
  fc.record({ kind: fc.constant("del" as const), actor: actorArb, key: keyArb }),
  fc.record({ kind: fc.constant("nested" as const), actor: actorArb, key: keyArb, value: fc.string({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant("text" as const), actor: actorArb, at: fc.nat(), del: fc.nat({ max: 6 }), insert: fc.oneof(fc.string({ maxLength: 6 }), fc.string({ minLength: 300, maxLength: 900 })) }),
  fc.record({ kind: fc.constant("list" as const), actor: actorArb, at: fc.nat(), del: fc.nat({ max: 3 }), insert: fc.integer() }),
  fc.record({ kind: fc.constant("count" as const), actor: actorArb, by: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ kind: fc.constant("merge" as const), actor: actorArb, from: actorArb }),
)

const actorId = (i: number) => `${i + 1}`.repeat(2).padEnd(32, "a")

/** Applies one step; returns the new actor documents. */
const play = (docs: A.Doc<Doc>[], s: Step): A.Doc<Doc>[] => {
  const out = [...docs]
  const d = out[s.actor]!
  switch (s.kind) {
    case "merge":
      if (s.from !== s.actor) out[s.actor] = A.merge(d, A.clone(out[s.from]!))
      return out
    case "put":
      out[s.actor] = A.change(d, (x) => { x[s.key] = s.value })
      return out
    case "del":
      out[s.actor] = A.change(d, (x) => { delete x[s.key] })
      return out
    case "nested":
      out[s.actor] = A.change(d, (x) => {
        if (x.m === undefined) x.m = {}
        x.m[s.key] = { v: s.value }
      })
      return out
    case "text":
      out[s.actor] = A.change(d, (x) => {
        if (x.text === undefined) x.text = ""
        const len = x.text.length
        const at = len === 0 ? 0 : s.at % (len + 1)
        A.splice(x, ["text"], at, Math.min(s.del, len - at), s.insert)
      })
      return out
    case "list":
      out[s.actor] = A.change(d, (x) => {
        if (x.list === undefined) x.list = []
        const len = x.list.length
        const at = len === 0 ? 0 : s.at % (len + 1)
        x.list.splice(at, Math.min(s.del, len - at), s.insert)
      })
      return out
    case "count":
      out[s.actor] = A.change(d, (x) => {
        if (x.n === undefined) x.n = new A.Counter(0)
        else x.n.increment(s.by)
      })
      return out
  }
}

const heads = (d: A.Doc<unknown>) => [...A.getHeads(d)].sort()

/** check then apply, as the authority does; the verdicts of apply. */
const submit = async (engine: ReturnType<typeof automergeDocEngine>, box: AutomergeBox, updates: Uint8Array[]) => {
  const checks = []
  for (const u of updates) checks.push(await engine.check(u))
  const refused = checks.filter((c) => !c.ok)
  if (refused.length > 0) return { refused }
  const out = await engine.apply(box, updates)
  return { refused: out.filter((r) => r !== true && r !== false) }
}

test("honest Automerge documents (several actors, deletes, text, lists, counters) pass check and apply whole, incrementally and by sync", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const engine = automergeDocEngine()
      let docs = [0, 1, 2, 3].map((i) => A.init<Doc>({ actor: actorId(i) }))
      // Actor 0 also saves incrementally after each of its own steps.
      const firstSave = A.save(docs[0]!)
      let tracked = A.load<Doc>(firstSave, { actor: actorId(0) })
      const increments: Uint8Array[] = []
      /** Actor 0 halfway: the hub's document for the sync from a shared base (4). */
      let mid: Uint8Array | undefined
      for (const s of steps) {
        docs = play(docs, s)
        if (s.actor === 0) {
          tracked = A.merge(tracked, A.clone(docs[0]!))
          const inc = A.saveIncremental(tracked)
          // One change a step, except a merge that brought several: split by change then.
          // A merge that brought several changes saves them as change chunks back to back.
          if (inc.length > 0) increments.push(inc)
        }
        if (mid === undefined && steps.indexOf(s) >= steps.length / 2) mid = A.save(docs[0]!)
      }
      let all = A.clone(docs[0]!)
      for (const d of docs.slice(1)) all = A.merge(all, A.clone(d))

      // 1. The whole document as one (compressed) document chunk.
      const whole = A.save(all)
      const box: AutomergeBox = { doc: A.init() }
      const r1 = await submit(engine, box, [whole])
      expect(r1.refused).toEqual([])
      expect(heads(box.doc)).toEqual(heads(all))

      // 2. Actor 0's incremental saves, in order, onto its first save.
      const ibox: AutomergeBox = { doc: A.load(firstSave) }
      for (const inc of increments) {
        const r = await submit(engine, ibox, [inc])
        expect(r.refused).toEqual([])
      }
      expect(heads(ibox.doc)).toEqual(heads(docs[0]!))

      // 3. A sync exchange from the merged document to an empty hub document, and (4) to a
      // hub document that has actor 0's first half (new changes then travel as change chunks,
      // several back to back in one element of the message's changes).
      for (const start of [undefined, mid]) await syncInto(engine, start, all)
    }),
    { numRuns: 30, seed: 20261202 },
  )
}, 60_000)

/** Syncs `all` into a hub document loaded from `start` (empty if undefined), as the endpoint does; same heads at the end. */
const syncInto = async (engine: ReturnType<typeof automergeDocEngine>, start: Uint8Array | undefined, all: A.Doc<Doc>): Promise<void> => {
  const hub: AutomergeBox = { doc: start === undefined ? A.init() : A.load(start) }
  let peer = A.clone(all)
  let hubState = A.initSyncState()
  let peerState = A.initSyncState()
  for (let round = 0; round < 20; round++) {
    let quiet = true
    const [hs, toPeer] = A.generateSyncMessage(hub.doc, hubState)
    hubState = hs
    if (toPeer !== null) {
      quiet = false
      ;[peer, peerState] = A.receiveSyncMessage(peer, peerState, toPeer)
    }
    const [ps, toHub] = A.generateSyncMessage(peer, peerState)
    peerState = ps
    if (toHub !== null) {
      quiet = false
      const decoded = A.decodeSyncMessage(toHub)
      if (decoded.changes.length > 0) {
        const r = await submit(engine, hub, decoded.changes)
        expect(r.refused).toEqual([])
      }
      ;[hub.doc, hubState] = A.receiveSyncMessage(hub.doc, hubState, A.encodeSyncMessage({ ...decoded, changes: [] }))
    }
    if (quiet) break
  }
  expect(heads(hub.doc)).toEqual(heads(all))
}

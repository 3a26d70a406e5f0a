/**
 * Interleavings of concurrent submits on the hub's whole CRDT documents (core/crdt-docs), now
 * that an engine's prepare and apply may pause between slices (the Automerge engine decodes and
 * admits a document chunk 1,000 changes at a time). fast-check draws, for two writers on two
 * documents, honest uploads (a single change, a batch of changes, or the writer's whole
 * document as one chunk of up to 1,500 changes), issued without waiting for each other, with
 * random turns of the event loop between them; compaction runs often. Whatever the
 * interleaving:
 * - no honest upload is refused (a writer's updates reach a document in the order it sent
 *   them, so none lacks a dependency);
 * - each document holds exactly every writer's changes, a subscriber's fan-out rebuilds the
 *   same heads, and the document reloaded from storage has them too.
 * The seed is printed on failure (CRDT_INTERLEAVINGS_SEED replays it).
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, type CrdtSubscriber } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"

const SEED = process.env.CRDT_INTERLEAVINGS_SEED !== undefined ? Number(process.env.CRDT_INTERLEAVINGS_SEED) : 20261202
const DOCS = ["left", "right"] as const

/** What one writer sends: `changes` new changes, as one update each, in one submit, or as its whole document. */
interface Upload {
  readonly writer: number
  readonly doc: 0 | 1
  readonly changes: number
  readonly as: "singles" | "chunk"
  /** Event-loop turns before the next upload is issued (0: the same turn). */
  readonly gap: number
}

const upload: fc.Arbitrary<Upload> = fc.record({
  writer: fc.integer({ min: 0, max: 1 }),
  doc: fc.constantFrom(0 as const, 1 as const),
  changes: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 200, max: 1_500 })),
  as: fc.constantFrom("singles" as const, "chunk" as const),
  gap: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 1 }),
})

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

const sortedHeads = (d: A.Doc<unknown>): string[] => [...A.getHeads(d)].sort()

test(`concurrent Automerge uploads on two documents: none refused, every change kept, fan-out and reload agree (seed ${SEED})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(upload, { minLength: 2, maxLength: 8 }), async (uploads) => {
      const storage = new MemoryStorage()
      const host = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, compactAfterBytes: 256 })
      const docs = await Promise.all(DOCS.map((id) => host.open<AutomergeBox>("automerge", id)))
      const fanout: Uint8Array[][] = [[], []]
      const listener = (i: number): CrdtSubscriber => ({ onUpdates: (us) => fanout[i]!.push(...us) })
      docs.forEach((d, i) => d.subscribe(listener(i)))
      // Each writer keeps one Automerge document per hub document; its actor is its own there.
      const local = DOCS.map((_, d) => [0, 1].map((w) => A.init<Record<string, number>>({ actor: `${d}${w}`.padEnd(32, "0") })))
      const outcomes: Array<Promise<{ stored: number; known: number; rejected: ReadonlyArray<{ code: string }> }>> = []
      for (const u of uploads) {
        const before = local[u.doc]![u.writer]!
        let after = before
        for (let i = 0; i < u.changes; i++) after = A.change(after, { time: 0 }, (x) => { x.n = (x.n ?? 0) + 1 })
        local[u.doc]![u.writer] = after
        const updates = u.as === "chunk" ? [A.save(after)] : A.getChanges(before, after)
        outcomes.push(docs[u.doc]!.submit(updates))
        for (let i = 0; i < u.gap; i++) await turn()
      }
      const settled = await Promise.all(outcomes)
      for (const o of settled) expect(o.rejected).toEqual([])
      for (let d = 0; d < DOCS.length; d++) {
        const want = local[d]!.flatMap((w) => A.getHeads(w)).sort()
        expect(sortedHeads(docs[d]!.doc.doc)).toEqual(want)
        // The fan-out, applied to a fresh document, is the same document.
        let rebuilt = A.init<unknown>()
        for (const u of fanout[d]!) rebuilt = A.loadIncremental(rebuilt, u)
        expect(sortedHeads(rebuilt)).toEqual(want)
      }
      await host.close()
      const again = new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false })
      for (let d = 0; d < DOCS.length; d++) {
        const reloaded = await again.open<AutomergeBox>("automerge", DOCS[d]!)
        const want = local[d]!.flatMap((w) => A.getHeads(w)).sort()
        expect(sortedHeads(reloaded.doc.doc)).toEqual(want)
      }
      await again.close()
    }),
    { numRuns: 8, seed: SEED, endOnFailure: true },
  )
}, 180_000)

/**
 * The vocabulary of the refused-chain fuzzers (test/crdt-refused-chain.test.ts for Yjs,
 * test/automerge-refused-chain.test.ts for Automerge): two writers type, paste and delete
 * marked runs of text and go offline and online at random. Each insert is a marker
 * `⟨writer:n⟩` (a paste `⟨writer:n:ppp…⟩`), so the final text says which inserts survived.
 */
import fc from "fast-check"

export type Step =
  | { readonly kind: "type" | "paste" | "delete"; readonly who: number; readonly pick: number; readonly size: number }
  | { readonly kind: "offline" | "online"; readonly who: number }
  | { readonly kind: "wait"; readonly ms: number }

export const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("type" as const), who: fc.nat(1), pick: fc.nat(), size: fc.constant(0) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("paste" as const), who: fc.nat(1), pick: fc.nat(), size: fc.integer({ min: 2_000, max: 30_000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), who: fc.nat(1), pick: fc.nat(), size: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("offline" as const), who: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("online" as const), who: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 60 }) }) },
)

export const MARK = /⟨w\d:\d+(?::[a-z]+)?⟩/g

/** The markers in `text` with where they stand. */
export const spansOf = (text: string) => [...text.matchAll(MARK)].map((m) => ({ marker: m[0], at: m.index!, end: m.index! + m[0].length }))

/** What an edit step does to a writer's text: the range to delete, or the marker to insert and where. */
export const editOf = (
  s: Extract<Step, { kind: "type" | "paste" | "delete" }>,
  text: string,
  writer: { readonly name: string; n: number },
): { readonly deletes: ReadonlyArray<string>; readonly at: number; readonly length: number } | { readonly marker: string; readonly at: number } | undefined => {
  const spans = spansOf(text)
  if (s.kind === "delete") {
    if (spans.length === 0) return undefined
    const first = s.pick % spans.length
    const covered = spans.slice(first, first + s.size)
    return { deletes: covered.map((c) => c.marker), at: covered[0]!.at, length: covered[covered.length - 1]!.end - covered[0]!.at }
  }
  const marker = s.kind === "paste" ? `⟨${writer.name}:${++writer.n}:${"p".repeat(s.size)}⟩` : `⟨${writer.name}:${++writer.n}⟩`
  return { marker, at: [0, ...spans.map((x) => x.end)][s.pick % (spans.length + 1)]! }
}

/** How often each marker shows in `text`; throws unless `text` is whole markers only. */
export const markersIn = (text: string): Map<string, number> => {
  const present = new Map<string, number>()
  let covered = 0
  for (const m of text.matchAll(MARK)) {
    if (m.index !== covered) throw new Error(`Not a whole marker at ${covered}: ${JSON.stringify(text.slice(covered, covered + 40))}`)
    covered = m.index + m[0].length
    present.set(m[0], (present.get(m[0]) ?? 0) + 1)
  }
  if (covered !== text.length) throw new Error(`Not a whole marker at ${covered}: ${JSON.stringify(text.slice(covered, covered + 40))}`)
  return present
}

/**
 * What an Automerge field does when the hub refuses one of its writer's changes (a paste into
 * a full document, a write the app's `authorize` denies). Every later change of that writer
 * needs the refused one (by hash, and by its actor's sequence numbers), so the hub refuses
 * those too (`crdt-missing-deps`). Yjs fills the refused change's place with a tombstone
 * (adapters/yjs/tombstone.ts); an Automerge change is named by the hash of its bytes, so no
 * other change can take its place. Instead the later changes are made again: their effect,
 * without the refused change, as new changes under a new actor, on the history the hub has.
 *
 * How, with Automerge's own operations (D the refused change and everything after it, R the
 * rest of the history):
 *   1. `undo`: the patches from R + refused to R (what the refused change did, backwards);
 *   2. that undo made on a fork of R + refused and merged, in a scratch copy, beside the later
 *      changes: Automerge merges by element identity, so text typed inside a refused paste
 *      stays where it was typed, and what the paste replaced comes back;
 *   3. the patches from R + refused + undo (R's content) to each run of later changes: their
 *      effect, positioned on R, made as one change per run on a fork of R with a new actor.
 *      The field becomes that fork.
 * Rich-text blocks (`splitBlock`) are not made again: a later change holding one throws here.
 * A map key the refused change and a later change both set keeps the later value, unless
 * another writer's change with a higher op counter arrived in between (see LOWEST_ACTOR).
 */
import * as A from "@automerge/automerge"
import { changeHeader, type ChangeHeader as Header } from "./validate.js"

/** The undo's actor, in a scratch copy only (never sent). */
const LOWEST_ACTOR = "00"


/** The headers of an update's changes (a list of change bytes); undefined if it is not one. */
const headersOf = (update: unknown): Header[] | undefined => {
  if (!Array.isArray(update) || update.length === 0) return undefined
  const out: Header[] = []
  for (const c of update) {
    const h = c instanceof Uint8Array ? changeHeader(c) : undefined
    if (h === undefined) return undefined
    out.push(h)
  }
  return out
}

/** The first seq per actor among `headers`: a change of that actor from there on needs them. */
const firstSeqs = (headers: ReadonlyArray<Header>): Map<string, number> => {
  const first = new Map<string, number>()
  for (const m of headers) first.set(m.actor, Math.min(first.get(m.actor) ?? Infinity, m.seq))
  return first
}

/**
 * What a remake took out: the changes by `seq@actor`, and from which seq on each refused
 * actor's changes need the refused ones. An update holding any of them needed what was
 * refused, and its content was made again.
 */
export interface Covered {
  readonly ids: ReadonlySet<string>
  readonly first: ReadonlyMap<string, number>
}

const isCovered = (x: unknown): x is Covered => typeof x === "object" && x !== null && (x as Covered).ids instanceof Set && (x as Covered).first instanceof Map

/** Whether `update` (a list of change bytes) holds a change a remake covered. */
export const coveredBy = (update: unknown, covered: unknown): boolean =>
  isCovered(covered) && (headersOf(update) ?? []).some((h) => covered.ids.has(`${h.seq}@${h.actor}`) || h.seq >= (covered.first.get(h.actor) ?? Infinity))

type Container = Record<string | number, unknown> & { splice?: (at: number, del: number, ...items: unknown[]) => unknown }

/**
 * Applies Automerge patches to a document being changed. Automerge's own `applyPatches` reads
 * a text's whole value for each patch, which inside `changeAt` took 6.7 s for one 7,000
 * character delete; text is spliced by path here, unread.
 */
const applyPatches = (d: unknown, patches: ReadonlyArray<A.Patch>): void => {
  for (const p of patches) {
    const at = p.path[p.path.length - 1]!
    const parentPath = p.path.slice(0, -1)
    const parent = (): Container => parentPath.reduce((o: any, k) => o[k], d) as Container
    switch (p.action) {
      case "put":
        parent()[at] = p.value
        break
      case "insert":
        // (In text, an inserted value is a rich-text block: not made again, this throws.)
        parent().splice!(at as number, 0, ...p.values)
        break
      case "splice":
        A.splice(d as A.Doc<unknown>, parentPath, at as number, 0, p.value)
        break
      case "del": {
        const c = parent()
        if (typeof at === "string") delete c[at]
        else if (typeof c === "string") A.splice(d as A.Doc<unknown>, parentPath, at, p.length ?? 1)
        else c.splice!(at, p.length ?? 1)
        break
      }
      case "inc":
        ;(parent()[at] as A.Counter).increment(p.value)
        break
      case "mark":
        for (const m of p.marks) A.mark(d as A.Doc<unknown>, p.path, { start: m.start, end: m.end, expand: "none" }, m.name, m.value)
        break
      case "unmark":
        A.unmark(d as A.Doc<unknown>, p.path, { start: p.start, end: p.end, expand: "none" }, p.name)
        break
    }
  }
}

export interface Remade<T> {
  /** The field's document without the refused change, with the later changes made again. */
  readonly doc: A.Doc<T>
  /** The changes to send, in order: none if nothing came after the refused one. */
  readonly changes: ReadonlyArray<Uint8Array>
  /** What was taken out: the refused changes and all made again. */
  readonly covered: Covered
}

/** A run of later changes made again as one change: at most this much, as they were. */
export interface RunLimits {
  readonly bytes: number
  readonly ops: number
}

/**
 * `doc` without `refused` (a list of local changes the hub refused) and what its actors did
 * after it, made again by `actor`: one change per run of later changes within `limits`
 * together (one alone may be larger), so that what fit a command and the field still does;
 * a large change (an eighth of the limits) goes alone, so that small edits are not refused
 * with a paste that no longer fits. Undefined if `doc` does not hold `refused` (taken out
 * already).
 */
export const remakeWithout = <T>(doc: A.Doc<T>, refused: unknown, actor: string, limits: RunLimits): Remade<T> | undefined => {
  const headers = headersOf(refused)
  if (headers === undefined) return undefined
  const first = firstSeqs(headers)
  // D: the refused changes and everything that needs them, by dependency or by actor sequence.
  const refusedIds = new Set(headers.map((h) => `${h.seq}@${h.actor}`))
  // Everything not before the refused changes, in causal order (metadata only: nothing decoded).
  // From what they depend on outside themselves: a coalesced update's changes name the ones
  // before them, and from those heads they would not be "since" (simulator seed 21).
  const backend = A.getBackend(doc)
  const outside = [...new Set(headers.flatMap((h) => h.deps))].filter((hash) => {
    const bytes = backend.getChangeByHash(hash)
    const h = bytes === null || bytes === undefined ? undefined : changeHeader(bytes)
    return h === undefined || !refusedIds.has(`${h.seq}@${h.actor}`)
  })
  const since = A.getChangesMetaSince(doc, outside)
  const dropped = new Set<string>()
  const refusedHashes: string[] = []
  const later: A.ChangeMetadata[] = []
  for (const m of since) {
    if (refusedIds.has(`${m.seq}@${m.actor}`)) refusedHashes.push(m.hash)
    else if (!(m.seq >= (first.get(m.actor) ?? Infinity) || m.deps.some((h) => dropped.has(h)))) continue
    else later.push(m)
    dropped.add(m.hash)
  }
  // Not held (taken out already).
  if (refusedHashes.length < refusedIds.size) return undefined
  // R's heads: the document's heads and what D depended on, outside D (an ancestor among them is harmless).
  const rest = [...A.getHeads(doc)]
  for (const m of since) if (dropped.has(m.hash)) rest.push(...m.deps)
  for (const h of headers) rest.push(...h.deps)
  const rHeads = [...new Set(rest.filter((h) => !dropped.has(h)))]
  const withRefused = [...rHeads, ...refusedHashes]
  let next = A.clone(A.view(doc, rHeads), { actor })
  const changes: Uint8Array[] = []
  const covered: Covered = { ids: new Set(since.filter((m) => dropped.has(m.hash)).map((m) => `${m.seq}@${m.actor}`)), first }
  if (later.length === 0) return { doc: next, changes, covered }
  // The undo, made on a fork of R + refused and merged beside the later changes (`changeAt`
  // would do it in one step, but took ~1 ms a deleted character at heads not the document's).
  // Its actor is the lowest there is: where it and a later change set one key with the same op
  // counter (the usual case: nothing newer arrived from others), the later change's value wins.
  const undoing = A.change(A.clone(A.view(doc, withRefused), { actor: LOWEST_ACTOR }), (d) => applyPatches(d, A.diff(doc, withRefused, rHeads)))
  const undo = A.getLastLocalChange(undoing)
  const [undone] = A.applyChanges(A.clone(doc), undo === undefined ? [] : [undo])
  // R + refused + undo has R's content, so patches from it apply to R by position.
  let from = undo === undefined ? rHeads : [...rHeads, ...A.getHeads(undoing)]
  A.free(undoing)
  try {
    const sizes = later.map((m) => ({ bytes: backend.getChangeByHash(m.hash)?.length ?? 0, ops: m.maxOp - m.startOp + 1 }))
    const large = (k: number) => sizes[k]!.bytes * 8 > limits.bytes || sizes[k]!.ops * 8 > limits.ops
    for (let i = 0; i < later.length;) {
      let { bytes, ops } = sizes[i]!
      let j = i + 1
      for (; j < later.length && !large(i) && !large(j); j++) {
        if (bytes + sizes[j]!.bytes > limits.bytes || ops + sizes[j]!.ops > limits.ops) break
        bytes += sizes[j]!.bytes
        ops += sizes[j]!.ops
      }
      const to = [...from, ...later.slice(i, j).map((m) => m.hash)]
      const patches = A.diff(undone, from, to)
      // Stamped with the run's last change's time, not the clock's: the same bytes on every replay.
      const made = patches.length === 0 ? next : A.change(next, { time: later[j - 1]!.time }, (d) => applyPatches(d, patches))
      if (made !== next) {
        next = made
        changes.push(A.getLastLocalChange(next)!)
      }
      from = to
      i = j
    }
  } finally {
    A.free(undone) // a scratch copy: wasm memory, freed even when a patch throws
  }
  return { doc: next, changes, covered }
}

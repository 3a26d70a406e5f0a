/**
 * What an Automerge change can add to its document's saved form (validate.ts `savePlain`: the
 * save with its columns plain, what the hub stores and measures) beyond three times its bytes,
 * the charge of every CRDT update before it merges (core/authority/size-bound.ts
 * CRDT_GROWTH_FACTOR).
 *
 * A change and a save both encode ops in column runs, but a change's ops land among the
 * document's: each op that does not follow its own previous one is a new row in the middle of
 * every column's runs where it lands, and a change of runs stands for any number of them. A
 * 105-byte change inserting a null after each of another writer's 100,000 list elements grew a
 * save by 446,737 bytes (4,254 times its bytes). Strings are worse: a row splits the run of
 * its neighbours' map key or mark name, which the save then holds twice: 400 one-byte keys put
 * next to a 100 KB key grew a save by 35 MB.
 *
 * So each op is charged by where it lands (`updateGrowth`):
 * - an insert after the previous op of the same change, in the same object (a pasted run of
 *   text, a list pushed at once): nothing more. It lands next to that op, and the save's runs
 *   go on as the change's do;
 * - any other op the save stores as a row (an insert elsewhere, a map put, a list set, an
 *   increment, a mark): ROW bytes, its own string (key, mark name) again, since the change may
 *   hold it once for a run of rows the save spreads apart, and the longest string of its
 *   object (`Neighbours`) for the neighbour's run it may split. An op in an object the same
 *   change made, numbered above every op there is, has only its own change's rows for
 *   neighbours, charged so already: a save sorts objects by their counter, so such an object's
 *   rows come after all others. One numbered lower (a change may start below the document's
 *   top counter: one made on older heads) sorts among the others like an object without rows:
 *   100 maps made so, each beside one of another writer's 100 maps holding the same 190 KB key
 *   (one run in the save), grew a save by 18.8 MB, charged 17 KB (a review);
 * - each op an op overwrites or deletes (its `pred`): SUCC bytes, the successor the save stores
 *   on it (a `del` is stored only so).
 * The change's own row among the document's changes (54 bytes at most measured, a head hash
 * included) stays under its bytes, which are charged three times. A writer new to the document
 * that sorts below others moves them up in the save's list of actors, and the entries of those
 * moved to index 128 or 16,384 widen (`actorWidening`).
 *
 * The figures are worst cases measured with a margin (a list of 300,000 elements
 * by 201 actors, a row put after every 97th: 26.5 bytes a row beyond three times the change's
 * bytes, 31.9 for a row with its successor, 5.4 a successor alone), and
 * test/automerge-growth.property.test.ts draws hostile changes against drawn documents: an
 * upper bound by measure, not a proof. An ordinary edit is charged more than it grows a
 * document (a character typed alone, about fourteen times), which matters only near a document's
 * bound, where a refusal has the document measured again.
 *
 * Measured on the deflated save (`A.save`), these bounded nothing: deflate folds a repeat only
 * within 32 KiB, so a row put before each copy of repeated content (30 KB strings in a list,
 * say) pushed every copy out of its reach, and a 330-byte change grew a save by 3.8 MB, charged
 * 3,577 bytes (a review). Plain columns have no window: what a row adds is what it adds.
 */
import type * as A from "@automerge/automerge"

/** A new row of the document's ops among others, every column's runs broken (26.5 bytes measured). */
export const ROW = 48
/** A successor stored on an existing op: an overwrite or a delete (5.4 bytes measured). */
export const SUCC = 16

const utf8 = new TextEncoder()
/** UTF-8 bytes of a key or mark name (0 for none). */
const stringBytes = (s: unknown): number => (typeof s === "string" ? (s.length < 64 && /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).length) : 0)

type Op = A.DecodedChange["ops"][number] & { readonly elemId?: string; readonly insert?: boolean; readonly name?: string }

/** The UTF-8 bytes of an op's map key or mark name, whichever it has (0 for neither). */
export const opStringBytes = (o: { readonly key?: unknown; readonly name?: unknown }): number => Math.max(stringBytes(o.key), stringBytes(o.name))

/**
 * The longest map key or mark name a new row of object `obj` may land next to: the longest
 * of that object's ops (a row lands among its object's rows, and a run it splits holds one of
 * their strings), or, for an object with none yet, the document's longest (its first row lands
 * between other objects' rows).
 */
export type Neighbours = (obj: string) => number

/** The longest key or mark name of each object `change` has ops in. */
const longestByObject = (ops: ReadonlyArray<Op>): Map<string, number> => {
  const out = new Map<string, number>()
  for (const o of ops) {
    const n = opStringBytes(o)
    if (n > (out.get(o.obj) ?? -1)) out.set(o.obj, n)
  }
  return out
}

/**
 * The bytes `change` can add to a save beyond three times its own, on a document whose rows'
 * strings `neighbours` gives (see the header); `own`: its longest string per object.
 */
const changeGrowth = (change: A.DecodedChange, neighbours: Neighbours, own: ReadonlyMap<string, number>, top: number): number => {
  const ops = change.ops as ReadonlyArray<Op>
  /** Objects this change makes above `top`: the save puts their rows after every other object's. */
  const made = new Set<string>()
  let total = 0
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!
    total += SUCC * o.pred.length
    if (o.action === "del") continue
    const counter = change.startOp + i
    if (o.action.startsWith("make") && counter > top) made.add(`${counter}@${change.actor}`)
    const prev = i > 0 ? ops[i - 1]! : undefined
    const mark = o.action === "markBegin" || o.action === "markEnd"
    if (!mark && o.insert === true && prev?.insert === true && prev.obj === o.obj && o.elemId === `${counter - 1}@${change.actor}`) continue
    total += ROW + stringBytes(o.key) + stringBytes(o.name) + (made.has(o.obj) ? 0 : Math.max(neighbours(o.obj), own.get(o.obj) ?? 0))
  }
  return total
}

/** What a document's index knows of its strings, counters and actors (validate.ts OpIndex, never an overlay holding the update weighed). */
export interface DocIndex {
  longest(): number
  longestIn(obj: string): number | undefined
  /** The highest op counter. */
  top(): number
  /** Whether the actor wrote any change of the document. */
  actor(a: string): unknown
  /** The document's actors, in a save's order. */
  sortedActors(): readonly string[]
  /** At most how many entries of a save's actor columns name the actor. */
  refs(actor: string): number
}

/** What the updates of a batch weighed so far hold that the document's index does not have yet. */
export class Weighed {
  /** The longest key or mark name by object, and "" for all of them. */
  readonly longest = new Map<string, number>()
  /** The highest op counter. */
  top = 0
  /** Actors new to the document. */
  readonly actors = new Set<string>()
}

/** The indexes from which an actor's index takes a byte more in a save (unsigned LEB128). */
const WIDER_AT = [128, 16_384] as const

/**
 * What new actors (`fresh`) add to a save by moving the others up: a save lists its actors in
 * order, and every actor column names one by its index, so an actor sorting below others moves
 * each of them one up, and one moved to index 128 or 16,384 takes a byte more in every entry
 * naming it. Charged as the entries that may name each actor moved across (the index's
 * `refs`): an empty 68-byte change by an actor sorting first grew a save by 20% (a review).
 * Actors new in the batch before have no entries in the index: their ops are charged as rows.
 */
const actorWidening = (fresh: ReadonlyArray<string>, doc: DocIndex, seen: Weighed): number => {
  const known = doc.sortedActors()
  if (fresh.length === 0 || known.length + seen.actors.size + fresh.length <= WIDER_AT[0]) return 0
  const before = seen.actors.size === 0 ? known : [...known, ...seen.actors].sort()
  const added = [...fresh].sort()
  let total = 0
  for (const at of WIDER_AT) {
    // Only the `added.length` actors right below the boundary can cross it.
    for (let i = Math.max(0, at - added.length); i < Math.min(at, before.length); i++) {
      const a = before[i]!
      let moved = 0
      for (const f of added) if (f < a) moved++
      if (i + moved >= at) total += doc.refs(a)
    }
  }
  return total
}

/**
 * What `changes` (an update's new changes, in order) can add to a save beyond three times their
 * bytes, on a document whose strings `doc` knows. `seen` holds what changes weighed before them
 * but not in `doc` yet hold (the earlier updates of a batch); these changes' are added to it. A
 * row of an object without any in the document is charged the longest of all: it lands between
 * other objects' rows. Each change is weighed against everything before it, so a later one
 * that lands among an earlier one's rows pays for it.
 */
export const updateGrowth = (changes: Iterable<A.DecodedChange>, doc: DocIndex, seen = new Weighed()): number => {
  const longest = seen.longest
  const neighbours = (obj: string) => {
    const inObject = doc.longestIn(obj)
    return inObject === undefined ? Math.max(doc.longest(), longest.get("") ?? 0) : Math.max(inObject, longest.get(obj) ?? 0)
  }
  let total = 0
  let top = Math.max(doc.top(), seen.top)
  const fresh = new Set<string>()
  for (const c of changes) {
    if (doc.actor(c.actor) === undefined && !seen.actors.has(c.actor)) fresh.add(c.actor)
    const own = longestByObject(c.ops as ReadonlyArray<Op>)
    total += changeGrowth(c, neighbours, own, top)
    top = Math.max(top, c.startOp + c.ops.length - 1)
    for (const [obj, n] of own) {
      if (n > (longest.get(obj) ?? -1)) longest.set(obj, n)
      if (n > (longest.get("") ?? -1)) longest.set("", n)
    }
  }
  seen.top = top
  total += actorWidening([...fresh], doc, seen)
  for (const a of fresh) seen.actors.add(a)
  return total
}

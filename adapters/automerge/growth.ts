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
 *   change made has only its own change's rows for neighbours, charged so already;
 * - each op an op overwrites or deletes (its `pred`): SUCC bytes, the successor the save stores
 *   on it (a `del` is stored only so).
 * The change's own row among the document's changes (54 bytes at most measured, a head hash
 * included) stays under its bytes, which are charged three times.
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
const changeGrowth = (change: A.DecodedChange, neighbours: Neighbours, own: ReadonlyMap<string, number>): number => {
  const ops = change.ops as ReadonlyArray<Op>
  const made = new Set<string>()
  let total = 0
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!
    total += SUCC * o.pred.length
    if (o.action === "del") continue
    const counter = change.startOp + i
    if (o.action.startsWith("make")) made.add(`${counter}@${change.actor}`)
    const prev = i > 0 ? ops[i - 1]! : undefined
    const mark = o.action === "markBegin" || o.action === "markEnd"
    if (!mark && o.insert === true && prev?.insert === true && prev.obj === o.obj && o.elemId === `${counter - 1}@${change.actor}`) continue
    total += ROW + stringBytes(o.key) + stringBytes(o.name) + (made.has(o.obj) ? 0 : Math.max(neighbours(o.obj), own.get(o.obj) ?? 0))
  }
  return total
}

/** What a document's index knows of its strings (validate.ts OpIndex, never an overlay holding the update weighed). */
export interface DocStrings {
  longest(): number
  longestIn(obj: string): number | undefined
}

/**
 * What `changes` (an update's new changes, in order) can add to a save beyond three times their
 * bytes, on a document whose strings `doc` knows. `seen` holds the strings of changes weighed
 * before them but not in `doc` yet (the earlier updates of a batch): by object, and "" for all;
 * these changes' are added to it. A row of an object without any in the document is charged
 * the longest of all: it lands between other objects' rows.
 */
export const updateGrowth = (changes: Iterable<A.DecodedChange>, doc: DocStrings, seen = new Map<string, number>()): number => {
  const neighbours = (obj: string) => {
    const inObject = doc.longestIn(obj)
    return inObject === undefined ? Math.max(doc.longest(), seen.get("") ?? 0) : Math.max(inObject, seen.get(obj) ?? 0)
  }
  let total = 0
  for (const c of changes) {
    const own = longestByObject(c.ops as ReadonlyArray<Op>)
    total += changeGrowth(c, neighbours, own)
    for (const [obj, n] of own) {
      if (n > (seen.get(obj) ?? -1)) seen.set(obj, n)
      if (n > (seen.get("") ?? -1)) seen.set("", n)
    }
  }
  return total
}

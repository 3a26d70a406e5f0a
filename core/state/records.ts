/**
 * The undo journal's record format. A journal is one flat array of 4-slot records, appended as
 * a command writes and replayed backwards to undo it. Each record holds exactly what is needed
 * to put back the state as it was just before that write; undoing newest first therefore
 * restores every earlier state exactly.
 *
 *   [target, key: string, had: boolean, old]      a property write or delete on an object, or an
 *                                                 element write on an array (key "0", "1", ...)
 *   [array, start: number, count: number, items]  a range change of an array: `count` elements
 *                                                 now at `start` replaced `items` (count -1: from
 *                                                 `start` to the end). push, pop, shift, unshift,
 *                                                 splice, fill, copyWithin, length changes; sort:
 *                                                 [array, 0, -1, the whole array]
 *   [array, -1, 0, null]                          a reverse (its own inverse)
 *   [ROOT, "", true, old]                         the whole state replaced (apply returned a value)
 *
 * One record per array method call, whatever its size: a splice of 1000 items costs one record,
 * not one per moved element. JournaledState.undo (core/journal.ts) replays them.
 */

import { hasOwn, setOwn } from "../canonical.js"

export { hasOwn, setOwn }

/** Recorded writes of one command, flat (see above). Opaque outside core/state and core/journal. */
export type Journal = unknown[]

/** The target of a record that replaced the whole state. */
export const ROOT: object = Object.freeze({})

/** Removed items of a range change that removed nothing. */
export const NOTHING: readonly unknown[] = Object.freeze([])

/**
 * The sum of `size` over each primitive the writes of journal `j` took out of the state
 * (overwritten, deleted, spliced out; a sort's record holds the same items, so it takes none
 * out). Objects are left out: the command may have moved one elsewhere in the state.
 */
export const sumRemovedPrimitives = (j: Journal, size: (v: unknown) => number): number => {
  let n = 0
  for (let i = 0; i < j.length; i += 4) {
    const a = j[i + 1]
    const b = j[i + 2]
    const old = j[i + 3]
    if (typeof a === "string") {
      if (b === true && (typeof old !== "object" || old === null)) n += size(old)
    } else if ((a as number) >= 0 && b !== -1) {
      for (const v of old as unknown[]) if (typeof v !== "object" || v === null) n += size(v)
    }
  }
  return n
}

/**
 * What journal `j` holds in memory beyond the state, as grownOf charges it: each
 * record, and the items a range change copied (a sort's record is the whole array).
 */
export const journalHeap = (j: Journal): number => {
  let n = 0
  for (let i = 0; i < j.length; i += 4) n += recordHeap(j[i + 3])
  return n
}

/** What one record holding `old` takes: its four slots, and the items a range change copied. */
export const recordHeap = (old: unknown): number => 32 + (Array.isArray(old) ? 8 * old.length : 0)

/** Above this many items a range change is done by hand: spreading them as arguments could overflow the stack. */
const SPREAD_LIMIT = 8192

/** Replaces `count` elements of `a` at `start` with `items` (count -1: up to the end). */
export const replaceRange = (a: unknown[], start: number, count: number, items: readonly unknown[]): void => {
  if (count < 0) count = a.length - start
  if (items.length + count <= SPREAD_LIMIT) {
    a.splice(start, count, ...items)
    return
  }
  // By hand: the tail comes off, then the items and what stays of the tail go back on, one at a time.
  const tail = a.splice(start)
  for (let i = 0; i < items.length; i++) a.push(items[i])
  for (let i = count; i < tail.length; i++) a.push(tail[i])
}

/**
 * What a Yjs transaction changed in a Y.Text, as a delta over the text the textarea shows
 * (text-binding.ts: one unit per unit Yjs counts), in time proportional to the change and not
 * to the text: a description may hold millions of Yjs items, and walking all of them on every
 * remote keystroke froze the page (Yjs's own `event.delta` walks them all too).
 *
 * The changed items come from the transaction itself (the structs it added, its delete set).
 * An item's offset is found by walking left from it to the nearest item whose offset is known:
 * an anchor. Anchors are items about SPACING apart, each with its offset as of the last
 * transaction; a walk that went further than SPACING leaves new anchors behind it, so the next
 * walk there is short. After each transaction every anchor's offset moves by what changed
 * before it (a pass over the anchors, O(items / SPACING) additions, no item read).
 *
 * Items never change order in a Yjs list, so anchors stay in order. Yjs may merge an item into
 * its left neighbour after a transaction (the item then leaves the list): such an anchor is
 * dropped at the next transaction. Ties: items that add nothing to an offset (deleted ones,
 * formatting, new ones) share their neighbours' offsets, so every item found also gets its
 * place in list order (the anchor its walk came from and its distance from it), which orders
 * changes at one offset as the list does. One change adds or deletes no item: a split between
 * the halves of a surrogate pair rewrites both as U+FFFD; those units come back as `patches`.
 */
import * as Y from "yjs"

export type Delta = ReadonlyArray<{ readonly insert?: unknown; readonly delete?: number; readonly retain?: number }>

/** What a Yjs value that is not a character (an embed, a nested type, a ContentAny value) shows as. */
export const PLACEHOLDER = "\uFFFC"
/** What a carriage return shows as: a textarea keeps none (it makes "\r" and "\r\n" one "\n"). */
export const SHOWN_CR = "\u200B"

/** Items between anchors: a walk reads at most about this many (and the anchors are items / SPACING). */
export const SPACING = 256

/** What `item` shows as (`item.length` units). */
export const shownItem = (item: Y.Item): string =>
  item.content instanceof Y.ContentString ? item.content.str.replace(/\r/g, SHOWN_CR) : PLACEHOLDER.repeat(item.length)

/** Whether Yjs counts `item` in the text's indices (neither deleted nor formatting). */
export const counted = (item: Y.Item): boolean => !item.deleted && item.countable

interface Anchor {
  readonly item: Y.Item
  /** Its offset in the shown text as of the last transaction. */
  index: number
  /** Its place among the anchors, set at each transaction. */
  ord: number
}

/** An item found in one transaction: its offset before it, and its place in list order (anchor, distance). */
interface Found {
  readonly old: number
  readonly ord: number
  readonly steps: number
}

/** The list's start: offset 0, before every anchor. */
const START: Found = { old: 0, ord: -1, steps: 0 }

/**
 * The splits `tr` made in `text` between the halves of a surrogate pair: Yjs's
 * ContentString.splice rewrites both halves as U+FFFD, and the transaction lists the right
 * part of each split it made ([left part, right part]).
 */
const surrogateSplits = (text: Y.Text, tr: Y.Transaction): Array<readonly [left: Y.Item, right: Y.Item]> => {
  const out: Array<readonly [Y.Item, Y.Item]> = []
  for (const s of tr._mergeStructs) {
    if (!(s instanceof Y.Item) || s.parent !== text || s.parentSub !== null || !(s.content instanceof Y.ContentString)) continue
    const structs = text.doc!.store.clients.get(s.id.client)!
    const left = structs[Y.findIndexSS(structs, s.id.clock) - 1]
    if (left instanceof Y.Item && left.id.clock + left.length === s.id.clock && left.content instanceof Y.ContentString && left.content.str.endsWith("\uFFFD")) out.push([left, s])
  }
  return out
}

const before = (a: Found, b: Found): boolean => a.ord < b.ord || (a.ord === b.ord && a.steps < b.steps)

export class TextIndex {
  #anchors: Anchor[] = []
  readonly #byItem = new Map<Y.Item, Anchor>()

  /** Indexes `text` as it is now (one walk over its items); `spacing`: items between anchors. */
  constructor(private readonly text: Y.Text, private readonly spacing = SPACING) {
    let index = 0
    let n = 0
    for (let item = text._start; item !== null; item = item.right) {
      if (++n % spacing === 0) this.#add({ item, index, ord: 0 })
      if (counted(item)) index += item.length
    }
  }

  #add(anchor: Anchor): void {
    this.#anchors.push(anchor)
    this.#byItem.set(anchor.item, anchor)
  }

  /**
   * The change `event`'s transaction made to the text, as a delta over the shown text (no
   * trailing retain) and the units a split rewrote in place (`patches`: offsets in the text
   * after the delta), and the anchors moved past it. Call it for every event of the text, this
   * page's own transactions too: each moves the offsets. Only inside the observer: an item
   * deleted by the transaction still has its content then.
   */
  update(event: Y.YEvent<Y.Text>): { readonly delta: Delta; readonly patches: ReadonlyArray<readonly [at: number, units: string]> } {
    const text = this.text
    const tr = event.transaction
    const added = (item: Y.Item) => item.id.clock >= (tr.beforeState.get(item.id.client) ?? 0)
    const deleted = (item: Y.Item) => Y.isDeleted(tr.deleteSet, item.id)
    /** How many units the item had in the shown text before the transaction. */
    const oldLength = (item: Y.Item): number => (!item.countable || added(item) || (item.deleted && !deleted(item)) ? 0 : item.length)

    // Anchors merged away since the last transaction leave; the rest are numbered in order.
    this.#anchors = this.#anchors.filter((a) => {
      const item = a.item
      const live = item.left === null ? text._start === item : item.left.right === item
      if (!live) this.#byItem.delete(item)
      return live
    })
    this.#anchors.forEach((a, i) => (a.ord = i))

    // The items of this text the transaction added (and kept) or deleted (that it had not added).
    const changes: Array<{ item: Y.Item; insert: boolean; at?: Found }> = []
    const store = text.doc!.store.clients
    const ours = (s: Y.Item | Y.GC): s is Y.Item => s instanceof Y.Item && s.parent === text && s.parentSub === null && s.countable
    for (const [client, after] of tr.afterState) {
      const from = tr.beforeState.get(client) ?? 0
      const structs = store.get(client)
      if (structs === undefined || after <= from) continue
      for (let i = Y.findIndexSS(structs, from); i < structs.length; i++) {
        const s = structs[i]!
        if (s.id.clock >= from && ours(s) && !s.deleted) changes.push({ item: s, insert: true })
      }
    }
    for (const [client, ranges] of tr.deleteSet.clients) {
      const structs = store.get(client)
      if (structs === undefined) continue
      for (const { clock, len } of ranges) {
        for (let i = Y.findIndexSS(structs, clock); i < structs.length && structs[i]!.id.clock < clock + len; i++) {
          const s = structs[i]!
          if (ours(s) && !added(s) && !(s.content instanceof Y.ContentDeleted)) changes.push({ item: s, insert: false })
        }
      }
    }

    // Each change's offset: walk left to an item already found (an anchor, or one an earlier
    // walk passed); every item walked is found on the way back. A long walk leaves anchors.
    const found = new Map<Y.Item, Found>()
    const known = (item: Y.Item): Found | undefined => {
      const anchor = this.#byItem.get(item)
      return found.get(item) ?? (anchor === undefined ? undefined : { old: anchor.index, ord: anchor.ord, steps: 0 })
    }
    const fresh: Anchor[] = []
    const path: Y.Item[] = []
    const find = (item: Y.Item): Found => {
      let y: Y.Item | null = item
      let base: Found | undefined
      while (y !== null && (base = known(y)) === undefined) {
        path.push(y)
        y = y.left
      }
      base ??= START
      let old = base.old + (y === null ? 0 : oldLength(y))
      let steps = base.steps
      const long = path.length > this.spacing
      for (let i = path.length - 1; i >= 0; i--) {
        const walked = path[i]!
        found.set(walked, { old, ord: base.ord, steps: ++steps })
        if (long && i > 0 && i % this.spacing === 0) fresh.push({ item: walked, index: old, ord: base.ord })
        old += oldLength(walked)
      }
      path.length = 0
      return known(item)!
    }
    for (const change of changes) change.at = find(change.item)
    changes.sort((a, b) => (before(a.at!, b.at!) ? -1 : before(b.at!, a.at!) ? 1 : 0))

    // The delta, in list order; consecutive changes of one kind are one operation.
    const delta: Array<{ insert?: string; delete?: number; retain?: number }> = []
    let pos = 0
    for (const { item, insert, at } of changes) {
      if (at!.old > pos) delta.push({ retain: at!.old - pos })
      pos = Math.max(pos, at!.old)
      const last = delta[delta.length - 1]
      if (insert) {
        if (last?.insert !== undefined) last.insert += shownItem(item)
        else delta.push({ insert: shownItem(item) })
      } else {
        if (last?.delete !== undefined) last.delete += item.length
        else delta.push({ delete: item.length })
        pos += item.length
      }
    }

    /** Units added before each change, less those removed (net[i]: before changes[i]). */
    const net = [0]
    for (const c of changes) net.push(net[net.length - 1]! + (c.insert ? c.item.length : -c.item.length))
    /** Where an item found here starts once the transaction is applied. */
    const now = (at: Found): number => {
      let lo = 0
      let hi = changes.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (before(changes[mid]!.at!, at)) lo = mid + 1
        else hi = mid
      }
      return at.old + net[lo]!
    }

    // Splitting a string item between the halves of a surrogate pair rewrites both halves as
    // U+FFFD (Yjs's ContentString.splice) and adds or deletes nothing: the unit on each side of
    // such a split (the transaction lists the right parts of its splits) is shown again.
    const patches: Array<readonly [at: number, units: string]> = []
    for (const [left, s] of surrogateSplits(text, tr)) {
      if (added(s)) continue
      if (counted(left)) patches.push([now(find(left)) + left.length - 1, shownItem(left).slice(-1)])
      if (counted(s)) patches.push([now(find(s)), shownItem(s).slice(0, 1)])
    }

    // The anchors (old and fresh, in list order) move by what changed before them.
    if (fresh.length > 0) {
      for (const a of fresh) this.#byItem.set(a.item, a)
      const keyOf = (a: Anchor): Found => known(a.item)!
      this.#anchors = [...this.#anchors, ...fresh].sort((a, b) => (before(keyOf(a), keyOf(b)) ? -1 : before(keyOf(b), keyOf(a)) ? 1 : 0))
    }
    for (const a of this.#anchors) a.index = now(known(a.item)!)
    return { delta, patches }
  }

  /**
   * The units a transaction that fired no event for the text rewrote in place (a `format`
   * that changed nothing can still split an item between the halves of a surrogate pair):
   * call it after every transaction the text's observer did not see. Offsets are found by one
   * walk, only when there is such a split (nothing moved, so the anchors stay as they are).
   */
  splits(tr: Y.Transaction): ReadonlyArray<readonly [at: number, units: string]> {
    const splits = surrogateSplits(this.text, tr)
    const patches: Array<readonly [at: number, units: string]> = []
    if (splits.length === 0) return patches
    const lefts = new Set(splits.map(([left]) => left))
    const rights = new Set(splits.map(([, right]) => right))
    let at = 0
    for (let item = this.text._start; item !== null; item = item.right) {
      if (!counted(item)) continue
      if (lefts.has(item)) patches.push([at + item.length - 1, shownItem(item).slice(-1)])
      if (rights.has(item)) patches.push([at, shownItem(item).slice(0, 1)])
      at += item.length
    }
    return patches
  }
}

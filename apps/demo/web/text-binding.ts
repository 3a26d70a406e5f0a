/**
 * Binds a textarea to a collaborative text (a Y.Text field of a Canon document). Local typing
 * becomes one Yjs transaction per input event (the changed range only), which Canon turns into
 * the field's merge command; remote changes rewrite the textarea and move the caret and
 * selection through the change, so someone typing elsewhere never moves your caret.
 *
 * The textarea shows the text one unit for one: offset i of the textarea is index i of the
 * Y.Text, whatever the Y.Text holds. Anyone can write more than characters into a Y.Text
 * (`insertEmbed`, formatting, or any Yjs content in a crafted update), and Yjs counts an embed
 * (or a ContentAny, JSON or binary value) in its indices while `toString()` leaves it out, so
 * offsets taken from `toString()` would land an honest edit elsewhere than where its author
 * typed. So the shown value is built from the items (`shownText`): characters as they are,
 * anything else that has a length as that many U+FFFC placeholders, formatting as nothing (it
 * has no length), and a carriage return, which a textarea would turn into a line feed (or
 * swallow in CR LF), as an invisible U+200B. Remote changes are applied to the shown text as a
 * delta over it, built from the items the transaction changed (text-index.ts: Yjs's own event
 * delta leaves ContentAny out, and walks every item), so a remote keystroke costs about the same
 * in a description of millions of items as in a short one. A local
 * edit is not followed by a rebuild: what the textarea shows is already the text, but for a
 * value in the edited range that stays (below), and only that range is read again. So a
 * keystroke costs about the same in a long, much-edited text (tens of thousands of items).
 *
 * An edit deletes only what the user's range holds: `Y.Text.delete` skips values it cannot
 * delete (ContentAny, JSON, binary) without counting them and so would delete as many
 * characters past the range instead; `deleteRange` deletes run by run and leaves such values
 * (the textarea shows them again); a range that shows no U+FFFC holds characters only and is
 * deleted by one `Y.Text.delete`. An edit never splits a surrogate pair (Yjs would replace
 * both halves with U+FFFD).
 *
 * A field can be replaced by a new Y.Text (a resync: a snapshot, or a merge the hub refused,
 * core/crdt/README.md); binding the new one carries the selection over as Yjs relative
 * positions (anchored to the characters next to it), which survive the replacement even when
 * the new text lacks, for a moment, the keys still waiting in the outbox.
 */
import * as Y from "yjs"
import { PLACEHOLDER, TextIndex, counted, shownItem, type Delta } from "./text-index.js"

export { PLACEHOLDER, SHOWN_CR } from "./text-index.js"

/** The items of `text`, in order (deleted ones and formatting included). */
function* itemsOf(text: Y.Text): Generator<Y.Item> {
  for (let item = text._start; item !== null; item = item.right) yield item
}

/** What the textarea shows for `text`: one unit for each unit Yjs counts, so offsets are indices. */
export const shownText = (text: Y.Text): string => {
  let out = ""
  for (const item of itemsOf(text)) if (counted(item)) out += shownItem(item)
  return out
}

/** `shown` with `delta` applied (a delta over it: text-index.ts). */
const applyDelta = (shown: string, delta: Delta): string => {
  const parts: string[] = []
  let at = 0
  for (const d of delta) {
    if (d.retain !== undefined) {
      parts.push(shown.slice(at, at + d.retain))
      at += d.retain
    } else if (d.delete !== undefined) at += d.delete
    else if (typeof d.insert === "string") parts.push(d.insert)
  }
  parts.push(shown.slice(at))
  return parts.join("")
}

/**
 * Deletes indices [at, at + count) of `text`, and only those: `Y.Text.delete` deletes
 * characters, embeds and nested types, but passes over other values (ContentAny, JSON,
 * binary) without counting them, so one call over such a value would delete as many
 * characters past the range. Each run of deletable items gets its own call; other values stay.
 * Returns how many units of the range stayed (0: the range is gone).
 */
const deleteRange = (text: Y.Text, at: number, count: number): number => {
  const runs: Array<[number, number]> = []
  let index = 0
  let kept = 0
  const end = at + count
  for (const item of itemsOf(text)) {
    if (index >= end) break
    if (!counted(item)) continue
    const from = Math.max(index, at)
    const to = Math.min(index + item.length, end)
    index += item.length
    if (from >= to) continue
    const c = item.content
    if (!(c instanceof Y.ContentString || c instanceof Y.ContentEmbed || c instanceof Y.ContentType)) {
      kept += to - from
      continue
    }
    const last = runs[runs.length - 1]
    if (last !== undefined && last[0] + last[1] === from) last[1] += to - from
    else runs.push([from, to - from])
  }
  // From the end, so that the indices of the runs before stay valid.
  for (const [from, n] of runs.reverse()) text.delete(from, n)
  return kept
}

/** What indices [from, to) of `text` show as (the items before `from` are walked, not shown). */
const shownRange = (text: Y.Text, from: number, to: number): string => {
  let out = ""
  let index = 0
  for (const item of itemsOf(text)) {
    if (index >= to) break
    if (!counted(item)) continue
    const next = index + item.length
    if (next > from) {
      out += shownItem(item).slice(Math.max(from - index, 0), Math.min(to - index, item.length))
    }
    index = next
  }
  return out
}

/**
 * Where position `pos` of the old text is after `delta`. Someone else's insert exactly at the
 * caret goes after it (the caret stays put), unless it replaces text that ran up to or across
 * the caret: then the caret ends after the replacement, as after a word someone retyped.
 */
export const mapPosition = (delta: Delta, pos: number): number => {
  let old = 0
  let shift = 0
  let replacing = false
  for (const d of delta) {
    if (d.retain !== undefined) {
      old += d.retain
      replacing = false
      if (old >= pos) break
    } else if (d.insert !== undefined) {
      if (old < pos || replacing) shift += typeof d.insert === "string" ? d.insert.length : 1
    } else if (d.delete !== undefined) {
      const from = old
      old += d.delete
      if (from < pos) {
        shift -= Math.min(d.delete, pos - from)
        replacing = old >= pos
      }
    }
  }
  return pos + shift
}

/**
 * Whether an edit starting or ending at offset `i` of `s` would split a Y.Text item right
 * after a high surrogate: Yjs then replaces that character and the one after it with U+FFFD
 * (ContentString.splice), whatever the one after is.
 */
const splitsAfterHigh = (s: string, i: number): boolean => {
  const c = s.charCodeAt(i - 1)
  return i > 0 && i < s.length && c >= 0xd800 && c <= 0xdbff
}

/**
 * The smallest edit turning `before` into `after`: [start, deleted count, inserted text].
 * `caret` (the caret in `after`, if the selection is empty) places an ambiguous edit where the
 * user made it: typing "a" after an "a" inserts after it, not before. An edit never starts or
 * ends right after a high surrogate (see `splitsAfterHigh`).
 */
export const diff = (before: string, after: string, caret?: number): [number, number, string] => {
  const keepAfter = caret !== undefined && Number.isInteger(caret) && caret >= 0 && caret <= after.length ? after.length - caret : Infinity
  let endBefore = before.length
  let endAfter = after.length
  while (endBefore > 0 && endAfter > 0 && after.length - endAfter < keepAfter && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--
    endAfter--
  }
  let start = 0
  while (start < endBefore && start < endAfter && before[start] === after[start]) start++
  while (splitsAfterHigh(before, start)) start--
  while (splitsAfterHigh(before, endBefore)) {
    endBefore++
    endAfter++
  }
  return [start, endBefore - start, after.slice(start, endAfter)]
}

/**
 * Shows `next` in `area`, moving its selection as `map` says (the caret would jump to the end
 * if the value were simply set while it has focus).
 */
const show = (area: HTMLTextAreaElement, next: string, map: (start: number, end: number) => readonly [number, number]): void => {
  if (area.value === next) return
  const focused = document.activeElement === area
  const [start, end, dir] = [area.selectionStart, area.selectionEnd, area.selectionDirection]
  area.value = next
  if (focused) area.setSelectionRange(...map(start, end), dir)
}

/** Maps a position through the smallest edit from `before` to `after` (for a text that was replaced whole). */
const throughDiff = (before: string, after: string) => {
  const [at, removed, inserted] = diff(before, after)
  return (pos: number): number => (pos <= at ? pos : pos >= at + removed ? pos - removed + inserted.length : at + inserted.length)
}

/** A textarea's selection in terms of a text's characters (valid in any copy of the text that has them). */
export interface Anchors {
  readonly start: Y.RelativePosition
  readonly end: Y.RelativePosition
}

const resolve = (anchor: Y.RelativePosition, text: Y.Text): number | undefined => {
  const at = Y.createAbsolutePositionFromRelativePosition(anchor, text.doc!)
  return at !== null && at.type === text ? at.index : undefined
}

/**
 * Keeps `area` and `text` the same in both directions. `carried`: the selection from the
 * text this one replaces. Returns the unbind function, which gives the selection's anchors.
 */
export const bindTextarea = (area: HTMLTextAreaElement, text: Y.Text, carried?: Anchors): (() => Anchors) => {
  // This binding's own transactions, which its observer skips (another binding of the same text sees them).
  const origin = Symbol("textarea")
  let shown = shownText(text)
  const index = new TextIndex(text)
  const fallback = throughDiff(area.value, shown)
  const start = carried === undefined ? undefined : resolve(carried.start, text)
  const end = carried === undefined ? undefined : resolve(carried.end, text)
  show(area, shown, (s, e) => [start ?? fallback(s), end ?? fallback(e)])
  const push = () => {
    const next = area.value
    if (next === shown) return
    const caret = area.selectionStart === area.selectionEnd ? area.selectionEnd : undefined
    const [at, removed, inserted] = diff(shown, next, caret)
    let kept = 0
    text.doc!.transact(() => {
      // A range that shows no placeholder holds characters only (and formatting), which
      // `Y.Text.delete` deletes exactly, finding the index as fast as an insert does.
      if (removed > 0 && !shown.slice(at, at + removed).includes(PLACEHOLDER)) text.delete(at, removed)
      else if (removed > 0) kept = deleteRange(text, at, removed)
      if (inserted !== "") text.insert(at, inserted)
    }, origin)
    // What the text now shows is `next` (nothing is rebuilt: a keystroke costs the same in a
    // long, much-edited text), unless the range held values the edit could not delete (they
    // stay and show again) or what was typed has a carriage return (a textarea gives none):
    // then only the edited range, [at, end + kept) of the text, is read again.
    if (kept === 0 && !inserted.includes("\r")) {
      shown = next
      return
    }
    const end = at + inserted.length
    const range = shownRange(text, at, end + kept)
    shown = next.slice(0, at) + range + next.slice(end)
    const inRange = throughDiff(inserted, range)
    const map = (pos: number): number => (pos < at ? pos : pos > end ? pos + kept : at + inRange(pos - at))
    show(area, shown, (s, e) => [map(s), map(e)])
  }
  // An IME's input events wait for its compositionend. Asked of each event (isComposing), not
  // kept in a flag set at compositionstart: a composition that a rewrite of the textarea ends
  // (a remote change meanwhile) gets no compositionend in Chromium, and such a flag would leave
  // every later keystroke out of the text (and a later remote change would erase it).
  const onInput = (event?: Event) => (event as InputEvent | undefined)?.isComposing === true || push()
  const onEnd = () => push()
  const observer = (event: Y.YTextEvent) => {
    // Every transaction moves the index's offsets, this binding's own too (it shows them already).
    // (A remote change during an IME composition rewrites the textarea, which ends the
    // composition and drops what it held so far: a known limit. Typing goes on as usual.)
    const { delta, patches } = index.update(event)
    if (event.transaction.origin === origin) return
    shown = applyDelta(shown, delta)
    for (const [at, units] of patches) shown = shown.slice(0, at) + units + shown.slice(at + units.length)
    // Yjs counts what the textarea shows, one for one: a length that differs would be this
    // binding's bug, mended by reading the whole text again rather than kept.
    if (shown.length !== text.length) shown = shownText(text)
    show(area, shown, (s, e) => [mapPosition(delta, s), mapPosition(delta, e)])
  }
  // A transaction that fired no event for the text may still have rewritten units of it (a
  // split between the halves of a surrogate pair): shown again in place.
  const afterTransaction = (tr: Y.Transaction) => {
    if (tr.changed.has(text as unknown as Y.AbstractType<Y.YEvent<any>>)) return
    const patches = index.splits(tr)
    if (patches.length === 0) return
    for (const [at, units] of patches) shown = shown.slice(0, at) + units + shown.slice(at + units.length)
    show(area, shown, (s, e) => [s, e])
  }
  area.addEventListener("input", onInput)
  area.addEventListener("compositionend", onEnd)
  text.observe(observer)
  text.doc!.on("afterTransaction", afterTransaction)
  return () => {
    area.removeEventListener("input", onInput)
    area.removeEventListener("compositionend", onEnd)
    text.unobserve(observer)
    text.doc!.off("afterTransaction", afterTransaction)
    // Anchored to the character after each end (assoc 0): the one typed before the caret may be
    // missing from the replacement until the outbox is merged again.
    return {
      start: Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionStart, text.length)),
      end: Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionEnd, text.length)),
    }
  }
}

/**
 * Binds a textarea to a collaborative text (a Y.Text field of a Canon document). Local typing
 * becomes one Yjs transaction per input event (the changed range only), which Canon turns into
 * the field's merge command; remote changes rewrite the textarea and move the caret and
 * selection through the change, so someone typing elsewhere never moves your caret.
 *
 * A field can be replaced by a new Y.Text (a resync: a snapshot, or a merge the hub refused,
 * core/crdt/README.md); binding the new one carries the selection over as Yjs relative
 * positions (anchored to the characters next to it), which survive the replacement even when
 * the new text lacks, for a moment, the keys still waiting in the outbox.
 */
import * as Y from "yjs"

/** Our own transactions, so the observer skips them. */
const ORIGIN = Symbol("textarea")

type Delta = ReadonlyArray<{ readonly insert?: unknown; readonly delete?: number; readonly retain?: number }>

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

/** The smallest edit turning `before` into `after`: [start, deleted count, inserted text]. */
export const diff = (before: string, after: string): [number, number, string] => {
  let start = 0
  while (start < before.length && start < after.length && before[start] === after[start]) start++
  let endBefore = before.length
  let endAfter = after.length
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--
    endAfter--
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
  let shown = text.toString()
  const fallback = throughDiff(area.value, shown)
  const start = carried === undefined ? undefined : resolve(carried.start, text)
  const end = carried === undefined ? undefined : resolve(carried.end, text)
  show(area, shown, (s, e) => [start ?? fallback(s), end ?? fallback(e)])
  let composing = false
  const push = () => {
    const next = area.value
    if (next === shown) return
    const [at, removed, inserted] = diff(shown, next)
    shown = next
    text.doc!.transact(() => {
      if (removed > 0) text.delete(at, removed)
      if (inserted !== "") text.insert(at, inserted)
    }, ORIGIN)
  }
  const onInput = () => composing || push()
  const onStart = () => (composing = true)
  const onEnd = () => {
    composing = false
    push()
  }
  const observer = (event: Y.YTextEvent) => {
    if (event.transaction.origin === ORIGIN) return
    // (A remote change during an IME composition rewrites the textarea and ends it: a known limit.)
    const delta = event.delta as Delta
    shown = text.toString()
    show(area, shown, (s, e) => [mapPosition(delta, s), mapPosition(delta, e)])
  }
  area.addEventListener("input", onInput)
  area.addEventListener("compositionstart", onStart)
  area.addEventListener("compositionend", onEnd)
  text.observe(observer)
  return () => {
    area.removeEventListener("input", onInput)
    area.removeEventListener("compositionstart", onStart)
    area.removeEventListener("compositionend", onEnd)
    text.unobserve(observer)
    // Anchored to the character after each end (assoc 0): the one typed before the caret may be
    // missing from the replacement until the outbox is merged again.
    return {
      start: Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionStart, text.length)),
      end: Y.createRelativePositionFromTypeIndex(text, Math.min(area.selectionEnd, text.length)),
    }
  }
}

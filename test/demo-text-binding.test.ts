/**
 * The description textarea's arithmetic (apps/demo/web/text-binding.ts): the smallest edit
 * between two texts (what one input event becomes), and where a caret goes through a remote
 * change (a Yjs delta). Checked against Yjs itself: applying the diff to a Y.Text gives the
 * new text, and a caret mapped through a real remote update stays next to the same character.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { bindTextarea, diff, mapPosition } from "../apps/demo/web/text-binding.js"

const docs: Y.Doc[] = []
const ydoc = (): Y.Doc => {
  const d = new Y.Doc()
  docs.push(d)
  return d
}
afterEach(() => {
  for (const d of docs.splice(0)) d.destroy()
})

test("diff: applied to a Y.Text, the smallest edit turns one text into the other", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (before, after) => {
      const [at, removed, inserted] = diff(before, after)
      const t = ydoc().getText("t")
      t.insert(0, before)
      if (removed > 0) t.delete(at, removed)
      if (inserted !== "") t.insert(at, inserted)
      expect(t.toString()).toBe(after)
      // Smallest: nothing removed and inserted again at either end.
      expect(removed === 0 || inserted === "" || before[at] !== inserted[0]).toBe(true)
    }),
    { numRuns: 300 },
  )
  expect(diff("abc", "abXc")).toEqual([2, 0, "X"])
  expect(diff("abcd", "ad")).toEqual([1, 2, ""])
})

test("mapPosition: a caret keeps its neighbours through someone else's insert and delete", () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.nat(),
      fc.nat(),
      fc.string({ maxLength: 5 }),
      fc.nat(6),
      (base, caretSeed, atSeed, insert, deleteCount) => {
        const mine = ydoc()
        const theirs = ydoc()
        mine.getText("t").insert(0, base)
        Y.applyUpdate(theirs, Y.encodeStateAsUpdate(mine))
        const caret = caretSeed % (base.length + 1)
        const at = atSeed % (base.length + 1)
        const text = theirs.getText("t")
        theirs.transact(() => {
          const n = Math.min(deleteCount, base.length - at)
          if (n > 0) text.delete(at, n)
          if (insert !== "") text.insert(at, insert)
        })
        let delta: ReadonlyArray<{ insert?: unknown; delete?: number; retain?: number }> = []
        mine.getText("t").observe((e) => {
          delta = e.delta as typeof delta
        })
        Y.applyUpdate(mine, Y.encodeStateAsUpdate(theirs))
        const after = mine.getText("t").toString()
        const mapped = mapPosition(delta, caret)
        const n = Math.min(deleteCount, base.length - at)
        // Before the change (or exactly at a pure insert): unmoved. After it: moved by what it
        // added and removed. Inside what was replaced: after the replacement.
        const want = caret <= at ? caret : caret >= at + n ? caret - n + insert.length : at + insert.length
        expect(mapped).toBe(want)
        // The neighbours: what was before a caret ahead of the change is still before it; what
        // was after a caret behind the change is still after it.
        if (caret <= at) expect(after.slice(0, mapped)).toBe(base.slice(0, caret))
        if (caret > at && caret >= at + n) expect(after.slice(mapped)).toBe(base.slice(caret))
      },
    ),
    { numRuns: 300 },
  )
})

/*
 * The binding itself, against a Y.Text that holds more than characters: what a hostile client
 * can write into a description (embeds, formatting, carriage returns, and through a crafted
 * update any Yjs content: a ContentAny or binary value under the text's root). The textarea is
 * a stand-in with a real textarea's value rules (it keeps no "\r"); the oracle below reads the
 * Y.Text's items itself, not through the binding's code.
 */

/** A textarea as the binding uses it: value (newlines normalized, as a browser does), selection, events. */
class FakeArea {
  #value = ""
  selectionStart = 0
  selectionEnd = 0
  selectionDirection: "forward" | "backward" | "none" = "none"
  readonly #listeners = new Map<string, Set<(event?: object) => void>>()
  get value(): string {
    return this.#value
  }
  set value(v: string) {
    this.#value = v.replace(/\r\n?/g, "\n")
    this.selectionStart = this.selectionEnd = this.#value.length
  }
  setSelectionRange(start: number, end: number, dir?: "forward" | "backward" | "none"): void {
    this.selectionEnd = Math.min(Math.max(end, 0), this.#value.length)
    this.selectionStart = Math.min(Math.max(start, 0), this.selectionEnd)
    if (dir !== undefined) this.selectionDirection = dir
  }
  addEventListener(type: string, f: (event?: object) => void): void {
    this.#listeners.set(type, (this.#listeners.get(type) ?? new Set()).add(f))
  }
  removeEventListener(type: string, f: (event?: object) => void): void {
    this.#listeners.get(type)?.delete(f)
  }
  fire(type: string, event?: object): void {
    for (const f of this.#listeners.get(type) ?? []) f(event)
  }
  /** The user replaces [start, end) with `text` (typing, a paste, a deletion): the caret ends after it. */
  edit(start: number, end: number, text: string, event?: object): void {
    this.#value = this.#value.slice(0, start) + text + this.#value.slice(end)
    this.selectionStart = this.selectionEnd = start + text.length
    this.fire("input", event)
  }
}

const realDocument = (globalThis as { document?: unknown }).document
let focused: unknown = null
beforeAll(() => {
  ;(globalThis as { document?: unknown }).document = {
    get activeElement() {
      return focused
    },
  }
})
afterAll(() => {
  ;(globalThis as { document?: unknown }).document = realDocument
})

const bind = (text: Y.Text): FakeArea => {
  const area = new FakeArea()
  focused = area
  bindTextarea(area as unknown as HTMLTextAreaElement, text)
  return area
}

/** One unit of a Y.Text as Yjs indexes it: a character, or a value that is not one, with the formatting it has. */
interface Unit {
  readonly char?: string
  readonly value?: string
  readonly attrs: string
}

/** The oracle: the Y.Text's units, read from its items (formatting applies to what follows it). */
const unitsOf = (text: Y.Text): Unit[] => {
  const out: Unit[] = []
  const attrs = new Map<string, unknown>()
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted) continue
    const c = item.content
    if (c instanceof Y.ContentFormat) {
      if (c.value === null) attrs.delete(c.key)
      else attrs.set(c.key, c.value)
      continue
    }
    const a = JSON.stringify([...attrs].sort(([x], [y]) => (x < y ? -1 : 1)))
    if (c instanceof Y.ContentString) for (const ch of c.str) for (const u of ch.length === 2 ? [ch[0]!, ch[1]!] : [ch]) out.push({ char: u, attrs: a })
    else for (const v of c.getContent()) out.push({ value: v instanceof Y.AbstractType ? "<type>" : JSON.stringify(v instanceof Uint8Array ? [...v] : v), attrs: a })
  }
  return out
}

/** What the user sees of each unit: a character is itself ("\r" cannot be shown: U+200B); anything else, U+FFFC. */
const visible = (units: ReadonlyArray<Unit>): string => units.map((u) => (u.char === undefined ? "\uFFFC" : u.char === "\r" ? "\u200B" : u.char)).join("")

/** Values the Y.Text API cannot delete (they are not Y.Text content): a ContentAny, JSON or binary one. */
const undeletable = (u: Unit): boolean => u.value !== undefined && u.value !== "<type>" && !u.value.startsWith("{")

/**
 * Puts values into `text` at `index` as a Y.Array would (a crafted update: Canon's hub lets a
 * text field hold any Yjs content): ContentAny for plain values, ContentBinary for bytes.
 */
const insertValues = (text: Y.Text, index: number, values: unknown[]): void => {
  const doc = text.doc!
  const other = new Y.Doc()
  docs.push(other)
  const array = other.getArray("t")
  Y.applyUpdate(other, Y.encodeStateAsUpdate(doc))
  array.insert(index, values)
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)))
}

/** What a hostile writer does to a description. */
type HostileOp =
  | { op: "text"; at: number; s: string; attrs?: Record<string, unknown> }
  | { op: "embed"; at: number; e: Record<string, unknown> }
  | { op: "type"; at: number }
  | { op: "format"; at: number; n: number; attrs: Record<string, unknown> }
  | { op: "values"; at: number; v: unknown[] }
  | { op: "delete"; at: number; n: number }

const chars = fc.constantFrom("a", "b", " ", "\n", "\r", "\uFFFC", "\u200B", "é", "😀", "😁", "\uD83D", "\uDE00")
const textArb = fc.array(chars, { maxLength: 6 }).map((a) => a.join(""))
/** What a user can type or paste: no lone surrogates (a textarea gives none). */
const typedArb = fc.oneof(
  fc.array(fc.constantFrom("a", "b", " ", "\n", "\r\n", "\uFFFC", "\u200B", "é", "😀", "😁"), { maxLength: 5 }).map((a) => a.join("")),
  fc.string({ unit: "binary", maxLength: 4 }),
)
const attrsArb = fc.constantFrom<Record<string, unknown>>({ bold: true }, { bold: null }, { italic: true, color: "red" }, { href: "x" })
const hostileOp: fc.Arbitrary<HostileOp> = fc.oneof(
  fc.record({ op: fc.constant("text" as const), at: fc.nat(), s: textArb, attrs: fc.option(attrsArb, { nil: undefined }) }),
  fc.record({ op: fc.constant("embed" as const), at: fc.nat(), e: fc.constantFrom({ image: "x" }, { formula: "e=mc2" }) }),
  fc.record({ op: fc.constant("type" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("format" as const), at: fc.nat(), n: fc.nat(5), attrs: attrsArb }),
  fc.record({ op: fc.constant("values" as const), at: fc.nat(), v: fc.array(fc.oneof(fc.integer(), fc.constant("s"), fc.constant(new Uint8Array([1, 2]))), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.nat(4) }),
)

const applyHostile = (text: Y.Text, o: HostileOp): void => {
  const at = o.at % (text.length + 1)
  switch (o.op) {
    case "text":
      if (o.s !== "") text.insert(at, o.s, o.attrs)
      break
    case "embed":
      text.insertEmbed(at, o.e)
      break
    case "type":
      text.insertEmbed(at, new Y.Map())
      break
    case "format":
      text.format(at, Math.min(o.n, text.length - at), o.attrs)
      break
    case "values":
      insertValues(text, at, o.v)
      break
    case "delete":
      text.delete(at, Math.min(o.n, text.length - at))
      break
  }
}

/** A caret a textarea can hold: never between the halves of a surrogate pair. */
const caretAt = (s: string, seed: number): number => {
  const at = seed % (s.length + 1)
  const c = s.charCodeAt(at)
  return at > 0 && c >= 0xdc00 && c <= 0xdfff && s.charCodeAt(at - 1) >= 0xd800 && s.charCodeAt(at - 1) <= 0xdbff ? at - 1 : at
}

/** The Yjs ids of the units (one per index), to tell where a change was. */
const idsOf = (text: Y.Text): string[] => {
  const out: string[] = []
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue
    for (let k = 0; k < item.length; k++) out.push(`${item.id.client}:${item.id.clock + k}`)
  }
  return out
}

const sameUnits = (a: ReadonlyArray<Unit>, b: ReadonlyArray<Unit>): void => expect(a.map((u) => JSON.stringify(u))).toEqual(b.map((u) => JSON.stringify(u)))

test("binding: an honest edit over any Y.Text content is the user's edit of the visible text, and touches nothing outside it", () => {
  fc.assert(
    fc.property(
      fc.array(hostileOp, { maxLength: 12 }),
      fc.nat(),
      fc.nat(),
      typedArb,
      (ops, aSeed, bSeed, typed) => {
        // The hostile text comes over the wire (a lone surrogate arrives as U+FFFD).
        const evil = ydoc()
        for (const o of ops) applyHostile(evil.getText("t"), o)
        const honest = ydoc()
        const other = ydoc()
        const text = honest.getText("t")
        Y.applyUpdate(honest, Y.encodeStateAsUpdate(evil))
        Y.applyUpdate(other, Y.encodeStateAsUpdate(evil))
        honest.on("update", (u: Uint8Array, origin: unknown) => origin !== "sync" && Y.applyUpdate(other, u, "sync"))
        const before = unitsOf(text)
        const area = bind(text)
        // The textarea shows every unit Yjs counts, one for one.
        expect(area.value).toBe(visible(before))
        const a = caretAt(area.value, aSeed)
        const b = caretAt(area.value, bSeed)
        const [start, end] = a <= b ? [a, b] : [b, a]
        const typedShown = typed.replace(/\r\n?/g, "\n")
        area.edit(start, end, typedShown)
        const after = unitsOf(text)
        const kept = before.slice(start, end).filter(undeletable)
        // Outside the user's range: the same units, formatting included.
        sameUnits(after.slice(0, start), before.slice(0, start))
        sameUnits(after.slice(after.length - (before.length - end)), before.slice(end))
        // Inside: what they typed (and values no Y.Text edit can delete, which stay and show again).
        const middle = after.slice(start, after.length - (before.length - end))
        sameUnits(middle.filter(undeletable), kept)
        // (A typed U+FFFC over a value's U+FFFC may be taken for it: the same visible text.)
        const noPlaceholder = (x: string) => x.replace(/\uFFFC/g, "")
        if (kept.length === 0 || !typedShown.includes("\uFFFC")) expect(visible(middle.filter((u) => !undeletable(u)))).toBe(typedShown)
        else expect(noPlaceholder(visible(middle))).toBe(noPlaceholder(typedShown))
        if (kept.length === 0) expect(area.value).toBe(visible(before).slice(0, start) + typedShown + visible(before).slice(end))
        expect(area.value).toBe(visible(after))
        // The caret is after what was typed (and before or after the values that stayed).
        expect(area.selectionEnd).toBe(area.selectionStart)
        expect(area.selectionStart).toBeGreaterThanOrEqual(start + typedShown.length)
        expect(area.selectionStart).toBeLessThanOrEqual(start + typedShown.length + kept.length)
        // What everyone else sees is the same.
        expect(unitsOf(other.getText("t")).map((u) => JSON.stringify(u))).toEqual(after.map((u) => JSON.stringify(u)))
      },
    ),
    { numRuns: 400 },
  )
})

test("binding: a caret keeps its place through someone else's embed, value, insert or delete", () => {
  fc.assert(
    fc.property(fc.array(hostileOp, { maxLength: 10 }), fc.nat(), hostileOp, (ops, caretSeed, remote) => {
      const honest = ydoc()
      const theirs = ydoc()
      for (const o of ops) applyHostile(theirs.getText("t"), o)
      Y.applyUpdate(honest, Y.encodeStateAsUpdate(theirs))
      const text = honest.getText("t")
      const area = bind(text)
      const caret = caretAt(area.value, caretSeed)
      area.setSelectionRange(caret, caret)
      const idsBefore = idsOf(text)
      applyHostile(theirs.getText("t"), remote)
      Y.applyUpdate(honest, Y.encodeStateAsUpdate(theirs, Y.encodeStateVector(honest)))
      const now = unitsOf(text)
      expect(area.value).toBe(visible(now))
      // Where the change was, by the units' ids (Y.Text.delete does not always delete at its index).
      const ids = idsOf(text)
      let at = 0
      while (at < ids.length && at < idsBefore.length && ids[at] === idsBefore[at]) at++
      let tail = 0
      while (tail < ids.length - at && tail < idsBefore.length - at && ids[ids.length - 1 - tail] === idsBefore[idsBefore.length - 1 - tail]) tail++
      const removed = idsBefore.length - at - tail
      const added = ids.length - at - tail
      const moved = area.selectionStart
      expect(area.selectionEnd).toBe(moved)
      // Every unit that was before the caret and is still there is before it still, and the same after it.
      const nowIds = new Set(ids)
      const oldIds = new Set(idsBefore)
      const beforeCaret = new Set(ids.slice(0, moved))
      for (const id of idsBefore.slice(0, caret)) if (nowIds.has(id)) expect(beforeCaret.has(id)).toBe(true)
      for (const id of idsBefore.slice(caret)) if (nowIds.has(id)) expect(beforeCaret.has(id)).toBe(false)
      // One range changed (Y.Text.delete over a ContentAny value deletes on both sides of it): exactly where.
      const oneRange = idsBefore.slice(at, at + removed).every((id) => !nowIds.has(id)) && ids.slice(at, at + added).every((id) => !oldIds.has(id))
      if (oneRange) expect(moved).toBe(caret <= at ? caret : caret >= at + removed ? caret - removed + added : at + added)
    }),
    { numRuns: 300 },
  )
})

test("the attack: an embed at the start of a description no longer shifts an honest user's typing", () => {
  const evil = ydoc()
  const honest = ydoc()
  const t = evil.getText("t")
  t.insert(0, "hello world")
  t.insertEmbed(0, { image: "x" })
  Y.applyUpdate(honest, Y.encodeStateAsUpdate(evil))
  honest.on("update", (u: Uint8Array, origin: unknown) => origin !== "sync" && Y.applyUpdate(evil, u, "sync"))
  evil.on("update", (u: Uint8Array, origin: unknown) => origin !== "sync" && Y.applyUpdate(honest, u, "sync"))
  const area = bind(honest.getText("t"))
  // "!" at the end, then Delete on the "h", where the user sees them (before the fix the "!"
  // went before the "d": the textarea's offsets were toString()'s, which leaves the embed out).
  area.edit(area.value.length, area.value.length, "!")
  const h = area.value.indexOf("h")
  area.edit(h, h + 1, "")
  expect(t.toString()).toBe("ello world!")
  expect(t.toDelta()).toEqual([{ insert: { image: "x" } }, { insert: "ello world!" }])
  // The embed shows as a placeholder, so that a textarea offset is a Y.Text index.
  expect(area.value).toBe("\uFFFCello world!")
  // A value Y.Text.delete passes over (a crafted ContentAny) makes it delete past the range: not here.
  insertValues(t, 3, [7])
  expect(area.value).toBe("\uFFFCel\uFFFClo world!")
  area.edit(2, 4, "")
  expect(visible(unitsOf(t))).toBe("\uFFFCe\uFFFClo world!")
  expect(area.value).toBe("\uFFFCe\uFFFClo world!")
})

test("diff: with the caret, an edit next to an equal character is where the user made it; never right after a high surrogate", () => {
  const high = (str: string, i: number) => /[\uD800-\uDBFF]/.test(str[i - 1] ?? "")
  fc.assert(
    fc.property(textArb, fc.nat(), fc.nat(), typedArb, (before, aSeed, bSeed, typed) => {
      const a = caretAt(before, aSeed)
      const b = caretAt(before, bSeed)
      const [s, e] = a <= b ? [a, b] : [b, a]
      const after = before.slice(0, s) + typed + before.slice(e)
      const [at, removed, inserted] = diff(before, after, s + typed.length)
      expect(before.slice(0, at) + inserted + before.slice(at + removed)).toBe(after)
      // Inside the user's range, but for a unit a Yjs split would damage (after a high surrogate).
      let s2 = s
      while (s2 > 0 && s2 < before.length && high(before, s2)) s2--
      let e2 = e
      while (e2 > 0 && e2 < before.length && high(before, e2)) e2++
      expect(at).toBeGreaterThanOrEqual(s2)
      expect(at + removed).toBeLessThanOrEqual(e2)
      for (const i of [at, at + removed]) expect(i > 0 && i < before.length && high(before, i)).toBe(false)
    }),
    { numRuns: 500 },
  )
  // Typing "a" before an "a": the new "a" is the first one.
  expect(diff("xay", "xaay", 2)).toEqual([1, 0, "a"])
  expect(diff("xay", "xaay", 3)).toEqual([2, 0, "a"])
  // Replacing one emoji by another with the same high surrogate: the whole pair.
  expect(diff("😀", "😁")).toEqual([0, 2, "😁"])
})

test("a keystroke in a long, much-edited description reads the items it edits, not all of them (typing and deleting)", () => {
  // ~15,000 items, as many people's edits over time leave (or a peer makes on purpose), and a
  // value no Y.Text edit can delete far from the caret.
  let seed = 7
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  const text = ydoc().getText("t")
  text.insert(0, "x".repeat(10_000))
  for (let i = 0; i < 10_000; i++) text.insert(Math.floor(rnd() * text.length), "y")
  insertValues(text, 3, [7])
  let items = 0
  for (let item = text._start; item !== null; item = item.right) items++
  expect(items).toBeGreaterThan(10_000)
  const area = bind(text)
  const mid = 10_000
  // Yjs's first edit near an index walks there once (to make its search marker): not counted.
  area.edit(mid, mid, "w")
  // Every walk over the items asks each whether Yjs counts it (a full rebuild asks all of them).
  const countable = Object.getOwnPropertyDescriptor(Y.Item.prototype, "countable")!
  let reads = 0
  Object.defineProperty(Y.Item.prototype, "countable", { ...countable, get(this: Y.Item) { reads++; return countable.get!.call(this) } })
  const perKey: number[] = []
  try {
    const key = (start: number, end: number, s: string) => {
      reads = 0
      area.edit(start, end, s)
      perKey.push(reads)
    }
    for (let i = 1; i <= 10; i++) key(mid + i, mid + i, "k") // typing
    for (let i = 11; i > 1; i--) key(mid + i - 1, mid + i, "") // Backspace
    key(mid - 5, mid + 5, "word") // a selection typed over
  } finally {
    Object.defineProperty(Y.Item.prototype, "countable", countable)
  }
  expect(area.value).toBe(visible(unitsOf(text)))
  // A full rebuild per key reads all of them (before: at least ~15,000 per key).
  expect(Math.max(...perKey)).toBeLessThan(500)
})

test("an IME composition that a remote change ends leaves later typing in the text (no compositionend comes)", () => {
  const mine = ydoc()
  const theirs = ydoc()
  mine.on("update", (u: Uint8Array, o: unknown) => o !== "sync" && Y.applyUpdate(theirs, u, "sync"))
  theirs.on("update", (u: Uint8Array, o: unknown) => o !== "sync" && Y.applyUpdate(mine, u, "sync"))
  theirs.getText("t").insert(0, "hello")
  const area = bind(mine.getText("t"))
  // What Chromium sends: compositionstart, then input events with isComposing. Someone else's
  // insert rewrites the textarea meanwhile, which ends the composition (and drops its "ni"), with
  // no compositionend; later keys are plain input events.
  area.fire("compositionstart", {})
  area.edit(5, 5, "ni", { isComposing: true })
  expect(theirs.getText("t").toString()).toBe("hello")
  theirs.getText("t").insert(0, "X")
  expect(area.value).toBe("Xhello")
  for (const c of " ok.") area.edit(area.selectionStart, area.selectionEnd, c, { isComposing: false })
  expect(theirs.getText("t").toString()).toBe("Xhello ok.")
  theirs.getText("t").insert(0, "Y")
  expect(area.value).toBe("YXhello ok.")
  // A composition that ends as usual is written once, at its end.
  area.fire("compositionstart", {})
  area.edit(area.value.length, area.value.length, "日", { isComposing: true })
  expect(theirs.getText("t").toString()).toBe("YXhello ok.")
  area.fire("compositionend", {})
  expect(theirs.getText("t").toString()).toBe("YXhello ok.日")
})

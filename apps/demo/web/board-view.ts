/**
 * Renders the board: a column per list, its cards in order, an "add a card" field. Elements
 * are kept per card and only moved when the order changes, so a card being renamed keeps its
 * input (and focus) while others edit the board.
 *
 * Card controls: double-click the title (or Enter / F2, or ✎) to rename; the arrows move a
 * card (Alt + arrow keys too); × or Delete removes it; ! cycles the priority (v2 apps only: a
 * v1 tab has no priorities). Drag and drop is in dnd.ts.
 *
 * A long column shows a window of MAX_SHOWN cards with a pager at its end (first, earlier,
 * later, last): every card stays reachable, however many cards a peer puts ahead of it (any
 * peer may add thousands at -Infinity). Adding a card shows the column's end, where it goes;
 * a card moved with the keys, the buttons or a drop stays in view, and so does the card that
 * has the focus (others' cards ahead of it do not push it off its page). A pager button at
 * the column's start or end is aria-disabled, not disabled: it keeps the focus of the keyboard
 * user who pressed it (a disabled button drops it to <body>). Its name is its visible word.
 */
import { PRIORITIES, type BoardState } from "../board.js"
import { h } from "./dom.js"
import { CardOrder, type OrderedColumn } from "./card-order.js"

export interface BoardActions {
  add(column: string, title: string): void
  rename(id: string, title: string): void
  /** Put card `id` at `index` among the other cards of `column`. */
  move(id: string, column: string, index: number): void
  remove(id: string): void
  /** Show the card's details (description, author, history). */
  details(id: string): void
  /** Set the card's priority (0-3); undefined when this app's version has no priorities. */
  priority?: ((id: string, priority: number) => void) | undefined
  /** This person started (id) or stopped (null) editing a card. */
  editing(id: string | null): void
}

/** Someone else editing a card. */
export interface Editor {
  readonly name: string
  readonly colour: string
}

interface ColumnEls {
  readonly section: HTMLElement
  readonly list: HTMLOListElement
  readonly count: HTMLElement
  /** The pager of a column longer than MAX_SHOWN: which cards are shown, and buttons to see the others. */
  readonly more: HTMLElement
  readonly range: HTMLElement
  readonly pages: Readonly<Record<Page, HTMLButtonElement>>
}

/** Cards drawn per column: a board of 20,000 cards stays responsive (the pager reaches the rest). */
const MAX_SHOWN = 200

type Page = "first" | "earlier" | "later" | "last"

/**
 * The pager's buttons: the arrow (hidden from screen readers), the word (the button's
 * accessible name, as WCAG 2.5.3 asks: what one sees is what one says to voice control), and
 * what it shows (its title: the description).
 */
const PAGES: ReadonlyArray<readonly [page: Page, arrow: string, word: string, title: string]> = [
  ["first", "« ", "First", `The first ${MAX_SHOWN} cards`],
  ["earlier", "‹ ", "Earlier", `The ${MAX_SHOWN} cards before these`],
  ["later", " ›", "Later", `The ${MAX_SHOWN} cards after these`],
  ["last", " »", "Last", `The last ${MAX_SHOWN} cards`],
]

const BUTTONS: ReadonlyArray<readonly [action: string, label: string, text: string]> = [
  ["left", "Move to the previous column", "←"],
  ["up", "Move up", "↑"],
  ["down", "Move down", "↓"],
  ["right", "Move to the next column", "→"],
  ["rename", "Rename", "✎"],
  ["priority", "Change the priority", "!"],
  ["details", "Details", "i"],
  ["delete", "Delete", "×"],
]

export class BoardView {
  private readonly columns = new Map<string, ColumnEls>()
  private readonly cards = new Map<string, HTMLLIElement>()
  private state: BoardState | undefined
  private editingId: string | undefined
  /** The columns in board order, kept up to date card by card (card-order.ts). */
  readonly #order = new CardOrder()
  /** The version `order` was last brought up to (the state is a live object: its identity says nothing). */
  private orderedVersion: number | undefined
  /** What each card element shows, as drawn last: a card whose drawing would not change is not touched. */
  private readonly drawn = new WeakMap<HTMLElement, string>()
  /** Per column, the index of the first card shown (Infinity: the column's end). */
  private readonly starts = new Map<string, number>()
  /** A card this person just moved (keys, buttons or a drop): its column's window follows it. */
  private follow: string | undefined
  /** The column whose pager was just pressed: its window goes where the pager says. */
  private turned: string | undefined
  /** The last render's arguments, to draw again when the pager moves. */
  private last: { editors: ReadonlyMap<string, Editor>; pendingIds: ReadonlySet<string>; version: number | undefined } | undefined
  /** Elements move during render: a blur then is not the person leaving the field. */
  private rendering = false
  private who: ((clientId: string) => { readonly name: string; readonly colour: string }) | undefined

  constructor(private readonly root: HTMLElement, private readonly actions: BoardActions, private readonly onEditLost: () => void) {
    root.replaceChildren()
    root.addEventListener("click", (e) => this.click(e))
    root.addEventListener("dblclick", (e) => {
      const card = (e.target as Element).closest<HTMLElement>(".card")
      if (card !== null && (e.target as Element).closest("button, input") === null) this.startEdit(card.dataset.id!)
    })
    root.addEventListener("keydown", (e) => this.key(e))
  }

  /** The card being renamed here, if any. */
  get editing(): string | undefined {
    return this.editingId
  }

  /** Card `id` is being moved by this person (a drop): the next render shows the page it lands on. */
  followCard(id: string): void {
    this.follow = id
  }

  /**
   * The cards in board order, as of the last render, `sync` or `changed`: where this page's own
   * actions look up a card's place and the position that puts a card somewhere (board-session.ts).
   */
  get order(): CardOrder {
    return this.#order
  }

  /**
   * Brings the order up to `state` unless it is already at `version` (as render does): a pass
   * over every card's column and position, placing again those that changed.
   */
  sync(state: BoardState, version: number | undefined): void {
    if (version !== undefined && this.orderedVersion === version) return
    this.orderedVersion = version
    this.dropGone(state, this.#order.sync(state.cards))
  }

  /**
   * Only cards `ids` changed since the order was last brought up to `state` (this page's own
   * edits): they are placed again, in about log n each, without a pass over every card.
   */
  changed(state: BoardState, ids: readonly string[]): void {
    this.#order.update(state.cards, ids)
    this.dropGone(state, ids)
  }

  /** Elements of cards that are gone go with them (the rest are kept: a page turned back shows them). */
  private dropGone(state: BoardState, ids: Iterable<string>): void {
    for (const id of ids) {
      if (state.cards[id] !== undefined) continue
      this.cards.get(id)?.remove()
      this.cards.delete(id)
    }
  }

  /**
   * Draws `state`. `version` names the state's content: the same version as the last render's
   * says the cards have not changed (only presence or who is who did), so their order is
   * not computed again. Without one, it always is.
   */
  render(state: BoardState, editors: ReadonlyMap<string, Editor>, pendingIds: ReadonlySet<string>, who?: (clientId: string) => { readonly name: string; readonly colour: string }, version?: number): void {
    this.state = state
    this.who = who
    this.last = { editors, pendingIds, version }
    const focused = document.activeElement
    this.rendering = true
    try {
      this.renderAll(state, editors, pendingIds, version, focused?.closest<HTMLElement>(".card")?.dataset.id)
    } finally {
      this.rendering = false
    }
    // Moving an element blurs it: give focus back.
    if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus()
    if (this.editingId !== undefined && this.state.cards[this.editingId] === undefined) {
      this.editingId = undefined
      this.actions.editing(null)
      this.onEditLost()
    }
  }

  /** `focused`: the card holding the focus (or the field or button in it), if any. */
  private renderAll(state: BoardState, editors: ReadonlyMap<string, Editor>, pendingIds: ReadonlySet<string>, version: number | undefined, focused: string | undefined): void {
    this.sync(state, version)
    for (const column of state.columns) this.renderColumn(state, column, this.#order.column(column), editors, pendingIds, focused)
    // Followed once: the move was applied (optimistically) before this render.
    this.follow = undefined
    for (const [name, els] of this.columns) {
      if (!state.columns.includes(name)) {
        els.section.remove()
        this.columns.delete(name)
        this.starts.delete(name)
      }
    }
  }

  /**
   * Which cards of a column to show: MAX_SHOWN from its start, with the card just moved among
   * them, else the focused card (the window moves as little as it must to hold it).
   */
  private window(column: string, all: OrderedColumn, focused: string | undefined): number {
    let start = Math.max(0, Math.min(this.starts.get(column) ?? 0, all.length - MAX_SHOWN))
    for (const keep of column === this.turned ? [] : [this.follow, focused]) {
      if (keep === undefined) continue
      const place = this.#order.place(keep)
      const at = place?.column === column ? place.index : -1
      if (at < 0) continue
      if (at < start) start = at
      else if (at >= start + MAX_SHOWN) start = at - MAX_SHOWN + 1
      break
    }
    this.starts.set(column, start)
    return start
  }

  private renderColumn(state: BoardState, column: string, all: OrderedColumn, editors: ReadonlyMap<string, Editor>, pendingIds: ReadonlySet<string>, focused: string | undefined): void {
    const els = this.columns.get(column) ?? this.makeColumn(column)
    const start = this.window(column, all, focused)
    const placed = all.slice(start, start + MAX_SHOWN)
    const count = String(all.length)
    if (els.count.textContent !== count) els.count.textContent = count
    if (els.list.dataset.start !== String(start)) els.list.dataset.start = String(start)
    if (els.more.hidden !== all.length <= MAX_SHOWN) els.more.hidden = all.length <= MAX_SHOWN
    if (!els.more.hidden) {
      const range = `Cards ${start + 1}–${start + placed.length} of ${all.length}`
      if (els.range.textContent !== range) els.range.textContent = range
      const end = start + placed.length >= all.length
      for (const [page, off] of [["first", start === 0], ["earlier", start === 0], ["later", end], ["last", end]] as const) setOff(els.pages[page], off)
    }
    const at = state.columns.indexOf(column)
    // Cards no longer shown here leave first: the rest are then in order already, so a window
    // moved by one card (a card taken from the top, one added at the end) costs two DOM
    // changes, not a move of every card shown (each such move restyles the card).
    const keep = new Set(placed)
    for (const el of [...els.list.children]) if (!keep.has((el as HTMLElement).dataset.id!)) el.remove()
    placed.forEach((id, i) => {
      const card = state.cards[id]
      // The order is the state's as of `version`: a card missing here would be a caller's stale version.
      if (card === undefined) return
      const el = this.cards.get(id) ?? this.makeCard(id)
      const pending = pendingIds.has(id)
      const author = this.who?.(card.by)
      const editor = editors.get(id)
      const title = id === this.editingId ? undefined : card.title
      const flags = [at === 0, at === state.columns.length - 1, start + i === 0, start + i === all.length - 1]
      // Everything this card's drawing depends on: the same as last time, nothing is touched.
      const key = JSON.stringify([column, title, pending, author?.name, author?.colour, card.priority ?? 0, editor?.name, editor?.colour, flags])
      if (this.drawn.get(el) !== key) {
        this.drawn.set(el, key)
        el.dataset.column = column
        const shown = el.querySelector(".card-title")
        if (title !== undefined && shown !== null && shown.textContent !== title) shown.textContent = title
        el.classList.toggle("pending", pending)
        el.dataset.state = pending ? "pending" : "confirmed"
        if (author !== undefined) {
          const tip = `Added by ${author.name}${pending ? " · not synced yet" : ""}`
          if (el.title !== tip) el.title = tip
          el.style.setProperty("--author", author.colour)
        }
        this.showPriority(el, card.priority ?? 0)
        this.showEditor(el, editor)
        setDisabled(el, "left", flags[0]!)
        setDisabled(el, "right", flags[1]!)
        setDisabled(el, "up", flags[2]!)
        setDisabled(el, "down", flags[3]!)
      }
      if (els.list.children[i] !== el) els.list.insertBefore(el, els.list.children[i] ?? null)
    })
    while (els.list.children.length > placed.length) {
      const extra = els.list.lastElementChild as HTMLElement
      // A card that moved to another column was already taken; anything left over is stale.
      extra.remove()
    }
  }

  private makeColumn(column: string): ColumnEls {
    const count = h("span", { class: "count" }, "0")
    const list = h("ol", { class: "cards", "data-column": column, "aria-label": `Cards in ${column}` })
    const input = h("input", { name: "title", placeholder: "Add a card…", maxlength: "200", autocomplete: "off", "aria-label": `New card in ${column}` })
    const form = h("form", { class: "add-card" }, input, h("button", { type: "submit" }, "Add"))
    form.addEventListener("submit", (e) => {
      e.preventDefault()
      const title = input.value.trim()
      if (title === "") return
      // A new card goes at the end of its column: show the end.
      this.starts.set(column, Infinity)
      this.actions.add(column, title)
      input.value = ""
    })
    // Said when it changes (a page turned, cards added), without interrupting.
    const range = h("span", { class: "range", "aria-live": "polite", "aria-atomic": "true" })
    const pages = Object.fromEntries(PAGES.map(([page, arrow, word, title]) => {
      const hidden = h("span", { "aria-hidden": "true" }, arrow)
      return [page, h("button", {
        type: "button", "data-page": page, title, "aria-disabled": "false",
        onclick: (e: MouseEvent) => isOff(e.currentTarget as HTMLButtonElement) || this.page(column, page),
      }, ...(page === "first" || page === "earlier" ? [hidden, word] : [word, hidden]))]
    })) as Record<Page, HTMLButtonElement>
    const more = h("nav", { class: "more", "aria-label": `More cards in ${column}`, hidden: true },
      range, pages.first, pages.earlier, pages.later, pages.last)
    const section = h("section", { class: "column", "data-column": column }, h("header", {}, h("h2", {}, column), count), list, more, form)
    this.root.append(section)
    const els = { section, list, count, more, range, pages }
    this.columns.set(column, els)
    return els
  }

  /** The pager of `column`: show other cards of it. */
  private page(column: string, page: Page): void {
    const start = this.starts.get(column) ?? 0
    const next = page === "first" ? 0 : page === "earlier" ? Math.max(0, start - MAX_SHOWN) : page === "later" ? start + MAX_SHOWN : Infinity
    this.starts.set(column, next)
    // The page asked for is shown: not pulled back to a card focused before (a click need not
    // move the focus to the button: Safari's does not), nor to a move that did nothing.
    this.follow = undefined
    this.turned = column
    try {
      if (this.state !== undefined && this.last !== undefined) this.render(this.state, this.last.editors, this.last.pendingIds, this.who, this.last.version)
    } finally {
      this.turned = undefined
    }
  }

  private makeCard(id: string): HTMLLIElement {
    const actions = h("span", { class: "card-actions" },
      ...BUTTONS.filter(([action]) => action !== "priority" || this.actions.priority !== undefined).map(([action, label, text]) => h("button", { type: "button", "data-action": action, "aria-label": label, title: label }, text)),
    )
    const el = h("li", { class: "card", "data-id": id, tabindex: "0", draggable: "true" },
      h("p", { class: "card-title" }),
      h("div", { class: "card-foot" }, h("span", { class: "priority-slot" }), h("span", { class: "editor-slot" }), actions),
    )
    this.cards.set(id, el)
    return el
  }

  private showPriority(el: HTMLElement, priority: number): void {
    const name = PRIORITIES[priority] ?? "none"
    if (el.dataset.priority === name) return
    el.dataset.priority = name
    el.querySelector(".priority-slot")!.replaceChildren(...(priority === 0 ? [] : [h("span", { class: `priority-tag p${priority}` }, name)]))
  }

  private showEditor(el: HTMLElement, editor: Editor | undefined): void {
    el.classList.toggle("edited", editor !== undefined)
    const slot = el.querySelector(".editor-slot")!
    if (editor === undefined) {
      if (slot.childNodes.length > 0) slot.replaceChildren()
      el.style.removeProperty("--c")
      return
    }
    el.style.setProperty("--c", editor.colour)
    const text = `${editor.name} is editing`
    if (slot.textContent !== text) slot.replaceChildren(h("span", { class: "editor-tag" }, text))
  }

  // ---- input ----

  private click(e: MouseEvent): void {
    const button = (e.target as Element).closest<HTMLButtonElement>("button[data-action]")
    const card = button?.closest<HTMLElement>(".card")
    if (button == null || card == null) return
    this.act(card.dataset.id!, button.dataset.action!)
  }

  private key(e: KeyboardEvent): void {
    const target = e.target as HTMLElement
    if (!target.classList.contains("card")) return
    const id = target.dataset.id!
    const arrows: Record<string, string> = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" }
    let action: string | undefined
    if (e.altKey && arrows[e.key] !== undefined) action = arrows[e.key]
    else if (e.key === "Enter" || e.key === "F2") action = "rename"
    else if (e.key === "Delete" || e.key === "Backspace") action = "delete"
    if (action === undefined) return
    e.preventDefault()
    this.act(id, action)
  }

  private act(id: string, action: string): void {
    const state = this.state
    const card = state?.cards[id]
    if (state === undefined || card === undefined) return
    // The order as last drawn, which is what the person sees (a change since is drawn before input: board-session.ts).
    const index = this.#order.place(id)?.index ?? -1
    const length = this.#order.column(card.column).length
    const at = state.columns.indexOf(card.column)
    const toColumn = (c: string | undefined) => c !== undefined && this.actions.move(id, c, this.#order.column(c).length)
    // A card moved here stays in view, whichever page of its column it lands on.
    if (action === "left" || action === "right" || action === "up" || action === "down") this.follow = id
    switch (action) {
      case "left": return void toColumn(state.columns[at - 1])
      case "right": return void toColumn(state.columns[at + 1])
      case "up": return void (index > 0 && this.actions.move(id, card.column, index - 1))
      case "down": return void (index < length - 1 && this.actions.move(id, card.column, index + 1))
      case "rename": return this.startEdit(id)
      case "delete": return this.actions.remove(id)
      case "details": return this.actions.details(id)
      case "priority": return this.actions.priority?.(id, ((card.priority ?? 0) + 1) % PRIORITIES.length)
    }
  }

  // ---- inline rename ----

  startEdit(id: string): void {
    const el = this.cards.get(id)
    const card = this.state?.cards[id]
    if (el === undefined || card === undefined || this.editingId === id) return
    if (this.editingId !== undefined) this.cards.get(this.editingId)?.querySelector("input")?.blur()
    this.editingId = id
    this.actions.editing(id)
    // The title is written here and by finish, not by render: the next render draws the card whole.
    this.drawn.delete(el)
    el.draggable = false
    const title = el.querySelector(".card-title")!
    const input = h("input", { class: "card-title-input", value: card.title, maxlength: "200", "aria-label": "Card title" })
    title.replaceChildren(input)
    let done = false
    const finish = (save: boolean) => {
      if (done) return
      done = true
      const text = input.value.trim()
      const now = this.state?.cards[id]
      this.editingId = undefined
      this.drawn.delete(el)
      el.draggable = true
      title.replaceChildren(now?.title ?? card.title)
      this.actions.editing(null)
      if (save && now !== undefined && text !== "" && text !== now.title) {
        title.textContent = text
        this.actions.rename(id, text)
      }
      if (el.isConnected) el.focus()
    }
    input.addEventListener("keydown", (e) => {
      e.stopPropagation()
      if (e.key === "Enter") finish(true)
      else if (e.key === "Escape") finish(false)
    })
    input.addEventListener("blur", () => this.rendering || finish(true))
    input.focus()
    input.select()
  }
}

/**
 * A button that can do nothing now (a pager's at the column's end, a card's move where the
 * move cannot go) is aria-disabled, not disabled: it stays focusable, so it keeps the focus of
 * the keyboard user who pressed it (a disabled one drops it to <body>); its action ignores it.
 */
const isOff = (button: HTMLButtonElement): boolean => button.getAttribute("aria-disabled") === "true"

const setOff = (button: HTMLButtonElement, off: boolean): void => {
  if (isOff(button) !== off) button.setAttribute("aria-disabled", String(off))
}

const setDisabled = (card: HTMLElement, action: string, disabled: boolean): void => {
  const b = card.querySelector<HTMLButtonElement>(`button[data-action="${action}"]`)
  if (b !== null) setOff(b, disabled)
}

/**
 * Who is on the board: a chip per person (initial on their colour, then the name). Your own
 * chip comes first; click it to change your name. A crowd folds: after the first MAX_SHOWN
 * others, one "+K more" chip stands for the rest (click it to show them all, in the bar's one
 * scrolling row), so however many people are present the top bar keeps its size.
 */
import { h } from "./dom.js"
import type { Identity, Presence } from "./identity.js"

/** Others shown before the rest fold into the "+K more" chip. */
const MAX_SHOWN = 5

export class PeopleView {
  private renaming = false
  private unfolded = false

  constructor(private readonly el: HTMLElement, private readonly onRename: (name: string) => void) {}

  render(me: Identity, others: ReadonlyMap<string, Presence>): void {
    if (this.renaming) return
    const chips = [this.mine(me)]
    const sorted = [...others].sort(([a, pa], [b, pb]) => pa.name.localeCompare(pb.name) || (a < b ? -1 : 1))
    for (const [i, [clientId, p]] of sorted.entries()) {
      const folded = i >= MAX_SHOWN ? " folded" : ""
      chips.push(chip(p, { class: `person${folded}`, "data-client": clientId, title: `${p.name} is on this board` }))
    }
    const rest = sorted.length - MAX_SHOWN
    if (rest > 0) chips.push(this.more(rest))
    else this.unfolded = false
    this.el.classList.toggle("unfolded", this.unfolded)
    this.el.replaceChildren(...chips)
  }

  /** The chip standing for the `rest` folded people: it shows them, or folds them again. */
  private more(rest: number): HTMLElement {
    const label = () => (this.unfolded ? "Show fewer" : `+${rest} more`)
    const el = h("button", { type: "button", class: "people-more", title: `${rest} more people on this board`, "aria-expanded": String(this.unfolded) }, label())
    el.addEventListener("click", () => {
      this.unfolded = !this.unfolded
      this.el.classList.toggle("unfolded", this.unfolded)
      el.setAttribute("aria-expanded", String(this.unfolded))
      el.textContent = label()
    })
    return el
  }

  private mine(me: Identity): HTMLElement {
    const el = chip(me, { class: "person me", title: "You (click to change your name)", tabindex: "0", role: "button" }, h("span", { class: "you" }, "(you)"))
    const edit = () => {
      this.renaming = true
      const input = h("input", { value: me.name, maxlength: "40", "aria-label": "Your name" })
      let done = false
      const finish = (save: boolean) => {
        if (done) return
        done = true
        this.renaming = false
        const name = input.value.trim()
        this.onRename(save && name.length > 0 ? name : me.name)
      }
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") finish(true)
        if (e.key === "Escape") finish(false)
      })
      input.addEventListener("blur", () => finish(true))
      el.replaceChildren(el.firstElementChild!, input)
      input.focus()
      input.select()
    }
    el.addEventListener("click", () => this.renaming || edit())
    el.addEventListener("keydown", (e) => e.key === "Enter" && !this.renaming && edit())
    return el
  }
}

const chip = (p: Identity, attrs: Record<string, string>, ...extra: Node[]): HTMLElement =>
  h("span", { class: "person", ...attrs, style: `--c:${p.colour}` },
    h("span", { class: "avatar", "aria-hidden": "true" }, p.name.slice(0, 1).toUpperCase()),
    h("span", { class: "name" }, p.name),
    ...extra,
  )

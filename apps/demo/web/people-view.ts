/**
 * Who is on the board: a chip per person (initial on their colour, then the name). Your own
 * chip comes first; click it to change your name.
 */
import { h } from "./dom.js"
import type { Identity, Presence } from "./identity.js"

export class PeopleView {
  private renaming = false

  constructor(private readonly el: HTMLElement, private readonly onRename: (name: string) => void) {}

  render(me: Identity, others: ReadonlyMap<string, Presence>): void {
    if (this.renaming) return
    const chips = [this.mine(me)]
    const sorted = [...others].sort(([a, pa], [b, pb]) => pa.name.localeCompare(pb.name) || (a < b ? -1 : 1))
    for (const [clientId, p] of sorted) chips.push(chip(p, { "data-client": clientId, title: `${p.name} is on this board` }))
    this.el.replaceChildren(...chips)
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

/**
 * A card's details: its description (collaborative text: everyone types at once, offline too,
 * and every keystroke is kept), title, column, priority, author (the state's `by`, a
 * clientId, shown by name where the board knows it), and its history from the hub's log (who
 * did what, at which seq and time), which also says when it was created and last changed.
 */
import type { Doc } from "../../../core/index.js"
import { PRIORITIES, type Board } from "../board.js"
import type { CardTextDoc } from "./description.js"
import { fetchLog } from "./devtools.js"
import { h } from "./dom.js"

const VERB: Record<string, string> = { addCard: "created it", renameCard: "renamed it", moveCard: "moved it", deleteCard: "deleted it", setPriority: "set its priority" }

declare global {
  interface Window {
    /** Debug handle: the description document of the open details dialog (the tests read it). */
    canonText?: CardTextDoc | undefined
  }
}

export interface DetailsContext {
  readonly doc: Doc<typeof Board>
  readonly who: (clientId: string) => { name: string; colour: string }
  readonly me: string
  /**
   * The card's description document (opened for the dialog, closed with it), and the binding
   * of a textarea to it: both from web/description.ts, which is loaded on first use.
   */
  readonly openText: (cardId: string) => Promise<{ readonly text: CardTextDoc; readonly bind: (area: HTMLTextAreaElement, text: CardTextDoc) => () => void }>
  /** This app's version has priorities (v2). */
  readonly priorities: boolean
}

export const showDetails = (ctx: DetailsContext, id: string): void => {
  const { doc, who, me } = ctx
  const card = doc.state.cards[id]
  if (card === undefined) return
  document.getElementById("details")?.remove()
  const author = who(card.by)
  const history = h("ol", { class: "details-history" }, h("li", { class: "muted" }, "Loading the history…"))
  const area = h("textarea", { class: "details-description", "aria-label": "Description", rows: "6", disabled: true, placeholder: "Opening the description…" })
  let unbind: (() => void) | undefined
  let textDoc: CardTextDoc | undefined
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    dialog.remove()
    unbind?.()
    if (window.canonText === textDoc) window.canonText = undefined
    void textDoc?.close()
  }
  const dialog = h("dialog", { id: "details", class: "details", "aria-label": "Card details", "data-card": id },
    h("header", {}, h("h2", {}, card.title), h("button", { type: "button", "aria-label": "Close", onclick: close }, "×")),
    area,
    h("dl", {},
      h("dt", {}, "Column"), h("dd", {}, card.column),
      ctx.priorities && h("dt", {}, "Priority"), ctx.priorities && h("dd", {}, PRIORITIES[card.priority ?? 0] ?? "none"),
      h("dt", {}, "Added by"), h("dd", { class: "details-author" }, h("span", { class: "dt-who", style: `--c:${author.colour}` }, card.by === me ? `${author.name} (you)` : author.name)),
      h("dt", {}, "Card id"), h("dd", {}, h("code", {}, id)),
    ),
    h("h3", {}, "History (from the hub's log)"), history,
  )
  dialog.addEventListener("close", close)
  document.body.append(dialog)
  dialog.showModal()
  ctx.openText(id).then(
    ({ text, bind }) => {
      if (closed) return void text.close()
      textDoc = text
      window.canonText = text
      unbind = bind(area, text)
    },
    (e: unknown) => (area.placeholder = `The description cannot be opened: ${e instanceof Error ? e.message : String(e)}`),
  )
  fetchLog(doc.docId, 500).then(
    (log) => {
      const mine = log.entries.filter((e) => e.args.id === id)
      history.replaceChildren(...mine.map((e) => h("li", {}, `seq ${e.seq} · ${new Date(e.time).toLocaleString()} · ${e.clientId === me ? "you" : who(e.clientId).name} ${VERB[e.name] ?? e.name}${e.name === "renameCard" ? ` to "${e.args.title}"` : e.name === "moveCard" ? ` to ${e.args.column}` : ""}`)))
      if (mine.length === 0) history.replaceChildren(h("li", { class: "muted" }, "Not in the last 500 entries of the log (or not confirmed yet)."))
    },
    () => history.replaceChildren(h("li", { class: "muted" }, "The hub cannot be reached: the history shows when it can.")),
  )
}

/**
 * A card's details: its title, column, author (the state's `by`, a clientId, shown by name
 * where the board knows it), and its history from the hub's log (who did what, at which seq
 * and time), which also says when it was created and last changed.
 */
import type { Doc } from "../../../core/index.js"
import type { Board } from "../board.js"
import { fetchLog } from "./devtools.js"
import { h } from "./dom.js"

const VERB: Record<string, string> = { addCard: "created it", renameCard: "renamed it", moveCard: "moved it", deleteCard: "deleted it" }

export const showDetails = (doc: Doc<typeof Board>, id: string, who: (clientId: string) => { name: string; colour: string }, me: string): void => {
  const card = doc.state.cards[id]
  if (card === undefined) return
  document.getElementById("details")?.remove()
  const author = who(card.by)
  const history = h("ol", { class: "details-history" }, h("li", { class: "muted" }, "Loading the history…"))
  const close = () => dialog.remove()
  const dialog = h("dialog", { id: "details", class: "details", "aria-label": "Card details" },
    h("header", {}, h("h2", {}, card.title), h("button", { type: "button", "aria-label": "Close", onclick: close }, "×")),
    h("dl", {},
      h("dt", {}, "Column"), h("dd", {}, card.column),
      h("dt", {}, "Added by"), h("dd", { class: "details-author" }, h("span", { class: "dt-who", style: `--c:${author.colour}` }, card.by === me ? `${author.name} (you)` : author.name)),
      h("dt", {}, "Card id"), h("dd", {}, h("code", {}, id)),
    ),
    h("h3", {}, "History (from the hub's log)"), history,
  )
  dialog.addEventListener("close", close)
  document.body.append(dialog)
  dialog.showModal()
  fetchLog(doc.docId, 500).then(
    (log) => {
      const mine = log.entries.filter((e) => e.args.id === id)
      history.replaceChildren(...mine.map((e) => h("li", {}, `seq ${e.seq} · ${new Date(e.time).toLocaleString()} · ${e.clientId === me ? "you" : who(e.clientId).name} ${VERB[e.name] ?? e.name}${e.name === "renameCard" ? ` to "${e.args.title}"` : e.name === "moveCard" ? ` to ${e.args.column}` : ""}`)))
      if (mine.length === 0) history.replaceChildren(h("li", { class: "muted" }, "Not in the last 500 entries of the log (or not confirmed yet)."))
    },
    () => history.replaceChildren(h("li", { class: "muted" }, "The hub cannot be reached: the history shows when it can.")),
  )
}

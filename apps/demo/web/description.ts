/**
 * A card's description, loaded on demand: this module brings the `CardText` machine and Yjs
 * (about a third of the app), so board-session.ts imports it the first time a description is
 * opened rather than before the board's first render. The service worker caches it with the
 * rest of the app, so descriptions open offline too.
 */
import type { CanonClient, Doc } from "../../../core/index.js"
import { CardText, cardTextDocId } from "../card-text.js"
import { bindTextarea } from "./text-binding.js"
import { toast } from "./toast.js"

export type CardTextDoc = Doc<typeof CardText>

/** Opens the description document of a card on a board (it stays open until closed). */
export const openDescription = (client: CanonClient, board: string, cardId: string): Promise<CardTextDoc> =>
  client.open(CardText, cardTextDocId(board, cardId))

/** Binds the description textarea to the card's text document; follows a reloaded field (a resync gives a new Y.Text). */
export const bindDescription = (area: HTMLTextAreaElement, text: CardTextDoc): (() => void) => {
  let field = text.crdt.description
  let unbind = bindTextarea(area, field)
  area.disabled = false
  area.placeholder = "Add a description… (everyone on the board can type here at once)"
  const follow = () => {
    if (text.crdt.description === field) return
    const anchors = unbind()
    field = text.crdt.description
    unbind = bindTextarea(area, field, anchors)
  }
  // A change that cannot be sent (a paste over the command limit) stays on this page only: say so.
  const stops = [text.subscribe(follow), text.on("snapshot", follow), text.on("error", ({ message }) => toast(message))]
  return () => {
    for (const stop of stops) stop()
    unbind()
  }
}

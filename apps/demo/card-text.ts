/**
 * One card's description: collaborative text, a Yjs field, in one small document per card
 * (`card-text/<board>/<card id>`), not a field of the board. A machine's CRDT fields are a
 * fixed set (one `yText()` is one text, not one per card), and `evolve` declares commands and
 * state only, so adding a field to the board would change v1's fingerprint and strand every
 * stored board.
 *
 * Its own module because it brings Yjs: the browser app imports it (and so Yjs) only when a
 * description is first opened (web/description.ts), not before the board's first render.
 */
import { defineMachine } from "../../core/index.js"
import { yText } from "../../adapters/yjs/index.js"

/** One card's description: collaborative text (Yjs) merged, not ordered. */
export const CardText = defineMachine({
  name: "card-text",
  version: 1,
  initial: () => ({}),
  commands: {},
  crdt: { description: yText() },
})

/** The document of a card's description: `card-text/<board>/<card id>`. */
export const cardTextDocId = (board: string, cardId: string): string => `card-text/${board}/${cardId}`

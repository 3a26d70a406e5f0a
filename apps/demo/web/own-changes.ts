/**
 * Was a change of the board this page's own edits alone? Then the view's order takes them card
 * by card (the page knows which card each edit touches) instead of a pass over every card. The
 * document's change event does not say what changed, so this is told from what the document
 * shows: the confirmed seq (entries of others, or of ours coming back, advance it), the pending
 * commands (a rejection or a settlement takes one out, another submit on the document puts one
 * in) and the events that replace or rewind the state (a snapshot, a desync, a rewind). Between
 * two of its change events the state changes only through those and through submits; a
 * command of the board touches only the card it names.
 *
 * So a change counts as own only if the seq is the one the order was brought up to, the pending
 * commands are those then pending plus the ones submitted here since, and none of those events
 * came. Anything else (a confirmation too: its entry may not be the command as sent) means a
 * pass, as before.
 */
import type { DocEvents } from "../../../core/index.js"

/** What of a document this reads. */
export interface Watched {
  readonly confirmedSeq: number
  readonly pending: ReadonlyArray<{ readonly clientSeq: number }>
  on<K extends keyof DocEvents<unknown>>(event: K, fn: DocEvents<unknown>[K]): () => void
}

/** Events after which the state is not the order's plus own edits. */
const REPLACING = ["snapshot", "desync", "rewound", "rejected", "resent"] as const

export class OwnChanges {
  /** The order is the state's plus the own edits counted since `mark`. */
  #exact = false
  #seq = 0
  /** The clientSeqs pending then, and of the own commands submitted since. */
  #pending: number[] = []
  readonly #stops: Array<() => void>

  constructor(private readonly doc: Watched) {
    this.#stops = REPLACING.map((event) => doc.on(event, () => (this.#exact = false)))
  }

  /**
   * The order is about to be brought up to the document's state: own edits count from here.
   * Call it before reading the state for that pass (reading the seq may take in entries that came).
   */
  mark(): void {
    this.#seq = this.doc.confirmedSeq
    this.#pending = this.doc.pending.map((p) => p.clientSeq)
    this.#exact = true
  }

  /** An own command was submitted (its receipt's clientSeq; -1: refused before it was applied). */
  submitted(clientSeq: number): void {
    if (clientSeq >= 0) this.#pending.push(clientSeq)
  }

  /**
   * At a change event: whether every change since `mark` was an own edit counted here (those
   * edits' cards placed again are then the whole change). False from then until the next `mark`.
   */
  ownOnly(): boolean {
    if (!this.#exact) return false
    const pending = this.doc.pending
    this.#exact = this.doc.confirmedSeq === this.#seq && pending.length === this.#pending.length && pending.every((p, i) => p.clientSeq === this.#pending[i])
    return this.#exact
  }

  close(): void {
    for (const stop of this.#stops) stop()
  }
}

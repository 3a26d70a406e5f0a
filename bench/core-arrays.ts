/**
 * Core figure 3: commands that work on arrays (issue 13). A board keeps cards in a list and an
 * `order` array of ids; `move` finds a card's id (indexOf), takes it out (splice) and puts it
 * first (unshift), then flips the card found with `find`. Through a proxy each of those native
 * methods ran one trap (and, for writes, one journal record) per element it touched; the
 * engine's own array methods run on the raw array with one journal record per call.
 *
 * Measured like figure 1a: a replica integrating confirmed entries, batches of `size`.
 */
import * as Schema from "effect/Schema"
import { ReplicaState, defineMachine, type Entry } from "../core/index.js"
import { check, now } from "./harness.js"

const DOC = "bench-doc"
const T0 = 1_700_000_000_000

interface Card {
  id: string
  done: boolean
}

interface ListState {
  cards: Card[]
  order: string[]
}

export const ListBoard = defineMachine({
  name: "bench-list-board",
  version: 1,
  initial: (): ListState => ({ cards: [], order: [] }),
  commands: {
    move: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (s, { id }, ctx) => {
        const i = s.order.indexOf(id)
        if (i < 0) return ctx.reject(`No card ${id}.`)
        s.order.splice(i, 1)
        s.order.unshift(id)
        const card = s.cards.find((c) => c.id === id) ?? ctx.reject(`No card ${id}.`)
        card.done = !card.done
      },
    },
  },
})

const listWith = (count: number): ListState => {
  const cards: Card[] = []
  for (let i = 0; i < count; i++) cards.push({ id: `c${i}`, done: false })
  return { cards, order: cards.map((c) => c.id) }
}

/** 3. A replica applying `batches` batches of `size` confirmed `move` entries on a list of `length` cards. */
export const arrayEntriesPerSecond = (batches: number, size: number, length: number): number => {
  const rs = new ReplicaState(DOC, ListBoard, "this-client", () => T0, listWith(length), 0)
  let ms = 0
  let k = 0
  for (let b = 0; b < batches; b++) {
    const entries: Entry[] = []
    for (let i = 0; i < size; i++) {
      const seq = rs.confirmedSeq + 1 + i
      // Ids spread over the list, so indexOf and splice work at every depth of it.
      entries.push({ seq, time: T0 + seq, clientId: "other-client", clientSeq: seq, name: "move", args: { id: `c${(k++ * 7919) % length}` } })
    }
    const t0 = now()
    const r = rs.integrate(entries, undefined, false)
    ms += now() - t0
    check(r.applied.length === size && !r.gap && r.desync === undefined, "integrate applied the whole batch")
  }
  check(rs.view.order.length === length && rs.view.cards.length === length, "every card is still there once")
  return (batches * size) / (ms / 1000)
}

/**
 * The seeded script of the board-with-descriptions workload (bench/crdt-board.ts): the board
 * ops of bench/peers-board.ts `boardScript`, plus, each round, several replicas typing into the
 * SAME card's description at once.
 *
 * No message is delivered inside a round (both systems' links run on a VirtualRuntime that
 * only advances when the round drains), so a typist sees the text as it was at the round's
 * start plus its own keystrokes. The script is positional in that view, and built so that it
 * means the same thing in both systems although their merged texts may order concurrent
 * inserts differently:
 * - the round's card exists at the round's start and no board op of the round deletes it;
 * - typist j of k owns the slice [j*L/k, (j+1)*L/k] of the round's starting text (length L),
 *   puts its cursor in it and types there: inserts at the cursor, backspaces only down to the
 *   slice's start. Backspaces of different typists never hit the same character, so every
 *   description's final length is known in advance (lengths[card]), whatever the merge order.
 */
import { seededRandom } from "../core/internal.js"
import { boardScript, type BoardScript } from "./peers-board.js"

export type Keystroke =
  | { readonly t: "ins"; readonly pos: number; readonly text: string }
  | { readonly t: "del"; readonly pos: number }

export interface TypingRound {
  /** The card whose description is typed into this round (none while the board is empty). */
  readonly card: string | undefined
  /** Keystrokes in the order they are made (typists interleaved, one keystroke each in turn). */
  readonly keys: ReadonlyArray<{ readonly replica: number; readonly key: Keystroke }>
}

export interface DescScript {
  readonly board: BoardScript
  /** typing[r]: round r's typing, made after the round's board ops. */
  readonly typing: ReadonlyArray<TypingRound>
  readonly keystrokes: number
  /** Final description length of every card of the final board (0: never typed into). */
  readonly lengths: ReadonlyMap<string, number>
  /** Every card ever typed into (Canon opens one description document per card). */
  readonly typed: ReadonlySet<string>
}

export interface DescSizes {
  readonly replicas: number
  readonly rounds: number
  /** Board ops per replica per round. */
  readonly opsPerRound: number
  /** Replicas typing into the round's card at once. */
  readonly typists: number
  /** Keystrokes per typist per round. */
  readonly keysPerTypist: number
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz      .,"

export const descScript = (seed: number, s: DescSizes): DescScript => {
  const board = boardScript(seed, s.replicas, s.rounds, s.opsPerRound)
  const rnd = seededRandom(seed * 7919 + 1)
  const int = (n: number) => Math.floor(rnd() * n)
  const alive = new Set<string>()
  const length = new Map<string, number>()
  const typed = new Set<string>()
  const typing: TypingRound[] = []
  let keystrokes = 0
  for (const round of board.rounds) {
    const deleted = new Set<string>()
    for (const ops of round) for (const op of ops) if (op.t === "delete") deleted.add(op.id)
    const eligible = [...alive].filter((id) => !deleted.has(id)).sort()
    // The board's own changes of the round, for the next round's eligibility.
    for (const ops of round) for (const op of ops) {
      if (op.t === "add") alive.add(op.id)
      else if (op.t === "delete") alive.delete(op.id)
    }
    if (eligible.length === 0) {
      typing.push({ card: undefined, keys: [] })
      continue
    }
    const card = eligible[int(eligible.length)]!
    typed.add(card)
    const start = length.get(card) ?? 0
    // Distinct typists, each with its slice of the starting text and a cursor in it.
    const who = [...Array(s.replicas).keys()]
    for (let i = who.length - 1; i > 0; i--) {
      const j = int(i + 1)
      ;[who[i], who[j]] = [who[j]!, who[i]!]
    }
    const typists = who.slice(0, Math.min(s.typists, s.replicas)).map((replica, j) => {
      const lo = Math.floor((j * start) / s.typists)
      const hi = Math.floor(((j + 1) * start) / s.typists)
      return { replica, lo, cursor: lo + int(hi - lo + 1) }
    })
    const keys: Array<{ replica: number; key: Keystroke }> = []
    let net = 0
    for (let k = 0; k < s.keysPerTypist; k++) {
      for (const t of typists) {
        if (t.cursor > t.lo && rnd() < 0.15) {
          t.cursor--
          keys.push({ replica: t.replica, key: { t: "del", pos: t.cursor } })
          net--
        } else {
          const text = LETTERS[int(LETTERS.length)]!
          keys.push({ replica: t.replica, key: { t: "ins", pos: t.cursor, text } })
          t.cursor++
          net++
        }
      }
    }
    length.set(card, start + net)
    keystrokes += keys.length
    typing.push({ card, keys })
  }
  const lengths = new Map([...board.final.keys()].map((id) => [id, length.get(id) ?? 0]))
  return { board, typing, keystrokes, lengths, typed }
}

/**
 * The board's order kept card by card (apps/demo/web/card-order.ts) and the view drawing from it
 * (board-view.ts). In Node: the order is positions.ts's (columnsOf) through random adds, moves
 * and deletes, NaN, infinities, -0 and ties included, and a change places only the cards it
 * changed. In Chromium (Debian's, through playwright-core): BoardView alone on a blank page
 * (bundled here with esbuild), a board of 30,000 cards, and one card moved by someone else per
 * render: each card's position is read once per render (no sort: before, about 2 n log n reads),
 * and only the cards whose drawing changed are touched (before, every shown card's attributes
 * were written on every render).
 */
import * as esbuild from "esbuild"
import fc from "fast-check"
import type { Page } from "playwright-core"
import type { BoardState, Card } from "../apps/demo/board.js"
import { CardOrder } from "../apps/demo/web/card-order.js"
import { columnsOf } from "../apps/demo/web/positions.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile } from "./support/browser.js"

const COLUMNS = ["To do", "Doing", "Done"]

const orderOf = (order: CardOrder, column: string): string[] => order.column(column).slice(0, Infinity)

type Op = { op: "put"; id: number; column: number; position: number } | { op: "delete"; id: number }
const positionArb = fc.oneof(fc.constantFrom(NaN, Infinity, -Infinity, 0, -0, 1, 2), fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: false }))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("put" as const), id: fc.nat(40), column: fc.nat(2), position: positionArb }) },
  fc.record({ op: fc.constant("delete" as const), id: fc.nat(40) }),
)

test("the order kept card by card is columnsOf's, through adds, moves and deletes (ties, NaN and infinities too)", () => {
  fc.assert(
    fc.property(fc.array(fc.array(opArb, { maxLength: 30 }), { minLength: 1, maxLength: 6 }), (batches) => {
      const state: BoardState = { columns: COLUMNS, cards: {} }
      const order = new CardOrder()
      for (const ops of batches) {
        const touched = new Set<string>()
        for (const o of ops) {
          const id = `c${o.id}`
          touched.add(id)
          if (o.op === "delete") delete state.cards[id]
          else state.cards[id] = { ...(state.cards[id] ?? { title: id, by: "x" }), column: COLUMNS[o.column]!, position: o.position }
        }
        const changed = order.sync(state.cards)
        // What it places again is at most what changed (a card put back where it was is not).
        for (const id of changed) expect(touched.has(id)).toBe(true)
        const want = columnsOf(state)
        for (const c of COLUMNS) {
          const ids = (want.get(c) ?? []).map(([id]) => id)
          expect(orderOf(order, c)).toEqual(ids)
          ids.forEach((id, i) => expect(order.place(id)).toEqual({ column: c, index: i }))
        }
      }
    }),
    { numRuns: 300 },
  )
})

test("on a board of 100,000 cards, a move places one card again", () => {
  const state: BoardState = { columns: COLUMNS, cards: {} }
  for (let i = 0; i < 100_000; i++) state.cards[`c${i}`] = { title: `t${i}`, column: COLUMNS[i % 3]!, position: i, by: "x" }
  const order = new CardOrder()
  expect(order.sync(state.cards).size).toBe(100_000)
  state.cards.c5!.position = -1
  state.cards.c7!.column = "Done"
  expect([...order.sync(state.cards)].sort()).toEqual(["c5", "c7"])
  expect(order.place("c5")).toEqual({ column: "Done", index: 0 })
  delete state.cards.c9
  expect([...order.sync(state.cards)]).toEqual(["c9"])
  expect(order.column("To do").length).toBe(33_333)
  expect(orderOf(order, "Done")).toEqual(columnsOf(state).get("Done")!.map(([id]) => id))
})

describe("in Chromium: BoardView on a board of 30,000 cards", () => {
  const N = 30_000
  let P: Profile | undefined
  let page: Page

  beforeAll(async () => {
    if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
    const bundle = await esbuild.build({
      stdin: { contents: 'import { BoardView } from "./apps/demo/web/board-view.ts"; window.BoardView = BoardView', resolveDir: process.cwd(), loader: "ts" },
      bundle: true,
      write: false,
      format: "iife",
      target: "es2022",
      logLevel: "silent",
    })
    P = await launchProfile()
    page = P.context.pages()[0] ?? (await P.context.newPage())
    page.on("pageerror", (e) => console.error(`page: ${e.message}`))
    await page.setContent('<!doctype html><main id="board"></main>')
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text })
  }, 60_000)

  afterAll(async () => {
    await P?.close()
  }, 30_000)

  test("a move by someone else reads each position once, sorts nothing, and touches only what it changed", async () => {
    const perMove = await page.evaluate(([n, columns]) => {
      let reads = 0
      /** A card whose position is counted each time it is read. */
      const card = (i: number, column: string, position: number): Card => {
        let p = position
        return Object.defineProperty({ title: `t${i}`, column, by: "someone" } as Card, "position", {
          enumerable: true,
          get: () => (reads++, p),
          set: (v: number) => (p = v),
        })
      }
      const state = { columns, cards: {} as Record<string, Card> }
      for (let i = 0; i < n; i++) state.cards[`c${i}`] = card(i, columns[i % 3]!, i)
      const noop = () => {}
      const view = new (window as unknown as { BoardView: new (...a: unknown[]) => { render(...a: unknown[]): void } }).BoardView(document.getElementById("board"), { add: noop, rename: noop, move: noop, remove: noop, details: noop, editing: noop }, noop)
      const who = () => ({ name: "someone", colour: "#123456" })
      let version = 0
      view.render(state, new Map(), new Set(), who, ++version)
      const mutations = new MutationObserver(noop)
      mutations.observe(document.getElementById("board")!, { subtree: true, attributes: true, childList: true, characterData: true })
      const out: Array<{ reads: number; mutations: number }> = []
      for (let k = 0; k < 5; k++) {
        // Someone moves a card from far down a column to the top of another (as a peer's move arrives).
        const moved = state.cards[`c${n - 1 - 3 * k}`]!
        moved.column = columns[(k + 1) % 3]!
        moved.position = -1 - k
        reads = 0
        mutations.takeRecords()
        view.render(state, new Map(), new Set(), who, ++version)
        out.push({ reads, mutations: mutations.takeRecords().length })
      }
      // Presence alone (someone starts editing a card; the same version of the cards): nothing is read.
      reads = 0
      view.render(state, new Map([["c0", { name: "Eve", colour: "#654321" }]]), new Set(), who, version)
      const presence = { reads, mutations: mutations.takeRecords().length }
      return { out, presence }
    }, [N, COLUMNS] as const)
    expect(perMove.presence.reads).toBe(0)
    expect(perMove.presence.mutations).toBeLessThan(10)
    for (const { reads, mutations } of perMove.out) {
      // Each card's position once (the check for what changed), the moved card's again: no sort
      // (a sort reads two positions per comparison: about 180,000 here before, 6 a card).
      expect(reads).toBeLessThanOrEqual(N + 10)
      // The moved card comes in at the top of its new column (the card that was first gets its
      // "up" back, the last shown one leaves): 5 to 9 records (before: about 1,200, every shown card's).
      expect(mutations).toBeLessThan(40)
    }
  }, 60_000)
})

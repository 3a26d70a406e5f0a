/**
 * This page's own edits on a big board (apps/demo/web/board-session.ts): an add, a move (keys,
 * buttons, a drop) and an undo or redo of one take the card's place and the position that puts
 * it somewhere from the view's order (card-order.ts), and the view takes the edited card alone.
 *
 * In Node: CardOrder.positionAt and place give positions.ts's positionAt and locate (the spec)
 * on random boards, NaN, infinities, -0 and ties included. In Chromium (Debian's, through
 * playwright-core) against a real hub (startHub on a temporary LevelDB directory), the page
 * offline (so no confirmation of its own arrives): each own edit, from the input to the card
 * drawn, sorts no cards and passes over no card list. Before, each move sorted its column twice
 * (locate, positionAt: Object.entries of the whole board each, which the document's view answers
 * by sorting every key) and the render after it passed over every card again. The counts are of
 * work (Array.prototype.sort and Reflect.ownKeys wrapped in the page), not time. Every position
 * chosen is the one positions.ts chooses on the state as it was, and the columns are drawn in
 * positions.ts's order; online, with someone else moving cards between the page's own moves,
 * they still are.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import fc from "fast-check"
import type { Page } from "playwright-core"
import { CanonClient, type Doc } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { demoMachines } from "../apps/demo/machines.js"
import { Board, type BoardState } from "../apps/demo/board.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CardOrder } from "../apps/demo/web/card-order.js"
import { columnsOf, locate, positionAt } from "../apps/demo/web/positions.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

const COLUMNS = ["To do", "Doing", "Done"]

describe("positions from the order kept card by card", () => {
  const positionArb = fc.oneof(fc.constantFrom(NaN, Infinity, -Infinity, 0, -0, 1, 2, Number.MAX_VALUE, -Number.MAX_VALUE), fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: false }))
  const cardArb = fc.record({ id: fc.nat(30), column: fc.nat(2), position: positionArb })

  test("CardOrder.positionAt and place are positions.ts's positionAt and locate", () => {
    fc.assert(
      fc.property(fc.array(cardArb, { maxLength: 40 }), fc.array(fc.tuple(fc.nat(3), fc.integer({ min: -2, max: 45 }), fc.option(fc.nat(32))), { minLength: 1, maxLength: 12 }), (cards, asks) => {
        const state: BoardState = { columns: COLUMNS, cards: {} }
        for (const c of cards) state.cards[`c${c.id}`] = { title: "t", by: "x", column: COLUMNS[c.column]!, position: c.position }
        const order = new CardOrder()
        order.sync(state.cards)
        for (let id = 0; id <= 32; id++) expect(order.place(`c${id}`)).toEqual(locate(state, `c${id}`))
        // Column 3 is one without cards (and not on the board); ids past 30 are no card.
        for (const [column, index, moving] of asks) {
          const name = COLUMNS[column] ?? "Elsewhere"
          const movingId = moving === null ? undefined : `c${moving}`
          expect(order.positionAt(name, index, movingId)).toBe(positionAt(state, name, index, movingId))
        }
      }),
      { numRuns: 2_000 },
    )
  })
})

describe("in Chromium: own edits on a board of 6,000 cards", () => {
  const WAIT_MS = 20_000
  const BOARD = "own"
  const PER_COLUMN = 2_000
  /** A sort of a column, or a pass over a column's or the board's keys, is at least this long. */
  const MIN = 1_000

  let dir: string
  let hub: RunningHub | undefined
  let P: Profile | undefined
  let page: Page
  let other: CanonClient | undefined
  let doc: Doc<typeof Board>
  const until = pollerOf(WAIT_MS)

  interface Counts {
    readonly sorts: number
    readonly passes: number
  }

  beforeAll(async () => {
    if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
    dir = mkdtempSync(join(tmpdir(), "canon-own-moves-"))
    const config = parseConfig(["--data", join(dir, "data"), "--port", "0"], {})
    if (config === "help") throw new Error("unexpected")
    hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
    other = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
    doc = await other.open(Board, `board/${BOARD}`)
    // Ties, -0, infinities and NaN among them: the order's edges are where a position is chosen differently.
    const odd = [NaN, Infinity, -Infinity, 0, -0, 5, 5, Number.MAX_VALUE]
    for (const [c, column] of COLUMNS.entries()) {
      for (let b = 0; b < PER_COLUMN; b += 1_000) {
        const cards = Array.from({ length: 1_000 }, (_, k) => {
          const i = b + k
          return { id: `c${c}-${i}`, title: `Card ${c}-${i}`, column, position: i % 97 === 3 ? odd[i % odd.length]! : i }
        })
        void doc.submit("addCards", { cards }).catch(() => {})
      }
    }
    await until("the board's cards to be confirmed", () => doc.pendingCount === 0 && doc.synced)
    P = await launchProfile()
    page = P.context.pages()[0] ?? (await P.context.newPage())
    page.on("pageerror", (e) => console.error(`page: ${e.message}`))
    await page.goto(`${hub.url}/#board=${BOARD}`, { timeout: WAIT_MS })
    await until("the board to load, sync and draw", () =>
      page.evaluate((n) => window.canon?.doc?.synced === true && window.canon.board === "own" && Object.keys(window.canon.doc.state.cards).length === n && document.querySelectorAll("#board .card").length > 0, PER_COLUMN * COLUMNS.length),
    )
  }, 90_000)

  afterAll(async () => {
    await P?.close()
    await other?.close().catch(() => {})
    await hub?.close().catch(() => {})
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }, 30_000)

  /** Starts counting in the page: long sorts of [id, card] pairs, and Reflect.ownKeys of a long key list (a pass over cards). */
  const startCounting = (): Promise<void> =>
    page.evaluate((min) => {
      const w = window as unknown as { counts: { sorts: number; passes: number }; stopCounting: () => void }
      const counts = (w.counts = { sorts: 0, passes: 0 })
      const sort = Array.prototype.sort
      Array.prototype.sort = function (this: unknown[], ...args: [((a: unknown, b: unknown) => number)?]) {
        if (this.length >= min && Array.isArray(this[0]) && typeof this[0][0] === "string") counts.sorts++
        return sort.apply(this, args)
      } as typeof sort
      // Object.entries or Object.keys of the document's view, or a pass of the view's order: the view's ownKeys trap calls it (and sorts the keys).
      const ownKeys = Reflect.ownKeys
      Reflect.ownKeys = ((target: object) => {
        const keys = ownKeys(target)
        if (keys.length >= min) counts.passes++
        return keys
      }) as typeof ownKeys
      w.stopCounting = () => {
        Array.prototype.sort = sort
        Reflect.ownKeys = ownKeys
      }
    }, MIN)
  const counts = (): Promise<Counts> => page.evaluate(() => ({ ...(window as unknown as { counts: Counts }).counts }))
  const stopCounting = (): Promise<void> => page.evaluate(() => (window as unknown as { stopCounting: () => void }).stopCounting())
  /** Two animation frames: whatever was scheduled to draw has drawn. */
  const settle = (): Promise<void> => page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))))

  /**
   * The page's state, as plain data (outside the counting: it reads every key). As JSON, with
   * NaN, infinities and -0 kept (as "\u0000" and the number): Playwright's own serialization of
   * the 6,000 cards took about a second a call, most of the offline test's 20 s.
   */
  const stateOf = async (): Promise<BoardState> =>
    JSON.parse(
      await page.evaluate(() => JSON.stringify(window.canon!.doc.snapshot(), (_, v: unknown) => (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0)) ? `\u0000${Object.is(v, -0) ? "-0" : v}` : v))),
      (_, v: unknown) => (typeof v === "string" && v.startsWith("\u0000") ? Number(v.slice(1)) : v),
    ) as BoardState

  /** Card `id`'s column and position in the page's state now. */
  const cardOf = (id: string): Promise<{ column: string; position: number } | undefined> =>
    page.evaluate((id) => {
      const c = window.canon!.doc.state.cards[id]
      return c === undefined ? undefined : { column: c.column, position: c.position }
    }, id)

  /** Each column as drawn: the index of its first card shown, and the ids shown. */
  const drawn = (): Promise<Record<string, { start: number; ids: string[] }>> =>
    page.evaluate(() => {
      const out: Record<string, { start: number; ids: string[] }> = {}
      for (const list of document.querySelectorAll<HTMLElement>("#board ol.cards")) {
        out[list.dataset.column!] = { start: Number(list.dataset.start ?? 0), ids: [...list.querySelectorAll<HTMLElement>(":scope > .card")].map((el) => el.dataset.id!) }
      }
      return out
    })

  /** Every column is drawn in positions.ts's order (the window each shows). */
  const expectDrawnInOrder = async (): Promise<void> => {
    const state = await stateOf()
    const want = columnsOf(state)
    for (const [column, { start, ids }] of Object.entries(await drawn())) {
      expect(ids).toEqual((want.get(column) ?? []).slice(start, start + ids.length).map(([id]) => id))
    }
  }

  /** The card shown at `index` of `column`'s window. */
  const shownAt = async (column: string, index: number): Promise<string> => (await drawn())[column]!.ids[index]!

  /**
   * Runs `act`, an own edit of card `id`, counting until it is applied and drawn (the edit
   * applies at once; the draw comes at the next frame); returns the counts. `want`: the column
   * and position positions.ts gives the card on the state before (the edit's must be the same).
   */
  const ownEdit = async (id: string, want: { column: string; position: number }, act: () => Promise<void>): Promise<Counts> => {
    await settle()
    await startCounting()
    let c: Counts
    try {
      await act()
      await until(`the edit of ${id} to apply`, async () => {
        const got = await cardOf(id)
        return got?.column === want.column && Object.is(got.position, want.position)
      })
      await settle()
      c = await counts()
    } finally {
      await stopCounting()
    }
    await expectDrawnInOrder()
    return c
  }

  test("offline, each own add, move, drop, undo and redo sorts nothing and passes over no list of cards", async () => {
    // Offline: the page's own commands wait in its outbox, and nothing of the hub's comes in.
    await page.evaluate(() => window.canon!.client.disconnect())
    try {
      await offlineEdits()
    } finally {
      await page.evaluate(() => window.canon!.client.connect())
    }
    // Online again: the outbox goes, the hub confirms, and the board is drawn in its order.
    await until("the page's edits to be confirmed", () => page.evaluate(() => window.canon!.doc.pendingCount === 0 && window.canon!.doc.synced))
    await settle()
    await expectDrawnInOrder()
  }, 120_000)

  const offlineEdits = async (): Promise<void> => {
    await until("the page to be offline", () => page.evaluate(() => window.canon!.client.status === "offline"))
    // stateOf is the page's snapshot as Playwright passes it, odd positions included (toEqual tells -0 from 0).
    expect(await stateOf()).toEqual(await page.evaluate(() => window.canon!.doc.snapshot()))
    const all: Array<[string, Counts]> = []

    // Alt+ArrowRight: to the end of the next column.
    {
      const id = await shownAt("To do", 0)
      const before = await stateOf()
      const want = { column: "Doing", position: positionAt(before, "Doing", columnsOf(before).get("Doing")!.length, id) }
      all.push(["Alt+ArrowRight", await ownEdit(id, want, async () => {
        await page.focus(`.card[data-id="${id}"]`)
        await page.keyboard.press("Alt+ArrowRight")
      })])
    }
    // Alt+ArrowDown: one down in its column.
    {
      const id = await shownAt("Done", 2)
      const before = await stateOf()
      const at = locate(before, id)!
      const want = { column: "Done", position: positionAt(before, "Done", at.index + 1, id) }
      all.push(["Alt+ArrowDown", await ownEdit(id, want, async () => {
        await page.focus(`.card[data-id="${id}"]`)
        await page.keyboard.press("Alt+ArrowDown")
      })])
    }
    // The ↑ button.
    {
      const id = await shownAt("To do", 5)
      const before = await stateOf()
      const want = { column: "To do", position: positionAt(before, "To do", 4, id) }
      all.push(["↑ button", await ownEdit(id, want, async () => {
        await page.locator(`.card[data-id="${id}"]`).hover()
        await page.locator(`.card[data-id="${id}"] button[data-action="up"]`).click()
      })])
    }
    // The ← button: to the end of the previous column.
    {
      const id = await shownAt("Done", 7)
      const before = await stateOf()
      const want = { column: "Doing", position: positionAt(before, "Doing", columnsOf(before).get("Doing")!.length, id) }
      all.push(["← button", await ownEdit(id, want, async () => {
        await page.locator(`.card[data-id="${id}"]`).hover()
        await page.locator(`.card[data-id="${id}"] button[data-action="left"]`).click()
      })])
    }
    // A drop: before the fourth card shown of another column.
    {
      const id = await shownAt("To do", 9)
      const target = await shownAt("Done", 3)
      const before = await stateOf()
      const start = (await drawn())["Done"]!.start
      const want = { column: "Done", position: positionAt(before, "Done", start + 3, id) }
      all.push(["drop", await ownEdit(id, want, async () => {
        // The events a drag makes (Playwright's own drag moves the pointer across a scrolling page: it may pick another card).
        await page.evaluate(([id, target]) => {
          const from = document.querySelector(`.card[data-id="${id}"]`)!
          const to = document.querySelector(`.card[data-id="${target}"]`)!
          const dataTransfer = new DataTransfer()
          const at = { bubbles: true, cancelable: true, dataTransfer, clientX: to.getBoundingClientRect().left + 20, clientY: to.getBoundingClientRect().top + 2 }
          from.dispatchEvent(new DragEvent("dragstart", { bubbles: true, cancelable: true, dataTransfer }))
          to.dispatchEvent(new DragEvent("dragover", at))
          to.dispatchEvent(new DragEvent("drop", at))
          from.dispatchEvent(new DragEvent("dragend", { bubbles: true, dataTransfer }))
        }, [id, target] as const)
      })])
    }
    // An add: at the end of its column (its id is new: the card is known by its title).
    {
      const before = await stateOf()
      const position = positionAt(before, "Done", columnsOf(before).get("Done")!.length)
      await page.fill('section[data-column="Done"] .add-card input', "Added offline")
      await settle()
      await startCounting()
      try {
        await page.press('section[data-column="Done"] .add-card input', "Enter")
        await until("the added card to be drawn", () => page.evaluate(() => [...document.querySelectorAll("#board .card-title")].some((el) => el.textContent === "Added offline")))
        await settle()
        all.push(["add", await counts()])
      } finally {
        await stopCounting()
      }
      const added = Object.values((await stateOf()).cards).find((c) => c.title === "Added offline")
      expect(added?.column).toBe("Done")
      expect(Object.is(added?.position, position)).toBe(true)
      await expectDrawnInOrder()
    }
    // A move, then its undo and its redo (Ctrl+Z, Ctrl+Shift+Z).
    {
      const id = await shownAt("Doing", 1)
      const before = await stateOf()
      const was = before.cards[id]!
      all.push(["move to undo", await ownEdit(id, { column: "Done", position: positionAt(before, "Done", columnsOf(before).get("Done")!.length, id) }, async () => {
        await page.focus(`.card[data-id="${id}"]`)
        await page.keyboard.press("Alt+ArrowRight")
      })])
      const moved = (await cardOf(id))!
      all.push(["undo", await ownEdit(id, { column: was.column, position: was.position }, () => page.keyboard.press("Control+z"))])
      all.push(["redo", await ownEdit(id, moved, () => page.keyboard.press("Control+Shift+z"))])
    }
    // Each edit, from the input to its card drawn: before, a move sorted its column twice and passed over every card 4 times, an undo or redo 2 times.
    expect(Object.fromEntries(all)).toEqual(Object.fromEntries(all.map(([what]) => [what, { sorts: 0, passes: 0 }])))
  }

  test("online, own moves between someone else's are drawn in the board's order", async () => {
    for (let k = 0; k < 6; k++) {
      // Someone moves a card to the top of a column while this page moves one of its own.
      const theirs = `c${k % 3}-${PER_COLUMN - 1 - k}`
      void doc.submit("moveCard", { id: theirs, column: COLUMNS[(k + 1) % 3]!, position: -1 - k }).catch(() => {})
      const mine = await shownAt(COLUMNS[k % 3]!, 1)
      await page.focus(`.card[data-id="${mine}"]`)
      await page.keyboard.press(k % 2 === 0 ? "Alt+ArrowRight" : "Alt+ArrowDown")
    }
    await until("every edit to be confirmed on both sides", async () => doc.pendingCount === 0 && (await page.evaluate(() => window.canon!.doc.pendingCount === 0 && window.canon!.doc.synced)))
    await until("the page to hold the other's moves", () => page.evaluate((id) => window.canon!.doc.state.cards[id]?.position === -6, `c2-${PER_COLUMN - 6}`))
    await settle()
    await expectDrawnInOrder()
  }, 60_000)
})

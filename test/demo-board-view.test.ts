/**
 * Long columns on the demo board (apps/demo/web/board-view.ts), in real Chromium (Debian's
 * /usr/bin/chromium through playwright-core) against a real hub (startHub on a temporary
 * LevelDB directory), with a hostile client on the same board: 250 cards at -Infinity go
 * ahead of every honest card in a column. A column draws at most MAX_SHOWN (200) cards; before,
 * the rest were only counted ("+ 53 more cards"), so the flood hid every honest card. Now a
 * pager at the column's end reaches every card; adding a card shows the column's end; a card
 * moved with the keys stays in view; a drop on a later page lands where it was dropped. The
 * pager's own tests (focus, names, drops at a page's end) follow, on a board of their own.
 * A screenshot goes to test/artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { CanonClient, type Doc } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { demoMachines } from "../apps/demo/machines.js"
import { Board } from "../apps/demo/board.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

/** Upper bound of any one wait: generous for a loaded 2-core machine, still bounded. */
const WAIT_MS = 20_000
const BOARD = "flood"
const SPAM = 250
const ARTIFACTS = join(process.cwd(), "test", "artifacts")

let dir: string
let hub: RunningHub | undefined
let P: Profile | undefined
let page: Page
let evil: CanonClient | undefined

const until = pollerOf(WAIT_MS)

/** The titles a column shows, in order. */
const shown = (column: string): Promise<string[]> =>
  page.evaluate((c) => [...document.querySelectorAll<HTMLElement>(`.column[data-column="${c}"] .card .card-title`)].map((t) => t.textContent ?? ""), column)

/** The titles of a column as the document orders it (the app's own order). */
const modelled = (column: string): Promise<string[]> =>
  page.evaluate((c) => {
    const cards = window.canon!.doc.state.cards
    const rank = (p: number) => (p === p ? p : Infinity)
    return Object.entries(cards)
      .filter(([, card]) => card.column === c)
      .sort(([ia, a], [ib, b]) => rank(a.position) - rank(b.position) || (ia < ib ? -1 : ia > ib ? 1 : 0))
      .map(([, card]) => card.title)
  }, column)

const pager = (column: string) => page.locator(`.column[data-column="${column}"] nav.more`)

/** Clicks one of a column's pager buttons (bounded: a page without a pager fails here). */
const turn = (column: string, label: RegExp) => pager(column).getByRole("button", { name: label }).click({ timeout: 5_000 })

const addCard = async (column: string, title: string): Promise<void> => {
  const input = page.locator(`input[aria-label="New card in ${column}"]`)
  await input.fill(title)
  await input.press("Enter")
}

const cardId = (title: string): Promise<string> =>
  page.evaluate((t) => Object.entries(window.canon!.doc.state.cards).find(([, c]) => c.title === t)![0], title)

const confirmed = () => until("the page's edits to be confirmed", () => page.evaluate(() => window.canon!.doc.pendingCount === 0))

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  mkdirSync(ARTIFACTS, { recursive: true })
  dir = mkdtempSync(join(tmpdir(), "canon-board-view-"))
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0"], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
  evil = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
  P = await launchProfile()
  page = P.context.pages()[0] ?? (await P.context.newPage())
  page.on("pageerror", (e) => console.error(`page: ${e.message}`))
  await page.goto(`${hub.url}/#board=${BOARD}`, { timeout: WAIT_MS })
  await until("the board to load and sync", () => page.evaluate((b) => window.canon?.doc?.synced === true && window.canon.board === b, BOARD))
}, 60_000)

afterAll(async () => {
  await P?.close()
  await evil?.close().catch(() => {})
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

test(`${SPAM} cards at -Infinity cannot hide an honest card: the column's pager reaches every card`, async () => {
  for (const title of ["mine A", "mine B", "mine C"]) await addCard("To do", title)
  await addCard("Doing", "mine D")
  await confirmed()
  const b = await evil!.open(Board, `board/${BOARD}`)
  await b.submit("addCards", { cards: Array.from({ length: SPAM }, (_, i) => ({ id: `s${i}`, title: "spam", column: "To do", position: -Infinity })) })
  await until("the flood to be drawn", async () => (await shown("To do")).length === 200)
  expect(await shown("To do")).not.toContain("mine A")
  const all = await modelled("To do")
  expect(all).toHaveLength(SPAM + 3)
  expect(all.slice(SPAM)).toEqual(["mine A", "mine B", "mine C"])

  // The last page: the column's last 200 cards, the honest ones among them.
  expect(await pager("To do").textContent({ timeout: 5_000 })).toContain(`Cards 1–200 of ${SPAM + 3}`)
  await turn("To do", /last/i)
  await until("the last page", async () => JSON.stringify(await shown("To do")) === JSON.stringify(all.slice(-200)))
  expect(await pager("To do").textContent()).toContain(`Cards ${SPAM + 3 - 199}–${SPAM + 3} of ${SPAM + 3}`)
  // Its first card can move up: it is not the column's first.
  const firstShown = await page.evaluate(() => document.querySelector<HTMLElement>('.column[data-column="To do"] .card')!.dataset.id!)
  expect(await page.locator(`.card[data-id="${firstShown}"] button[data-action="up"]`).isDisabled()).toBe(false)
  await pager("To do").scrollIntoViewIfNeeded()
  await page.screenshot({ path: join(ARTIFACTS, "demo-long-column.png") })
  // And back, page by page.
  await turn("To do", /first/i)
  await until("the first page", async () => JSON.stringify(await shown("To do")) === JSON.stringify(all.slice(0, 200)))
  await turn("To do", /^later$/i)
  await until("the next page", async () => (await shown("To do")).includes("mine C"))
  await turn("To do", /^earlier$/i)
  await until("the page before", async () => JSON.stringify(await shown("To do")) === JSON.stringify(all.slice(0, 200)))

  // A card added to the long column shows at once, at its end.
  await addCard("To do", "mine E")
  await until("the new card to show", async () => (await shown("To do")).at(-1) === "mine E")
  await confirmed()

  // A card moved into the long column with the keys stays in view (and keeps the focus).
  await turn("To do", /first/i)
  await until("the first page again", async () => !(await shown("To do")).includes("mine E"))
  const d = await cardId("mine D")
  await page.locator(`.card[data-id="${d}"]`).focus()
  await page.keyboard.press("Alt+ArrowLeft")
  await until("the moved card to show in To do", async () => (await shown("To do")).at(-1) === "mine D")
  expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)).toBe(d)
  await confirmed()

  // A drop on a later page lands where it was dropped: D before B.
  const bId = await cardId("mine B")
  await page.locator(`.card[data-id="${d}"]`).dragTo(page.locator(`.card[data-id="${bId}"]`), { targetPosition: { x: 20, y: 3 } })
  await until("the drop to land", async () => (await modelled("To do")).slice(SPAM).join() === "mine A,mine D,mine B,mine C,mine E")
  await until("the column to show it", async () => (await shown("To do")).slice(-5).join() === "mine A,mine D,mine B,mine C,mine E")
  await confirmed()
}, 90_000)

/**
 * The pager itself, on a board of its own (in a second tab of the same browser): 250 cards in
 * "To do" (one page and a part), two in "Doing". Each test failed on the pager as it was: a
 * drop past the page's last card landed on the next page, out of sight; a pager button at the
 * column's end was `disabled`, which drops the focus of whoever pressed it to <body>; the
 * buttons' names ("The 200 cards before these") did not hold their visible words (WCAG 2.5.3);
 * a focused card that others' cards pushed off its page took the focus with it.
 */
describe("the column pager", () => {
  const PAGER_BOARD = "pager"
  let tab: Page
  let doc: Doc<typeof Board> | undefined

  const ids = (column: string): Promise<string[]> =>
    tab.evaluate((c) => [...document.querySelectorAll<HTMLElement>(`.column[data-column="${c}"] .card`)].map((t) => t.dataset.id!), column)
  const nav = (column: string) => tab.locator(`.column[data-column="${column}"] nav.more`)
  const button = (column: string, which: "first" | "earlier" | "later" | "last") => nav(column).locator(`button[data-page="${which}"]`)
  /** The first page of "To do", by a click (the pager as a mouse uses it). */
  const firstPage = async () => {
    const first = button("To do", "first")
    // Playwright's isDisabled counts aria-disabled as well as the attribute.
    if (!(await first.isDisabled({ timeout: 5_000 }))) await first.click({ timeout: 5_000 })
    await until("the first page", async () => (await ids("To do"))[0] === "s000")
  }
  /** Where the document puts a card in its column (the app's own order). */
  const indexOf = (id: string): Promise<number> =>
    tab.evaluate((id) => {
      const cards = window.canon!.doc.state.cards
      const column = cards[id]!.column
      const rank = (p: number) => (p === p ? p : Infinity)
      return Object.entries(cards).filter(([, c]) => c.column === column).sort(([ia, a], [ib, b]) => rank(a.position) - rank(b.position) || (ia < ib ? -1 : ia > ib ? 1 : 0)).findIndex(([cid]) => cid === id)
    }, id)
  const focusedId = (): Promise<string | undefined> => tab.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)
  /** Two animation frames: whatever was scheduled to draw has drawn. */
  const frames = () => tab.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))))

  beforeAll(async () => {
    doc = await evil!.open(Board, `board/${PAGER_BOARD}`)
    await doc.submit("addCards", { cards: Array.from({ length: SPAM }, (_, i) => ({ id: `s${String(i).padStart(3, "0")}`, title: `spam ${i}`, column: "To do", position: i })) })
    await doc.submit("addCards", { cards: [{ id: "d1", title: "doing 1", column: "Doing", position: 0 }, { id: "d2", title: "doing 2", column: "Doing", position: 1 }] })
    tab = await P!.context.newPage()
    tab.on("pageerror", (e) => console.error(`tab: ${e.message}`))
    await tab.goto(`${hub!.url}/#board=${PAGER_BOARD}`, { timeout: WAIT_MS })
    await until("the board to load and sync", () => tab.evaluate((n) => window.canon?.doc?.synced === true && Object.keys(window.canon.doc.state.cards).length === n, SPAM + 2))
    await until("the column to draw", async () => (await ids("To do")).length === 200)
  }, 60_000)

  afterAll(async () => {
    await tab?.close().catch(() => {})
  }, 30_000)

  test("each pager button's accessible name is its visible word, and the range is a polite live region", async () => {
    for (const [which, word] of [["first", "First"], ["earlier", "Earlier"], ["later", "Later"], ["last", "Last"]] as const) {
      expect(await button("To do", which).textContent({ timeout: 5_000 })).toContain(word)
      // Playwright computes the accessible name as a screen reader does (aria-label first, aria-hidden left out).
      expect(await nav("To do").getByRole("button", { name: word, exact: true }).count()).toBe(1)
    }
    const range = nav("To do").locator(".range")
    expect(await range.textContent({ timeout: 5_000 })).toBe(`Cards 1–200 of ${SPAM}`)
    expect(await range.getAttribute("aria-live")).toBe("polite")
  }, 30_000)

  test("a keyboard user who pages onto the column's end (or start) keeps the focus on the button pressed", async () => {
    await firstPage()
    const later = button("To do", "later")
    await later.focus({ timeout: 5_000 })
    await tab.keyboard.press("Enter")
    await until("the last page", async () => (await ids("To do")).at(-1) === `s${SPAM - 1}`)
    await frames()
    // The button is off now, but still focused (a disabled one would have dropped the focus to <body>).
    expect(await tab.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.page)).toBe("later")
    expect(await later.getAttribute("aria-disabled")).toBe("true")
    expect(await later.evaluate((b) => (b as HTMLButtonElement).disabled)).toBe(false)
    // Pressed again, it does nothing.
    await tab.keyboard.press("Enter")
    await frames()
    expect((await ids("To do"))[0]).toBe(`s${String(SPAM - 200).padStart(3, "0")}`)
    expect(await nav("To do").locator(".range").textContent()).toBe(`Cards ${SPAM - 199}–${SPAM} of ${SPAM}`)
    // The same at the start: "First" pressed there keeps the focus too.
    await button("To do", "first").focus({ timeout: 5_000 })
    await tab.keyboard.press("Enter")
    await until("the first page", async () => (await ids("To do"))[0] === "s000")
    await frames()
    expect(await tab.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.page)).toBe("first")
    expect(await button("To do", "earlier").getAttribute("aria-disabled")).toBe("true")
    expect(await button("To do", "later").getAttribute("aria-disabled")).toBe("false")
  }, 30_000)

  test("a keyboard user who moves a card to its column's top keeps the focus on the button pressed", async () => {
    const [first, second] = await ids("Doing")
    const up = tab.locator(`.card[data-id="${second}"] button[data-action="up"]`)
    await up.focus({ timeout: 5_000 })
    await tab.keyboard.press("Enter")
    await until("the card at the top", async () => (await ids("Doing"))[0] === second)
    await frames()
    // Off at the top, but still focused (a disabled button would have dropped the focus to <body>).
    expect(await tab.evaluate(() => {
      const a = document.activeElement as HTMLElement | null
      return [a?.dataset.action, a?.closest<HTMLElement>(".card")?.dataset.id]
    })).toEqual(["up", second])
    expect(await up.getAttribute("aria-disabled")).toBe("true")
    // Pressed again, it does nothing; "down" moves it back.
    await tab.keyboard.press("Enter")
    await frames()
    expect(await ids("Doing")).toEqual([second, first])
    expect(await tab.locator(`.card[data-id="${second}"] button[data-action="down"]`).getAttribute("aria-disabled")).toBe("false")
  }, 30_000)

  test("a card dropped below the last card of a page that is not the column's last stays in view", async () => {
    await firstPage()
    // HTML5 drag events as the browser sends them, below the midpoint of the page's last card:
    // the drop line shows at the list's end.
    const dropEndShown = await tab.evaluate(() => {
      const source = document.querySelector<HTMLElement>('.card[data-id="d1"]')!
      const cards = document.querySelectorAll<HTMLElement>('.column[data-column="To do"] .card')
      const last = cards[cards.length - 1]!
      const r = last.getBoundingClientRect()
      const dataTransfer = new DataTransfer()
      const at = { bubbles: true, cancelable: true, dataTransfer, clientX: r.left + 20, clientY: r.bottom - 3 }
      source.dispatchEvent(new DragEvent("dragstart", { bubbles: true, cancelable: true, dataTransfer }))
      last.dispatchEvent(new DragEvent("dragover", at))
      const shown = last.closest(".cards")!.classList.contains("drop-end")
      last.dispatchEvent(new DragEvent("drop", at))
      source.dispatchEvent(new DragEvent("dragend", { bubbles: true, dataTransfer }))
      return shown
    })
    expect(dropEndShown).toBe(true)
    await until("the drop to land", () => tab.evaluate(() => window.canon!.doc.state.cards["d1"]?.column === "To do"))
    // Right after the last card shown: the column's 201st card...
    expect(await indexOf("d1")).toBe(200)
    await frames()
    // ...and on screen, where it was dropped, not on a page no one is looking at.
    const shownNow = await ids("To do")
    expect(shownNow).toContain("d1")
    expect(shownNow.at(-1)).toBe("d1")
    expect(await nav("To do").locator(".range").textContent()).toBe(`Cards 2–201 of ${SPAM + 1}`)
    await until("the move to be confirmed", () => tab.evaluate(() => window.canon!.doc.pendingCount === 0))
  }, 30_000)

  test("a focused card that others' cards push past its page's end stays shown and focused; the pager still turns", async () => {
    await firstPage()
    const before = await tab.evaluate(() => Object.values(window.canon!.doc.state.cards).filter((c) => c.column === "To do").length)
    await tab.locator('.card[data-id="s150"]').focus({ timeout: 5_000 })
    // Someone else adds 100 cards ahead of it.
    await doc!.submit("addCards", { cards: Array.from({ length: 100 }, (_, i) => ({ id: `t${String(i).padStart(3, "0")}`, title: `ahead ${i}`, column: "To do", position: -1000 + i })) })
    await until("the cards ahead to be drawn", async () => (await tab.locator('.column[data-column="To do"] .count').textContent()) === String(before + 100))
    await frames()
    expect(await indexOf("s150")).toBe(250)
    expect(await focusedId()).toBe("s150")
    expect(await ids("To do")).toContain("s150")
    // The page moved as little as it had to: the focused card is its last.
    expect((await ids("To do")).at(-1)).toBe("s150")
    // A click that does not move the focus (Safari's) still turns the page away from the focused card.
    await tab.evaluate(() => document.querySelector<HTMLButtonElement>('.column[data-column="To do"] button[data-page="first"]')!.click())
    await until("the first page", async () => (await ids("To do"))[0] === "t000")
  }, 30_000)
})

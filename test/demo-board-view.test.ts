/**
 * Long columns on the demo board (apps/demo/web/board-view.ts), in real Chromium (Debian's
 * /usr/bin/chromium through playwright-core) against a real hub (startHub on a temporary
 * LevelDB directory), with a hostile client on the same board: 250 cards at -Infinity go
 * ahead of every honest card in a column. A column draws at most MAX_SHOWN (200) cards; before,
 * the rest were only counted ("+ 53 more cards"), so the flood hid every honest card. Now a
 * pager at the column's end reaches every card; adding a card shows the column's end; a card
 * moved with the keys stays in view; a drop on a later page lands where it was dropped.
 * A screenshot goes to test/artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { CanonClient } from "../core/index.js"
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
  await turn("To do", /after these/i)
  await until("the next page", async () => (await shown("To do")).includes("mine C"))
  await turn("To do", /before these/i)
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

/**
 * What another client on the board can send that an honest page must withstand, in real
 * Chromium (Debian's /usr/bin/chromium through playwright-core) against a real hub (startHub
 * on a temporary LevelDB directory). The other client is a plain Canon client in Node: it
 * sends only what the Board and CardText machines accept, as any client may.
 *
 * - A presence name as wide as the page allows (40 characters, the cap asPresence keeps) on a
 *   card's "is editing" tag: the card's buttons stay inside the card, where a mouse reaches them.
 * - An embed and formatting in a card's description (a Y.Text holds more than characters):
 *   what the honest person types lands where they typed it, and the rest is untouched.
 */
import { mkdtempSync, rmSync } from "node:fs"
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
import { CardText, cardTextDocId } from "../apps/demo/card-text.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

/** Upper bound of any one wait: generous for a loaded 2-core machine, still bounded. */
const WAIT_MS = 15_000

let dir: string
let hub: RunningHub | undefined
let P: Profile | undefined
let page: Page
let other: CanonClient | undefined
const errors: string[] = []

const until = pollerOf(WAIT_MS)

const open = async (board: string): Promise<void> => {
  await page.goto(`${hub!.url}/#board=${board}`, { timeout: WAIT_MS })
  await until(`${board} to load and sync`, () => page.evaluate((b) => window.canon?.doc?.synced === true && window.canon.board === b, board))
}

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  dir = mkdtempSync(join(tmpdir(), "canon-hostile-"))
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--host", "127.0.0.1"], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
  other = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
  P = await launchProfile()
  page = P.context.pages()[0] ?? (await P.context.newPage())
  page.on("pageerror", (e) => errors.push(e.message))
}, 60_000)

afterAll(async () => {
  await P?.close()
  await other?.close().catch(() => {})
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

test("a 40-character presence name on a card's editor tag leaves the card's buttons inside the card, under the mouse", async () => {
  const board = await other!.open(Board, "board/wide-name")
  await board.submit("addCard", { id: "c1", title: "My card", column: "To do", position: 1 })
  await open("wide-name")
  await until("the card", () => page.evaluate(() => document.querySelector('.card[data-id="c1"]') !== null))
  for (const [name, width] of [["\uFDFD".repeat(40), 1200], ["W".repeat(40), 1200], ["\uFDFD".repeat(40), 390]] as const) {
    await page.setViewportSize({ width, height: 800 })
    board.setPresence({ name, colour: "#e03131", editing: "c1" })
    await until("the editor tag", () => page.evaluate((n) => document.querySelector(".editor-tag")?.textContent === `${n} is editing`, name))
    await page.locator('.card[data-id="c1"]').hover()
    const boxes = await page.evaluate(() => {
      const card = document.querySelector<HTMLElement>('.card[data-id="c1"]')!
      const c = card.getBoundingClientRect()
      return {
        card: { left: c.left, right: c.right, top: c.top, bottom: c.bottom },
        buttons: [...card.querySelectorAll<HTMLButtonElement>(".card-actions button")].map((b) => {
          const r = b.getBoundingClientRect()
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
          return { action: b.dataset.action, left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, hit: hit !== null && b.contains(hit) }
        }),
        tag: document.querySelector(".editor-tag")!.getBoundingClientRect().right,
        pageWidth: document.documentElement.scrollWidth,
        viewport: innerWidth,
      }
    })
    expect(boxes.buttons.length).toBeGreaterThan(0)
    for (const b of boxes.buttons) {
      const where = `${b.action} (name ${name.slice(0, 3)}…, ${width} px)`
      expect([where, b.width > 0]).toEqual([where, true])
      expect([where, b.left >= boxes.card.left && b.right <= boxes.card.right && b.top >= boxes.card.top && b.bottom <= boxes.card.bottom]).toEqual([where, true])
      expect([where, b.hit]).toEqual([where, true])
    }
    // The tag itself is cut (with an ellipsis) inside the card; the page does not scroll sideways.
    expect(boxes.tag).toBeLessThanOrEqual(boxes.card.right)
    expect(boxes.pageWidth).toBeLessThanOrEqual(boxes.viewport)
    // The buttons work: the details button opens the card.
    await page.locator('.card[data-id="c1"] button[data-action="details"]').click()
    await until("the details", () => page.evaluate(() => document.querySelector("#details") !== null))
    await page.locator('#details button[aria-label="Close"]').click()
    await until("the details to close", () => page.evaluate(() => document.querySelector("#details") === null))
  }
  board.setPresence({ name: "gone", colour: "#e03131", editing: null })
  expect(errors).toEqual([])
})

test("an embed and formatting in a description: the honest person's typing lands where they typed, the rest untouched", async () => {
  const board = await other!.open(Board, "board/embed")
  await board.submit("addCard", { id: "c1", title: "Card", column: "To do", position: 1 })
  const desc = await other!.open(CardText, cardTextDocId("embed", "c1"))
  const t = desc.crdt.description
  t.insert(0, "hello world")
  t.insertEmbed(0, { image: "x" })
  t.format(7, 5, { bold: true }) // "world"
  await until("the other client's text confirmed", () => desc.pendingCount === 0 && desc.synced)
  await open("embed")
  await page.locator('.card[data-id="c1"]').hover()
  await page.locator('.card[data-id="c1"] button[data-action="details"]').click()
  await until("the description to open", () => page.evaluate(() => window.canonText !== undefined && !document.querySelector<HTMLTextAreaElement>("#details textarea")!.disabled))
  const area = page.locator("#details textarea")
  // The embed shows as U+FFFC: each textarea offset is a Y.Text index.
  await until("the description's text", async () => (await area.inputValue()) !== "")
  // "!" at the end (before the fix it went before the "d": the textarea's offsets were
  // toString()'s, which leaves the embed out, and Yjs's indices count it).
  await area.focus()
  await page.keyboard.press("End")
  await page.keyboard.type("!")
  await until("the other client to see the '!'", () => t.toString().includes("!"))
  expect(t.toString()).toBe("hello world!")
  // The embed shows as U+FFFC: each textarea offset is a Y.Text index.
  expect(await area.inputValue()).toBe("\uFFFChello world!")
  // Delete the "h" (just after the placeholder), then type at the caret.
  await page.keyboard.press("Home")
  await page.keyboard.press("ArrowRight")
  await page.keyboard.press("Delete")
  await page.keyboard.type("H")
  await until("the other client to see the 'H'", () => t.toString().startsWith("H"))
  // (Typed at the end of the bold "world", the "!" takes its formatting, as in any rich-text editor.)
  expect(t.toDelta()).toEqual([{ insert: { image: "x" } }, { insert: "Hello " }, { insert: "world!", attributes: { bold: true } }])
  expect(await area.inputValue()).toBe("\uFFFCHello world!")
  // The other client types before the honest caret: the caret keeps its place after the "H".
  t.insertEmbed(0, { image: "y" })
  t.insert(0, "> ")
  await until("the honest textarea to show it", async () => (await area.inputValue()) === "> \uFFFC\uFFFCHello world!")
  expect(await area.evaluate((a: HTMLTextAreaElement) => [a.selectionStart, a.selectionEnd])).toEqual([5, 5])
  await page.keyboard.type("ey")
  await until("the other client to see 'Hey'", () => t.toString().includes("Hey"))
  expect(t.toString()).toBe("> Heyello world!")
  await page.locator('#details button[aria-label="Close"]').click()
  expect(errors).toEqual([])
})

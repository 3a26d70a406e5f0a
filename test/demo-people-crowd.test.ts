/**
 * The people bar of the demo board (apps/demo/web/people-view.ts, styles.css), in real Chromium
 * (Debian's /usr/bin/chromium through playwright-core) against a real hub (startHub on a
 * temporary LevelDB directory), with a crowd of other clients (plain Canon clients in Node) on
 * the board, each present under a 40-character name (the cap asPresence keeps).
 *
 * The bar drew one chip per present person and wrapped them onto new rows without bound, inside
 * the sticky top bar: 20 such people made the top bar 853 px tall on a 390x800 window, 60 did on
 * a 1200x800 one, and it covered the board at every scroll position (no card under the mouse).
 * Now the sticky top bar stays within a quarter of the window (on a window where even its usual
 * rows would not, it scrolls away), with the crowd folded ("+K more") or unfolded, on a phone
 * and on a desktop, and a card's centre is the card. A few people still show as a chip each,
 * their names in full.
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
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

/** Upper bound of any one wait: generous for a loaded 2-core machine, still bounded. */
const WAIT_MS = 20_000
/** Present people in the crowd (each its own connection, all from one address). */
const CROWD = 60
const LONG = "W".repeat(40)
/** The most of the window's height the sticky top bar may take (on a shorter window it is not sticky). */
const SHARE = 0.25
const SIZES = [{ width: 390, height: 800 }, { width: 390, height: 640 }, { width: 1200, height: 800 }, { width: 1200, height: 600 }] as const

let dir: string
let hub: RunningHub | undefined
let P: Profile | undefined
let page: Page
const peers: CanonClient[] = []
const errors: string[] = []

const until = pollerOf(WAIT_MS)

const peer = async (): Promise<CanonClient> => {
  const c = await CanonClient.open({ transport: wsClientTransport(hub!.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
  peers.push(c)
  return c
}

/** `names.length` new clients present on `board` under these names; the first adds card c1. */
const present = async (board: string, names: readonly string[]): Promise<void> => {
  const clients: CanonClient[] = []
  for (const _ of names) clients.push(await peer())
  const docs = await Promise.all(clients.map((c) => c.open(Board, `board/${board}`)))
  await docs[0]!.submit("addCard", { id: "c1", title: "Honest card", column: "To do", position: 1 })
  for (const [i, d] of docs.entries()) d.setPresence({ name: names[i]!, colour: "#e03131", editing: null })
}

const open = async (board: string, people: number): Promise<void> => {
  await page.goto(`${hub!.url}/#board=${board}`, { timeout: WAIT_MS })
  await until(`${board}: its card and ${people} people`, () =>
    page.evaluate((n) => document.querySelectorAll("#people [data-client]").length === n && document.querySelector('.card[data-id="c1"]') !== null, people))
}

/** The top bar's height, whether it sticks, and whether the card's centre is the card once it is scrolled to the middle of the window. */
const layout = (): Promise<{ topbar: number; sticky: boolean; reachable: boolean }> =>
  page.evaluate(() => {
    const card = document.querySelector<HTMLElement>('.card[data-id="c1"]')!
    card.scrollIntoView({ block: "center" })
    const b = card.getBoundingClientRect()
    const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2)
    const bar = document.querySelector<HTMLElement>(".topbar")!
    return { topbar: Math.round(bar.getBoundingClientRect().height), sticky: getComputedStyle(bar).position === "sticky", reachable: hit !== null && card.contains(hit) }
  })

/** How the top bar fares at each window size: its height against the bound (when it sticks), and the card under the mouse. */
const check = async (): Promise<Array<{ size: string; topbar: number; reachable: boolean; within: boolean }>> => {
  const out = []
  for (const size of SIZES) {
    await page.setViewportSize(size)
    const { topbar, sticky, reachable } = await layout()
    out.push({ size: `${size.width}x${size.height}`, topbar, reachable, within: !sticky || topbar <= size.height * SHARE })
  }
  return out
}

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  dir = mkdtempSync(join(tmpdir(), "canon-people-crowd-"))
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--host", "127.0.0.1"], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
  P = await launchProfile({ viewport: { width: 390, height: 800 } })
  page = P.context.pages()[0] ?? (await P.context.newPage())
  page.on("pageerror", (e) => errors.push(e.message))
}, 60_000)

afterAll(async () => {
  await P?.close()
  for (const c of peers) await c.close().catch(() => {})
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

test(`${CROWD} people with 40-character names keep the top bar within a quarter of the window and the card under the mouse, folded and unfolded`, async () => {
  await present("crowd", Array.from({ length: CROWD }, () => LONG))
  await open("crowd", CROWD)
  const fine = async () => {
    const got = await check()
    expect(got).toEqual(got.map((g) => ({ ...g, reachable: true, within: true })))
  }
  await fine()

  // The crowd is one chip that says how many more there are; unfolded, every chip is there, in a bounded box.
  const more = page.locator("#people button.people-more")
  const hidden = () => page.evaluate(() => [...document.querySelectorAll<HTMLElement>("#people .person")].filter((p) => !p.checkVisibility()).length)
  const folded = await hidden()
  expect(folded).toBeGreaterThan(0)
  expect({ text: await more.textContent(), title: await more.getAttribute("title") }).toEqual({ text: `+${folded} more`, title: `${folded} more people on this board` })
  await more.click({ timeout: 5_000 })
  await until("every chip to show", async () => (await hidden()) === 0)
  await fine()
  await more.click({ timeout: 5_000 })
  await until("the crowd to fold again", async () => (await hidden()) === folded)
  expect(errors).toEqual([])
}, 60_000)

test("a few people still show as a chip each, with their names in full and no fold", async () => {
  const names = ["Ann", "Bob", "Cyrus the Great"]
  await present("few", names)
  await page.setViewportSize({ width: 1200, height: 800 })
  await open("few", names.length)
  const shown = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>("#people [data-client]")].map((p) => {
      const name = p.querySelector<HTMLElement>(".name")!
      return { name: name.textContent, visible: p.checkVisibility(), whole: name.scrollWidth <= name.clientWidth }
    }))
  expect(shown).toEqual(names.map((name) => ({ name, visible: true, whole: true })))
  expect(await page.locator("#people .people-more").count()).toBe(0)
  // Nothing of the bar is out of sight: the chips fit the window as they did before the fold.
  expect(await page.evaluate(() => { const p = document.querySelector<HTMLElement>("#people")!; return p.scrollWidth <= p.clientWidth })).toBe(true)
  expect(errors).toEqual([])
}, 60_000)

/**
 * When the demo board renders (apps/demo/web/board-session.ts), in real Chromium (Debian's
 * /usr/bin/chromium through playwright-core) against a real hub (startHub on a temporary
 * LevelDB directory), with a second, hostile client on the same board:
 *
 * - a burst of presence changes (a crowd of connections setting their presence at once; the
 *   hub relays each client's latest presence 20 times a second) is drawn at most once per
 *   animation frame, and sorts no cards: presence cannot change the cards' order. Before,
 *   every presence message re-rendered the whole board, sorting every card three times, and
 *   one connection's 20 Hz presence froze a tab on a 20,000-card board;
 * - a change of the board amid such a burst sorts the cards as often as one change alone;
 * - a hidden tab (no animation frames) still draws what changed, on a timer.
 *
 * The counts are of work, not time: full renders (each one redraws the people chips, one
 * childList record on #people), animation frames (a requestAnimationFrame loop), sorts of
 * cards (Array.prototype.sort wrapped in the page, counting sorts of a column's worth of
 * [id, card] pairs), presence events received.
 */
import { mkdtempSync, rmSync } from "node:fs"
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
const BOARD = "churn"
/** Cards per column: a sort of one column, or of all the cards, is an array at least this long. */
const PER_COLUMN = 1_000
/** Connections in the crowd: each one's presence change is a message of its own to the page. */
const CROWD = 24

let dir: string
let hub: RunningHub | undefined
let P: Profile | undefined
let page: Page
let other: CanonClient | undefined
let doc: Doc<typeof Board>
const crowd: CanonClient[] = []
const crowdDocs: Doc<typeof Board>[] = []

const until = pollerOf(WAIT_MS)

interface Counts {
  readonly renders: number
  readonly frames: number
  /** Long sorts of cards, and passes over every card's key: the view's work that grows with the board. */
  readonly sorts: number
  readonly presence: number
}

/** Starts counting in the page (from zero); `counts` reads, `stopCounting` restores the page. */
const startCounting = (min: number): Promise<void> =>
  page.evaluate((min) => {
    const w = window as unknown as { counts: { renders: number; frames: number; sorts: number; presence: number }; stopCounting: () => void }
    const counts = (w.counts = { renders: 0, frames: 0, sorts: 0, presence: 0 })
    const observer = new MutationObserver((records) => (counts.renders += records.length))
    observer.observe(document.getElementById("people")!, { childList: true })
    let counting = true
    const frame = () => {
      if (!counting) return
      counts.frames++
      requestAnimationFrame(frame)
    }
    requestAnimationFrame(frame)
    const sort = Array.prototype.sort
    Array.prototype.sort = function (this: unknown[], ...args: [((a: unknown, b: unknown) => number)?]) {
      // Cards being ordered: [id, card] pairs (the engine's own sorts, of keys, are not counted).
      if (this.length >= min && Array.isArray(this[0]) && typeof this[0][0] === "string") counts.sorts++
      return sort.apply(this, args)
    } as typeof sort
    // A pass over every card (the view's order reads the cards' keys once per change, apps/demo/web/card-order.ts): counted with the sorts.
    const ownKeys = Reflect.ownKeys
    Reflect.ownKeys = ((target: object) => {
      const keys = ownKeys(target)
      if (keys.length >= min) counts.sorts++
      return keys
    }) as typeof ownKeys
    const stop = window.canon!.doc.on("presence", () => counts.presence++)
    w.stopCounting = () => {
      counting = false
      observer.disconnect()
      Array.prototype.sort = sort
      Reflect.ownKeys = ownKeys
      stop()
    }
  }, min)

const counts = (): Promise<Counts> => page.evaluate(() => ({ ...(window as unknown as { counts: Counts }).counts }))
const stopCounting = (): Promise<void> => page.evaluate(() => (window as unknown as { stopCounting: () => void }).stopCounting())

/** Two animation frames in the page: whatever was scheduled to draw has drawn. */
const settle = (): Promise<void> => page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))))

/** Keeps the page's main thread busy for `ms` (what a slow render does): messages wait in its queue meanwhile. */
const busy = (ms: number): Promise<void> =>
  page.evaluate((ms) => {
    const end = performance.now() + ms
    while (performance.now() < end) {
      // busy
    }
  }, ms)

/** Every connection of the crowd sets its presence (`${tag} ${i}`), the first one editing `editing`. */
const burst = async (tag: string, editing: string | null = null): Promise<void> => {
  for (const [i, d] of crowdDocs.entries()) {
    d.setPresence({ name: `${tag} ${i}`, colour: "#2f9e44", editing: i === 0 ? editing : null })
    await new Promise((r) => setImmediate(r))
  }
}

/** The names the page shows for these clients (their people chips). */
const shownNames = (clients: readonly CanonClient[]): Promise<Array<string | undefined>> =>
  page.evaluate((ids) => ids.map((id) => document.querySelector<HTMLElement>(`#people [data-client="${id}"] .name`)?.textContent ?? undefined), clients.map((c) => c.clientId))

/** The page shows every connection of the crowd under `${tag} ${i}`. */
const crowdShown = async (tag: string): Promise<boolean> => (await shownNames(crowd)).every((name, i) => name === `${tag} ${i}`)

const shownName = async (): Promise<string | undefined> => (await shownNames([other!]))[0]

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  dir = mkdtempSync(join(tmpdir(), "canon-board-session-"))
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0"], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
  other = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
  doc = await other.open(Board, `board/${BOARD}`)
  const columns = doc.state.columns
  for (const [c, column] of columns.entries()) {
    const cards = Array.from({ length: PER_COLUMN }, (_, i) => ({ id: `c${c}-${i}`, title: `Card ${c}-${i}`, column, position: i }))
    void doc.submit("addCards", { cards }).catch(() => {})
  }
  await until("the board's cards to be confirmed", () => doc.pendingCount === 0 && doc.synced)
  for (let i = 0; i < CROWD; i++) {
    const c = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage: new MemoryStorage() })
    crowd.push(c)
    crowdDocs.push(await c.open(Board, `board/${BOARD}`))
  }
  P = await launchProfile()
  page = P.context.pages()[0] ?? (await P.context.newPage())
  page.on("pageerror", (e) => console.error(`page: ${e.message}`))
  await page.goto(`${hub.url}/#board=${BOARD}`, { timeout: WAIT_MS })
  await until("the board to load, sync and draw", () =>
    page.evaluate((n) => window.canon?.doc?.synced === true && window.canon.board === "churn" && Object.keys(window.canon.doc.state.cards).length === n && document.querySelectorAll("#board .card").length > 0, PER_COLUMN * columns.length),
  )
}, 90_000)

afterAll(async () => {
  await P?.close()
  await Promise.all(crowd.map((c) => c.close().catch(() => {})))
  await other?.close().catch(() => {})
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

test("a burst of presence changes is drawn at most once per animation frame, and sorts no cards", async () => {
  const card = "c0-3"
  await startCounting(PER_COLUMN)
  try {
    // The burst arrives while the page is busy, as it does behind a slow render: its messages wait together.
    const blocked = busy(1_500)
    await new Promise((r) => setTimeout(r, 200))
    await burst("Mallory", card)
    await blocked
    await until("the page to show the burst", () => crowdShown("Mallory"))
    await settle()
    const c = await counts()
    expect(c.presence).toBeGreaterThanOrEqual(CROWD)
    // Presence cannot reorder the cards: drawing it sorts none.
    expect(c.sorts).toBe(0)
    // One render a frame at most, and the burst, queued together, is drawn in a few (one each, before).
    expect(c.renders).toBeGreaterThan(0)
    expect(c.renders).toBeLessThanOrEqual(c.frames)
    expect(c.renders).toBeLessThanOrEqual(c.presence / 4)
  } finally {
    await stopCounting()
  }
  // What presence shows is drawn all the same: who is editing which card.
  expect(await page.locator(`.card[data-id="${card}"] .editor-tag`).textContent()).toBe("Mallory 0 is editing")
}, 60_000)

test("a change to the board amid a presence burst sorts the cards as often as the change alone", async () => {
  // One change alone: how many long sorts drawing it takes.
  await startCounting(PER_COLUMN)
  let alone: Counts
  try {
    await doc.submit("renameCard", { id: "c1-5", title: "Renamed once" })
    await until("the rename to be drawn", () => page.evaluate(() => document.querySelector('.card[data-id="c1-5"] .card-title')?.textContent === "Renamed once"))
    await settle()
    alone = await counts()
  } finally {
    await stopCounting()
  }
  expect(alone.sorts).toBeGreaterThan(0)

  await startCounting(PER_COLUMN)
  try {
    const blocked = busy(1_500)
    await new Promise((r) => setTimeout(r, 200))
    await burst("Trudy")
    void doc.submit("renameCard", { id: "c1-5", title: "Renamed twice" }).catch(() => {})
    await new Promise((r) => setTimeout(r, 100)) // the hub's next presence tick
    await burst("Eve")
    await blocked
    await until("the rename and the burst to be drawn", async () =>
      (await crowdShown("Eve")) && (await page.evaluate(() => document.querySelector('.card[data-id="c1-5"] .card-title')?.textContent === "Renamed twice")),
    )
    await settle()
    const c = await counts()
    expect(c.presence).toBeGreaterThanOrEqual(CROWD)
    expect(c.sorts).toBeLessThanOrEqual(alone.sorts)
    expect(c.renders).toBeLessThanOrEqual(c.frames)
    expect(c.renders).toBeLessThanOrEqual(c.presence / 4)
  } finally {
    await stopCounting()
  }
}, 60_000)

test("a hidden tab (no animation frames) still draws presence and board changes", async () => {
  // Headless Chromium never hides a tab: make this one look hidden, with frames that never come.
  await page.evaluate(() => {
    const w = window as unknown as { showAgain: () => void }
    const raf = window.requestAnimationFrame
    const held: FrameRequestCallback[] = []
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" })
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true })
    window.requestAnimationFrame = (cb) => (held.push(cb), -1)
    document.dispatchEvent(new Event("visibilitychange"))
    w.showAgain = () => {
      window.requestAnimationFrame = raf
      delete (document as { visibilityState?: unknown }).visibilityState
      delete (document as { hidden?: unknown }).hidden
      document.dispatchEvent(new Event("visibilitychange"))
      for (const cb of held.splice(0)) raf(cb)
    }
  })
  try {
    doc.setPresence({ name: "Hidden viewer", colour: "#2f9e44", editing: null })
    await doc.submit("renameCard", { id: "c2-7", title: "Renamed while hidden" })
    await until("the hidden page to draw both", async () =>
      (await shownName()) === "Hidden viewer" && (await page.evaluate(() => document.querySelector('.card[data-id="c2-7"] .card-title')?.textContent === "Renamed while hidden")),
    )
  } finally {
    await page.evaluate(() => (window as unknown as { showAgain: () => void }).showAgain())
  }
  doc.setPresence({ name: "Visible again", colour: "#2f9e44", editing: null })
  await until("the visible page to draw presence again", async () => (await shownName()) === "Visible again")
}, 60_000)

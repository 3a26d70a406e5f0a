/**
 * Time from page load to the demo board's first render from IndexedDB, in real Chromium
 * (Debian's /usr/bin/chromium via playwright-core; never a browser download) against a real
 * hub serving the demo as `npm start` does (apps/demo/build.ts bundles it).
 *
 * Setup: one browser profile opens a board and adds `cards` cards; once the hub confirmed
 * them, they are in the profile's IndexedDB and the service worker is installed.
 * Measured: from navigation start (performance.timeOrigin) to the moment all `cards` cards
 * are in the board's DOM (a MutationObserver installed before the page's scripts run; the
 * frame that paints them follows). During measured loads the page's WebSocket is routed
 * to nowhere (it opens, nothing answers), so what is rendered can only come from IndexedDB.
 *
 * - cold: a new browser process on the same profile with its HTTP cache, V8 code cache and
 *   service worker (with its Cache Storage) deleted; only IndexedDB is kept. The page, the
 *   script and the styles come from the hub and the script is compiled afresh: a returning
 *   visitor after a new deploy or after the browser evicted its caches.
 * - warm: a reload of that tab once the service worker is active again: the script comes
 *   from the service worker's cache and its compiled code from V8's code cache.
 *
 * The hub serves over loopback (no network latency): the figures are the browser's and
 * the app's own work. Times are wall clock on a shared machine: read medians.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import type http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium, type BrowserContext, type Page } from "playwright-core"
import { demoMachines } from "../apps/demo/machines.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { parseConfig } from "../apps/hub/config.js"
import { startHub, type PageHandler } from "../apps/hub/start.js"
import { check } from "./harness.js"

export const CHROMIUM = process.env.CANON_CHROMIUM ?? "/usr/bin/chromium"
export const chromiumAvailable = (): boolean => existsSync(CHROMIUM)

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
const BOARD = "bench"
/** Upper bound of any one wait (a loaded 2-core machine), so a broken page fails instead of hanging. */
const WAIT_MS = 30_000
/** Profile directories holding caches (Chromium's layout); IndexedDB lives in Default/IndexedDB and stays. */
const CACHES = ["Default/Cache", "Default/Code Cache", "Default/GPUCache", "Default/Service Worker"]

export interface LoadTimes {
  /** Milliseconds from navigation start to all cards in the DOM, one per run. */
  readonly render: number[]
  /** Milliseconds from navigation start to the app's script having run (DOMContentLoaded), one per run. */
  readonly script: number[]
}

export interface FirstRender {
  readonly cold: LoadTimes
  readonly warm: LoadTimes
  readonly cards: number
}

/**
 * Installed before the page's scripts: records when `n` cards are first in the board.
 * A string, not a function: tsx compiles functions with name helpers the page lacks.
 */
const watchFirstRender = (n: number): string => `{
  const observer = new MutationObserver(() => {
    if (window.__firstRender === undefined && document.querySelectorAll("#board .card").length >= ${n}) {
      window.__firstRender = performance.now()
      observer.disconnect()
    }
  })
  observer.observe(document, { childList: true, subtree: true })
}`

const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
  const end = Date.now() + WAIT_MS
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > end) throw new Error(`Timed out after ${WAIT_MS} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** One measured load: when all cards were in the DOM, and when the app's script had run (DOMContentLoaded starts after deferred scripts). */
const loadTimes = async (page: Page): Promise<{ render: number; script: number }> => {
  let t: { render?: number; script: number } | undefined
  await until("the board's first render", async () => {
    t = await page.evaluate(() => ({
      render: (window as unknown as { __firstRender?: number }).__firstRender,
      script: (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).domContentLoadedEventStart,
    }))
    return t.render !== undefined
  })
  return { render: t!.render!, script: t!.script }
}

const serviceWorkerActive = (page: Page): Promise<boolean> =>
  page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.active?.state === "activated"))

export const measureFirstRender = async (options: { runs: number; cards: number; log(line: string): void }): Promise<FirstRender> => {
  const { runs, cards, log } = options
  const dir = mkdtempSync(join(tmpdir(), "canon-bench-render-"))
  const profile = join(dir, "profile")
  const requests = new Map<string, number>()
  const pages = demoPages(await buildDemo())
  const counting: PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, hub) => {
    const path = new URL(req.url ?? "/", "http://x").pathname
    requests.set(path, (requests.get(path) ?? 0) + 1)
    return pages(req, res, hub)
  }
  const config = parseConfig(["--data", join(dir, "data"), "--host", "127.0.0.1", "--port", "0"], {})
  if (config === "help") throw new Error("unexpected --help")
  const hub = await startHub(config, demoMachines, counting)
  const url = `${hub.url}/#board=${BOARD}`
  const launch = () => chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1200, height: 800 }, timeout: WAIT_MS })
  let context: BrowserContext | undefined
  try {
    // Setup: the board with its cards confirmed by the hub, in this profile's IndexedDB.
    context = await launch()
    const page = context.pages()[0] ?? (await context.newPage())
    await page.goto(url, { timeout: WAIT_MS })
    await until("the board to open and sync", () => page.evaluate(() => window.canon?.doc?.synced === true && window.canon.board === "bench"))
    await page.evaluate((n) => {
      const doc = window.canon!.doc
      const columns = doc.state.columns
      for (let i = 0; i < n; i++) void doc.submit("addCard", { id: `card-${i}`, title: `Card ${i}`, column: columns[i % columns.length]!, position: i })
    }, cards)
    await until(`the hub to confirm ${cards} cards`, () => page.evaluate((n) => window.canon!.doc.pendingCount === 0 && Object.keys(window.canon!.doc.state.cards).length === n, cards))
    await until("the service worker", () => serviceWorkerActive(page))
    await context.close()
    context = undefined

    const out: FirstRender = { cold: { render: [], script: [] }, warm: { render: [], script: [] }, cards }
    const record = (into: LoadTimes, t: { render: number; script: number }) => {
      into.render.push(t.render)
      into.script.push(t.script)
    }
    for (let run = 0; run < runs; run++) {
      for (const d of CACHES) rmSync(join(profile, d), { recursive: true, force: true })
      context = await launch()
      // The WebSocket opens and nothing answers: the board can only come from IndexedDB.
      await context.routeWebSocket(/\/sync$/, () => {})
      await context.addInitScript({ content: watchFirstRender(cards) })
      const p = context.pages()[0] ?? (await context.newPage())
      const scripts = requests.get("/app.js") ?? 0
      await p.goto(url, { timeout: WAIT_MS })
      record(out.cold, await loadTimes(p))
      check((requests.get("/app.js") ?? 0) > scripts, "a cold load fetches app.js from the hub")
      await until("the service worker to install again", () => serviceWorkerActive(p))
      const before = requests.get("/app.js") ?? 0
      await p.reload({ timeout: WAIT_MS })
      record(out.warm, await loadTimes(p))
      check((requests.get("/app.js") ?? 0) === before, "a warm load takes app.js from the service worker's cache")
      log(`first render, run ${run + 1}/${runs}: cold ${out.cold.render.at(-1)!.toFixed(0)} ms (script ran at ${out.cold.script.at(-1)!.toFixed(0)}), warm ${out.warm.render.at(-1)!.toFixed(0)} ms (${out.warm.script.at(-1)!.toFixed(0)})`)
      await context.close()
      context = undefined
    }
    return out
  } finally {
    await context?.close().catch(() => {})
    await hub.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The demo over plain http from a LAN name (not localhost): the page is not a secure context,
 * so it has no Web Locks (navigator.locks is undefined). Before: every tab took storage slot 0
 * and IndexedDbStorage.claim held nothing, so two tabs opened one replica, shared its clientId
 * and outbox, and one tab's commands were dropped as the other's retries. Now the page locks
 * over a BroadcastChannel (adapters/system/tab-locks.ts): each tab gets a slot of its own.
 * Real Chromium; the name resolves to 127.0.0.1 by a resolver rule, nothing leaves the machine.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { demoMachines } from "../apps/demo/machines.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

const WAIT_MS = 20_000
const until = pollerOf(WAIT_MS)
const NAME = "canon-lan.test"

let dir: string
let hub: RunningHub
let P: Profile

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  dir = mkdtempSync(join(tmpdir(), "canon-insecure-tabs-"))
  const assets = await buildDemo()
  // A port first, then the hub on it with the LAN name as its public URL (its pages are addressed to that name).
  const probe = parseConfig(["--data", join(dir, "probe"), "--port", "0"], {})
  if (probe === "help") throw new Error("unexpected")
  const first = await startHub(probe, demoMachines, demoPages(assets))
  const port = Number(new URL(first.url).port)
  await first.close()
  const config = parseConfig(["--data", join(dir, "data"), "--port", String(port), "--public-url", `http://${NAME}:${port}`], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(assets))
  P = await launchProfile({ args: [`--host-resolver-rules=MAP ${NAME} 127.0.0.1`] })
}, 90_000)

afterAll(async () => {
  await P?.close()
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

const open = async (): Promise<Page> => {
  const page = await P.context.newPage()
  page.on("pageerror", (e) => console.error(`page: ${e.message}`))
  await page.goto(`http://${NAME}:${new URL(hub.url).port}/#board=lan`, { timeout: WAIT_MS })
  await until("the board to open", () => page.evaluate(() => window.canon?.doc?.synced === true))
  return page
}

test("two tabs of a page without Web Locks get storage slots of their own, so each its own clientId", async () => {
  const a = await open()
  expect(await a.evaluate(() => ({ secure: isSecureContext, locks: "locks" in navigator }))).toEqual({ secure: false, locks: false })
  const b = await open()
  const [sa, sb] = await Promise.all([a, b].map((p) => p.evaluate(() => ({ slot: window.canon!.slot, client: window.canon!.client.clientId }))))
  expect(sa!.slot).toBeGreaterThanOrEqual(0)
  expect(sb!.slot).toBeGreaterThanOrEqual(0)
  expect(sa!.slot).not.toBe(sb!.slot)
  expect(sa!.client).not.toBe(sb!.client)
  // Both write, and both writes reach the hub.
  await Promise.all([a, b].map((p, i) => p.evaluate((n) => window.canon!.doc.submit("addCard", { id: `lan-${n}`, title: `From tab ${n}`, column: window.canon!.doc.state.columns[0]!, position: n }), i)))
  await until("both cards on both tabs, confirmed", async () =>
    (await Promise.all([a, b].map((p) => p.evaluate(() => window.canon!.doc.pendingCount === 0 && ["lan-0", "lan-1"].every((id) => id in window.canon!.doc.state.cards))))).every(Boolean),
  )
}, 90_000)

test("a tab busy for longer than the lock window (a long render) keeps its slot: its worker answers for it", async () => {
  // Before, the page answered another tab's ask itself: a tab in a long task let a new tab
  // take its slot after one window (300 ms), and both opened one replica.
  const a = await open()
  const slotA = await a.evaluate(() => window.canon!.slot)
  // A's long task starts (in a timer, so that evaluate returns); B opens meanwhile.
  await a.evaluate(() => void setTimeout(() => { const end = Date.now() + 4_000; while (Date.now() < end) { /* busy */ } }, 0))
  const b = await open()
  const slotB = await b.evaluate(() => window.canon!.slot)
  expect(slotB).not.toBe(slotA)
  await a.close()
  await b.close()
}, 90_000)

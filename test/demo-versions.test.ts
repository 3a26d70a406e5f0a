/**
 * The demo's card descriptions and board versions, in real Chromium (Debian's
 * /usr/bin/chromium through playwright-core) against a real hub (startHub on a temporary
 * LevelDB directory), two browser profiles (A and B), run in order:
 *
 * - two people type into one card's description at once, A offline for part of it: both end
 *   with the same text holding every keystroke, each person's run of keys unbroken (the caret
 *   of the one typing after the other's text is moved by the other's typing, never into it);
 * - a v1 tab (`?v=1`) beside a v2 tab: it follows the board through downcasts, is told
 *   "Update required: your 2 changes are kept" when a priority is set, and after the reload
 *   into v2 its offline changes are on the board, each once in the hub's log.
 *
 * Screenshots go to test/artifacts/ (git-ignored), or CANON_SHOTS when set.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { demoMachines } from "../apps/demo/machines.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile, pollerOf } from "./support/browser.js"

const SHOTS = process.env.CANON_SHOTS ?? join(process.cwd(), "test", "artifacts")
/** Upper bound of any one wait: generous for a loaded 2-core machine, still bounded. */
const WAIT_MS = 20_000

let dir: string
let hub: RunningHub | undefined
let base = ""
let A: Profile | undefined
let B: Profile | undefined
let pa: Page
let pb: Page

const until = pollerOf(WAIT_MS)

const open = async (page: Page, board: string, query = ""): Promise<void> => {
  await page.goto(`${base}/${query}#board=${board}`, { timeout: WAIT_MS })
  await until(`${board} to load and sync`, () => page.evaluate((b) => window.canon?.doc?.synced === true && window.canon.board === b, board))
}

const cardId = async (page: Page, title: string): Promise<string> => {
  let id: string | undefined
  await until(`a card "${title}"`, async () => {
    id = await page.evaluate((t) => Object.entries(window.canon!.doc.state.cards).find(([, c]) => c.title === t)?.[0], title)
    return id !== undefined
  })
  return id!
}

const addCard = async (page: Page, column: string, title: string): Promise<void> => {
  const input = page.locator(`input[aria-label="New card in ${column}"]`)
  await input.fill(title)
  await input.press("Enter")
}

const button = async (page: Page, id: string, action: string): Promise<void> => {
  await page.locator(`.card[data-id="${id}"]`).hover()
  await page.locator(`.card[data-id="${id}"] button[data-action="${action}"]`).click()
}

/** The board as rendered: column -> titles in order. */
const rendered = (page: Page): Promise<Record<string, string[]>> =>
  page.evaluate(() => {
    const out: Record<string, string[]> = {}
    for (const col of document.querySelectorAll<HTMLElement>("#board .column")) {
      out[col.dataset.column!] = [...col.querySelectorAll(".card .card-title")].map((t) => t.textContent ?? "")
    }
    return out
  })

const description = (page: Page): Promise<{ value: string; text: string; pending: number; synced: boolean }> =>
  page.evaluate(() => {
    const t = window.canonText!
    return {
      value: document.querySelector<HTMLTextAreaElement>("#details textarea")!.value,
      text: t.crdt.description.toString(),
      pending: t.pendingCount,
      synced: t.synced,
    }
  })

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  mkdirSync(SHOTS, { recursive: true })
  dir = mkdtempSync(join(tmpdir(), "canon-demo-versions-"))
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--host", "127.0.0.1"], {})
  if (config === "help") throw new Error("unexpected")
  hub = await startHub(config, demoMachines, demoPages(await buildDemo()))
  base = hub.url.replace(/\/$/, "")
  ;[A, B] = await Promise.all([launchProfile(), launchProfile()])
  pa = A.context.pages()[0] ?? (await A.context.newPage())
  pb = B.context.pages()[0] ?? (await B.context.newPage())
  for (const [page, who] of [[pa, "A"], [pb, "B"]] as const) page.on("pageerror", (e) => console.error(`page ${who}: ${e.message}`))
}, 60_000)

afterAll(async () => {
  await Promise.all([A?.close(), B?.close()])
  await hub?.close().catch(() => {})
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}, 30_000)

test("two people type into one card description at once, one offline for part of it: both end with the same text and every keystroke", async () => {
  await Promise.all([open(pa, "text"), open(pb, "text")])
  await addCard(pa, "To do", "Write the release notes")
  const id = await cardId(pb, "Write the release notes")
  await Promise.all([button(pa, id, "details"), button(pb, id, "details")])
  const areaA = pa.locator("#details textarea")
  const areaB = pb.locator("#details textarea")
  await until("both descriptions to open", async () => (await areaA.isEnabled()) && (await areaB.isEnabled()))
  // A replica that computes another state than the hub's says so with a desync: none may happen
  // (a bundled replica once refused every merge and desynced at nearly every checkpoint).
  const desyncs = (page: Page) => page.evaluate(() => (window as unknown as { desyncs: number[] }).desyncs)
  for (const page of [pa, pb]) {
    await page.evaluate(() => {
      const w = window as unknown as { desyncs: number[] }
      w.desyncs = []
      window.canonText!.on("desync", (d) => w.desyncs.push(d.seq))
    })
  }

  // A starts the text; then A types at its start while B types at its end, at the same time.
  await areaA.click()
  await pa.keyboard.type("~~")
  await until("B to see A's first keys", async () => (await areaB.inputValue()) === "~~")
  await pa.keyboard.press("Control+Home")
  await areaB.click()
  await pb.keyboard.press("Control+End")

  const a1 = "alpha one two "
  const a2 = "three four five "
  const b = "BRAVO SIX SEVEN EIGHT NINE TEN"
  const typeA = async () => {
    await pa.keyboard.type(a1, { delay: 25 })
    await A!.context.setOffline(true)
    await until("A to be offline", async () => (await pa.evaluate(() => window.canon!.client.status)) !== "online")
    await pa.keyboard.type(a2, { delay: 25 })
    // A's offline keys wait in its outbox while B goes on typing.
    await until("B to type on while A is offline", async () => (await areaB.inputValue()).includes(b.slice(0, 20)))
    expect((await description(pa)).pending).toBeGreaterThan(0)
    expect(await areaB.inputValue()).not.toContain("three")
    await pb.screenshot({ path: join(SHOTS, "demo-description-b-while-a-offline.png") })
    await pa.screenshot({ path: join(SHOTS, "demo-description-a-offline.png") })
    await A!.context.setOffline(false)
  }
  await Promise.all([typeA(), pb.keyboard.type(b, { delay: 35 })])

  const expected = `${a1}${a2}~~${b}`
  await until("both descriptions to converge", async () => {
    const [da, db] = await Promise.all([description(pa), description(pb)])
    return da.pending === 0 && db.pending === 0 && da.synced && db.synced && da.value === expected && db.value === expected && da.text === expected && db.text === expected
  }).catch(async (e: Error) => {
    throw new Error(`${e.message}; A ${JSON.stringify(await description(pa))}, B ${JSON.stringify(await description(pb))}, expected ${JSON.stringify(expected)}`)
  })
  // Each caret stayed in its own run of keys: A's at the end of A's text, B's at the very end.
  expect(await areaA.evaluate((el: HTMLTextAreaElement) => el.selectionStart)).toBe(a1.length + a2.length)
  expect(await areaB.evaluate((el: HTMLTextAreaElement) => el.selectionStart)).toBe(expected.length)
  await pa.screenshot({ path: join(SHOTS, "demo-description-converged.png") })
  expect([await desyncs(pa), await desyncs(pb)]).toEqual([[], []])

  // The text is the card's for good: closing and reopening the details shows it again.
  await pb.locator('#details button[aria-label="Close"]').click()
  await button(pb, id, "details")
  await until("B's reopened description", async () => (await areaB.isEnabled()) && (await areaB.inputValue()) === expected)
  await Promise.all([pa.locator('#details button[aria-label="Close"]').click(), pb.locator('#details button[aria-label="Close"]').click()])
}, 120_000)

test("a v1 tab beside a v2 tab: it follows through downcasts, is told an update is required, and its changes reach the board after the reload", async () => {
  await Promise.all([open(pa, "versions", "?v=1"), open(pb, "versions")])
  expect(await pa.evaluate(() => window.canon!.version)).toBe(1)
  expect(await pb.evaluate(() => window.canon!.version)).toBe(2)
  expect(await pa.locator(".app-version").textContent()).toBe("v1 app")

  // Side by side: v1's and v2's commands are the same, so each sees the other's at once.
  await addCard(pa, "To do", "From v1")
  await addCard(pb, "Doing", "From v2")
  const fromV1 = await cardId(pb, "From v1")
  const fromV2 = await cardId(pa, "From v2").catch(async (e: Error) => {
    throw new Error(`${e.message}; A: ${await pa.evaluate(() => JSON.stringify({ slot: window.canon!.slot, client: window.canon!.client.clientId, status: window.canon!.client.status, seq: window.canon!.doc.confirmedSeq, pending: window.canon!.doc.pendingCount, update: window.canon!.doc.updateRequired, toasts: document.querySelector("#toasts")?.textContent }))}`)
  })
  await button(pb, fromV1, "right")
  await until("both tabs to show the same board", async () => {
    const [ra, rb] = await Promise.all([rendered(pa), rendered(pb)])
    return JSON.stringify(ra) === JSON.stringify(rb) && JSON.stringify(ra) === JSON.stringify({ "To do": [], "Doing": ["From v2", "From v1"], "Done": [] })
  })
  // Only v2 has priorities.
  expect(await pa.locator(`.card[data-id="${fromV1}"] button[data-action="priority"]`).count()).toBe(0)
  expect(await pb.locator(`.card[data-id="${fromV1}"] button[data-action="priority"]`).count()).toBe(1)
  await pa.screenshot({ path: join(SHOTS, "demo-versions-v1-beside-v2.png") })

  // The v1 tab makes two changes offline while the v2 tab sets a priority v1 cannot show.
  await A!.context.setOffline(true)
  await until("A to be offline", async () => (await pa.evaluate(() => window.canon!.client.status)) !== "online")
  await addCard(pa, "Done", "Offline in v1")
  await pa.locator(`.card[data-id="${fromV2}"] .card-title`).dblclick()
  await pa.locator(`.card[data-id="${fromV2}"] input.card-title-input`).fill("Renamed in v1")
  await pa.locator(`.card[data-id="${fromV2}"] input.card-title-input`).press("Enter")
  await until("A to hold two changes", async () => (await pa.evaluate(() => window.canon!.doc.pendingCount)) === 2)
  await button(pb, fromV1, "priority")
  await until("B to show the priority", async () => (await pb.locator(`.card[data-id="${fromV1}"] .priority-tag`).textContent()) === "low")
  await pb.screenshot({ path: join(SHOTS, "demo-versions-v2-priority.png") })

  await A!.context.setOffline(false)
  const banner = pa.locator("#update-required")
  await until("A to be told an update is required", async () => (await banner.count()) === 1)
  expect(await banner.textContent()).toMatch(/^Update required: your 2 changes are kept\./)
  expect(await pa.locator("#status").evaluate((el: HTMLElement) => [el.dataset.state, el.textContent])).toEqual(["update-required", "Update required · 2 changes kept on this device"])
  // Read-only now: an edit is refused and the board is as it was.
  await addCard(pa, "To do", "Refused in v1")
  await until("A to say why", async () => /reload with the new version/.test((await pa.locator("#toasts").textContent()) ?? ""))
  expect(await pa.evaluate(() => window.canon!.doc.pendingCount)).toBe(2)
  await pa.screenshot({ path: join(SHOTS, "demo-versions-update-required.png") })

  // The reload runs v2 on the same storage: the v1 outbox is sent (applied once) and the priority shows.
  await banner.locator("button").click()
  await until("A to run v2, synced, nothing pending", () => pa.evaluate(() => window.canon?.version === 2 && window.canon.board === "versions" && window.canon.doc.synced && window.canon.doc.pendingCount === 0))
  expect(new URL(pa.url()).search).toBe("")
  const board = { "To do": [], "Doing": ["Renamed in v1", "From v1"], "Done": ["Offline in v1"] }
  await until("both tabs to show every change", async () => {
    const [ra, rb] = await Promise.all([rendered(pa), rendered(pb)])
    return JSON.stringify(ra) === JSON.stringify(board) && JSON.stringify(rb) === JSON.stringify(board)
  })
  expect(await pa.locator(`.card[data-id="${fromV1}"] .priority-tag`).textContent()).toBe("low")
  expect(await pa.locator("#update-required").count()).toBe(0)
  expect(await pa.locator("#status").getAttribute("data-state")).toBe("online")
  const log = (await (await fetch(`${base}/api/log?doc=board/versions&limit=100`)).json()) as { head: { version: number }; entries: Array<{ name: string; args: { title?: string; args?: { title?: string } } }> }
  expect(log.head.version).toBe(2)
  // A command sent by the v2 app from the v1 outbox is a `$as` (its v1 form inside).
  const named = (title: string) => log.entries.filter((e) => (e.args.title ?? e.args.args?.title) === title).length
  expect([named("Offline in v1"), named("Renamed in v1"), named("Refused in v1")]).toEqual([1, 1, 0])
  await pa.screenshot({ path: join(SHOTS, "demo-versions-after-reload.png") })
}, 120_000)

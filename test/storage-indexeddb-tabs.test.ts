/**
 * One replica per IndexedDB store across tabs, in real Chromium: a client opened on a store
 * another tab has a client open on is refused `storage-in-use` (the store's Web Lock, taken by
 * CanonClient.open through `claim`), and gets it once that tab closes its client or itself;
 * canon/indexeddb and canon/level's browser build take the same lock for the same data.
 * Without it both tabs shared one clientId, and the hub dropped one tab's commands as the
 * other's retries (test/client-storage-claim.test.ts shows the loss in Node).
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as esbuild from "esbuild"
import type { Page } from "playwright-core"
import { CHROMIUM, chromiumAvailable, launchProfile, type Profile } from "./support/browser.js"
import { EVENTS_SHIM } from "../bench/bundle-measure.js"

let server: Server
let origin: string
let profile: Profile

beforeAll(async () => {
  if (!chromiumAvailable()) throw new Error(`No Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does), or set CANON_CHROMIUM.`)
  const built = await esbuild.build({
    entryPoints: [new URL("./support/tabs-page.ts", import.meta.url).pathname],
    bundle: true, format: "esm", platform: "browser", write: false, logLevel: "silent", conditions: ["canon-source", "module"],
    // canon/level's browser build (abstract-level) imports Node's `events`: the demo's shim.
    alias: EVENTS_SHIM,
  })
  const script = built.outputFiles[0]!.contents
  server = createServer((req, res) => {
    if (req.url === "/page.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script)
    // `?open=<store>`: the page opens its replica as soon as it runs, as an app does.
    else res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script type="module">import "/page.js"; const open = new URLSearchParams(location.search).get("open"); if (open) window.opened = window.openReplica(open)</script>')
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  profile = await launchProfile()
}, 60_000)

afterAll(async () => {
  await profile?.close()
  await new Promise((resolve) => server?.close(resolve))
})

const tab = async (): Promise<Page> => {
  const page = await profile.context.newPage()
  await page.goto(`${origin}/`)
  await page.waitForFunction(() => "openReplica" in window, undefined, { timeout: 20_000 })
  return page
}

const open = (page: Page, name: string, adapter: "indexeddb" | "level" = "indexeddb"): Promise<string> =>
  page.evaluate(([n, a]) => (window as unknown as { openReplica(n: string, a: string): Promise<string> }).openReplica(n, a), [name, adapter] as const)

/** Waits (bounded) until the browser has let go of a closed tab's locks: it does so a moment after the tab is gone. */
const letGo = async (page: Page, store: string): Promise<void> => {
  await page.waitForFunction(async (name) => {
    const { held } = await (navigator as unknown as { locks: { query(): Promise<{ held: Array<{ name: string }> }> } }).locks.query()
    return !held.some((l) => l.name === `canon:level-js-${name}`)
  }, store, { timeout: 10_000, polling: 50 })
}

test("a second tab opening a client on the same store is refused storage-in-use until the first lets go", async () => {
  const [one, two] = await Promise.all([tab(), tab()])
  const id = await open(one, "board")
  expect(id).toMatch(/^c\.[0-9a-v]{16}$/)
  expect(await open(two, "board")).toBe("error storage-in-use")
  // Another store is another replica: fine in the same tab set.
  expect(await open(two, "notes")).toMatch(/^c\.[0-9a-v]{16}$/)
  // The first tab closes its client: the store is free, and it is the same replica.
  await one.evaluate(() => (window as unknown as { closeReplica(): Promise<void> }).closeReplica())
  const three = await tab()
  expect(await open(three, "board")).toBe(id)
  // A tab that goes away lets go too (the browser releases its locks).
  await three.close()
  await letGo(one, "board")
  expect(await open(one, "board")).toBe(id)
}, 60_000)

test("canon/level's browser build holds the same lock: a tab on it and a tab on canon/indexeddb never share one store", async () => {
  const [one, two] = await Promise.all([tab(), tab()])
  const id = await open(one, "shared", "level")
  expect(id).toMatch(/^c\.[0-9a-v]{16}$/)
  expect(await open(two, "shared", "indexeddb")).toBe("error storage-in-use")
  expect(await open(two, "shared", "level")).toBe("error storage-in-use")
  await one.close()
  await letGo(two, "shared")
  // Same data through the other adapter: the same replica.
  expect(await open(two, "shared", "indexeddb")).toBe(id)
}, 60_000)

test("a tab reloaded again and again opens its replica each time (the old page's lock is waited for, not refused)", async () => {
  const page = await profile.context.newPage()
  const opened = async () => {
    await page.waitForFunction(() => "opened" in window, undefined, { timeout: 20_000 })
    return page.evaluate(() => (window as unknown as { opened: Promise<string> }).opened)
  }
  await page.goto(`${origin}/?open=reloaded`)
  const results = [await opened()]
  for (let i = 0; i < 8; i++) {
    await page.reload()
    results.push(await opened())
  }
  expect(new Set(results)).toEqual(new Set([results[0]]))
  expect(results[0]).toMatch(/^c\.[0-9a-v]{16}$/)
}, 120_000)

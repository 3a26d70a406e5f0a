/**
 * The demo's files named by the build's `?v=` (app.js, its map, styles.css, icon.svg, the
 * manifest) are immutable under the current version's URL only (apps/demo/pages.ts). Before:
 * every URL of them was marked immutable for a year, so /app.js (or an older build's
 * ?v=) cached today's content under a name the next build serves other content at.
 */
import http from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { demoMachines } from "../apps/demo/machines.js"
import { buildDemo } from "../apps/demo/build.js"
import { demoPages } from "../apps/demo/pages.js"

let dir: string
let hub: RunningHub
let assets: Awaited<ReturnType<typeof buildDemo>>

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "canon-pages-cache-"))
  assets = await buildDemo()
  hub = await startHub(parseConfig(["--data", join(dir, "data"), "--port", "0", "--no-sync"], {}) as HubConfig, demoMachines, demoPages(assets))
}, 60_000)
afterAll(async () => {
  await hub?.close()
  rmSync(dir, { recursive: true, force: true })
})

const cacheOf = (path: string) =>
  new Promise<string>((resolve, reject) => {
    http.get(`${hub.url}${path}`, (res) => {
      res.resume()
      resolve(`${res.statusCode} ${res.headers["cache-control"]}`)
    }).on("error", reject)
  })

test("a ?v= file is immutable under the current version only; content-named chunks always; the page is revalidated", async () => {
  const v = assets.version
  for (const f of ["/app.js", "/app.js.map", "/styles.css", "/icon.svg", "/manifest.webmanifest"]) {
    expect([f, await cacheOf(`${f}?v=${v}`)]).toEqual([f, "200 public, max-age=31536000, immutable"])
    expect([f, await cacheOf(f)]).toEqual([f, "200 no-cache"])
    expect([f, await cacheOf(`${f}?v=0123456789ab`)]).toEqual([f, "200 no-cache"])
  }
  const chunk = assets.scripts.later[0] ?? assets.scripts.first[1]
  expect(chunk).toBeDefined()
  expect(await cacheOf(chunk!)).toBe("200 public, max-age=31536000, immutable")
  expect(await cacheOf("/")).toBe("200 no-cache")
})

/**
 * `HEAD /status` on `npm start` answers 404 while `GET /status` answers 200.
 *
 * apps/demo/pages.ts lets GET and HEAD through and hands `/status` to statusPage
 * (apps/hub/status-page.ts), which returns false for any method but GET; the hub then answers
 * 404 "Not found.". Uptime checkers and load balancers that probe with HEAD see the hub as
 * missing. Every other page of the demo (/, /app.js, /api/log) answers HEAD.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { statusPage } from "../apps/hub/status-page.js"
import { demoPages } from "../apps/demo/pages.js"
import type { DemoAssets } from "../apps/demo/build.js"
import { Board } from "../apps/demo/board.js"

let dir: string
const running: RunningHub[] = []
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-attack-head-")) })
afterEach(async () => {
  for (const r of running.splice(0)) await r.close().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

const NO_ASSETS: DemoAssets = { files: new Map(), version: "x", scripts: { first: [], later: [] }, buildMs: 0 }

test("HEAD /status answers like GET /status, without a body", async () => {
  for (const [name, pages] of [["demo", demoPages(NO_ASSETS)], ["status page alone", statusPage]] as const) {
    const config = parseConfig(["--data", join(dir, name), "--port", "0"], {}) as HubConfig
    const hub = await startHub(config, [Board], pages)
    running.push(hub)
    const get = await fetch(`${hub.url}/status`)
    expect(get.status).toBe(200)
    const head = await fetch(`${hub.url}/status`, { method: "HEAD" })
    expect({ name, status: head.status, type: head.headers.get("content-type") }).toEqual({ name, status: 200, type: get.headers.get("content-type") })
  }
})

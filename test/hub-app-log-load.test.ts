/**
 * The demo's log API (`GET /api/log`, apps/demo/log-api.ts) reads the store and nothing
 * else: it once asked the hub for the document's authority to learn its compaction horizon,
 * which loaded and replayed the document for any anonymous HTTP caller (an attacker rotating
 * over three 8 MB boards past the idle bound made every GET a reload: 216 ms each, the hub at
 * 68% CPU). Now the horizon comes from the store, and a GET leaves the hub's documents as
 * they were.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient } from "../core/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { demoPages } from "../apps/demo/pages.js"
import type { DemoAssets } from "../apps/demo/build.js"
import { Board } from "../apps/demo/board.js"

let dir: string
let running: RunningHub | undefined
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-log-load-")) })
afterEach(async () => {
  await running?.close().catch(() => {})
  running = undefined
  rmSync(dir, { recursive: true, force: true })
})

const NO_ASSETS: DemoAssets = { files: new Map(), version: "x", scripts: { first: [], later: [] }, buildMs: 0 }

test("GET /api/log of a board nobody follows does not load it into the hub, and reports the stored horizon", async () => {
  const start = async () => {
    const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--no-sync"], {}) as HubConfig
    running = await startHub(config, [Board], demoPages(NO_ASSETS))
    return running
  }
  let hub = await start()
  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, machines: [Board] })
  const doc = await client.open(Board, "board/quiet")
  for (let i = 0; i < 5; i++) await doc.submit("addCard", { id: `c${i}`, title: "t", column: "To do", position: i })
  await client.close()
  await hub.close()
  // A fresh hub process: nothing loaded.
  hub = await start()
  expect(hub.hub.stats().documents).toBe(0)
  const res = await fetch(`${hub.url}/api/log?doc=board/quiet&limit=10`)
  expect(res.status).toBe(200)
  const view = await res.json() as { head: { seq: number }; compactedThrough: number; entries: Array<{ seq: number }> }
  expect(view.head.seq).toBe(5)
  expect(view.compactedThrough).toBe(0)
  expect(view.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
  expect(hub.hub.stats().documents).toBe(0)
}, 60_000)

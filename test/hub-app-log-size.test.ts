/**
 * the demo's log API (`GET /api/log?doc=board/NAME&limit=N`, apps/demo/log-api.ts) is
 * bounded by entries (500), not by bytes. A command's arguments may be up to 256 KiB
 * (DEFAULT_MAX_COMMAND_BYTES), and the board's `id` and `column` strings are unbounded, so
 * anyone who may write a board (everyone, on the demo hub) can store entries of ~250 KB each;
 * every anonymous GET then reads them all, builds one JSON string of them synchronously and
 * holds it: measured here, 500 such entries gave an 81 MB response, a 0.7 s stall of the event
 * loop (every WebSocket client of the hub waits) and +340 MB RSS per request; 10 concurrent
 * requests stalled the hub past the 10 s request deadline. Binary arguments (a CRDT field's
 * update, e.g. a `card-text` document named `board/x`) are worse: JSON.stringify writes a
 * Uint8Array as {"0":1,"1":1,...}, ~7 bytes per byte.
 *
 * What the devtools show of an entry is one table row; the page needs the recent entries, not
 * their megabytes. Right behaviour: the response has a byte budget (arguments cut to a preview),
 * and still names the newest entry.
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
let client: CanonClient | undefined
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-attack-log-")) })
afterEach(async () => {
  await client?.close().catch(() => {})
  await running?.close().catch(() => {})
  client = undefined
  running = undefined
  rmSync(dir, { recursive: true, force: true })
})

const NO_ASSETS: DemoAssets = { files: new Map(), version: "x", scripts: { first: [], later: [] }, buildMs: 0 }
const BUDGET = 2 << 20

test("GET /api/log answers within a byte budget however large the stored arguments are", async () => {
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--no-sync"], {}) as HubConfig
  running = await startHub(config, [Board], demoPages(NO_ASSETS))
  client = await CanonClient.open({ transport: wsClientTransport(running.syncUrl), runtime: systemRuntime, machines: [Board] })
  const doc = await client.open(Board, "board/big")
  const N = 20
  for (let i = 0; i < N; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => doc.submit("addCard", { id: `${i + j}-${"x".repeat(240_000)}`, title: "t", column: "To do", position: i + j })))
  }
  const res = await fetch(`${running.url}/api/log?doc=board/big&limit=500`)
  const body = Buffer.from(await res.arrayBuffer())
  expect(res.status === 200 ? 200 : body.toString().slice(0, 300)).toBe(200)
  // ~4.8 MB today for 20 entries (81 MB for 500).
  expect(body.length).toBeLessThanOrEqual(BUDGET)
  const view = JSON.parse(body.toString()) as { head: { seq: number }; entries: Array<{ seq: number }> }
  expect(view.head.seq).toBe(N)
  expect(view.entries.at(-1)?.seq).toBe(N)
}, 60_000)

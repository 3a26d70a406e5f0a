/**
 * The demo's log API (apps/demo/log-api.ts) bounds its work, not only its answer. An attack
 * review measured, on a board of 381 entries of 250 KB each: one anonymous GET with limit=500
 * read about 95 MB from the store and JSON.stringify'd every argument whole to show 1 KiB of
 * it (650-840 ms); 10 at once took the hub from 826 to 2,455 MiB, 30 at once to its heap limit.
 * Now an answer reads newest entries a page at a time until MAX_READ_BYTES, previews are
 * written only as far as they are shown, at most MAX_CONCURRENT answers are prepared at once
 * (503 with Retry-After past that), and only the checkpoints shown are read.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type http from "node:http"
import { CanonClient, type KVStore } from "../core/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type PageHandler, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { MAX_ARGS_CHARS, MAX_CONCURRENT, MAX_READ_BYTES, logApi, previewArgs } from "../apps/demo/log-api.js"
import { requestUrl } from "../apps/hub/request-url.js"
import { Board } from "../apps/demo/board.js"

let dir: string
let running: RunningHub | undefined
let client: CanonClient | undefined
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-log-read-")) })
afterEach(async () => {
  await client?.close().catch(() => {})
  await running?.close().catch(() => {})
  client = undefined
  running = undefined
  rmSync(dir, { recursive: true, force: true })
})

/** What the log API reads through: counted, and optionally slowed. */
const watched = (inner: KVStore, delayMs = 0) => {
  const seen = { bytes: 0, rows: 0 }
  const store: KVStore = {
    get: (k) => inner.get(k),
    batch: (ops, o) => inner.batch(ops, o),
    close: () => inner.close(),
    range: async (o) => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
      const rows = await inner.range(o)
      for (const [k, v] of rows) (seen.bytes += k.length + v.length), seen.rows++
      return rows
    },
  }
  return { store, seen }
}

/** A hub serving only /api/log, through `wrap` of its storage. */
const hubWithLog = async (wrap: (s: KVStore) => KVStore): Promise<RunningHub> => {
  const pages: PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, _hub, storage?: KVStore) => {
    const url = requestUrl(req)
    if (url?.pathname !== "/api/log" || storage === undefined) return false
    void logApi(url, res, wrap(storage))
    return true
  }
  const config = parseConfig(["--data", join(dir, "data"), "--port", "0", "--no-sync"], {}) as HubConfig
  return startHub(config, [Board], pages)
}

const BIG = 240_000

test("an answer reads the newest entries until its read budget, however many were asked for", async () => {
  let seen = { bytes: 0, rows: 0 }
  running = await hubWithLog((s) => {
    const w = watched(s)
    seen = w.seen
    return w.store
  })
  client = await CanonClient.open({ transport: wsClientTransport(running.syncUrl), runtime: systemRuntime, machines: [Board] })
  const doc = await client.open(Board, "board/big")
  const N = 40
  for (let i = 0; i < N; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => doc.submit("addCard", { id: `${i + j}-${"x".repeat(BIG)}`, title: "t", column: "To do", position: i + j })))
  }
  const res = await fetch(`${running.url}/api/log?doc=board/big&limit=500`)
  expect(res.status).toBe(200)
  const view = (await res.json()) as { head: { seq: number }; entries: Array<{ seq: number; args: { preview?: string; cut?: boolean } }> }
  // All 40 (9.6 MB) were read before; now the newest, to the budget and at most a page past it.
  expect(seen.bytes).toBeLessThanOrEqual(MAX_READ_BYTES + 8 * (BIG + 1_000))
  expect(seen.bytes).toBeLessThan(N * BIG)
  expect(view.head.seq).toBe(N)
  expect(view.entries.at(-1)!.seq).toBe(N)
  expect(view.entries.length).toBeGreaterThan(0)
  expect(view.entries.length).toBeLessThan(N)
  // Consecutive, newest last.
  view.entries.forEach((e, i) => expect(e.seq).toBe(N - view.entries.length + 1 + i))
  for (const e of view.entries) expect(e.args).toEqual({ preview: expect.any(String), cut: true })
  expect(view.entries[0]!.args.preview!.length).toBe(MAX_ARGS_CHARS)
}, 60_000)

test(`at most ${MAX_CONCURRENT} answers are prepared at once; one more is told to retry (503)`, async () => {
  running = await hubWithLog((s) => watched(s, 300).store)
  client = await CanonClient.open({ transport: wsClientTransport(running.syncUrl), runtime: systemRuntime, machines: [Board] })
  const doc = await client.open(Board, "board/b")
  await doc.submit("addCard", { id: "c", title: "t", column: "To do", position: 1 })
  const answers = await Promise.all(Array.from({ length: MAX_CONCURRENT + 1 }, () => fetch(`${running!.url}/api/log?doc=board/b`)))
  const statuses = answers.map((r) => r.status).sort()
  expect(statuses).toEqual([...Array<number>(MAX_CONCURRENT).fill(200), 503])
  expect(answers.find((r) => r.status === 503)!.headers.get("retry-after")).toBe("1")
  // And once they are done, the next is answered.
  expect((await fetch(`${running.url}/api/log?doc=board/b`)).status).toBe(200)
}, 60_000)

describe("previewArgs", () => {
  test("small arguments as they are, bytes as their size, undefined left out", () => {
    expect(previewArgs({ id: "a", n: 1, list: [1, "x", null], nested: { ok: true }, gone: undefined })).toEqual({ id: "a", n: 1, list: [1, "x", null], nested: { ok: true } })
    expect(previewArgs({ update: new Uint8Array(5000) })).toEqual({ update: { bytes: 5000 } })
  })

  test("long ones are cut at MAX_ARGS_CHARS, whatever is long (a string, a key, many items)", () => {
    const cases: unknown[] = [{ id: "x".repeat(250_000) }, { ["k".repeat(10_000)]: 1 }, Array.from({ length: 50_000 }, (_, i) => i), { a: { b: { c: "é😀".repeat(2_000) } } }]
    for (const args of cases) {
      const p = previewArgs(args) as { preview: string; cut: boolean }
      expect(p.cut).toBe(true)
      expect(p.preview.length).toBe(MAX_ARGS_CHARS)
      expect(JSON.stringify(args, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: v.length } : v)).startsWith(p.preview)).toBe(true)
    }
  })
})

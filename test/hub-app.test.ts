/**
 * The hub app (`npm start`): LevelDB on disk + WebSocket on loopback + the Board machine,
 * end to end, including a restart on the same data directory and clear startup errors.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient } from "../core/index.js"
import { encodeCanonical } from "../core/canonical.js"
import { WebSocket } from "ws"
import { wsClientTransport } from "../adapters/ws/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { statusPage } from "../apps/hub/status-page.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { Board } from "../apps/demo/board.js"

let dir: string
const running: RunningHub[] = []
const clients: CanonClient[] = []

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-hub-")) })
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  for (const r of running.splice(0)) await r.close().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

const start = async (port = 0) => {
  const config = parseConfig(["--data", join(dir, "data"), "--port", String(port)], {})
  if (config === "help") throw new Error("unexpected")
  const r = await startHub(config, [Board], statusPage)
  running.push(r)
  return r
}

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out")
    await new Promise((r) => setTimeout(r, 10))
  }
}

test("serves the status page and syncs a board over WebSocket; the board survives a restart", async () => {
  const hub = await start()
  const page = await fetch(hub.url)
  expect(page.status).toBe(200)
  expect(await page.text()).toContain("Canon hub")

  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, machines: [Board] })
  clients.push(client)
  const doc = await client.open(Board, "team")
  await doc.submit("addCard", { id: "c1", title: "Write tests", column: "To do", position: 1 })
  await doc.submit("moveCard", { id: "c1", column: "Doing", position: 1 })
  await expect(doc.submit("moveCard", { id: "nope", column: "Doing", position: 2 })).rejects.toMatchObject({ code: "rejected", message: "This card was deleted by someone else." })
  const hash = doc.confirmedHash()
  await client.close()
  clients.pop()
  const port = Number(new URL(hub.url).port)
  await running.pop()!.close()

  const again = await start(port)
  const c2 = await CanonClient.open({ transport: wsClientTransport(again.syncUrl), runtime: systemRuntime, machines: [Board] })
  clients.push(c2)
  const d2 = await c2.open(Board, "team")
  await until(() => d2.synced)
  expect(d2.state.cards["c1"]?.column).toBe("Doing")
  expect(d2.confirmedSeq).toBe(2)
  expect(d2.confirmedHash()).toBe(hash)
})

test("a port in use and a locked data directory are clear errors", async () => {
  const hub = await start()
  const port = Number(new URL(hub.url).port)
  const other = join(dir, "other")
  const busy = parseConfig(["--data", other, "--port", String(port)], {})
  await expect(startHub(busy as never, [Board], statusPage)).rejects.toThrow(/Port \d+ on 127.0.0.1 is in use/)
  const locked = parseConfig(["--data", join(dir, "data"), "--port", "0"], {})
  await expect(startHub(locked as never, [Board], statusPage)).rejects.toThrow(/in use/)
})

test("bad flags are explained", () => {
  expect(() => parseConfig(["--port", "http"], {})).toThrow(/not a port number/)
  expect(() => parseConfig(["--colour", "red"], {})).toThrow(/Unknown option --colour/)
  expect(parseConfig([], { CANON_PORT: "9000", CANON_DATA: "/x" })).toMatchObject({ port: 9000, dataDir: "/x", host: "127.0.0.1" })
})

const config = (argv: string[]): HubConfig => {
  const c = parseConfig(argv, {})
  if (c === "help") throw new Error("unexpected")
  return c
}

test("a busy port leaves no data directory behind, however deep; a start that fails later removes only what it created", async () => {
  const hub = await start()
  const port = Number(new URL(hub.url).port)
  const deep = join(dir, "a", "b", "data")
  await expect(startHub(config(["--data", deep, "--port", String(port)]), [Board], statusPage)).rejects.toThrow(/Port \d+ on 127.0.0.1 is in use/)
  expect(existsSync(join(dir, "a"))).toBe(false)
  // Fails after the store was created (a WsServer option no flag would let through).
  const bad = { ...config(["--data", deep, "--port", "0"]), trustProxy: ["not-an-address"] }
  await expect(startHub(bad, [Board], statusPage)).rejects.toThrow(/not an IP address/)
  expect(existsSync(join(dir, "a"))).toBe(false)
  // A directory that was there before is left alone.
  const mine = join(dir, "mine")
  mkdirSync(mine)
  await expect(startHub({ ...bad, dataDir: mine }, [Board], statusPage)).rejects.toThrow(/not an IP address/)
  expect(existsSync(mine)).toBe(true)
})

test("the store is opened with fsync on by default, and without it under --no-sync", async () => {
  const calls: unknown[] = []
  const original = LevelStorage.open
  ;(LevelStorage as { open: unknown }).open = (...args: unknown[]) => {
    calls.push(args[1])
    return (original as (...a: unknown[]) => unknown).apply(LevelStorage, args)
  }
  try {
    const durable = await startHub(config(["--data", join(dir, "d1"), "--port", "0"]), [Board], statusPage)
    running.push(durable)
    const fast = await startHub(config(["--data", join(dir, "d2"), "--port", "0", "--no-sync"]), [Board], statusPage)
    running.push(fast)
  } finally {
    ;(LevelStorage as { open: unknown }).open = original
  }
  expect(calls).toEqual([{ sync: true }, { sync: false }])
})

test("--max-connections-per-address reaches the hub's WebSocket endpoint: the extra socket gets 429", async () => {
  const r = await startHub(config(["--data", join(dir, "data"), "--port", "0", "--max-connections-per-address", "2"]), [Board], statusPage)
  running.push(r)
  const attempt = () => new Promise<number>((resolve) => {
    const ws = new WebSocket(r.syncUrl)
    sockets.push(ws)
    ws.on("error", () => {})
    ws.once("open", () => resolve(101))
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
  })
  expect([await attempt(), await attempt(), await attempt()]).toEqual([101, 101, 429])
})

const sockets: WebSocket[] = []
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate()
})

test("the hub also serves whole Yjs documents to stock y-websocket clients on /yjs, kept across a restart", async () => {
  const Y = await import("yjs")
  const { WebsocketProvider } = await import("y-websocket")
  const hub = await start()
  expect(hub.crdt).toEqual({ paths: ["/yjs", "/automerge"] })
  const base = hub.url.replace(/^http/, "ws") + "/yjs"
  // Providers and docs are destroyed at the end: a Y.Doc's awareness keeps an interval.
  const providers: Array<{ destroy(): void }> = []
  const join = (room: string) => {
    const doc = new Y.Doc()
    const p = new WebsocketProvider(base, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
    providers.push(p, doc)
    return { doc, p }
  }
  try {
    const a = join("notes")
    const b = join("notes")
    a.doc.getText("t").insert(0, "hello from a")
    await until(() => b.doc.getText("t").toString() === "hello from a", 10_000)
    b.doc.getText("t").insert(0, "b says: ")
    await until(() => a.doc.getText("t").toString() === "b says: hello from a", 10_000)
    for (const p of providers.splice(0)) p.destroy()
    const port = Number(new URL(hub.url).port)
    await running.pop()!.close()
    const again = await start(port)
    const c = new Y.Doc()
    providers.push(c)
    providers.unshift(new WebsocketProvider(again.url.replace(/^http/, "ws") + "/yjs", "notes", c, { WebSocketPolyfill: WebSocket as never, disableBc: true }))
    await until(() => c.getText("t").toString() === "b says: hello from a", 10_000)
  } finally {
    for (const p of providers) p.destroy()
  }
}, 60_000)

test("--max-unsent-mib reaches the hub's WebSocket server (default 256 MiB)", async () => {
  const set = await startHub(config(["--data", join(dir, "unsent"), "--port", "0", "--max-unsent-mib", "12"]), [Board], statusPage)
  running.push(set)
  expect(set.unsentBytes()).toEqual({ held: 0, limit: 12 * 2 ** 20, cuts: 0 })
  const byDefault = await startHub(config(["--data", join(dir, "unsent-default"), "--port", "0"]), [Board], statusPage)
  running.push(byDefault)
  expect(byDefault.unsentBytes().limit).toBe(256 * 2 ** 20)
})

test("--max-document-mib reaches the hub: a board is filled to 1 MiB and no further, over the real socket and LevelDB", async () => {
  const r = await startHub(config(["--data", join(dir, "data"), "--port", "0", "--max-document-mib", "1"]), [Board], statusPage)
  running.push(r)
  const client = await CanonClient.open({ transport: wsClientTransport(r.syncUrl), runtime: systemRuntime, machines: [Board] })
  clients.push(client)
  const doc = await client.open(Board, "full")
  const outcomes: string[] = []
  // 1,000 cards of 200 characters a command: some 250 KiB each, so the fifth cannot fit.
  for (let c = 0; c < 6 && !outcomes.includes("command-too-large"); c++) {
    const cards = Array.from({ length: 1000 }, (_, i) => ({ id: `c${c}-${i}`, title: String(i % 10).repeat(200), column: "To do", position: i }))
    outcomes.push(await doc.submit("addCards", { cards }).then(() => "ok", (e: { code: string }) => e.code))
  }
  expect(outcomes.slice(0, 3)).toEqual(["ok", "ok", "ok"])
  expect(outcomes.at(-1)).toBe("command-too-large")
  const authority = await r.hub.doc("full", Board)
  expect(encodeCanonical(authority.state).length).toBeLessThanOrEqual(1 << 20)
})

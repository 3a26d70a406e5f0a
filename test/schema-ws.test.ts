/**
 * Schema evolution over real WebSocket and LevelDB on disk: a v1 app with a pending outbox
 * against a v2 hub without downcasts (update-required, outbox kept and applied), a v2 app
 * beside it, then the v1 app's store reopened by v2 code (migrated, nothing applied twice),
 * and the hub itself upgraded from v1 to v2 on its LevelDB store (the change in the log).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient, Hub } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { AuthorityStore } from "../core/store/authority-store.js"
import { historyOf } from "../core/schema/versions.js"
import { TodoV1, TodoV2NoDown } from "./support/versioned-machines.js"
import { until } from "./support/ws.js"

// These tests read the whole log back: no compaction (a small log is compacted behind
// its first snapshot otherwise).
const KEEP_LOG = { tailBytes: Infinity }

const DOC = "board"
const V1 = historyOf(TodoV2NoDown)!.at(1)
let dir: string
let cleanup: Array<() => Promise<unknown> | unknown> = []
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-schema-")) })
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
  rmSync(dir, { recursive: true, force: true })
})

const startHub = async (machine: typeof TodoV1 | typeof TodoV2NoDown) => {
  const storage = await LevelStorage.open(join(dir, "hub"))
  const hub = new Hub({ machines: [machine], storage, runtime: systemRuntime , snapshots: KEEP_LOG })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const stop = async () => {
    await server.close()
    await hub.close()
    await storage.close()
  }
  return { hub, server, url: server.urls()[0]!, stop }
}

const openClient = async (url: string, name: string, clientId: string) => {
  const storage = await LevelStorage.open(join(dir, name))
  const client = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, storage, clientId, backoff: { baseMs: 10, maxMs: 100 } })
  return { client, storage, close: async () => { await client.close(); await storage.close() } }
}

test("ws + LevelDB: a hub upgraded in its log, a v1 app made read-only by a v2 change, then upgraded with its outbox", async () => {
  // A v1 hub with a v1 app.
  let h = await startHub(TodoV1)
  cleanup.push(() => h.stop())
  let old = await openClient(h.url, "old", "old")
  let d1 = await old.client.open(V1, DOC)
  d1.submit("add", { id: "a", title: "A" })
  expect(await until(() => d1.pendingCount === 0 && d1.confirmedSeq === 1, 5000)).toBe(true)
  await old.close()
  await h.stop()
  cleanup = []

  // The hub restarts on v2: the change is entry 2 of the log.
  h = await startHub(TodoV2NoDown)
  cleanup.push(h.stop)
  const hubDoc = await h.hub.doc(DOC, TodoV2NoDown)
  expect(hubDoc.headSeq).toBe(2)
  expect(hubDoc.state.items.a).toEqual({ title: "A", done: false, priority: 0 })

  // The v1 app comes back with commands written offline, beside a v2 app.
  old = await openClient(h.url, "old", "old")
  old.client.disconnect()
  d1 = await old.client.open(V1, DOC)
  d1.submit("toggle", { id: "a" })
  d1.submit("addDone", { id: "b", title: "B" })
  await d1.whenStored()
  const fresh = await openClient(h.url, "fresh", "fresh")
  cleanup.push(fresh.close)
  const d2 = await fresh.client.open(TodoV2NoDown, DOC)
  d2.submit("add", { id: "c", title: "C", priority: 3 }) // no downcast: v1 cannot show it
  expect(await until(() => d2.pendingCount === 0, 5000)).toBe(true)
  const updates: number[] = []
  d1.on("updateRequired", (e) => updates.push(e.seq))
  old.client.connect()
  expect(await until(() => updates.length > 0 && hubDoc.headSeq === 5, 5000)).toBe(true)
  expect(updates).toEqual([3])
  expect(d1.pendingCount).toBe(2) // kept
  expect(hubDoc.state.items.a?.done).toBe(true)
  expect(hubDoc.state.items.b).toEqual({ title: "B", done: true, priority: 0 })
  const head = hubDoc.headSeq
  await old.close()

  // The v1 app is updated: its LevelDB store is migrated, its outbox settles without a second application.
  const upgraded = await openClient(h.url, "old", "old")
  cleanup.push(upgraded.close)
  const d3 = await upgraded.client.open(TodoV2NoDown, DOC)
  expect(await until(() => d3.pendingCount === 0 && d3.confirmedSeq === hubDoc.headSeq, 5000)).toBe(true)
  expect(hubDoc.headSeq).toBe(head)
  expect(d3.confirmedHash()).toBe(hubDoc.stateHash())
  expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
  expect(d3.updateRequired).toBeUndefined()
  const log = await new AuthorityStore((h.hub as unknown as { options: { storage: LevelStorage } }).options.storage).entries(DOC, 0, 100)
  expect(log.map((e) => e.name)).toEqual(["add", "$migrate", "add", "toggle", "$batch"])
})

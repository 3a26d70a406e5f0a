/**
 * The demo board's versions without a browser: v1 is the board as first released (its
 * fingerprint pinned: stored boards, old tabs and old outboxes hold it), v2 is declared on it
 * with `evolve`, and a data directory written by a hub serving v1 opens under what `npm start`
 * serves now (the board upgraded in its log, a v1 app still following it, a v2 app setting
 * priorities). Over real WebSocket and LevelDB, through apps/hub/start.ts.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient, type Machine } from "../core/index.js"
import { historyOf } from "../core/schema/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { Board } from "../apps/demo/board.js"
import { CardText } from "../apps/demo/card-text.js"
import { demoMachines } from "../apps/demo/machines.js"
import { BoardV1 } from "../apps/demo/board-v1.js"
import { until } from "./support/ws.js"

/** The board's fingerprint at a52a034, before versions: what every stored v1 board and v1 app holds. */
const FIRST_RELEASE = "fc71a530bb9bdab7"

let dir: string
let cleanup: Array<() => Promise<unknown>> = []
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "canon-demo-board-"))
})
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
  rmSync(dir, { recursive: true, force: true })
})

const hubOn = async (machines: ReadonlyArray<Machine<any, any>>): Promise<RunningHub> => {
  const config = parseConfig(["--data", join(dir, "hub"), "--port", "0", "--host", "127.0.0.1", "--no-sync"], {})
  if (config === "help") throw new Error("unexpected")
  const running = await startHub(config, machines, () => false)
  cleanup.push(() => running.close())
  return running
}

const clientOf = async (hub: RunningHub, name: string, machines: ReadonlyArray<Machine<any, any>>) => {
  const storage = await LevelStorage.open(join(dir, name))
  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, storage, machines, backoff: { baseMs: 10, maxMs: 100 } })
  const close = async () => {
    await client.close()
    await storage.close()
  }
  cleanup.push(close)
  return { client, close }
}

test("v1 is the board as first released; v2 keeps it as its first version", () => {
  expect(BoardV1.fingerprint).toBe(FIRST_RELEASE)
  const history = historyOf(Board)!
  expect(history.versions).toEqual([1, 2])
  expect(history.at(1).fingerprint).toBe(FIRST_RELEASE)
  expect(Board.fingerprint).not.toBe(FIRST_RELEASE)
  // Every v1 command goes down unchanged; a priority cannot be shown to v1, clearing one is nothing.
  expect(history.convert([{ name: "moveCard", args: { id: "c", column: "Done", position: 1 } }], 2, 1)).toEqual([{ name: "moveCard", args: { id: "c", column: "Done", position: 1 } }])
  expect(history.convert([{ name: "setPriority", args: { id: "c", priority: 3 } }], 2, 1)).toBeUndefined()
  expect(history.convert([{ name: "setPriority", args: { id: "c", priority: 0 } }], 2, 1)).toEqual([])
  // The description is its own machine, so the board's versions never depend on it.
  expect(CardText.name).not.toBe(Board.name)
  expect(demoMachines).toEqual([Board, CardText])
})

test("a data directory of the first demo opens under npm start's machines: upgraded in the log, a v1 app follows, a v2 app sets priorities", async () => {
  let hub = await hubOn([BoardV1])
  let old = await clientOf(hub, "old", [BoardV1])
  let d1 = old.client.open(BoardV1, "board/team")
  const doc1 = await d1
  doc1.submit("addCard", { id: "a", title: "Written by v1", column: "To do", position: 1 })
  expect(await until(() => doc1.pendingCount === 0 && doc1.confirmedSeq === 1, 10_000)).toBe(true)
  await old.close()
  await hub.close()

  hub = await hubOn(demoMachines)
  const fresh = await clientOf(hub, "new", demoMachines)
  const doc2 = await fresh.client.open(Board, "board/team")
  const seen = await until(() => doc2.synced && doc2.state.cards.a?.title === "Written by v1", 10_000)
  if (!seen) throw new Error(JSON.stringify({ status: fresh.client.status, refusal: fresh.client.refusal, synced: doc2.synced, seq: doc2.confirmedSeq, state: doc2.state }))
  // The v1 app (its own storage, as stored) follows the upgraded board.
  old = await clientOf(hub, "old", [BoardV1])
  const again = await old.client.open(BoardV1, "board/team")
  doc2.submit("moveCard", { id: "a", column: "Doing", position: 1 })
  expect(await until(() => again.state.cards.a?.column === "Doing" && doc2.pendingCount === 0, 10_000)).toBe(true)
  expect(again.updateRequired).toBeUndefined()
  // A priority: the v2 app shows it; the v1 app is told an update is required.
  doc2.submit("setPriority", { id: "a", priority: 2 })
  expect(await until(() => doc2.pendingCount === 0 && again.updateRequired !== undefined, 10_000)).toBe(true)
  expect(doc2.state.cards.a).toMatchObject({ column: "Doing", priority: 2 })
  expect(again.state.cards.a?.priority).toBeUndefined()
}, 30_000)

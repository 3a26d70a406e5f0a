/**
 * `canon inspect DIR docId` on a document the hub upgraded (v1 entries, its `$migrate` entry,
 * v2 entries after it): the replay starts from the snapshot taken after the upgrade and every
 * stored checkpoint it reaches matches. (A replay that has to cross the `$migrate` entry itself,
 * when that snapshot is missing, is not covered: the replay applies entries with the newest
 * machine.)
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient } from "../core/index.js"
import { historyOf } from "../core/schema/versions.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { inspect } from "../apps/cli/inspect.js"
import { Board } from "../apps/demo/board.js"

let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-cli-v-")) })
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const BoardV1 = historyOf(Board)!.at(1) as typeof Board

const hubOn = (data: string, machine: typeof Board) =>
  startHub(parseConfig(["--data", data, "--port", "0"], {}) as Exclude<ReturnType<typeof parseConfig>, "help">, [machine], () => false)

const capture = () => {
  const lines: string[] = []
  return { lines, out: { log: (l: string) => lines.push(l), progress: () => {} } }
}

test("a document upgraded from v1 to v2 inspects clean from the snapshot after its upgrade", async () => {
  const data = join(dir, "data")
  let hub = await hubOn(data, BoardV1)
  let client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime })
  let doc = await client.open(BoardV1, "team")
  await Promise.all(Array.from({ length: 300 }, (_, i) => doc.submit("addCard", { id: `c${i}`, title: `Card ${i}`, column: "To do", position: i })))
  await client.close()
  await hub.close()

  // The v2 hub upgrades the document at load; a v2 app writes after it.
  hub = await hubOn(data, Board)
  client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime })
  const doc2 = await client.open(Board, "team")
  await Promise.all(Array.from({ length: 300 }, (_, i) => doc2.submit("setPriority", { id: `c${i}`, priority: 1 })))
  await client.close()
  await hub.close()

  const one = capture()
  const code = await inspect(data, "team", undefined, one.out)
  expect(one.lines.join("\n")).not.toMatch(/no longer applies|mismatch/i)
  expect(one.lines.at(-1)).toMatch(/^All checkpoints match/)
  expect(code).toBe(0)
})

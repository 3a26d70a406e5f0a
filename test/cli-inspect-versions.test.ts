/**
 * `canon inspect DIR docId` on a document the hub upgraded (v1 entries, its `$migrate` entry,
 * v2 entries after it). From the snapshot taken after the upgrade, nothing of the old version
 * is replayed. A log kept whole (never compacted) is replayed from the start, across the
 * `$migrate` entry, as the hub loads it: each entry with its epoch's version, the marker
 * migrating the state. The replay applied every entry with the newest machine: the v1 entries
 * ran on v2's initial state, the marker was an entry that "no longer applies", and the
 * checkpoints mismatched: a healthy document reported damaged.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
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

test("a whole log that crosses a $migrate entry replays as the hub loads it: clean", async () => {
  const data = join(dir, "data")
  const storage = await LevelStorage.open(data)
  const net = new MemoryNetwork(systemRuntime, { latency: () => 0 })
  const run = async (machine: typeof Board, write: (doc: Awaited<ReturnType<CanonClient["open"]>>) => Promise<unknown>) => {
    // The log kept whole: every snapshot leaves all of it behind.
    const hub = new Hub({ machines: [machine], storage, runtime: systemRuntime, snapshots: { tailBytes: Infinity }, checkpointEvery: 50 })
    net.listen(hub)
    const client = await CanonClient.open({ transport: net.transport("w"), runtime: systemRuntime })
    await write(await client.open(machine, "team"))
    await client.close()
    await hub.close()
    net.stopServer()
  }
  await run(BoardV1, (d) => Promise.all(Array.from({ length: 120 }, (_, i) => d.submit("addCard", { id: `c${i}`, title: `Card ${i}`, column: "To do", position: i }))))
  await run(Board, (d) => Promise.all(Array.from({ length: 120 }, (_, i) => d.submit("setPriority", { id: `c${i}`, priority: 1 }))))
  await storage.close()

  const one = capture()
  const code = await inspect(data, "team", undefined, one.out)
  const text = one.lines.join("\n")
  expect(text).toMatch(/never compacted/)
  expect(text).toMatch(/replayed 241 entries of board v2/)
  expect(text).not.toMatch(/no longer applies|mismatch/i)
  expect(one.lines.at(-1)).toMatch(/^All checkpoints match/)
  expect(code).toBe(0)
})

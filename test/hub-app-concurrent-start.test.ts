/**
 * Careless operator: two hubs started at once on the same, not yet existing, data
 * directory (a second `npm start` in another terminal on the first run, a process manager that
 * starts a replacement before the old one is up; each on its own port).
 *
 * apps/hub/start.ts computes `created = firstMissing(config.dataDir)` before opening the store,
 * and on any failure afterwards removes `created` with rmSync(recursive). Both starts see the
 * directory missing; the first opens it and holds the LevelDB lock; the second fails on the lock
 * ("in use by another process", the clear error) and then deletes the directory the first one
 * is running on. The first hub keeps acknowledging commands into unlinked files: after its
 * restart they are gone. (Without the hook below the order is a race: five runs here gave one
 * deleted live store and one run where both starts failed.)
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub, type RunningHub } from "../apps/hub/start.js"
import { parseConfig, type HubConfig } from "../apps/hub/config.js"
import { statusPage } from "../apps/hub/status-page.js"
import { Board } from "../apps/demo/board.js"

let dir: string
const running: RunningHub[] = []
const original = LevelStorage.open
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-attack-race-")) })
afterEach(async () => {
  ;(LevelStorage as { open: unknown }).open = original
  for (const r of running.splice(0)) await r.close().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

const config = (data: string): HubConfig => {
  const c = parseConfig(["--data", data, "--port", "0"], {})
  if (c === "help") throw new Error("unexpected")
  return c
}

test("a second start that loses the race for the lock leaves the first hub's data directory, and its acknowledged commands, in place", async () => {
  const data = join(dir, "data")
  // Fixes the order the race takes: the second start has looked at the directory (found it
  // missing) before the first creates it, and tries to open it only once the first holds it.
  let secondCalled!: () => void
  const secondLooked = new Promise<void>((r) => (secondCalled = r))
  let firstOpened: Promise<unknown> | undefined
  let calls = 0
  ;(LevelStorage as { open: unknown }).open = async (...args: unknown[]) => {
    const n = ++calls
    const open = () => (original as (...a: unknown[]) => Promise<unknown>).apply(LevelStorage, args)
    if (n === 1) {
      await secondLooked
      firstOpened = open()
      return firstOpened
    }
    if (n === 2) {
      secondCalled()
      while (firstOpened === undefined) await new Promise((r) => setImmediate(r))
      await firstOpened
    }
    return open()
  }
  const [first, second] = await Promise.allSettled([startHub(config(data), [Board], statusPage), startHub(config(data), [Board], statusPage)])
  ;(LevelStorage as { open: unknown }).open = original
  expect(first.status).toBe("fulfilled")
  expect(second.status).toBe("rejected")
  expect((second as PromiseRejectedResult).reason.message).toMatch(/in use/)
  const hub = (first as PromiseFulfilledResult<RunningHub>).value
  running.push(hub)
  // The running hub's store is still on disk.
  expect(existsSync(join(data, "CURRENT"))).toBe(true)

  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, machines: [Board] })
  const doc = await client.open(Board, "board/team")
  await expect(doc.submit("addCard", { id: "c1", title: "Acknowledged", column: "To do", position: 1 })).resolves.toEqual({ seq: 1 })
  await client.close()
  await running.pop()!.close()

  const again = await startHub(config(data), [Board], statusPage)
  running.push(again)
  const c2 = await CanonClient.open({ transport: wsClientTransport(again.syncUrl), runtime: systemRuntime, machines: [Board] })
  const d2 = await c2.open(Board, "board/team")
  const end = Date.now() + 5_000
  while (!d2.synced && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  expect(d2.confirmedSeq).toBe(1)
  expect(d2.state.cards["c1"]?.title).toBe("Acknowledged")
  await c2.close()
}, 30_000)

/**
 * The `canon` command line: `inspect` lists and verifies a data directory; `serve` starts a
 * hub without the demo page and stops cleanly; bad inputs get sentences and exit codes.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AuthorityStore, CanonClient } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub } from "../apps/hub/start.js"
import { parseConfig } from "../apps/hub/config.js"
import { inspect } from "../apps/cli/inspect.js"
import { Board } from "../apps/demo/board.js"

let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "canon-cli-")) })
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const fill = async (data: string, cards: number) => {
  const config = parseConfig(["--data", data, "--port", "0"], {}) as Exclude<ReturnType<typeof parseConfig>, "help">
  const hub = await startHub(config, [Board], () => false)
  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime })
  const doc = await client.open(Board, "team")
  await Promise.all(Array.from({ length: cards }, (_, i) => doc.submit("addCard", { id: `c${i}`, title: `Card ${i}`, column: "To do", position: i })))
  await client.close()
  await hub.close()
}

const capture = () => {
  const lines: string[] = []
  return { lines, out: { log: (l: string) => lines.push(l), progress: () => {} } }
}

test("inspect lists documents and verifies every checkpoint of a replay", async () => {
  const data = join(dir, "data")
  await fill(data, 600)
  const list = capture()
  expect(await inspect(data, undefined, undefined, list.out)).toBe(0)
  expect(list.lines[0]).toMatch(/^team {2}board v1 {2}seq 600 {2}600 entries .* checkpoint at 512/)
  const one = capture()
  expect(await inspect(data, "team", undefined, one.out)).toBe(0)
  expect(one.lines.join("\n")).toMatch(/replayed 600 entries of board v1, checked 2 checkpoints/)
  expect(one.lines.at(-1)).toBe("All checkpoints match.")
})

test("inspect names the first checkpoint that does not match", async () => {
  const data = join(dir, "data")
  await fill(data, 300)
  const storage = await LevelStorage.open(data)
  await new AuthorityStore(storage).putCheckpoint("team", { seq: 100, hash: "0000000000000000" })
  await storage.close()
  const r = capture()
  expect(await inspect(data, "team", undefined, r.out)).toBe(1)
  expect(r.lines.at(-1)).toMatch(/^FIRST PROBLEM: Checkpoint mismatch at seq 100: stored 0000000000000000, replay gives [0-9a-f]{16}\.$/)
})

test("inspect explains a missing directory and an unknown document", async () => {
  const r = capture()
  expect(await inspect(join(dir, "nope"), undefined, undefined, r.out)).toBe(2)
  expect(r.lines[0]).toMatch(/No Canon data at .*nope: the directory does not exist/)
  const data = join(dir, "data")
  await fill(data, 1)
  const u = capture()
  expect(await inspect(data, "other", undefined, u.out)).toBe(2)
  expect(u.lines[0]).toMatch(/No document "other"/)
})

const run = (args: string[], until?: RegExp) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ["apps/cli/canon.mjs", ...args], { cwd: process.cwd() })
    let out = ""
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      if (until && until.test(out)) child.kill("SIGTERM")
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })

test("canon serve starts a hub without the demo page and stops on SIGTERM", async () => {
  const r = await run(["serve", "--data", join(dir, "d"), "--port", "0"], /data: /)
  expect(r.out).toMatch(/machines: board v1/)
  expect(r.code).toBe(0)
}, 30_000)

test("canon serve refuses an unreadable certificate with a sentence", async () => {
  const r = await run(["serve", "--data", join(dir, "d"), "--port", "0", "--cert", join(dir, "no.pem"), "--key", join(dir, "no.key")])
  expect(r.code).toBe(1)
  expect(r.out).toMatch(/Cannot read the certificate .*no\.pem: no such file/)
}, 30_000)

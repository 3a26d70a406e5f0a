/**
 * The README's example, exactly as printed: its ```ts block under "## Example" is written to a
 * file in this checkout (so `canon` resolves to the sources through the canon-source
 * condition) and run with tsx, twice, from an empty directory: the first run adds the item,
 * the second is refused with a CommandRejected it handles; both exit 0 by themselves (every
 * handle closed) and write only ./todo-data.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../", import.meta.url))

/** The first ```ts block after the "## Example" heading. */
const exampleBlock = (): string => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("\n## Example\n"))
  const match = /```ts\n([\s\S]*?)\n```/.exec(section)
  if (match === null) throw new Error("The README has no ```ts block under ## Example.")
  return match[1]!
}

let dir: string
let file: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "canon-readme-"))
  mkdirSync(join(ROOT, "test/artifacts"), { recursive: true })
  file = join(ROOT, "test/artifacts", `readme-example-${process.pid}.ts`)
  writeFileSync(file, exampleBlock())
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
  rmSync(file, { force: true })
})

const run = () =>
  spawnSync(process.execPath, ["--conditions=canon-source", "--import", join(ROOT, "node_modules/tsx/dist/esm/index.mjs"), file], {
    cwd: dir, encoding: "utf8", timeout: 60_000, env: { ...process.env, NODE_OPTIONS: "" },
  })

test("the README example uses the CLI hub's /sync path, its own port and data directory, and closes what it opens", () => {
  const code = exampleBlock()
  expect(code).toMatch(/wsClientTransport\("ws:\/\/127\.0\.0\.1:(\d+)\/sync"\)/)
  expect(code).not.toMatch(/8787|"\.\/data"/) // npm start's port and directory
  for (const closed of ["client", "server", "hub", "storage"]) expect(code).toContain(`await ${closed}.close()`)
})

test("the README example runs as printed, twice in a row, and exits by itself each time", () => {
  const first = run()
  expect(first.stderr).toBe("")
  expect(first.stdout).toContain("added at seq 1")
  expect(first.status).toBe(0)
  const second = run()
  expect(second.stderr).toBe("")
  expect(second.stdout).toContain("refused (rejected): There is already an item milk.")
  expect(second.status).toBe(0)
  expect(readdirSync(dir)).toEqual(["todo-data"])
}, 120_000)

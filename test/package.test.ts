/**
 * The package as others get it: `npm pack` (which builds dist/ first), the tarball unpacked
 * into a temporary project's node_modules/canon with its runtime dependencies beside it
 * (links to this checkout's copies: a test reaches no registry), then plain Node, no tsx, imports `canon`, `canon/ws`, `canon/level`, `canon/memory` and
 * `canon/system` and runs a tiny hub and client; and a TypeScript consumer (with a two-version
 * machine from `canon/schema`) type-checks
 * against the shipped `.d.ts`.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../", import.meta.url))
let dir: string
let project: string
let tarball: string

const CONSUMER_JS = `
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "canon"
import { LevelStorage } from "canon/level"
import { MemoryStorage } from "canon/memory"
import { WsServer, wsClientTransport } from "canon/ws"
import { systemRuntime } from "canon/system"

const Counter = defineMachine({
  name: "counter",
  version: 1,
  initial: () => ({ n: 0 }),
  commands: { add: { args: Schema.Struct({ by: Schema.Number }), apply: (s, { by }) => { s.n += by } } },
})
const storage = await LevelStorage.open(process.argv[2])
const hub = new Hub({ machines: [Counter], storage, runtime: systemRuntime })
const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
const client = await CanonClient.open({ transport: wsClientTransport(server.urls()[0]), runtime: systemRuntime, storage: new MemoryStorage() })
const doc = await client.open(Counter, "c")
const { seq } = await doc.submit("add", { by: 41 })
await doc.submit("add", { by: 1 })
console.log(JSON.stringify({ seq, n: doc.state.n, internals: Object.keys(await import("canon")).filter((k) => k === "DocAuthority" || k === "JournaledState") }))
await client.close()
await server.close()
await hub.close()
await storage.close()
`

const CONSUMER_TS = `
import * as Schema from "effect/Schema"
import { CanonClient, defineMachine, type Receipt } from "canon"
import { MemoryStorage } from "canon/memory"
import { wsClientTransport } from "canon/ws"
import { systemRuntime } from "canon/system"
import { evolve } from "canon/schema"

const CounterV1 = defineMachine({
  name: "counter", version: 1, initial: () => ({ n: 0 }),
  commands: { add: { args: Schema.Struct({ by: Schema.Number }), apply: (s, a) => { s.n += a.by } } },
})
export const Counter = evolve(CounterV1, {
  version: 2,
  migrateState: (s) => ({ cents: s.n * 100 }),
  commands: { addCents: { args: Schema.Struct({ cents: Schema.Number }), apply: (s: { cents: number }, a) => { s.cents += a.cents } } },
  upcast: { add: (a) => ({ name: "addCents", args: { cents: a.by * 100 } }) },
  downcast: { addCents: (a) => (a.cents % 100 === 0 ? { name: "add", args: { by: a.cents / 100 } } : undefined) },
})

const Todo = defineMachine({
  name: "todo",
  version: 1,
  initial: () => ({ items: {} as Record<string, string> }),
  commands: { add: { args: Schema.Struct({ id: Schema.String, title: Schema.String }), apply: (s, { id, title }) => { s.items[id] = title } } },
})
export const run = async (): Promise<string | undefined> => {
  const client = await CanonClient.open({ transport: wsClientTransport("ws://127.0.0.1:1/sync"), runtime: systemRuntime, storage: new MemoryStorage() })
  const doc = await client.open(Todo, "t")
  const r: Receipt = doc.submit("add", { id: "a", title: "x" })
  void r
  // @ts-expect-error: the arguments are typed from the schema
  doc.submit("add", { id: 1 })
  return doc.state.items["a"]
}
`

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "canon-pack-"))
  const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })) as Array<{ filename: string; files: Array<{ path: string }> }>
  tarball = join(dir, packed[0]!.filename)
  project = join(dir, "app")
  mkdirSync(project)
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  const modules = join(project, "node_modules")
  mkdirSync(join(modules, "canon"), { recursive: true })
  execFileSync("tar", ["-xzf", tarball, "-C", join(modules, "canon"), "--strip-components=1"])
  // Only what the manifest lists as dependencies: a missing runtime dependency fails the test.
  const manifest = JSON.parse(readFileSync(join(modules, "canon/package.json"), "utf8")) as { dependencies: Record<string, string> }
  for (const dep of Object.keys(manifest.dependencies)) {
    // A scoped package (@types/ws) lives in its scope's folder.
    mkdirSync(dirname(join(modules, dep)), { recursive: true })
    symlinkSync(join(ROOT, "node_modules", dep), join(modules, dep), "dir")
  }
}, 180_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

test("the tarball ships built JavaScript and declarations, no TypeScript sources, no dev tools", () => {
  const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean)
  expect(files).toEqual(expect.arrayContaining(["package/dist/core/index.js", "package/dist/core/index.d.ts", "package/dist/adapters/ws/index.js", "package/dist/adapters/level/index.d.ts", "package/apps/cli/canon.mjs"]))
  expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([])
  expect(files.filter((f) => f.includes("/test/") || f.includes("/bench/"))).toEqual([])
  const manifest = JSON.parse(readFileSync(join(project, "node_modules/canon/package.json"), "utf8")) as { dependencies: Record<string, string> }
  // @types/ws: canon/ws's declarations name ws's types, so a consumer's tsc needs them.
  expect(Object.keys(manifest.dependencies).sort()).toEqual(["@types/ws", "effect", "level", "ws"])
})

test("plain Node imports canon, canon/ws, canon/level, canon/memory and runs a hub and a client", () => {
  writeFileSync(join(project, "main.mjs"), CONSUMER_JS)
  const run = spawnSync(process.execPath, ["main.mjs", join(dir, "data")], { cwd: project, encoding: "utf8", timeout: 30_000, env: { ...process.env, NODE_OPTIONS: "" } })
  expect(run.stderr).toBe("")
  expect(JSON.parse(run.stdout)).toEqual({ seq: 1, n: 42, internals: [] })
  expect(run.status).toBe(0)
})

test("the engine's internals are in canon/internal", () => {
  writeFileSync(join(project, "internal.mjs"), `const m = await import("canon/internal"); console.log(typeof m.DocAuthority, typeof m.encodeClientMessage)`)
  const run = spawnSync(process.execPath, ["internal.mjs"], { cwd: project, encoding: "utf8", timeout: 30_000, env: { ...process.env, NODE_OPTIONS: "" } })
  expect(run.stdout.trim()).toBe("function function")
})

test("a TypeScript consumer type-checks against the shipped declarations", () => {
  writeFileSync(join(project, "main.ts"), CONSUMER_TS)
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, skipLibCheck: false, types: [] }, files: ["main.ts"] }))
  const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project], { cwd: project, encoding: "utf8", timeout: 60_000 })
  expect(tsc.stdout + tsc.stderr).toBe("")
  expect(tsc.status).toBe(0)
  // And the check bites: a wrong argument type is an error.
  writeFileSync(join(project, "main.ts"), CONSUMER_TS.replace(`{ id: "a", title: "x" }`, `{ id: "a", title: 7 }`))
  const bad = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project], { cwd: project, encoding: "utf8", timeout: 60_000 })
  expect(bad.status).not.toBe(0)
  expect(bad.stdout).toMatch(/main\.ts/)
})

test("canon/indexeddb ships and, where there is no IndexedDB (plain Node), refuses to open with what to do", () => {
  writeFileSync(join(project, "idb.mjs"), `import { IndexedDbStorage } from "canon/indexeddb"
try { await IndexedDbStorage.open("x"); console.log("opened") } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`)
  const run = spawnSync(process.execPath, ["idb.mjs"], { cwd: project, encoding: "utf8", timeout: 30_000, env: { ...process.env, NODE_OPTIONS: "" } })
  expect(run.stderr).toBe("")
  const out = JSON.parse(run.stdout) as { code: string; message: string }
  expect(out.code).toBe("storage-failed")
  expect(out.message).toMatch(/no IndexedDB.*use canon\/level or canon\/memory/)
})

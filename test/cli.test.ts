/**
 * The `canon` command line: `inspect` lists and verifies a data directory; `serve` starts a
 * hub without the demo page and stops cleanly; bad inputs get sentences and exit codes.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Level } from "level"
import { AuthorityStore, CanonClient, CommandRejected } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub } from "../apps/hub/start.js"
import { helpText, parseConfig } from "../apps/hub/config.js"
import { INSPECT_USAGE, inspect, parseInspectArgs, plural } from "../apps/cli/inspect.js"
import { ReadOnlyStore } from "../apps/cli/read-only-store.js"
import { loadModule } from "../apps/cli/load-machines.js"
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

// ---- inspect never writes ----

/** Every key and value of a LevelDB directory (hex), to compare before and after. */
const dump = async (location: string): Promise<string[]> => {
  const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: "view", valueEncoding: "view", createIfMissing: false })
  await db.open()
  const rows = (await db.iterator().all()).map(([k, v]) => `${Buffer.from(k).toString("hex")}=${Buffer.from(v).toString("hex")}`)
  await db.close()
  return rows
}

test("inspect refuses a directory that is not Canon's and creates nothing in it", async () => {
  const plain = join(dir, "photos")
  mkdirSync(plain)
  writeFileSync(join(plain, "cat.jpg"), "not a store")
  const r = capture()
  expect(await inspect(plain, undefined, undefined, r.out)).toBe(2)
  expect(r.lines).toEqual([`${plain} is not a Canon data directory (it holds no LevelDB store): pass the hub's --data directory. Nothing was written to it.`])
  expect(readdirSync(plain)).toEqual(["cat.jpg"])
  // A directory that does not exist is not created.
  expect(await inspect(join(dir, "nope"), "doc", undefined, capture().out)).toBe(2)
  expect(existsSync(join(dir, "nope"))).toBe(false)
})

test("inspect refuses a LevelDB store without Canon's format record and writes no key to it", async () => {
  const other = join(dir, "other-app")
  const db = new Level<string, string>(other)
  await db.put("user:1", "alice")
  await db.close()
  const before = await dump(other)
  const r = capture()
  expect(await inspect(other, undefined, undefined, r.out)).toBe(2)
  expect(r.lines).toEqual([`${other} is not a Canon data directory (a LevelDB store without Canon's format record): pass the hub's --data directory.`])
  expect(await dump(other)).toEqual(before)
})

test("inspect leaves a Canon data directory's keys and values exactly as they were; its store refuses writes", async () => {
  const data = join(dir, "data")
  await fill(data, 300)
  const before = await dump(data)
  expect(await inspect(data, undefined, undefined, capture().out)).toBe(0)
  expect(await inspect(data, "team", undefined, capture().out)).toBe(0)
  expect(await inspect(data, "nobody", undefined, capture().out)).toBe(2)
  expect(await dump(data)).toEqual(before)
  const store = await ReadOnlyStore.open(data)
  await expect(store.batch([{ type: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) }])).rejects.toThrow(/open for reading only: canon inspect never writes/)
  await store.close()
})

test("inspect on the data of a running hub says it is in use and how to see it instead", async () => {
  const data = join(dir, "data")
  await fill(data, 1)
  const config = parseConfig(["--data", data, "--port", "0"], {}) as Exclude<ReturnType<typeof parseConfig>, "help">
  const hub = await startHub(config, [Board], () => false)
  try {
    const r = capture()
    expect(await inspect(data, undefined, undefined, r.out)).toBe(2)
    expect(r.lines).toEqual([`${data} is in use by a running hub: stop it, or use the hub's /status. (LevelDB lets one process at a time open a data directory.)`])
  } finally {
    await hub.close()
  }
})

test("inspect of a file says it is a file, not a directory", async () => {
  const file = join(dir, "afile")
  writeFileSync(file, "x")
  const r = capture()
  expect(await inspect(file, undefined, undefined, r.out)).toBe(2)
  expect(r.lines).toEqual([`${file} is a file, not a directory: pass the hub's --data directory.`])
})

test("counts in inspect's output have the right plural", async () => {
  expect([plural(0, "entry", "entries"), plural(1, "entry", "entries"), plural(2, "entry", "entries"), plural(1000, "entry", "entries")])
    .toEqual(["0 entries", "1 entry", "2 entries", "1,000 entries"])
  const data = join(dir, "data")
  await fill(data, 1)
  const list = capture()
  expect(await inspect(data, undefined, undefined, list.out)).toBe(0)
  expect(list.lines[0]).toMatch(/^team {2}board v1 {2}seq 1 {2}1 entry {2}/)
  const one = capture()
  expect(await inspect(data, "team", undefined, one.out)).toBe(0)
  expect(one.lines[0]).toMatch(/^team: replayed 1 entry of board v1, checked (0 checkpoints|1 checkpoint);/)
})

test("inspect's arguments: its own usage, unknown options named", () => {
  expect(parseInspectArgs(["--help"])).toBe("help")
  expect(INSPECT_USAGE).toMatch(/^Usage: canon inspect DIR \[docId\]/)
  expect(parseInspectArgs(["./data", "team", "--machines", "m.ts"])).toEqual({ dir: "./data", docId: "team", machines: "m.ts" })
  expect(parseInspectArgs(["--machines=m.ts", "./data"])).toEqual({ dir: "./data", docId: undefined, machines: "m.ts" })
  expect(() => parseInspectArgs(["./data", "--bogus"])).toThrow(/^Unknown option --bogus\./)
  expect(() => parseInspectArgs([])).toThrow(/^Which data directory\?/)
  expect(() => parseInspectArgs(["a", "b", "c"])).toThrow(/^Unexpected argument "c"/)
})

// ---- flags ----

test("an unknown option is named as unknown, with or without a value after it", () => {
  for (const argv of [["--bogus"], ["--bogus", "x"], ["--port", "0", "--bogus"], ["--bogus=1"]]) {
    expect(() => parseConfig(argv, {}, "canon serve")).toThrow(/^Unknown option --bogus\.\nUsage: canon serve/)
  }
  expect(() => parseConfig(["--port"], {})).toThrow(/^--port needs a value\./)
  // --machines belongs to canon serve; npm start serves the demo board.
  expect(() => parseConfig(["--machines", "m.ts"], {}, "npm start")).toThrow(/^Unknown option --machines\.\nUsage: npm start/)
  expect(parseConfig(["--machines", "m.ts"], {}, "canon serve")).toMatchObject({ machines: "m.ts" })
})

test("each command prints its own usage; canon serve's says what a --machines module may export", () => {
  expect(helpText("npm start")).toMatch(/^Usage: npm start -- \[options\]/)
  expect(helpText("npm start")).not.toMatch(/--machines/)
  const serveHelp = helpText("canon serve")
  expect(serveHelp).toMatch(/^Usage: canon serve \[options\]/)
  for (const part of ["--machines MODULE", "authenticate(hello, info)", "authorize(principal, docId, access)", "apps/cli/examples/todo.ts", "--no-sync", "--max-connections-per-address N", "--trust-proxy"]) {
    expect(serveHelp).toContain(part)
  }
})

test("fsync is on by default; --no-sync or CANON_SYNC=0 turn it off; --sync is accepted", () => {
  const sync = (argv: string[], env: Record<string, string> = {}) => (parseConfig(argv, env) as { sync: boolean }).sync
  expect(sync([])).toBe(true)
  expect(sync(["--sync"])).toBe(true)
  expect(sync(["--no-sync"])).toBe(false)
  expect(sync([], { CANON_SYNC: "0" })).toBe(false)
  expect(sync([], { CANON_SYNC: "1" })).toBe(true)
  expect(sync(["--sync"], { CANON_SYNC: "0" })).toBe(true)
  expect(() => parseConfig(["--sync", "--no-sync"], {})).toThrow(/contradict/)
  expect(() => parseConfig([], { CANON_SYNC: "maybe" })).toThrow(/^CANON_SYNC must be 1 .* or 0 .*, not "maybe"\./)
})

test("--max-connections-per-address and --trust-proxy", () => {
  expect(parseConfig([], {})).toMatchObject({ maxConnectionsPerAddress: 64, trustProxy: false })
  expect(parseConfig(["--max-connections-per-address", "8"], {})).toMatchObject({ maxConnectionsPerAddress: 8 })
  expect(parseConfig([], { CANON_MAX_CONNECTIONS_PER_ADDRESS: "500" })).toMatchObject({ maxConnectionsPerAddress: 500 })
  for (const bad of ["0", "-1", "1.5", "many"]) {
    expect(() => parseConfig(["--max-connections-per-address", bad], {})).toThrow(`--max-connections-per-address must be a whole number of at least 1, not "${bad}".`)
  }
  expect(parseConfig(["--trust-proxy", "10.0.0.5, 192.168.0.0/16"], {})).toMatchObject({ trustProxy: ["10.0.0.5", "192.168.0.0/16"] })
  expect(parseConfig(["--trust-proxy", "true"], {})).toMatchObject({ trustProxy: true })
  expect(parseConfig([], { CANON_TRUST_PROXY: "::1" })).toMatchObject({ trustProxy: ["::1"] })
  expect(() => parseConfig(["--trust-proxy", "proxy.local"], {})).toThrow(/^--trust-proxy: "proxy.local" is not an IP address or CIDR range/)
})

// ---- canon serve with a module of machines and auth hooks ----

test("a --machines module's authenticate and authorize hooks are loaded with its machines", async () => {
  const served = await loadModule("apps/cli/examples/todo.ts")
  expect(served.machines.map((m) => m.name)).toEqual(["todo"])
  expect(typeof served.authenticate).toBe("function")
  expect(typeof served.authorize).toBe("function")
})

/** Starts `canon serve` and waits for its banner; `stop` sends SIGTERM and waits for the exit. */
const serveProcess = async (args: string[], env: Record<string, string> = {}) => {
  const child = spawn(process.execPath, ["apps/cli/canon.mjs", "serve", ...args], { cwd: process.cwd(), env: { ...process.env, ...env } })
  let out = ""
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
  const killer = setTimeout(() => child.kill("SIGKILL"), 25_000)
  child.stdout.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr.on("data", (d: Buffer) => (out += d.toString()))
  const banner = await Promise.race([
    new Promise<RegExpExecArray>((resolve) => {
      const look = () => {
        const m = /\(sync: (ws:\/\/\S+)\)[\s\S]*data: /.exec(out)
        if (m) resolve(m)
        else setTimeout(look, 20)
      }
      look()
    }),
    exited.then((code) => { throw new Error(`canon serve exited (${code}): ${out}`) }),
  ])
  return {
    syncUrl: banner[1]!,
    out: () => out,
    stop: async () => {
      child.kill("SIGTERM")
      const code = await exited
      clearTimeout(killer)
      return code
    },
  }
}

test("canon serve --machines apps/cli/examples/todo.ts: the module's token check and write rule hold over the wire", async () => {
  const hub = await serveProcess(["--data", join(dir, "d"), "--port", "0", "--machines", "apps/cli/examples/todo.ts"], { TODO_TOKENS: "t-alice=alice,t-bob=bob" })
  try {
    expect(hub.out()).toMatch(/machines: todo v1/)
    expect(hub.out()).toMatch(/auth: {5}authenticate, authorize from apps\/cli\/examples\/todo\.ts/)
    expect(hub.out()).toMatch(/fsync on every commit/)
    const { Todo } = await import("../apps/cli/examples/todo.js")
    const alice = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, machines: [Todo], credentials: "t-alice" })
    try {
      const own = await alice.open(Todo, "alice/groceries")
      await expect(own.submit("add", { id: "milk", title: "Milk" })).resolves.toEqual({ seq: 1 })
      const bobs = await alice.open(Todo, "bob/tools")
      await expect(bobs.submit("add", { id: "saw", title: "Saw" })).rejects.toBeInstanceOf(CommandRejected)
    } finally {
      await alice.close()
    }
    const stranger = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime, machines: [Todo], credentials: "wrong" })
    try {
      const end = Date.now() + 10_000
      while (stranger.status !== "refused" && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
      expect(stranger.status).toBe("refused")
      expect(stranger.refusal).toMatchObject({ code: "unauthorized", message: expect.stringMatching(/Unknown or missing token/) })
    } finally {
      await stranger.close()
    }
  } finally {
    expect(await hub.stop()).toBe(0)
  }
}, 40_000)

test("canon serve --help prints canon serve's usage; an unknown option is named", async () => {
  const help = await run(["serve", "--help"])
  expect(help.code).toBe(0)
  expect(help.out).toMatch(/^Usage: canon serve \[options\]/)
  const bogus = await run(["serve", "--bogus"])
  expect(bogus.code).toBe(2)
  expect(bogus.out).toMatch(/^Unknown option --bogus\.\nUsage: canon serve/)
}, 30_000)

/**
 * The `canon` command line: `inspect` lists and verifies a data directory (compacted logs,
 * snapshots and their chunks included); `compact` snapshots documents and deletes the log
 * behind; `serve` starts a hub without the demo page and stops cleanly; bad inputs get
 * sentences and exit codes.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Level } from "level"
import { CanonClient, CommandRejected, decodeCanonical, encodeCanonical } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import * as K from "../core/store/keys.js"
import { LevelStorage } from "../adapters/level/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { startHub } from "../apps/hub/start.js"
import { helpText, parseConfig } from "../apps/hub/config.js"
import { INSPECT_USAGE, inspect, parseInspectArgs, plural } from "../apps/cli/inspect.js"
import { ReadOnlyStore, inUseSentence } from "../apps/cli/read-only-store.js"
import { COMPACT_USAGE, DEFAULT_TAIL_BYTES, compact, parseCompactArgs } from "../apps/cli/compact.js"
import { recordBytes } from "../apps/cli/doc-records.js"
import { progressReporter } from "../apps/cli/progress.js"
import { shownLine, shownOutput } from "../apps/cli/terminal-text.js"
import { startSnapshotHub } from "./support/snapshot-hub.js"
import { loadModule } from "../apps/cli/load-machines.js"
import { Board } from "../apps/demo/board.js"
import { F1, docOps, writeFormat1 } from "./support/format1-layout.js"

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
  expect(list.lines[0]).toMatch(/^team {2}board v2 {2}seq 600 {2}600 entries .* checkpoint at 512/)
  const one = capture()
  expect(await inspect(data, "team", undefined, one.out)).toBe(0)
  expect(one.lines.join("\n")).toMatch(/replayed 600 entries of board v2, checked 2 checkpoints/)
  expect(one.lines.at(-1)).toBe("All checkpoints match.")
})

// A client chose the docId: printed raw, its escape sequences would run in the operator's
// terminal (erase the line and print a fake verdict, set the title, OSC 52 to the clipboard)
// and its newline would forge a line of the report.
test("inspect and compact show a client-chosen docId's control characters as escapes, never raw", async () => {
  const data = join(dir, "data")
  const evil = "x\x1b[2K\r\x1b]0;pwned\x07\x1b]52;c;Y3VybA==\x07\nAll checkpoints match.\u202e\x9b"
  const config = parseConfig(["--data", data, "--port", "0"], {}) as Exclude<ReturnType<typeof parseConfig>, "help">
  const hub = await startHub(config, [Board], () => false)
  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime })
  const doc = await client.open(Board, evil)
  await doc.submit("addCard", { id: "c1", title: "Card", column: "To do", position: 0 })
  await client.close()
  await hub.close()
  const labels: string[] = []
  const runs = [capture(), capture(), capture()]
  expect(await inspect(data, undefined, undefined, runs[0]!.out)).toBe(0)
  expect(await inspect(data, evil, undefined, runs[1]!.out)).toBe(0)
  expect(await compact({ dir: data, docId: evil, machines: undefined, tailBytes: 0 }, { ...runs[2]!.out, progress: (_d, _t, label) => { if (label !== undefined) labels.push(label) } })).toBe(0)
  const shown = "x\\x1b[2K\\x0d\\x1b]0;pwned\\x07\\x1b]52;c;Y3VybA==\\x07\\x0aAll checkpoints match.\\u202e\\x9b"
  expect(runs[0]!.lines[0]!.startsWith(`${shown}  board v2`)).toBe(true)
  for (const line of [...runs.flatMap((r) => r.lines), ...labels]) expect(line).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u202e]/)
  expect(runs[1]!.lines.filter((l) => l === "All checkpoints match.")).toHaveLength(1)
  expect(runs[2]!.lines.some((l) => l.startsWith(`${shown}: not compacted`))).toBe(true)
}, 60_000)

test("a report's progress labels are shown the same way; tab and printable text stay as they are", () => {
  const seen: Array<string | undefined> = []
  const out = shownOutput({ log: () => {}, progress: (_d: number, _t: number, label?: string) => { seen.push(label) } })
  out.progress(1, 2, "doc\x1b]0;t\x07: replaying")
  out.progress(1, 2)
  expect(seen).toEqual(["doc\\x1b]0;t\\x07: replaying", undefined])
  expect(shownLine("a\tb é 😀 \u200f")).toBe("a\tb é 😀 \\u200f")
})

// A damaged head record (a bad disk) made heads() throw: inspect and compact gave up on every
// document, where they are the tools that look for damage.
test("one damaged head record is reported; inspect lists and compact compacts the other documents (exit 1)", async () => {
  const data = join(dir, "data")
  await fill(data, 600)
  const config = parseConfig(["--data", data, "--port", "0"], {}) as Exclude<ReturnType<typeof parseConfig>, "help">
  const hub = await startHub(config, [Board], () => false)
  const client = await CanonClient.open({ transport: wsClientTransport(hub.syncUrl), runtime: systemRuntime })
  await (await client.open(Board, "other")).submit("addCard", { id: "c1", title: "Card", column: "To do", position: 0 })
  await client.close()
  await hub.close()
  const db = new Level<Uint8Array, Uint8Array>(data, { keyEncoding: "view", valueEncoding: "view", createIfMissing: false })
  await db.open()
  await db.put(K.authHead("other"), new Uint8Array([0xff, 0x00, 0x13]))
  await db.close()

  const list = capture()
  expect(await inspect(data, undefined, undefined, list.out)).toBe(1)
  expect(list.lines).toHaveLength(2)
  // In key order: a docId's length first.
  expect(list.lines[0]).toMatch(/^team {2}board v2 {2}seq 600/)
  expect(list.lines[1]).toMatch(/^other {2}DAMAGED HEAD: The stored head of document "other" \(key [0-9a-f]+\) is unreadable/)
  const one = capture()
  expect(await inspect(data, "other", undefined, one.out)).toBe(1)
  expect(one.lines[0]).toMatch(/^other: DAMAGED HEAD: /)
  const c = capture()
  expect(await compact({ dir: data, docId: undefined, machines: "apps/demo/board.ts", tailBytes: 4096 }, c.out)).toBe(1)
  expect(c.lines.some((l) => /^other: not compacted: its head record is damaged: /.test(l))).toBe(true)
  expect(c.lines.some((l) => /^team: compacted through seq /.test(l))).toBe(true)
}, 60_000)

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

test("inspect reads a store in an older format without migrating it (it never writes)", async () => {
  const data = join(dir, "old")
  const storage = await LevelStorage.open(data)
  await writeFormat1(storage, docOps({ docId: "old", machine: Board.name, version: Board.version, entries: [], clients: [{ clientId: "client-0001", last: 3, acked: 1, outcomes: [{ clientSeq: 2, seq: 7 }, { clientSeq: 3, seq: 8 }] }] }))
  await storage.close()
  const r = capture()
  expect(await inspect(data, undefined, undefined, r.out)).toBe(0)
  expect(r.lines.join("\n")).toMatch(/old/)
  const after = await LevelStorage.open(data)
  expect(decodeCanonical((await after.get(F1.format))!)).toBe(1)
  expect(await after.get(F1.client("old", "client-0001"))).toBeDefined()
  await after.close()
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
  expect(r.out).toMatch(/machines: board v2/)
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
    expect(r.lines).toEqual([`${data} is in use by a running hub: stop it first. (LevelDB lets one process at a time open a data directory.)`])
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
  expect(list.lines[0]).toMatch(/^team {2}board v2 {2}seq 1 {2}1 entry {2}/)
  const one = capture()
  expect(await inspect(data, "team", undefined, one.out)).toBe(0)
  expect(one.lines.find((l) => l.startsWith("team: replayed"))).toMatch(/^team: replayed 1 entry of board v2, checked (0 checkpoints|1 checkpoint);/)
  expect(one.lines).toContain("  log: 1 entry (seqs 1-1), never compacted")
})

test("inspect's list shows the newest checkpoint stored, not only the one its head record carries", async () => {
  const data = join(dir, "data")
  await fill(data, 1)
  const one = capture()
  expect(await inspect(data, "team", undefined, one.out)).toBe(0)
  const hash = /state hash (\S+)\./.exec(one.lines.join("\n"))![1]!
  // A checkpoint published when the document went quiet is stored beside the head, not in it.
  const storage = await LevelStorage.open(data)
  const store = new AuthorityStore(storage)
  expect((await store.head("team"))?.checkpoint).toBeUndefined()
  await store.putCheckpoint("team", { seq: 1, hash })
  await storage.close()
  const list = capture()
  expect(await inspect(data, undefined, undefined, list.out)).toBe(0)
  expect(list.lines[0]).toMatch(new RegExp(`  checkpoint at 1 \\(${hash}\\)$`))
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
  // Relative to where the command was run (apps/hub/invocation-dir.ts).
  expect(parseConfig(["--machines", "m.ts"], {}, "canon serve")).toMatchObject({ machines: join(process.cwd(), "m.ts") })
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

test("--max-connections-per-address, --trust-proxy and --ipv6-prefix", () => {
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
  expect(parseConfig([], {})).toMatchObject({ ipv6Prefix: 64 })
  expect(parseConfig(["--ipv6-prefix", "48"], {})).toMatchObject({ ipv6Prefix: 48 })
  expect(parseConfig([], { CANON_IPV6_PREFIX: "128" })).toMatchObject({ ipv6Prefix: 128 })
  for (const bad of ["0", "129", "64.5", "x"]) expect(() => parseConfig(["--ipv6-prefix", bad], {})).toThrow(`--ipv6-prefix must be a whole number from 1 to 128, not "${bad}".`)
  expect(() => parseConfig([], { CANON_IPV6_PREFIX: "200" })).toThrow('CANON_IPV6_PREFIX must be a whole number from 1 to 128, not "200".')
})

test("--max-document-mib sets the hub's maxDocumentBytes, in MiB", () => {
  expect(parseConfig([], {})).toMatchObject({ maxDocumentMib: 256 })
  expect(parseConfig(["--max-document-mib", "64"], {})).toMatchObject({ maxDocumentMib: 64 })
  expect(parseConfig([], { CANON_MAX_DOCUMENT_MIB: "1024" })).toMatchObject({ maxDocumentMib: 1024 })
  expect(parseConfig([], { CANON_MAX_DOCUMENT_MIB: "" })).toMatchObject({ maxDocumentMib: 256 })
  for (const bad of ["0", "-1", "1.5", "lots"]) {
    expect(() => parseConfig(["--max-document-mib", bad], {})).toThrow(`--max-document-mib must be a whole number of at least 1, not "${bad}".`)
  }
  expect(() => parseConfig([], { CANON_MAX_DOCUMENT_MIB: "0" })).toThrow('CANON_MAX_DOCUMENT_MIB must be a whole number of at least 1, not "0".')
})

test("--max-unsent-mib sets the server's maxUnsentBytes, in MiB", () => {
  expect(parseConfig([], {})).toMatchObject({ maxUnsentMib: 256 })
  expect(parseConfig(["--max-unsent-mib", "64"], {})).toMatchObject({ maxUnsentMib: 64 })
  expect(parseConfig([], { CANON_MAX_UNSENT_MIB: "1024" })).toMatchObject({ maxUnsentMib: 1024 })
  expect(parseConfig(["--max-unsent-mib", "8"], {})).toMatchObject({ maxUnsentMib: 8 })
  // Under 8 MiB, a reader alone loading a large document would be cut at every reconnect.
  for (const bad of ["0", "-1", "1.5", "lots", "7"]) {
    expect(() => parseConfig(["--max-unsent-mib", bad], {})).toThrow(`--max-unsent-mib must be a whole number of at least 8, not "${bad}".`)
  }
  expect(() => parseConfig([], { CANON_MAX_UNSENT_MIB: "0" })).toThrow('CANON_MAX_UNSENT_MIB must be a whole number of at least 8, not "0".')
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
    expect(hub.out()).toContain(`auth:     authenticate, authorize from ${join(process.cwd(), "apps/cli/examples/todo.ts")}`)
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

// ---- snapshots and compaction: inspect and compact on directories made by a real hub ----

/** A policy small enough that a few hundred cards snapshot and compact several times. */
const SMALL = { minLogBytes: 8 << 10, logRatio: 1, tailBytes: 2 << 10, chunkBytes: 4 << 10 }

const card = (i: number) => ({ id: `c${i}`, title: `Card ${i} ${"-".repeat(40)}`, column: "To do", position: i })

/** Fills documents through a real hub (LevelDB on disk, WebSocket) with `policy`; returns each document's head and state hash. */
const fillWith = async (data: string, docs: Record<string, number>, policy?: Parameters<typeof startSnapshotHub>[2]) => {
  const h = await startSnapshotHub(data, [Board], policy)
  const client = await CanonClient.open({ transport: wsClientTransport(h.syncUrl), runtime: systemRuntime })
  const heads: Record<string, { seq: number; hash: string; snapshot: number | undefined; horizon: number }> = {}
  try {
    for (const [docId, n] of Object.entries(docs)) {
      const doc = await client.open(Board, docId)
      // In runs of 50: group commits of realistic size, and the policy gets its chance between them.
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => doc.submit("addCard", card(i + j))))
    }
    for (const docId of Object.keys(docs)) {
      const a = await h.hub.doc(docId, Board)
      // A snapshot or compaction begun by the last commits finishes before the hub closes.
      const store = new AuthorityStore(h.storage)
      const idle = async () => {
        const metas = await store.snapshots.metas(docId)
        const chunks = await h.storage.range({ gte: K.authChunkPrefix(docId), lt: K.prefixEnd(K.authChunkPrefix(docId)) })
        const below = await h.storage.range({ gte: K.authEntryPrefix(docId), lt: K.authEntry(docId, a.compactedThrough + 1), limit: 1 })
        return metas.length <= 1 && metas[0]?.seq === a.latestSnapshot?.seq && chunks.length === (metas[0]?.chunks ?? 0) &&
          below.length === 0 && (await store.snapshots.horizon(docId)) === a.compactedThrough
      }
      for (const end = Date.now() + 10_000; !(await idle()) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50))
      heads[docId] = { seq: a.headSeq, hash: a.stateHash(), snapshot: a.latestSnapshot?.seq, horizon: a.compactedThrough }
    }
  } finally {
    await client.close()
    await h.close()
  }
  return heads
}

const storeOf = async <T>(data: string, f: (store: AuthorityStore, kv: LevelStorage) => Promise<T>): Promise<T> => {
  const kv = await LevelStorage.open(data)
  try {
    return await f(new AuthorityStore(kv), kv)
  } finally {
    await kv.close()
  }
}

describe("inspect on a compacted log", () => {
  test("shows the snapshots (each verified), the horizon, bytes by kind, and replays from the snapshot", async () => {
    const data = join(dir, "data")
    const heads = await fillWith(data, { team: 600 }, SMALL)
    const { seq, hash, snapshot, horizon } = heads.team!
    expect(horizon).toBeGreaterThan(0)
    expect(snapshot).toBeGreaterThan(horizon)
    const before = await dump(data)

    const list = capture()
    expect(await inspect(data, undefined, undefined, list.out)).toBe(0)
    const n = (x: number) => x.toLocaleString("en-US")
    expect(list.lines[0]).toMatch(new RegExp(`^team {2}board v2 {2}seq ${n(seq)} {2}${n(seq - horizon)} entries {2}.* {2}snapshot at ${n(snapshot!)} {2}compacted through ${n(horizon)} {2}checkpoint at`))

    const one = capture()
    expect(await inspect(data, "team", undefined, one.out)).toBe(0)
    const text = one.lines.join("\n")
    expect(one.lines[0]).toBe(`team: board v2, head at seq ${n(seq)}`)
    expect(text).toContain(`  log: ${n(seq - horizon)} entries kept (seqs ${n(horizon + 1)}-${n(seq)}); compacted through seq ${n(horizon)} (entries at or below it are gone)`)
    expect(text).toMatch(/ {2}on disk: [\d.]+ KiB of records: log [\d.]+ (KiB|B), snapshots [\d.]+ KiB, client records [\d.]+ (KiB|B), checkpoints [\d.]+ (KiB|B)/)
    expect(text).toMatch(new RegExp(`  snapshot at seq ${n(snapshot!)}: [\\d.]+ KiB in \\d+ chunks, hash [0-9a-f]{16}: verifies`))
    // It cannot replay from 0 (the log behind the horizon is gone): it starts at the snapshot.
    expect(text).toContain(`team: replayed ${n(seq - snapshot!)} entr${seq - snapshot! === 1 ? "y" : "ies"} of board v2 from the snapshot at seq ${n(snapshot!)}, checked `)
    expect(text).toContain(`state hash ${hash}.`)
    expect(one.lines.at(-1)).toBe("All checkpoints match and every snapshot verifies.")
    // Read-only, whatever it reads.
    expect(await dump(data)).toEqual(before)
  }, 60_000)

  test("a corrupted chunk: the snapshot is reported as not verifying, by a sentence naming it, and the exit code is 1", async () => {
    const data = join(dir, "data")
    const { snapshot, horizon } = (await fillWith(data, { team: 400 }, SMALL)).team!
    expect(horizon).toBeGreaterThan(0)
    await storeOf(data, async (store, kv) => {
      const meta = (await store.snapshots.metas("team"))[0]!
      expect(meta.seq).toBe(snapshot)
      const key = K.authChunk("team", meta.seq, Math.floor(meta.chunks / 2))
      const chunk = (await kv.get(key))!.slice()
      chunk[100] = chunk[100]! ^ 0x01
      await kv.batch([{ type: "put", key, value: chunk }])
    })
    const r = capture()
    expect(await inspect(data, "team", undefined, r.out)).toBe(1)
    const n = (x: number) => x.toLocaleString("en-US")
    expect(r.lines).toContainEqual(expect.stringMatching(new RegExp(`^ {2}snapshot at seq ${n(snapshot!)}: .* DOES NOT VERIFY \\(its chunks hash to [0-9a-f]{16}, not [0-9a-f]{16}\\)$`)))
    expect(r.lines.find((l) => l.startsWith("FIRST PROBLEM"))).toMatch(new RegExp(
      `^FIRST PROBLEM: The snapshot of "team" at seq ${n(snapshot!)} does not verify: its chunks hash to [0-9a-f]{16}, not [0-9a-f]{16}\\. ` +
      `No other snapshot reaches back to the horizon \\(seq ${n(horizon)}\\): the hub cannot load the document\\.`))
    // A missing chunk is named too.
    await storeOf(data, async (store, kv) => {
      const meta = (await store.snapshots.metas("team"))[0]!
      await kv.batch([{ type: "del", key: K.authChunk("team", meta.seq, 0) }])
    })
    const m = capture()
    expect(await inspect(data, "team", undefined, m.out)).toBe(1)
    expect(m.lines.find((l) => l.startsWith("FIRST PROBLEM"))).toMatch(new RegExp(`^FIRST PROBLEM: The snapshot of "team" at seq ${n(snapshot!)} does not verify: chunk 0 of its \\d+ is missing\\.`))
  }, 60_000)

  test("what an interrupted snapshot or compaction left is listed, and is no problem", async () => {
    const data = join(dir, "data")
    const { seq, horizon } = (await fillWith(data, { team: 400 }, SMALL)).team!
    await storeOf(data, async (store) => {
      // Chunks of a snapshot whose meta was never written; a horizon moved past entries not yet deleted.
      await store.snapshots.putChunks("team", seq + 1, 0, [new Uint8Array(10), new Uint8Array(5)])
      await store.kv.batch([{ type: "put", key: K.authHorizon("team"), value: encodeCanonical(horizon + 3) }])
    })
    const r = capture()
    expect(await inspect(data, "team", undefined, r.out)).toBe(0)
    const n = (x: number) => x.toLocaleString("en-US")
    expect(r.lines).toContain(`  left by an interrupted write: 2 chunks of an unfinished snapshot at seq ${n(seq + 1)}; 3 entries at or below the horizon (the hub deletes them when it loads the document)`)
  }, 60_000)
})

describe("canon compact", () => {
  test("snapshots the head and deletes the log behind it; a fresh hub has the same state and head; a client far behind converges by a snapshot stream", async () => {
    const data = join(dir, "data")
    // A client that stops early, with its replica on disk: it will come back far behind.
    const h = await startSnapshotHub(data, [Board])
    const laggardStore = await LevelStorage.open(join(dir, "laggard"))
    const laggard = await CanonClient.open({ transport: wsClientTransport(h.syncUrl), runtime: systemRuntime, storage: laggardStore })
    const early = await laggard.open(Board, "team")
    await Promise.all(Array.from({ length: 10 }, (_, i) => early.submit("addCard", { ...card(i), id: `early${i}` })))
    await laggard.close()
    await h.close()
    // The default policy: 1,510 small entries never reach a snapshot, so the log is whole.
    const { seq, hash, snapshot } = (await fillWith(data, { team: 1500 }, undefined)).team!
    expect(snapshot).toBeUndefined()
    expect(seq).toBe(1510)
    const logBefore = await storeOf(data, (_s, kv) => recordBytes(kv, "team"))

    const r = capture()
    expect(await compact({ dir: data, docId: "team", machines: "apps/demo/board.ts", tailBytes: 4096 }, r.out)).toBe(0)
    const text = r.lines.join("\n")
    expect(text).toMatch(/^team: snapshot at seq 1,510 stored \([\d.]+ KiB in \d+ chunks?, hash [0-9a-f]{16}\)$/m)
    const horizon = Number(/^team: compacted through seq ([\d,]+): 1,510 entries -> (\d+),/m.exec(text)?.[1]?.replace(/,/g, ""))
    expect(horizon).toBeGreaterThan(1400)
    expect(text).toMatch(/^1 document of 1 compacted\. Records: .* before, .* after; LevelDB files on disk: .* before, .* after\.$/m)

    // The log shrank to the tail; the bytes say so too.
    const after = await storeOf(data, async (store, kv) => ({
      horizon: await store.snapshots.horizon("team"),
      kept: await store.entries("team", await store.snapshots.horizon("team"), 10_000),
      below: await kv.range({ gte: K.authEntryPrefix("team"), lt: K.authEntry("team", horizon + 1) }),
      bytes: await recordBytes(kv, "team"),
    }))
    expect(after.horizon).toBe(horizon)
    expect(after.below).toEqual([])
    expect(after.kept.map((e) => e.seq)).toEqual(Array.from({ length: seq - horizon }, (_, i) => horizon + 1 + i))
    expect(after.bytes.log).toBeLessThan(logBefore.log / 10)
    expect(after.bytes.log).toBeGreaterThanOrEqual(4096)

    // A fresh hub on the directory: the same head and state, loaded from the snapshot.
    const fresh = await startSnapshotHub(data, [Board])
    try {
      const doc = await fresh.hub.doc("team", Board)
      expect(doc.headSeq).toBe(seq)
      expect(doc.stateHash()).toBe(hash)
      expect(doc.latestSnapshot?.seq).toBe(seq)
      expect(doc.compactedThrough).toBe(horizon)
      // The laggard, at seq 10 behind a horizon near 1,500, converges through a snapshot stream.
      const back = await CanonClient.open({ transport: wsClientTransport(fresh.syncUrl), runtime: systemRuntime, storage: laggardStore, autoConnect: false })
      try {
        const d = await back.open(Board, "team")
        expect(d.confirmedSeq).toBe(10)
        const streamed: number[] = []
        d.on("snapshot", (p) => streamed.push(p.seq))
        back.connect()
        const end = Date.now() + 20_000
        while (d.confirmedSeq !== seq && Date.now() < end) await new Promise((res) => setTimeout(res, 20))
        expect(d.confirmedSeq).toBe(seq)
        expect(d.confirmedHash()).toBe(hash)
        expect(streamed).toContain(seq)
      } finally {
        await back.close()
      }
    } finally {
      await fresh.close()
      await laggardStore.close()
    }
    // inspect agrees: compacted, replayed from the snapshot, every check passes.
    const i = capture()
    expect(await inspect(data, "team", undefined, i.out)).toBe(0)
    expect(i.lines.join("\n")).toContain(`from the snapshot at seq 1,510`)
  }, 90_000)

  test("without --machines it compacts behind an existing snapshot and says why it leaves the others", async () => {
    const data = join(dir, "data")
    // The hub snapshots but never compacts (an infinite tail): "team" has snapshots, "small" has none.
    const heads = await fillWith(data, { team: 600, small: 30 }, { ...SMALL, tailBytes: Infinity })
    expect(heads.team!.snapshot).toBeGreaterThan(0)
    expect(heads.team!.horizon).toBe(0)
    expect(heads.small!.snapshot).toBeUndefined()
    const r = capture()
    expect(await compact({ dir: data, docId: undefined, machines: undefined, tailBytes: 1024 }, r.out)).toBe(1)
    const n = (x: number) => x.toLocaleString("en-US")
    const snap = heads.team!.snapshot!
    expect(r.lines).toContainEqual(expect.stringMatching(new RegExp(`^team: compacted through seq [\\d,]+: 600 entries -> \\d+,`)))
    if (snap < heads.team!.seq) {
      expect(r.lines).toContain(`team: compacted behind its snapshot at seq ${n(snap)}, older than its head (seq ${n(heads.team!.seq)}): pass --machines with the module that exports "board" (the one canon serve runs) to take one at the head and compact further.`)
    }
    expect(r.lines).toContain(`small: not compacted: it has no snapshot that verifies, and a snapshot at its head (seq 30) is taken by replaying its log, which needs its machine: pass --machines with the module that exports "board" (the one canon serve runs).`)
    // The compacted document still loads to the same state; the other is untouched.
    const fresh = await startSnapshotHub(data, [Board])
    try {
      expect((await fresh.hub.doc("team", Board)).stateHash()).toBe(heads.team!.hash)
      expect((await fresh.hub.doc("team", Board)).compactedThrough).toBeGreaterThan(0)
      expect((await fresh.hub.doc("small", Board)).compactedThrough).toBe(0)
    } finally {
      await fresh.close()
    }
    // Run again: nothing is left to do for "team" behind the same snapshot.
    const again = capture()
    expect(await compact({ dir: data, docId: "team", machines: undefined, tailBytes: 1024 }, again.out)).toBe(snap < heads.team!.seq ? 1 : 0)
  }, 60_000)

  test("refuses a directory a running hub holds, with inspect's sentence, and writes nothing", async () => {
    const data = join(dir, "data")
    await fill(data, 5)
    const h = await startSnapshotHub(data, [Board])
    try {
      const r = capture()
      expect(await compact({ dir: data, docId: undefined, machines: "apps/demo/board.ts", tailBytes: 0 }, r.out)).toBe(2)
      expect(r.lines).toEqual([inUseSentence(data)])
      const i = capture()
      expect(await inspect(data, undefined, undefined, i.out)).toBe(2)
      expect(i.lines).toEqual(r.lines)
    } finally {
      await h.close()
    }
    const nowhere = capture()
    expect(await compact({ dir: join(dir, "nope"), docId: undefined, machines: undefined, tailBytes: 0 }, nowhere.out)).toBe(2)
    expect(existsSync(join(dir, "nope"))).toBe(false)
  }, 60_000)

  test("as a command: its usage, and progress as plain lines when stderr is not a terminal", async () => {
    const help = await run(["compact", "--help"])
    expect(help.code).toBe(0)
    expect(help.out).toMatch(/^Usage: canon compact DATA \[docId\] \[--machines MODULE\] \[--tail-bytes N\]/)
    const data = join(dir, "data")
    await fillWith(data, { team: 1200 }, undefined)
    const r = await run(["compact", data, "--machines", "apps/demo/board.ts", "--tail-bytes", "0"])
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/^team: replaying 100% \(1,200\/1,200\)$/m)
    expect(r.out).toMatch(/^team: deleting entries 100% \(1,199\/1,199\)$/m)
    expect(r.out).toMatch(/^team: compacted through seq 1,199: 1,200 entries -> 1,/m)
    expect(r.out).not.toMatch(/\r/)
  }, 60_000)
})

test("compact's arguments: its own usage, --tail-bytes checked, unknown options named", () => {
  expect(parseCompactArgs(["--help"])).toBe("help")
  expect(COMPACT_USAGE).toMatch(/^Usage: canon compact DATA \[docId\]/)
  expect(parseCompactArgs(["./data"])).toEqual({ dir: "./data", docId: undefined, machines: undefined, tailBytes: DEFAULT_TAIL_BYTES })
  expect(parseCompactArgs(["./data", "team", "--machines", "m.ts", "--tail-bytes=100"])).toEqual({ dir: "./data", docId: "team", machines: "m.ts", tailBytes: 100 })
  expect(() => parseCompactArgs(["./data", "--tail-bytes", "lots"])).toThrow(/^--tail-bytes must be a whole number of bytes, not "lots"\./)
  expect(() => parseCompactArgs(["./data", "--bogus"])).toThrow(/^Unknown option --bogus\./)
  expect(() => parseCompactArgs([])).toThrow(/^Which data directory\?/)
  expect(() => parseCompactArgs(["a", "b", "c"])).toThrow(/^Unexpected argument "c"/)
})

test("progress: a bar redrawn in place on a terminal, a plain line per quarter elsewhere, nothing for small work", () => {
  const written = (tty: boolean) => {
    const out: string[] = []
    const p = progressReporter({ isTTY: tty, write: (t) => out.push(t) }, 100)
    for (let i = 0; i <= 1000; i += 100) p(i, 1000, "doc")
    p(5, 10, "small")
    return out
  }
  const bar = written(true)
  expect(bar).toHaveLength(12)
  expect(bar[5]).toBe("\rdoc [###############               ] 50% 500/1,000")
  expect(bar.at(-1)).toBe("\n")
  expect(written(false)).toEqual(["doc 0% (0/1,000)\n", "doc 30% (300/1,000)\n", "doc 50% (500/1,000)\n", "doc 80% (800/1,000)\n", "doc 100% (1,000/1,000)\n"])
})

test("relative paths on the command line are the invoking directory's (INIT_CWD under npm), for --data and --machines", () => {
  expect(parseConfig(["--data", "x", "--machines", "m.ts"], { INIT_CWD: "/home/me/app" }, "canon serve")).toMatchObject({ dataDir: "/home/me/app/x", machines: "/home/me/app/m.ts" })
  expect(parseConfig(["--data", "/abs/x"], { INIT_CWD: "/home/me/app" })).toMatchObject({ dataDir: "/abs/x" })
  expect(parseConfig([], { INIT_CWD: "/home/me/app" })).toMatchObject({ dataDir: "/home/me/app/data" })
})

test("npm run canon -- serve, from an app's own directory, with its machines module importing \"canon\" and relative paths", async () => {
  // A newcomer's run: `Cannot find module '/work/main/my-machines.ts'` (npm runs scripts in the
  // package's root), then `Cannot find module '.../dist/core/index.js'` (no build in a checkout).
  const app = join(dir, "my-app")
  mkdirSync(app, { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module" }))
  // Its dependencies, as `npm install ../canon effect` would link them.
  const root = process.cwd()
  mkdirSync(join(app, "node_modules"))
  symlinkSync(root, join(app, "node_modules", "canon"), "dir")
  symlinkSync(join(root, "node_modules", "effect"), join(app, "node_modules", "effect"), "dir")
  writeFileSync(join(app, "my-machines.ts"), [
    `import * as Schema from "effect/Schema"`,
    `import { defineMachine } from "canon"`,
    `export const Notes = defineMachine({ name: "notes", version: 1, initial: () => ({ n: 0 }),`,
    `  commands: { bump: { args: Schema.Struct({}), apply: (s) => { s.n++ } } } })`,
  ].join("\n"))
  // A group of its own: npm does not pass SIGTERM on to the hub it started, which then ran on
  // after every test run (found among the machine's processes, its parent gone).
  const child = spawn("npm", ["--prefix", root, "run", "--silent", "canon", "--", "serve", "--machines", "./my-machines.ts", "--data", "./data", "--port", "0"], { cwd: app, env: { ...process.env, INIT_CWD: app }, detached: true })
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // Gone already.
    }
  }
  let out = ""
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
  const killer = setTimeout(() => group("SIGKILL"), 25_000)
  child.stdout.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr.on("data", (d: Buffer) => (out += d.toString()))
  for (const end = Date.now() + 20_000; !/data: /.test(out) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50))
  group("SIGTERM")
  await exited
  clearTimeout(killer)
  // The hub itself is gone too: its port no longer answers.
  const url = /Canon hub on (http:\/\/\S+)/.exec(out)?.[1]
  expect(url).toBeDefined()
  let answered = true
  for (let i = 0; i < 100 && answered; i++) {
    answered = await fetch(url!).then(() => true, () => false)
    if (answered) await new Promise((r) => setTimeout(r, 50))
  }
  expect(answered).toBe(false)
  expect(out).toMatch(/machines: notes v1/)
  expect(out).toContain(`data:     ${join(app, "data")}`)
  expect(existsSync(join(app, "data"))).toBe(true)
}, 40_000)

/**
 * What the `snapshots` suite's parts share: a machine whose state grows by the bytes its
 * commands carry (`Notes`), the deterministic content both Canon and Yjs hold in the join
 * storm, building a hub's LevelDB store through the real authority (so snapshots and
 * compaction happen as a running hub does them), and hub child processes driven over IPC
 * (bench/snapshots-hub.ts, bench/snapshots-yws.ts; their side is bench/snapshots-ipc.ts).
 */
import { fork, type ChildProcess } from "node:child_process"
import { mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import * as Schema from "effect/Schema"
import { Hub, defineMachine, type HubOptions, type KVStore, type Machine, type Submit } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { CollectingConnection } from "./collecting-connection.js"
import { check, now } from "./harness.js"
import { deadline, sleep } from "./wire-util.js"

export const DOC = "bench-notes"
export const CLIENT = "bench-writer"

/** Notes by id: a state that holds what its commands carry (1 KiB notes make a 100 MB state of ~100k notes). */
export const Notes = defineMachine({
  name: "bench-notes",
  version: 1,
  initial: () => ({ notes: {} as Record<string, string> }),
  commands: {
    put: {
      args: Schema.Struct({ id: Schema.String, text: Schema.String }),
      apply: (s, a) => {
        s.notes[a.id] = a.text
      },
    },
  },
})

export type NotesState = { notes: Record<string, string> }

export { noteId, noteText, notesFor, mib } from "./snapshots-content.js"

/** A Submit message of commands `first`.. of `make`. */
const submitOf = (first: number, count: number, make: (i: number) => { name: string; args: unknown }, acked: number): Submit => {
  const commands = []
  for (let k = 0; k < count; k++) {
    const { name, args } = make(first + k)
    commands.push({ clientSeq: first + k + 1, name, args })
  }
  return { type: "submit", docId: DOC, commands, ackedClientSeq: acked }
}

export interface BuiltStore {
  readonly head: number
  readonly hash: string
  readonly stateBytes: number
  readonly snapshotSeq: number
  readonly horizon: number
  readonly ms: number
}

/**
 * Writes `count` commands through a Hub (DocAuthority + AuthorityStore on LevelStorage in
 * `dir`, fsync off while building) in group commits of `batch`, so the snapshot policy in
 * `options` acts as it does on a running hub; then, if `finalSnapshot`, takes a snapshot at
 * the head and waits until the log behind it is compacted (a document gone quiet).
 */
export const buildStore = async (
  dir: string,
  machine: Machine<any, any>,
  make: (i: number) => { name: string; args: unknown },
  count: number,
  o: { readonly batch: number; readonly hub?: Partial<HubOptions>; readonly finalSnapshot: boolean },
): Promise<BuiltStore> => {
  const t0 = now()
  const storage = await LevelStorage.open(dir)
  const hub = new Hub({ machines: [machine], storage, runtime: systemRuntime, sync: false, ...o.hub })
  const doc = await hub.doc(DOC, machine)
  const conn = new CollectingConnection()
  doc.subscribe(conn, CLIENT, 0, 0)
  for (let first = 0; first < count; first += o.batch) {
    const n = Math.min(o.batch, count - first)
    const done = conn.nextResults()
    doc.submit(conn, CLIENT, submitOf(first, n, make, first))
    await deadline(done, 120_000, "a group commit while building a store")
  }
  check(conn.errors.length === 0 && doc.headSeq === count, `the store holds ${count} entries (head ${doc.headSeq}; ${conn.errors.join("; ")})`)
  if (o.finalSnapshot) {
    const meta = await doc.snapshotNow()
    check(meta.seq === count, `the final snapshot is at the head (${meta.seq})`)
    await compacted(storage, doc, meta, o.hub?.snapshots?.tailBytes)
  } else {
    // Let a snapshot the policy started (and the compaction behind it) finish before closing.
    let last = doc.latestSnapshot?.seq
    for (;;) {
      await sleep(100)
      if (doc.latestSnapshot?.seq === last) break
      last = doc.latestSnapshot?.seq
    }
    if (doc.compactedThrough > 0) await compacted(storage, doc)
  }
  const store = new AuthorityStore(storage)
  const out: BuiltStore = {
    head: doc.headSeq, hash: doc.stateHash(), stateBytes: doc.latestSnapshot?.size ?? 0, snapshotSeq: doc.latestSnapshot?.seq ?? 0,
    horizon: await store.snapshots.horizon(DOC), ms: now() - t0,
  }
  await hub.close()
  await storage.close()
  return out
}

/**
 * Waits until the entries at or below the document's horizon are deleted (compaction runs in
 * the background). With `behind` (a snapshot just taken), first until the horizon reaches
 * where compaction behind that snapshot goes (the policy's tail: min(tailBytes, its size)).
 */
export const compacted = async (kv: KVStore, doc: { compactedThrough: number }, behind?: { seq: number; size: number }, tailBytes = 64 << 10): Promise<void> => {
  const store = new AuthorityStore(kv)
  const end = now() + 120_000
  const target = behind !== undefined ? await store.horizonFor(DOC, behind.seq, Math.min(tailBytes, behind.size)) : 0
  for (;;) {
    const horizon = doc.compactedThrough
    if (horizon > 0 && horizon >= target && (await store.snapshots.deletedThrough(DOC)) >= horizon) return
    if (now() > end) throw new Error("timed out waiting for compaction")
    await sleep(5)
  }
}

// ---- hub child processes ----

const root = fileURLToPath(new URL("../", import.meta.url))
const bundles = new Map<string, Promise<string>>()

/**
 * `script` (relative to bench/) bundled with esbuild into one ES module under
 * node_modules/.cache/canon-bench/ (so its packages, left external, resolve as from the
 * project), once per process.
 */
export const bundled = (script: string): Promise<string> => {
  let p = bundles.get(script)
  if (p === undefined) {
    const entry = fileURLToPath(new URL(script, import.meta.url))
    const outDir = `${root}node_modules/.cache/canon-bench/`
    const outfile = `${outDir}${script.replace(/^.*\//, "").replace(/\.ts$/, "")}.mjs`
    mkdirSync(outDir, { recursive: true })
    p = build({ entryPoints: [entry], outfile, bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", logLevel: "error" }).then(() => outfile)
    bundles.set(script, p)
  }
  return p
}

/** What a hub child reports when it is ready (and on `mark`). */
export interface ChildReady {
  readonly url: string
  /** RSS with the document loaded, after GC. */
  readonly rss: number
  readonly hash?: string
  readonly head?: number
  readonly loadMs?: number
}

/** A hub in its own process (bench/snapshots-hub.ts or bench/snapshots-yws.ts), driven over IPC. */
export class HubChild {
  private readonly waiting = new Map<number, (v: unknown) => void>()
  private nextId = 1
  private stderr = ""
  private exited: string | undefined

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000)
    })
    child.on("message", (m: { id: number; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id)
      this.waiting.delete(m.id)
      w?.(m.error !== undefined ? new Error(`hub child: ${m.error}`) : m.value)
    })
    child.on("exit", (code, signal) => {
      this.exited = `exited with ${code ?? signal}`
      for (const w of this.waiting.values()) w(new Error(`hub child ${this.exited}\n${this.stderr}`))
      this.waiting.clear()
    })
  }

  /**
   * Starts `script` (a bench/ module) with `spec`; resolves once it says it is ready. The
   * script runs as plain JavaScript (bundled by `bundled`), not through tsx, whose loader
   * alone holds ~40 MB of RSS: the hubs' memory figures are the engines', not the loader's.
   */
  static async start(script: string, spec: Record<string, unknown>, extraArgv: ReadonlyArray<string> = []): Promise<{ child: HubChild; ready: ChildReady }> {
    const child = new HubChild(fork(await bundled(script), [JSON.stringify(spec)], {
      execArgv: ["--expose-gc", "--no-flush-bytecode", ...extraArgv],
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    }))
    const ready = (await child.call("ready", {}, 600_000)) as ChildReady
    return { child, ready }
  }

  call(op: string, args: Record<string, unknown> = {}, ms = 600_000): Promise<unknown> {
    if (this.exited !== undefined) return Promise.reject(new Error(`hub child ${this.exited}\n${this.stderr}`))
    const id = this.nextId++
    const p = new Promise<unknown>((resolve, reject) => {
      this.waiting.set(id, (v) => (v instanceof Error ? reject(v) : resolve(v)))
    })
    this.child.send({ id, op, ...args })
    return deadline(p, ms, `hub child "${op}"`)
  }

  /** GC in the child, then its RSS becomes the baseline and the peak sampler restarts from it. */
  mark(): Promise<{ rss: number }> {
    return this.call("mark") as Promise<{ rss: number }>
  }

  /** The peak RSS since `mark` (sampled every 2 ms by a worker thread) and the RSS now. */
  peak(): Promise<{ peak: number; rss: number; samples: number }> {
    return this.call("peak") as Promise<{ peak: number; rss: number; samples: number }>
  }

  /** The child's process CPU (user + system) in ms since it started. */
  async cpu(): Promise<number> {
    return ((await this.call("cpu")) as { ms: number }).ms
  }

  async stop(): Promise<void> {
    if (this.exited !== undefined) return
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()))
    this.child.send({ id: 0, op: "exit" })
    await deadline(gone, 20_000, "the hub child to exit").catch(() => {
      this.child.kill("SIGKILL")
    })
  }
}

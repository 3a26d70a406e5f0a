/**
 * Storage format versioning and the migration on open (core/store/format.ts, migration.ts,
 * migrate-client-records.ts), on both storages (memory, LevelDB reopened as a restarted
 * process would):
 *
 * - the runner: a fresh store is stamped, steps run in order and the format is bumped only
 *   after each finishes, a newer format is refused untouched, a failing step is a typed error
 *   with a sentence and leaves the old format (opening again resumes), read-only opens;
 * - the real step 1 -> 2 on a store written in the format-1 layout (test/support/format1-layout.ts):
 *   every head, entry, checkpoint and replica record (outbox included) is still there byte
 *   for byte, every idempotency record became the mark and runs the client table's own
 *   conversion makes, the hub loads the same state hash and answers old retries with the
 *   stored outcomes;
 * - a migration cut off at every batch (the store failing there) finishes on the next open
 *   with exactly the records of an uninterrupted one. Real kill -9: storage-format-crash.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { Hub, encodeCanonical, hashState, type BatchOp, type BatchOptions, type Connection, type KVStore, type Outcome, type RangeOptions, type ServerMessage } from "../core/index.js"
import { AuthorityStore, ReplicaStore } from "../core/internal.js"
import { ClientTable } from "../core/authority/client-table.js"
import * as K from "../core/store/keys.js"
import { STORAGE_FORMAT, readFormat } from "../core/store/format.js"
import { MIGRATIONS, ensureFormat } from "../core/store/migrations.js"
import { type MigrationEvent, type MigrationStep, runMigrations } from "../core/store/migration.js"
import { SLICE } from "../core/store/migrate-client-records.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { Counter } from "./support/machines.js"
import { canonErrorOf } from "./support/errors.js"
import { F1, type F1Doc, type F1Replica, bigFormat1Docs, docOps, replicaOps, writeFormat1 } from "./support/format1-layout.js"

interface Fixture {
  kv: KVStore
  reopen(): Promise<KVStore>
  /** A second, empty store of the same kind. */
  another(): Promise<KVStore>
  dispose(): Promise<void>
}

const adapters: Array<[string, () => Promise<Fixture>]> = [
  ["memory", async () => {
    const kv = new MemoryStorage()
    return { kv, reopen: async () => kv, another: async () => new MemoryStorage(), dispose: async () => {} }
  }],
  ["level", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "canon-format-"))
    const location = path.join(dir, "db")
    const others: KVStore[] = []
    const fx: Fixture = {
      kv: await LevelStorage.open(location),
      reopen: async () => {
        await fx.kv.close()
        fx.kv = await LevelStorage.open(location)
        return fx.kv
      },
      another: async () => {
        const kv = await LevelStorage.open(path.join(dir, `other-${others.length}`))
        others.push(kv)
        return kv
      },
      dispose: async () => {
        await fx.kv.close().catch(() => {})
        for (const o of others) await o.close().catch(() => {})
        rmSync(dir, { recursive: true, force: true })
      },
    }
    return fx
  }],
]

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const dump = async (kv: KVStore, gte?: Uint8Array, lt?: Uint8Array): Promise<string[]> =>
  (await kv.range({ ...(gte ? { gte } : {}), ...(lt ? { lt } : {}) })).map(([k, v]) => `${hex(k)}=${hex(v)}`)
const span = (a: number, b: number): [Uint8Array, Uint8Array] => [Uint8Array.of(a, b), Uint8Array.of(a, b + 1)]
const LEGACY = span(0x61, 0x63)
const MARKS = span(0x61, 0x77)
const RUNS = span(0x61, 0x6f)
/** Everything but the idempotency records (format 1's, and marks and runs) and the format key. */
const untouched = async (kv: KVStore): Promise<string[]> => {
  const skip = [LEGACY, MARKS, RUNS].map(([lo]) => hex(lo))
  return (await dump(kv)).filter((row) => !row.startsWith("00") && !skip.some((p) => row.startsWith(p)))
}

/** A KVStore that fails its `failAt`-th batch (1-based): a store that breaks mid-migration. */
class FailingKV implements KVStore {
  batches = 0
  constructor(private readonly kv: KVStore, private readonly failAt: number) {}
  get(key: Uint8Array) { return this.kv.get(key) }
  range(o: RangeOptions) { return this.kv.range(o) }
  close() { return Promise.resolve() }
  batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void> {
    if (++this.batches === this.failAt) return Promise.reject(new Error("disk full (injected)"))
    return this.kv.batch(ops, options)
  }
}

// ---- the format-1 fixture: two Counter documents, their clients' records, a replica ----

const alphaEntries = [
  { seq: 1, time: 1000, clientId: "c1", clientSeq: 1, name: "incr", args: { by: 1 } },
  { seq: 2, time: 1001, clientId: "c2", clientSeq: 1, name: "incr", args: { by: 2 } },
  { seq: 3, time: 1002, clientId: "c1", clientSeq: 2, name: "incr", args: { by: 3 } },
  { seq: 4, time: 1003, clientId: "c2", clientSeq: 2, name: "incr", args: { by: 4 } },
  // c1's clientSeq 3 was rejected.
  { seq: 5, time: 1004, clientId: "c1", clientSeq: 4, name: "incr", args: { by: 5 } },
  { seq: 6, time: 1005, clientId: "c3", clientSeq: 1, name: "incr", args: { by: 6 } },
]
const ALPHA_HASH = hashState({ value: 21 })
const fixtureDocs: F1Doc[] = [
  {
    docId: "alpha", machine: "counter", version: 1, entries: alphaEntries, checkpoint: { seq: 6, hash: ALPHA_HASH },
    clients: [
      { clientId: "c1", last: 4, acked: 1, outcomes: [{ clientSeq: 2, seq: 3 }, { clientSeq: 3, code: "rejected", message: "Too big." }, { clientSeq: 4, seq: 5 }] },
      { clientId: "c2", last: 2, acked: 2, outcomes: [] },
      { clientId: "c3", last: 1, acked: 0, outcomes: [{ clientSeq: 1, seq: 6 }] },
    ],
  },
  {
    docId: "beta", machine: "counter", version: 1,
    entries: [1, 2, 3].map((i) => ({ seq: i, time: 2000 + i, clientId: "c1", clientSeq: i, name: "incr", args: { by: 10 } })),
    clients: [{ clientId: "c1", last: 3, acked: 0, outcomes: [1, 2, 3].map((i) => ({ clientSeq: i, seq: i })) }],
  },
]
const fixtureReplica: F1Replica = {
  clientId: "c1",
  docs: [{
    docId: "alpha", machine: "counter", version: 1, confirmedSeq: 4, nextClientSeq: 7,
    snapshot: { seq: 2, state: encodeCanonical({ value: 3 }) },
    entries: alphaEntries.slice(2, 4),
    outbox: [{ clientSeq: 5, name: "incr", args: { by: 7 } }, { clientSeq: 6, name: "incr", args: { by: 8 } }],
  }],
}

/** A hub-side connection that keeps every outcome it is sent. */
class Collector implements Connection<ServerMessage> {
  readonly bufferedAmount = 0
  readonly outcomes: Outcome[] = []
  readonly errors: string[] = []
  private waiting: Array<() => void> = []
  send(m: ServerMessage): void {
    if (m.type === "results") this.outcomes.push(...m.outcomes)
    else if (m.type === "error") this.errors.push(m.message)
    for (const w of this.waiting.splice(0)) w()
  }
  close(): void {}
  next(): Promise<void> {
    return new Promise((r) => this.waiting.push(r))
  }
}

const events = (): { list: MigrationEvent[]; onMigration: (e: MigrationEvent) => void } => {
  const list: MigrationEvent[] = []
  return { list, onMigration: (e) => list.push(e) }
}

/** A synthetic step that moves "x" <n> records to "y" <n> in slices of 2, each one batch. */
const moveStep = (from: number, prefixFrom: number, prefixTo: number): MigrationStep => ({
  from, to: from + 1, what: `move ${String.fromCharCode(prefixFrom)} to ${String.fromCharCode(prefixTo)}`, readableBefore: false,
  async run(kv, progress) {
    let done = 0
    for (;;) {
      const rows = await kv.range({ gte: Uint8Array.of(prefixFrom), lt: Uint8Array.of(prefixFrom + 1), limit: 2 })
      if (rows.length === 0) return
      await kv.batch(rows.flatMap(([k, v]): BatchOp[] => [{ type: "del", key: k }, { type: "put", key: Uint8Array.of(prefixTo, ...k.subarray(1)), value: v }]))
      progress((done += rows.length))
    }
  },
})

describe.each(adapters)("storage format over %s", (_name, make) => {
  let fx: Fixture
  beforeEach(async () => {
    fx = await make()
  })
  afterEach(async () => {
    await fx.dispose()
  })

  describe("the migration runner", () => {
    const X = 0x78
    const Y = 0x79
    const Z = 0x7a
    const steps = [moveStep(1, X, Y), moveStep(2, Y, Z)]
    const seedX = async (kv: KVStore, n: number, format = 1) => {
      await kv.batch([{ type: "put", key: K.formatKey, value: encodeCanonical(format) }])
      await kv.batch(Array.from({ length: n }, (_, i): BatchOp => ({ type: "put", key: Uint8Array.of(X, i), value: Uint8Array.of(i * 3) })))
    }

    it("the real list is contiguous from format 1 to STORAGE_FORMAT", () => {
      expect(MIGRATIONS.map((s) => [s.from, s.to])).toEqual(Array.from({ length: STORAGE_FORMAT - 1 }, (_, i) => [i + 1, i + 2]))
    })

    it("a fresh store is stamped with the target and nothing runs", async () => {
      const ev = events()
      await runMigrations(fx.kv, steps, 3, ev)
      expect(await readFormat(await fx.reopen())).toBe(3)
      expect(ev.list).toEqual([])
    })

    it("runs every step from the stored format, in order, bumping the format after each one", async () => {
      await seedX(fx.kv, 5)
      const ev = events()
      await runMigrations(fx.kv, steps, 3, ev)
      const kv = await fx.reopen()
      expect(await readFormat(kv)).toBe(3)
      expect(await dump(kv, Uint8Array.of(X), Uint8Array.of(Z + 1))).toEqual(Array.from({ length: 5 }, (_, i) => `${hex(Uint8Array.of(Z, i))}=${hex(Uint8Array.of(i * 3))}`))
      expect(ev.list.filter((e) => e.type !== "migration-progress")).toEqual([
        { type: "migration-started", from: 1, to: 2, what: "move x to y" }, { type: "migration-finished", from: 1, to: 2, records: 5 },
        { type: "migration-started", from: 2, to: 3, what: "move y to z" }, { type: "migration-finished", from: 2, to: 3, records: 5 },
      ])
      expect(ev.list.filter((e) => e.type === "migration-progress" && e.from === 1).map((e) => "records" in e && e.records)).toEqual([2, 4, 5])
      // A store at format 2 runs only the second step.
      await seedX(kv, 2, 2)
      await kv.batch([{ type: "put", key: Uint8Array.of(Y, 9), value: Uint8Array.of(1) }])
      const ev2 = events()
      await runMigrations(kv, steps, 3, ev2)
      expect(ev2.list.filter((e) => e.type === "migration-started").map((e) => e.from)).toEqual([2])
      expect(await kv.get(Uint8Array.of(Z, 9))).toEqual(Uint8Array.of(1))
      expect(await kv.get(Uint8Array.of(X, 0))).toEqual(Uint8Array.of(0))
    })

    it("a failing step is a typed error with a sentence; the format stays; opening again resumes and finishes", async () => {
      await seedX(fx.kv, 7)
      const failing = new FailingKV(fx.kv, 3)
      const e = await canonErrorOf(runMigrations(failing, steps, 3))
      expect(e.code).toBe("storage-failed")
      expect(e.message).toBe("Migrating the store from format 1 to 2 (move x to y) failed: disk full (injected). Nothing was lost: the records " +
        "converted so far are whole and the rest are still in format 1. Fix the cause and open the store again; the migration resumes where it stopped.")
      const kv = await fx.reopen()
      expect(await readFormat(kv)).toBe(1)
      expect((await kv.range({ gte: Uint8Array.of(Y), lt: Uint8Array.of(Y + 1) })).length).toBe(4)
      await runMigrations(kv, steps, 3)
      expect(await readFormat(kv)).toBe(3)
      expect((await kv.range({ gte: Uint8Array.of(Z), lt: Uint8Array.of(Z + 1) })).length).toBe(7)
      expect((await kv.range({ gte: Uint8Array.of(X), lt: Uint8Array.of(Z) })).length).toBe(0)

      // Failing in the second step (step 1: 4 slices and its format bump, then step 2's 2nd slice):
      // the store says 2, the first step is not run again.
      await seedX(kv, 7)
      const e2 = await canonErrorOf(runMigrations(new FailingKV(kv, 7), steps, 3))
      expect(e2.message).toMatch(/^Migrating the store from format 2 to 3 \(move y to z\) failed: disk full/)
      expect(await readFormat(kv)).toBe(2)
      const ev = events()
      await runMigrations(kv, steps, 3, ev)
      expect(ev.list.filter((x) => x.type === "migration-started").map((x) => x.from)).toEqual([2])
      expect(await readFormat(kv)).toBe(3)
    })

    it("a newer format is refused with storage-too-new and the store is left untouched", async () => {
      await seedX(fx.kv, 3, 4)
      const before = await dump(fx.kv)
      const e = await canonErrorOf(runMigrations(fx.kv, steps, 3))
      expect(e.code).toBe("storage-too-new")
      expect(e.message).toBe("The store was written by a newer Canon (format 4; this build reads up to 3). Upgrade Canon to open it.")
      expect(await dump(await fx.reopen())).toEqual(before)
    })

    it("a format this build has no step from is refused, untouched", async () => {
      await seedX(fx.kv, 3, 1)
      const before = await dump(fx.kv)
      const e = await canonErrorOf(runMigrations(fx.kv, [steps[1]!], 3))
      expect(e.code).toBe("storage-failed")
      expect(e.message).toMatch(/^This build has no migration from storage format 1 to 2; it cannot open a format-1 store\./)
      expect(await dump(fx.kv)).toEqual(before)
    })

    it("read-only: an older store opens unmigrated only when every pending step allows it; a fresh one is not stamped", async () => {
      await seedX(fx.kv, 3, 1)
      const before = await dump(fx.kv)
      const e = await canonErrorOf(runMigrations(fx.kv, steps, 3, { readOnly: true }))
      expect(e.code).toBe("storage-failed")
      expect(e.message).toMatch(/which a read-only open cannot do\. Start the hub on it once/)
      await runMigrations(fx.kv, [{ ...steps[0]!, readableBefore: true }, { ...steps[1]!, readableBefore: true }], 3, { readOnly: true })
      expect(await dump(fx.kv)).toEqual(before)
      const empty = await fx.another()
      await runMigrations(empty, steps, 3, { readOnly: true })
      expect(await dump(empty)).toEqual([])
    })

    // A hub opens its store once for all its documents: a failure kept would fail every load
    // until a restart, where the error's sentence promises that opening again resumes.
    it("an open that failed (a transient read error) is tried again by the next call, by a hub's next load too", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      let failing = 1
      const flaky: KVStore = Object.assign(Object.create(fx.kv) as KVStore, {
        get: (key: Uint8Array) => (failing-- > 0 ? Promise.reject(new Error("EIO: the disk hiccuped")) : fx.kv.get(key)),
      })
      const store = new AuthorityStore(flaky)
      await expect(store.head("alpha")).rejects.toThrow("EIO")
      expect(await store.head("alpha")).toBeDefined()
      expect(await readFormat(fx.kv)).toBe(STORAGE_FORMAT)
      failing = 1
      const hub = new Hub({ machines: [Counter], storage: Object.assign(Object.create(await fx.another()) as KVStore, { get: flaky.get }), runtime: new VirtualRuntime(1) })
      await expect(hub.doc("fresh", Counter)).rejects.toThrow()
      expect((await hub.doc("fresh", Counter)).headSeq).toBe(0)
      await hub.close()
    })

    it("two stores opened on one KVStore run one migration", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const ev = events()
      await Promise.all([ensureFormat(fx.kv, ev), ensureFormat(fx.kv, ev), new AuthorityStore(fx.kv, ev).head("alpha")])
      expect(ev.list.filter((e) => e.type === "migration-started")).toHaveLength(1)
      expect(await readFormat(fx.kv)).toBe(STORAGE_FORMAT)
    })
  })

  describe("format 1 -> 2: idempotency records to marks and outcome runs", () => {
    it("a format-1 store opens at format 2 with every head, entry, checkpoint and replica record (outbox included) kept", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const replicaKv = await fx.another()
      await writeFormat1(replicaKv, replicaOps(fixtureReplica))
      const keptBefore = await untouched(fx.kv)
      const replicaBefore = await dump(replicaKv)
      expect(keptBefore.length).toBe(6 + 3 + 2 + 1) // 9 entries, 2 heads, 1 checkpoint

      const ev = events()
      const store = new AuthorityStore(await fx.reopen(), ev)
      expect(await store.head("alpha")).toEqual({ machine: "counter", version: 1, seq: 6, lastTime: 1005, checkpoint: { seq: 6, hash: ALPHA_HASH } })
      expect(ev.list.map((e) => e.type)).toEqual(["migration-started", "migration-progress", "migration-finished"])
      expect(ev.list[2]).toEqual({ type: "migration-finished", from: 1, to: 2, records: 4 })

      const kv = await fx.reopen()
      expect(await readFormat(kv)).toBe(2)
      expect(await dump(kv, ...LEGACY)).toEqual([])
      expect(await untouched(kv)).toEqual(keptBefore)
      const again = new AuthorityStore(kv)
      expect(await again.entries("alpha", 0, 100)).toEqual(alphaEntries)
      expect(await again.checkpoints("alpha")).toEqual([{ seq: 6, hash: ALPHA_HASH }])

      // c1 on alpha: acked 1, outcomes 2..4 kept, one of them a rejection.
      expect(await again.mark("alpha", "c1")).toEqual({ last: 4, acked: 1, evictedThrough: 1, evictedBound: 5, incarnation: 0 })
      expect(await again.runs("alpha", "c1")).toEqual([{ first: 2, incarnation: 0, outcomes: [
        { hash: 0, seq: 3 }, { hash: 0, rejection: { code: "rejected", message: "Too big." } }, { hash: 0, seq: 5 },
      ] }])
      expect(await again.mark("alpha", "c2")).toEqual({ last: 2, acked: 2, evictedThrough: 2, evictedBound: 0, incarnation: 0 })
      expect(await again.runs("alpha", "c2")).toEqual([])
      expect(await again.mark("beta", "c1")).toEqual({ last: 3, acked: 0, evictedThrough: 0, evictedBound: 3, incarnation: 0 })

      const replica = new ReplicaStore(replicaKv)
      const loaded = await replica.load("alpha")
      expect(await readFormat(replicaKv)).toBe(2)
      expect(loaded?.meta).toEqual({ machine: "counter", version: 1, confirmedSeq: 4, nextClientSeq: 7 })
      expect(loaded?.snapshot).toEqual({ seq: 2, state: encodeCanonical({ value: 3 }) })
      expect(loaded?.entries).toEqual(alphaEntries.slice(2, 4))
      expect(loaded?.outbox).toEqual([{ clientSeq: 5, name: "incr", args: { by: 7 } }, { clientSeq: 6, name: "incr", args: { by: 8 } }])
      expect(await replica.clientId()).toBe("c1")
      expect((await dump(replicaKv)).filter((r) => !r.startsWith("00"))).toEqual(replicaBefore.filter((r) => !r.startsWith("00")))
    })

    it("a replica's open moves a format-1 replica store to 2, but refuses one that also holds a hub's format-1 records, untouched", async () => {
      await writeFormat1(fx.kv, [...replicaOps(fixtureReplica), ...fixtureDocs.flatMap(docOps)])
      const before = await dump(fx.kv)
      const e = await canonErrorOf(new ReplicaStore(fx.kv).load("alpha"))
      expect(e.code).toBe("storage-failed")
      expect(e.message).toBe("This store is in storage format 1 and also holds a hub's records, which only the hub migrates: open it with the hub first, then as a replica.")
      expect(await dump(fx.kv)).toEqual(before)
      // The hub's open migrates it; then the replica opens it as it is.
      await new AuthorityStore(fx.kv).open()
      expect((await new ReplicaStore(fx.kv).load("alpha"))?.outbox.map((o) => o.clientSeq)).toEqual([5, 6])
    })

    it("gives exactly the records the client table's own conversion of a format-1 record writes", async () => {
      // Migrated on open...
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      await new AuthorityStore(fx.kv).open()
      // ...and converted the old way: format-1 records in a store already stamped 2, read by
      // the client table (core/authority/client-table.ts `loadOne`) and written by one commit.
      const lazy = await fx.another()
      await writeFormat1(lazy, fixtureDocs.flatMap(docOps))
      await lazy.batch([{ type: "put", key: K.formatKey, value: encodeCanonical(2) }])
      const store = new AuthorityStore(lazy)
      for (const d of fixtureDocs) {
        const table = new ClientTable(d.docId, store, 1000)
        expect((await table.load(d.clients.map((c) => c.clientId))).size).toBe(0)
        const changes = table.drain()
        await store.commit(d.docId, { head: (await store.head(d.docId))!, entries: [], ...changes })
      }
      expect(await dump(lazy, ...LEGACY)).toEqual([])
      expect(await dump(fx.kv)).toEqual(await dump(lazy))
    })

    it("the hub loads the same state hash, answers old retries with the stored outcomes, and takes the next commands", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const kv = await fx.reopen()
      const hub = new Hub({ machines: [Counter], storage: kv, runtime: new VirtualRuntime(5) })
      try {
        const alpha = await hub.doc("alpha", Counter)
        expect(alpha.headSeq).toBe(6)
        expect(alpha.state.value).toBe(21)
        expect(hashState(alpha.state)).toBe(ALPHA_HASH)
        const conn = new Collector()
        const sent = conn.next()
        alpha.submit(conn, "c1", { type: "submit", docId: "alpha", ackedClientSeq: 1, commands: [
          { clientSeq: 2, name: "incr", args: { by: 3 } },
          { clientSeq: 3, name: "incr", args: { by: 100 } },
          { clientSeq: 4, name: "incr", args: { by: 5 } },
          { clientSeq: 5, name: "incr", args: { by: 1 } },
        ] })
        await sent
        while (conn.outcomes.length < 4 && conn.errors.length === 0) await conn.next()
        expect(conn.errors).toEqual([])
        expect(conn.outcomes).toEqual([
          { clientSeq: 2, seq: 3 },
          { clientSeq: 3, rejection: { code: "rejected", message: "Too big." } },
          { clientSeq: 4, seq: 5 },
          { clientSeq: 5, seq: 7 },
        ])
        expect(alpha.state.value).toBe(22)
        const beta = await hub.doc("beta", Counter)
        expect(beta.state.value).toBe(30)
      } finally {
        await hub.close()
      }
      const after = new AuthorityStore(await fx.reopen())
      expect(await after.mark("alpha", "c1")).toMatchObject({ last: 5 })
      expect((await after.entries("alpha", 0, 100)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7])
    })

    it("a client that also has a mark keeps the mark; its stale format-1 record is only deleted", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const mark = { last: 9, acked: 9, evictedThrough: 9, evictedBound: 6, incarnation: 2 }
      await fx.kv.batch([{ type: "put", key: K.authMark("alpha", "c3"), value: encodeCanonical([9, 9, 9, 6, 2]) }])
      const store = new AuthorityStore(await fx.reopen())
      expect(await store.mark("alpha", "c3")).toEqual(mark)
      expect(await store.runs("alpha", "c3")).toEqual([])
      expect(await store.legacyClient("alpha", "c3")).toBeUndefined()
    })

    it("an unreadable format-1 record stops the migration with storage-corrupt naming it; the store stays at format 1", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const key = F1.client("alpha", "c2")
      await fx.kv.batch([{ type: "put", key, value: Uint8Array.of(0xff, 0x00) }])
      const kv = await fx.reopen()
      const before = await dump(kv)
      const e = await canonErrorOf(new AuthorityStore(kv).head("alpha"))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain("Migrating the store from format 1 to 2")
      expect(e.message).toContain(`document "alpha" (key ${hex(key)})`)
      expect(e.message).toContain("open the store again")
      // The slice holding it was not written: the store is as it was.
      expect(await readFormat(kv)).toBe(1)
      expect(await dump(kv)).toEqual(before)
    })

    it("read-only (canon inspect): a format-1 store is read as it is, nothing written", async () => {
      await writeFormat1(fx.kv, fixtureDocs.flatMap(docOps))
      const before = await dump(fx.kv)
      const store = new AuthorityStore(fx.kv, { readOnly: true })
      expect((await store.heads()).map((h) => h.docId).sort()).toEqual(["alpha", "beta"])
      expect((await store.entries("alpha", 0, 10)).length).toBe(6)
      expect(await dump(fx.kv)).toEqual(before)
    })

    it(`cut off at every batch (${SLICE} records per slice), the next open finishes with exactly an uninterrupted migration's records`, async () => {
      const docs = bigFormat1Docs(7, 3, Math.ceil((2 * SLICE + 40) / 3))
      const records = docs.reduce((n, d) => n + d.clients.length, 0)
      const reference = await fx.another()
      await writeFormat1(reference, docs.flatMap(docOps))
      await ensureFormat(reference)
      const want = await dump(reference)
      const batches = Math.ceil(records / SLICE) + 1 // the slices, then the format bump
      for (let failAt = 1; failAt <= batches; failAt++) {
        const kv = await fx.another()
        await writeFormat1(kv, docs.flatMap(docOps))
        const e = await canonErrorOf(ensureFormat(new FailingKV(kv, failAt)))
        expect(e.code).toBe("storage-failed")
        expect(await readFormat(kv)).toBe(1)
        expect((await kv.range({ gte: LEGACY[0], lt: LEGACY[1] })).length).toBe(Math.max(0, records - (failAt - 1) * SLICE))
        const ev = events()
        await ensureFormat(kv, ev)
        expect(ev.list.at(-1)).toEqual({ type: "migration-finished", from: 1, to: 2, records: Math.max(0, records - (failAt - 1) * SLICE) })
        expect(await dump(kv)).toEqual(want)
      }
    })
  })
})

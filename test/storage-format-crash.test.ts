/**
 * Kill -9 during a storage-format migration, with real processes: a large LevelDB store
 * written in the format-1 layout (test/support/format1-layout.ts) is opened by a child
 * process (test/support/format-migrate-child.ts, the real AuthorityStore open path), which
 * migrates it to the current format; the parent SIGKILLs the child at seeded random points
 * of the migration, up to KILLS times (at least two land inside it), checking after each
 * kill that every client is wholly in the old layout or wholly in the new one (never both, never neither) and the store still
 * says format 1. A last child finishes; the store must then hold exactly, byte for byte,
 * what an uninterrupted migration of the same data in memory gives.
 *
 * Bounded: KILLS children plus one, each with a 60 s lifetime (about 30-50 s in all on a busy
 * 2-core machine, mostly starting the children). No network. The seed is random
 * per run and in the test's name; rerun one with CANON_CRASH_SEED=<seed>.
 */
import { cpSync } from "node:fs"
import { LevelStorage } from "../adapters/level/index.js"
import type { KVStore } from "../core/index.js"
import { STORAGE_FORMAT, readFormat } from "../core/store/format.js"
import { ensureFormat } from "../core/store/migrations.js"
import { SLICE } from "../core/store/migrate-client-records.js"
import { killAllChildren, removeTempDirs, seedFromEnv, sleep, spawnScript, tempDir } from "./crash/harness.js"
import { F1, bigFormat1Docs, docOps, rng, writeFormat1 } from "./support/format1-layout.js"

const KILLS = 5
const DOCS = 32
const CLIENTS = 500 // 16,000 format-1 records: 63 slices of SLICE
const seed = seedFromEnv()

afterAll(async () => {
  await killAllChildren()
  removeTempDirs()
})

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

const dump = async (kv: KVStore): Promise<string[]> => (await kv.range({})).map(([k, v]) => `${hex(k)}=${hex(v)}`)

/** (docId, clientId) of every client with a record under the two-byte prefix `a b`. */
const clientsUnder = async (kv: KVStore, b: number): Promise<Set<string>> => {
  const rows = await kv.range({ gte: Uint8Array.of(0x61, b), lt: Uint8Array.of(0x61, b + 1) })
  return new Set(rows.map(([k]) => hex(k.subarray(2))))
}

test(`SIGKILLed up to ${KILLS} times while migrating ${DOCS * CLIENTS} format-1 records (seed ${seed}): nothing lost, the store ends at format ${STORAGE_FORMAT}`, async () => {
  const random = rng(seed)
  const dir = tempDir("canon-format-crash-")
  const docs = bigFormat1Docs(seed, DOCS, CLIENTS)
  const ops = docs.flatMap(docOps)
  const everyClient = new Set(docs.flatMap((d) => d.clients.map((c) => hex(F1.client(d.docId, c.clientId).subarray(2)))))
  const total = everyClient.size

  const kv = await LevelStorage.open(dir)
  await writeFormat1(kv, ops)
  await kv.close()
  // What an uninterrupted migration of the same data leaves: a copy, migrated here.
  const copy = tempDir("canon-format-reference-")
  cpSync(dir, copy, { recursive: true })
  const reference = await LevelStorage.open(copy)
  await ensureFormat(reference)
  const want = await dump(reference)
  await reference.close()

  /** The store between children: its format, and which clients are in which layout. */
  const survey = async (): Promise<{ format: number | undefined; old: number }> => {
    const s = await LevelStorage.open(dir)
    try {
      const old = await clientsUnder(s, 0x63)
      const marked = await clientsUnder(s, 0x77)
      const both = [...old].filter((c) => marked.has(c))
      const neither = [...everyClient].filter((c) => !old.has(c) && !marked.has(c))
      expect({ both: both.slice(0, 5), neither: neither.slice(0, 5) }).toEqual({ both: [], neither: [] })
      return { format: await readFormat(s), old: old.size }
    } finally {
      await s.close()
    }
  }

  const kills: Array<{ aim: number; before: number; after: number; inside: boolean }> = []
  for (let i = 0; i < KILLS; i++) {
    const before = await survey()
    expect(before.format).toBe(1)
    const child = spawnScript(`format-migrate-${i}`, "../support/format-migrate-child.ts", ["--data", dir])
    await child.waitForLine((l) => l.startsWith("STARTED "), 30_000)
    // A random point of what is left (records this run converts), keeping a few slices in
    // hand so the kill still lands before the end, then up to 4 ms more: the kill lands
    // anywhere in a later slice (reading, converting or writing it).
    const aim = Math.floor(random() * Math.max(0, before.old - 6 * SLICE) * 0.6)
    if (aim > 0) {
      await child.waitForLine((l) => (l.startsWith("PROGRESS ") && Number(l.split(" ")[1]) >= aim) || l.startsWith("FINISHED"), 30_000)
    }
    await sleep(Math.floor(random() * 5))
    await child.stop("SIGKILL")
    const finished = child.linesOf("FINISHED").length > 0
    // On a loaded machine the last slices may all run before the kill: then it finished cleanly.
    expect(child.exitSignal === "SIGKILL" || (finished && child.exitCode === 0)).toBe(true)
    const after = await survey()
    // Inside the migration: started, not finished, the format still 1.
    const inside = !finished && after.format === 1
    kills.push({ aim, before: before.old, after: after.old, inside })
    if (!inside) break
  }
  const landed = kills.filter((k) => k.inside).length
  console.log(`storage-format-crash (seed ${seed}): ${total} format-1 records, ${SLICE} per slice; ${kills.length} kills, ${landed} landed inside the migration; ` +
    `records left in the old layout after each: ${kills.map((k) => `${k.before}->${k.after}`).join(", ")}`)

  const last = spawnScript("format-migrate-final", "../support/format-migrate-child.ts", ["--data", dir])
  await last.waitForLine((l) => l.startsWith("OPEN "), 60_000)
  await last.exited
  expect(last.exitCode).toBe(0)
  expect(last.linesOf("OPEN")).toEqual([[String(STORAGE_FORMAT)]])

  const s = await LevelStorage.open(dir)
  try {
    expect(await readFormat(s)).toBe(STORAGE_FORMAT)
    const got = await dump(s)
    const first = got.findIndex((row, i) => row !== want[i])
    expect({ rows: got.length, firstDifference: first < 0 ? undefined : got[first] }).toEqual({ rows: want.length, firstDifference: undefined })
  } finally {
    await s.close()
  }
  // Most land inside (the first always has most of the migration ahead of it); the later
  // ones race the last slices, which a loaded machine may finish first.
  expect(landed).toBeGreaterThanOrEqual(2)
}, 150_000)

/**
 * A Canon data directory opened for reading only, for `canon inspect`. classic-level has no
 * read-only mode, so this makes sure of what it can: it opens only a directory that already
 * holds a LevelDB store (CURRENT), never creates one (`createIfMissing: false`), refuses every
 * write (`batch` rejects), and says plainly when a running hub holds the directory's lock.
 * LevelDB's own housekeeping on open (its LOG file, recovering its write-ahead log) is the
 * one thing that still touches the directory; no key is ever written.
 */
import { existsSync, statSync } from "node:fs"
import { join } from "node:path"
import { Level } from "level"
import { canonError, type BatchOp, type KVStore, type RangeOptions } from "../../core/index.js"

type Db = Level<Uint8Array, Uint8Array>

/** Why a directory cannot be inspected, as a sentence for the user. */
export class NotInspectable extends Error {}

/** What `canon inspect` and `canon compact` say about a directory a running hub holds. */
export const inUseSentence = (dir: string): string =>
  `${dir} is in use by a running hub: stop it first. (LevelDB lets one process at a time open a data directory.)`

const levelCode = (e: unknown): string | undefined => {
  for (let x: unknown = e; x !== null && typeof x === "object"; x = (x as { cause?: unknown }).cause) {
    const code = (x as { code?: unknown }).code
    if (typeof code === "string" && code !== "LEVEL_DATABASE_NOT_OPEN") return code
  }
  return undefined
}

const plain = (b: Uint8Array): Uint8Array => (b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength))

export class ReadOnlyStore implements KVStore {
  private constructor(private readonly db: Db, readonly location: string) {}

  /** Opens `dir` if it holds a LevelDB store; throws NotInspectable with a sentence otherwise. Creates nothing. */
  static async open(dir: string): Promise<ReadOnlyStore> {
    if (!existsSync(dir)) throw new NotInspectable(`No Canon data at ${dir}: the directory does not exist. Pass the hub's --data directory.`)
    if (!statSync(dir).isDirectory()) throw new NotInspectable(`${dir} is a file, not a directory: pass the hub's --data directory.`)
    if (!existsSync(join(dir, "CURRENT"))) {
      throw new NotInspectable(`${dir} is not a Canon data directory (it holds no LevelDB store): pass the hub's --data directory. Nothing was written to it.`)
    }
    const db: Db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view", createIfMissing: false })
    try {
      await db.open()
    } catch (e) {
      if (levelCode(e) === "LEVEL_LOCKED") {
        throw new NotInspectable(inUseSentence(dir))
      }
      throw new NotInspectable(`${dir} could not be opened as a Canon data directory: ${e instanceof Error ? e.message : String(e)}`)
    }
    return new ReadOnlyStore(db, dir)
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const v = await this.db.get(key)
    return v === undefined ? undefined : plain(v)
  }

  async batch(_ops: ReadonlyArray<BatchOp>): Promise<void> {
    throw canonError("storage-failed", `${this.location} is open for reading only: canon inspect never writes.`)
  }

  async range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    const limit = options.limit === undefined ? Infinity : Math.max(0, Math.floor(options.limit))
    const out: Array<readonly [Uint8Array, Uint8Array]> = []
    if (limit === 0) return out
    const it = this.db.iterator({
      ...(options.gte !== undefined ? { gte: options.gte } : {}),
      ...(options.lt !== undefined ? { lt: options.lt } : {}),
      ...(limit !== Infinity ? { limit } : {}),
      reverse: options.reverse === true,
    })
    try {
      while (out.length < limit) {
        const rows = await it.nextv(Math.min(4096, limit - out.length))
        if (rows.length === 0) break
        for (const [k, v] of rows) out.push([plain(k), plain(v)])
      }
    } finally {
      await it.close().catch(() => {})
    }
    return out
  }

  /** Whether the store holds any key at all. */
  async isEmpty(): Promise<boolean> {
    return (await this.range({ limit: 1 })).length === 0
  }

  close(): Promise<void> {
    return this.db.close()
  }
}

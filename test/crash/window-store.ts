/**
 * A KVStore wrapper for the snapshot crash scenario's hub process: it tells the parent (one
 * stdout line per batch) when the hub writes snapshot chunks, a snapshot's meta, the
 * compaction horizon, and deletes entries or snapshots; and it can hold the hub right inside
 * one of the windows a crash must survive, so the parent's SIGKILL lands there for sure:
 *
 * - "chunk":   after the first chunk batch of a snapshot is written, before its meta;
 * - "horizon": after the horizon is written, before the compacted entries are deleted;
 * - "drop":    after an old snapshot's meta is deleted, before its chunks are.
 *
 * Holding means: that batch's promise does not resolve (for at most `holdMs`), so the
 * background job that wrote it (the snapshot, the compaction, the retire) stops there while
 * the hub goes on committing commands. It prints `HOLD <window>` once the batch is durable.
 * Keys are Canon's (core/store/keys.ts): "a" then a kind byte.
 */
import type { BatchOp, BatchOptions, KVStore, RangeOptions } from "../../core/index.js"

export type Window = "chunk" | "horizon" | "drop"

const A = 0x61
const kindOf = (key: Uint8Array): number => (key[0] === A ? key[1]! : -1)
const CHUNK = 0x74 // "t"
const META = 0x73 // "s"
const HORIZON = 0x7a // "z"
const ENTRY = 0x65 // "e"

export class WindowStore implements KVStore {
  private held = false

  constructor(
    private readonly inner: KVStore,
    private readonly aim: Window | undefined,
    private readonly say: (...fields: ReadonlyArray<string | number>) => void,
    private readonly holdMs = 10_000,
  ) {}

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.inner.get(key)
  }

  range(options: RangeOptions): Promise<Array<readonly [Uint8Array, Uint8Array]>> {
    return this.inner.range(options)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  async batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void> {
    let chunks = 0
    let metaPut = false
    let metaDel = false
    let horizon = false
    let entryDels = 0
    for (const op of ops) {
      const kind = kindOf(op.key)
      if (kind === CHUNK && op.type === "put") chunks++
      else if (kind === META) op.type === "put" ? (metaPut = true) : (metaDel = true)
      else if (kind === HORIZON && op.type === "put") {
        // Only a horizon that moves opens the window: a load's tidy-up rewrites the same one.
        const before = await this.inner.get(op.key)
        horizon = before === undefined || before.length !== op.value.length || before.some((b, i) => b !== op.value[i])
      } else if (kind === ENTRY && op.type === "del") entryDels++
    }
    await this.inner.batch(ops, options)
    if (chunks > 0) this.say("CHUNK", chunks)
    if (metaPut) this.say("META")
    if (metaDel) this.say("DROP")
    if (horizon) this.say("HORIZON")
    if (entryDels > 0) this.say("DELETED", entryDels)
    const window: Window | undefined = chunks > 0 ? "chunk" : horizon ? "horizon" : metaDel ? "drop" : undefined
    if (window !== undefined && window === this.aim && !this.held) {
      this.held = true
      this.say("HOLD", window)
      await new Promise((r) => setTimeout(r, this.holdMs))
    }
  }
}

/**
 * A shadow of every log entry the hub ever made durable, fed by the hub disk's `onDurable`
 * hook (adapters/memory/storage.ts). With compaction on, the stored log is only a tail behind
 * a snapshot; the checker still needs every entry to judge exactly-once, identity and
 * acknowledgements, so it reads this shadow instead.
 *
 * It also watches compaction as it happens: an entry may be deleted only while a complete
 * snapshot (its meta durable) at or after its seq is stored, or a load could not rebuild it.
 * A durable entry is never rewritten with different content (seqs are not reused).
 */
import type { BatchOp, Entry } from "../../core/index.js"
import * as K from "../../core/store/keys.js"
import { decodeHorizon } from "../../core/store/snapshot-store.js"
import { decodeRecord, entryChecker } from "../../core/store/records.js"

const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => {
  if (key.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false
  return true
}

interface DocShadow {
  readonly entryPrefix: Uint8Array
  readonly snapshotPrefix: Uint8Array
  readonly entries: Map<number, Entry>
  /** Seqs of snapshots whose meta is durable now. */
  readonly snapshots: Set<number>
  /** Highest seq ever deleted by compaction. */
  deletedUpTo: number
  readonly horizonKey: Uint8Array
  /** Highest compaction horizon recorded (the hub announces it before the deletes land). */
  horizon: number
  deleted: number
}

export class ShadowLog {
  private readonly docs = new Map<string, DocShadow>()

  constructor(docIds: ReadonlyArray<string>, private readonly fail: (s: string) => void) {
    for (const docId of docIds) {
      this.docs.set(docId, {
        entryPrefix: K.authEntryPrefix(docId), snapshotPrefix: K.authSnapshotPrefix(docId), entries: new Map(), snapshots: new Set(), deletedUpTo: 0, deleted: 0, horizonKey: K.authHorizon(docId), horizon: 0,
      })
    }
  }

  /** A hub batch became durable. */
  readonly observe = (ops: ReadonlyArray<BatchOp>): void => {
    for (const op of ops) {
      if (op.key[0] !== 0x61) continue
      for (const [docId, d] of this.docs) {
        if (op.type === "put" && op.key.length === d.horizonKey.length && startsWith(op.key, d.horizonKey)) {
          d.horizon = Math.max(d.horizon, decodeHorizon(op.value, docId).horizon)
          break
        }
        if (startsWith(op.key, d.entryPrefix) && op.key.length === K.entryKeyLength(d.entryPrefix)) {
          const seq = K.seqFromKey(op.key)
          if (op.type === "put") {
            const e = decodeRecord(op.value, `entry ${seq}`, docId, op.key, entryChecker(seq))
            const prev = d.entries.get(seq)
            if (prev !== undefined && (prev.clientId !== e.clientId || prev.clientSeq !== e.clientSeq || prev.name !== e.name)) {
              this.fail(`durability: ${docId}: durable entry ${seq} (${prev.clientId}:${prev.clientSeq} ${prev.name}) was overwritten by ${e.clientId}:${e.clientSeq} ${e.name}`)
            }
            d.entries.set(seq, e)
          } else {
            let covered = false
            for (const s of d.snapshots) if (s >= seq) covered = true
            if (!covered) this.fail(`durability: ${docId}: entry ${seq} was deleted while no complete snapshot at or after it was stored (snapshots: ${[...d.snapshots].join(", ") || "none"})`)
            d.deleted++
            d.deletedUpTo = Math.max(d.deletedUpTo, seq)
          }
          break
        }
        if (startsWith(op.key, d.snapshotPrefix) && op.key.length === d.snapshotPrefix.length + 8) {
          const seq = K.seqFromKey(op.key)
          if (op.type === "put") d.snapshots.add(seq)
          else d.snapshots.delete(seq)
          break
        }
      }
    }
  }

  /** Every entry 1..head as it was made durable; a string when one is missing. */
  log(docId: string, head: number): Entry[] | string {
    const d = this.docs.get(docId)!
    const out: Entry[] = []
    for (let s = 1; s <= head; s++) {
      const e = d.entries.get(s)
      if (e === undefined) return `entry ${s} of ${head} was never durable`
      out.push(e)
    }
    return out
  }

  /** Entries deleted by compaction so far. */
  deleted(docId: string): number {
    return this.docs.get(docId)?.deleted ?? 0
  }

  /** Where the log stands now: the highest durable seq and the highest compacted away. */
  position(docId: string): { readonly head: number; readonly deletedUpTo: number } {
    const d = this.docs.get(docId)!
    let head = 0
    for (const s of d.entries.keys()) if (s > head) head = s
    // Compacted as far as the hub has announced: its catch-up treats entries up to the
    // horizon as gone from the moment it is recorded, before their deletes are durable.
    return { head, deletedUpTo: Math.max(d.deletedUpTo, d.horizon) }
  }
}

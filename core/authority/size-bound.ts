/**
 * A document's size bound (`AuthorityOptions.maxDocumentBytes`): no command may take the
 * state past it, so no peer can grow a document until the hub runs out of memory or until
 * replicas cannot load it (their `maxSnapshotBytes`).
 *
 * Measuring the state costs O(its size), so the authority does not measure after every
 * command. It keeps an upper bound instead: the canonical size when last measured, plus what
 * every command accepted since wrote (`writtenOf`, which counts each write at no
 * less than its encoding) less the primitives it overwrote or removed (`removedBytes`, exactly
 * their encoding; removed objects are not subtracted, since the command may have moved one
 * elsewhere). A command that grows the state by nothing (a delete, a sort, a smaller value)
 * always fits; one that grows it by `w` fits while the bound plus `w` stays within the limit.
 * When it does not, the bound may be loose (removed objects, and the count's margins): the
 * authority measures again, if anything changed since the last measure and the last one is
 * far enough behind (ten times its duration), so that a peer sending commands at a full
 * document cannot keep the hub measuring.
 *
 * A document with CRDT fields keeps the last 64th of its bound (`reserve`) for tombstones: a
 * change of a Yjs field the hub refused (the document is full, say) leaves a hole in its
 * writer's clocks, and every later change of that writer is refused for needing it until its
 * tombstone fills it (core/crdt/replica.ts). Other writes stop short of the reserve; a
 * tombstone (deleted items and GC ranges, no content: CrdtField `fills`) may use it, so a
 * document full for them still takes the tombstones of what it refused, and what their
 * writers did next is refused, if at all, for what it carries. Without the reserve, a
 * document full to the byte refused the tombstone too, and the writer's later changes were
 * refused for good as `crdt-missing-deps` (sim seeds 406, 413, 422). A writer that fills the
 * reserve with tombstones of its own brings that back until a measure finds room, no more:
 * tombstones hold no content. A Yjs deletion (a delete set, no structs) may use the reserve
 * too: the refusal tells a full document's writers to delete something, and a deletion charged
 * like any merge was refused in a document full to the byte, which its writers could then
 * never trim. What holds no content may pass the bound by as much as the reserve again: the
 * tombstones of a burst of refusals used the reserve up before a measure found room. A deletion
 * is charged what it can add less what it surely frees (adapters/yjs/deletion.ts: its splits
 * against the text it deletes), so one that frees more always fits, even in a document a
 * measure found past its bound (a CRDT's encoding can outgrow its updates, an operator can lower
 * the bound), which it brings back down; a scattered one pays for its splits. One that leaves
 * the document near full (`nearFull`) has it measured again. A write refused for the reserve is told the limit it was refused for (the
 * bound less the reserve), not the bound. A document whose fields make no tombstones
 * (Automerge only) keeps no reserve, and nothing passes its bound.
 *
 * Pure bookkeeping: the authority measures (core/authority/doc-authority.ts) and tells it.
 */
import { quoted } from "../limits.js"
import { primitiveBytes } from "../canonical.js"
import { sumRemovedPrimitives, type Journal } from "../state/records.js"

export class SizeBound {
  /** Never less than the state's canonical size now. */
  #bound: number
  /** Bytes written by every command accepted so far (a measure taken earlier subtracts its count). */
  #accepted = 0
  /** A command changed the state since the last measure: measuring again may find room. */
  #changed = false
  #measuring = false
  #nextMeasureAt = 0
  /** `#accepted` when the measure the bound now rests on began: an older measure ending later does not replace it. */
  #measuredAt = -Infinity

  /**
   * `measured`: the state's canonical size now, `exact`ly or an upper bound of it (then
   * measuring may find room). `reserve`: the bytes under `max` only tombstones may take.
   */
  constructor(readonly max: number, measured: number, exact: boolean, readonly reserve = 0) {
    this.#bound = measured
    this.#changed = !exact
  }

  /** The upper bound of the state's size now. */
  get bound(): number {
    return this.#bound
  }

  /**
   * Whether a command that grew the state by at most `written` bytes (what it wrote less what
   * it took out) keeps it within the limit, as far as the bound knows: short of the reserve,
   * unless it holds no content (a `tombstone` or a deletion), which may pass the bound by as
   * much again. One that grew it by nothing always fits.
   */
  fits(written: number, tombstone = false): boolean {
    return written <= 0 || this.#bound + written <= this.max + (tombstone ? this.reserve : -this.reserve)
  }

  /**
   * Whether a deletion of `written` bytes (as charged) leaves the document within the
   * reserve's size of where other writes stop: it then has the document measured again, so the
   * room it freed is found before a write is refused for want of it. Farther from full, the
   * next refusal measures, as for any write.
   */
  nearFull(written: number): boolean {
    return this.reserve > 0 && this.#bound + written > this.max - 2 * this.reserve
  }

  /** A command was accepted (it grew the state by at most `written` bytes; `changed`: it wrote or removed anything). */
  accept(written: number, changed: boolean): void {
    this.#bound += written
    this.#accepted += written
    if (changed) this.#changed = true
  }

  /**
   * Whether measuring now could find room a command needs: the state changed since the last
   * measure (`changedNow`: the command at hand changed it, and the measure will include it),
   * none is running, and the last is far enough behind.
   */
  mayMeasure(now: number, changedNow = false): boolean {
    return (this.#changed || changedNow) && !this.#measuring && now >= this.#nextMeasureAt
  }

  /**
   * A measure of the state as it is now, begun at `startedAt`: the next waits for its end (and
   * ten times its duration). `done` gives its size; what commands accepted meanwhile wrote is
   * added. A measure replaces the bound, up or down: where the counts fall short of the truth
   * (a CRDT's encoding can outgrow its updates), the next measure puts the bound right, and a
   * document found past the limit takes nothing more until it shrinks. `failed`: it could not
   * finish (a snapshot failed), and the next may start at once.
   */
  measure(startedAt: number): { done(size: number, now: number): void; failed(): void } {
    const then = this.#accepted
    this.#changed = false
    this.#measuring = true
    return {
      done: (size, now) => {
        if (then >= this.#measuredAt) {
          this.#bound = size + (this.#accepted - then)
          this.#measuredAt = then
        }
        this.#measuring = false
        this.#nextMeasureAt = now + 10 * Math.max(0, now - startedAt)
      },
      failed: () => {
        this.#changed = true
        this.#measuring = false
      },
    }
  }

  /**
   * Why a write that does not fit is refused (`what`: "this command", "this update"): the
   * limit it was refused for, the reserve's edge, or past the bound for a `tombstone` (or a deletion).
   */
  full(docId: string, what: string, tombstone = false): string {
    const limit = this.reserve === 0
      ? `${this.max} bytes (the hub's maxDocumentBytes)`
      : tombstone
        ? `${this.max + this.reserve} bytes (the hub's maxDocumentBytes, ${this.max}, and ${this.reserve} more that only deletions and the tombstones of refused CRDT changes may take)`
        : `${this.max - this.reserve} bytes (the hub's maxDocumentBytes, ${this.max}, less the last ${this.reserve} kept for deletions and the tombstones of refused CRDT changes)`
    return `Document ${quoted(docId)} is full: ${what} would take it past ${limit}. Delete something from it first, or keep more in other documents.`
  }

  /** The rejection of a command that would take the document past the limit (a `tombstone`: past the bound and the reserve again). */
  rejection(docId: string, tombstone = false): { readonly code: "command-too-large"; readonly message: string } {
    return { code: "command-too-large", message: this.full(docId, "this command", tombstone) }
  }
}

/** Throws a RangeError naming `what` unless `max` is a bound (a number above 0; Infinity: none). */
export const checkMaxDocumentBytes = (max: number | undefined, what: string): void => {
  if (max !== undefined && !(typeof max === "number" && max > 0)) {
    throw new RangeError(`${what} must be a number of bytes above 0 (Infinity for no bound), not ${String(max)}.`)
  }
}

/**
 * What a CRDT update is charged, as a multiple of its bytes, before it merges: its effect on
 * the document's encoding can exceed its size. What an engine knows an update can add beyond
 * that is charged on top (CrdtField and CrdtDocEngine `extraGrowth`: a Yjs update's deletions,
 * an Automerge change's scattered ops, adapters/automerge/growth.ts). A Yjs deletion is charged
 * otherwise (adapters/yjs/deletion.ts): a scattered one grows a document by up to four times
 * its bytes, one of text frees room (test/size-bound-deletion-growth.test.ts).
 */
export const CRDT_GROWTH_FACTOR = 3

/** The reserve of a document with CRDT fields bounded at `max` bytes: its last 64th (see the header). */
export const tombstoneReserve = (max: number): number => (Number.isFinite(max) ? Math.floor(max / 64) : 0)

/** maxDocumentBytes by default: 256 MiB, well under what a replica loads by default (1 GiB). */
export const DEFAULT_MAX_DOCUMENT_BYTES = 256 << 20

/**
 * The canonical bytes of the primitives a command's writes took out of the state: a command
 * that overwrites or removes them (a rename, a counter, a toggle) is counted by what it adds
 * less what it took out, so the bound stays close to the size without a measure.
 */
export const removedBytes = (journal: Journal): number => sumRemovedPrimitives(journal, primitiveBytes)

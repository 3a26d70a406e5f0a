/**
 * The Yjs engine of whole CRDT documents (core/crdt-docs/engine.ts).
 *
 * Untrusted updates are Yjs **V1** only: V1 decoding is bounded by the input's length, while
 * a 26-byte V2 update can make Yjs allocate until Node dies (RLE runs that repeat forever).
 * Each update is decoded with `Y.decodeUpdate` before it touches the document, bounded
 * (bytes, clocks below 2^40, no subdocuments) and checked against the document's state
 * vector with the CRDT fields' check (adapters/yjs/integrable.ts): the hub refuses an update
 * Yjs would not integrate in full (a missing dependency, a cycle of origins inside the
 * update) instead of holding it (held updates cost a re-merge per apply and let a peer grow
 * memory), and one with an item Yjs would place differently on each replica (origins no writer
 * could have had as neighbours: the hub's document would differ from its reload and its
 * peers'), and refuses it without touching the document, so no rebuild from storage.
 *
 * Determinism: Yjs cleans up rich-text formatting after a *remote* transaction by making a
 * new local one; the hub would then hold content nobody else has. The cleanup is switched
 * off on the hub's documents (an afterTransaction hook on a private field, pinned with yjs
 * and tested in test/yjs-server.test.ts).
 *
 * Writers (the authority binds them to principals): the clientIDs an update has structs (not
 * Skips: they hold no data) for past the document's clock, as decimal strings; structs of
 * length 0 are refused (integrable.ts), so every write moves a clock. Deletions are not writing as anyone: any
 * writer may delete any item, as in every Yjs document.
 *
 * The stored base is `encodeStateAsUpdateV2` of the live document (written by this hub, so
 * trusted), the compact form: 159,918 B for the automerge-paper trace against 3.8 MB of
 * V1 updates. The updates stored after it come in through `restore`, trusted too: none of a
 * peer's limits judges them; one that does not decode or integrate throws.
 *
 * Size: each update is bounded where it enters, and the document as a whole too: an update
 * that could take it past `maxDocStructs` structs is refused (`update-too-large`), counted
 * before it touches the document (see DEFAULT_MAX_DOC_STRUCTS and `structsAdded`). Without
 * it, peers sending accepted updates one after another grew one document until the hub ran
 * out of memory. And the documents one engine holds loaded share `maxHostStructs`, a shared
 * type counting TYPE_WEIGHT there as in a CRDT field and what a struct holds counting too
 * (`contentWeight`: a run of empty objects is one struct), so many rooms each below its own bound
 * cannot add up past the hub's memory: past it a peer's update is refused, and a stored
 * document that would not fit is not loaded (`doc-unavailable`, try again once others are
 * unloaded). An empty Y.Array takes about 7 bytes of an update and 650 bytes of heap, and a
 * chain of them stores in a few bytes (V2 encodes it as runs): a review's four rooms of them,
 * each under its bound as counted (a type as one) and stored in 37 bytes, killed the hub at
 * 3.75 GB. (The document's own bound counts a type as one, as it always did: weighing types
 * there made documents stored under it read-only after an upgrade; the hub's bound is what
 * holds memory, and 2^23 weighed structs is at most about 2.1 million types.)
 */
import * as Y from "yjs"
import { DEFAULT_MAX_DOC_UPDATE_BYTES, type CheckResult, type CrdtDocEngine, type CrdtRejection } from "../../core/crdt-docs/engine.js"
import { CrdtDocError } from "../../core/crdt-docs/authority.js"
import { canonError, errorText } from "../../core/errors.js"
import { MAX_UPDATE_STRUCTS, MAX_YJS_CLOCK, TYPE_WEIGHT, countV1Structs, countV2Structs, docTooDeep, dropPending, encodeIntegratedV2, holdsPending, notIntegrable, structCount, unsupportedStructs, type NotIntegrable } from "../yjs/integrable.js"
import { deletionGrowth, type Claimed } from "../yjs/deletion.js"
import { onlyDeletes } from "../yjs/tombstone.js"
import { turn } from "../system/turn.js"
import { outside } from "../../core/stopwatch.js"
import { HeldWeight, UNIT_HEAP_BYTES, fullText } from "../../core/authority/held-weight.js"

export interface YjsEngineOptions {
  /**
   * Largest V1 update accepted from a peer (a step2 included). Default 8 MiB
   * (DEFAULT_MAX_DOC_UPDATE_BYTES). This and `maxDocStructs` judge a peer's updates only,
   * never stored ones (`restore`): lowering one never drops what the hub accepted before.
   */
  readonly maxUpdateBytes?: number
  /**
   * Most structs a document may hold: an update from a peer that could take it past is
   * refused (`update-too-large`). Updates read back from storage are not judged (the hub
   * took them; refusing them on load would drop acknowledged edits after the bound was
   * lowered): such a document loads whole and takes no more from peers. Default DEFAULT_MAX_DOC_STRUCTS (2^22).
   */
  readonly maxDocStructs?: number
  /**
   * Most structs all the documents this engine holds loaded may hold together (one engine per
   * hub: give each hub its own). Past it a peer's update is refused (`update-too-large`) and a
   * stored document that would take the total past it is not loaded (`doc-unavailable`) until
   * others are unloaded (idle ones within 30 s). A shared type counts TYPE_WEIGHT (4) here,
   * each value of a list or map entry (and each value nested in one) one more, and text or
   * bytes one per 128 bytes.
   * Default DEFAULT_MAX_HOST_STRUCTS (2^23: four rooms of empty types at it held 2.0 GB of heap).
   */
  readonly maxHostStructs?: number
}

/**
 * Most structs a document holds by default: 2^22, as a CRDT field (MAX_FIELD_STRUCTS).
 * Measured on this project's machine (Node 20, yjs 13.6) with 2^22 one-character structs
 * (typed backwards, so none merge): 208 bytes of heap a struct, about 870 MB, live or
 * reloaded; the stored base (V2) loads in 4.5 s (6.8 s with every struct deleted) and
 * encodes in 1.3-2.1 s; counting the structs takes microseconds. So a document at the bound
 * is a fifth of Node's default heap (4 GiB there) and seconds of loading: as much as one
 * document should cost. Honest documents stay far below: those structs came in 31 MB of V1
 * updates, about 8 bytes each, and typing merges into runs of one struct.
 */
export const DEFAULT_MAX_DOC_STRUCTS = 1 << 22

/** Most structs the documents of one hub hold loaded together by default: two documents at their bound; four rooms of empty types at it held 2.0 GB of heap (half of Node's default). */
export const DEFAULT_MAX_HOST_STRUCTS = 1 << 23

/** Bytes of content that weigh as one struct in the hub's bound (a struct holds about 200 bytes of heap). */
const UNIT_BYTES = 128

/**
 * What a value of a list or map entry holds, in structs' weight: one for itself and one for
 * each value nested in it (an empty `{}` is 2 bytes of an update and about 130 of heap), text
 * and bytes one per UNIT_BYTES. Values nest at most MAX_VALUE_DEPTH deep (checked where they enter).
 */
const valueWeight = (v: unknown): number => {
  if (typeof v === "string") return 1 + Math.floor(v.length / UNIT_BYTES)
  if (v === null || typeof v !== "object") return 1
  if (v instanceof Uint8Array) return 1 + Math.floor(v.length / UNIT_BYTES)
  let n = 1
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += valueWeight(x)
  return n
}

/**
 * What a struct holds beyond itself, in structs' weight: a shared type TYPE_WEIGHT - 1, its
 * values (valueWeight: a run of them is one struct; an embed's and a format's value likewise),
 * text, bytes and a map entry's key one per UNIT_BYTES.
 */
const contentWeight = (s: unknown): number => {
  const item = s as { content?: unknown; parentSub?: unknown }
  const c = item.content
  const key = typeof item.parentSub === "string" ? Math.floor(item.parentSub.length / UNIT_BYTES) : 0
  if (c instanceof Y.ContentType) return key + TYPE_WEIGHT - 1
  if (c instanceof Y.ContentAny || c instanceof Y.ContentJSON) {
    let n = key
    for (const v of (c as unknown as { arr: unknown[] }).arr) n += valueWeight(v)
    return n
  }
  if (c instanceof Y.ContentString) return key + Math.floor((c as unknown as { str: string }).str.length / UNIT_BYTES)
  if (c instanceof Y.ContentBinary) return key + Math.floor((c as unknown as { content: Uint8Array }).content.length / UNIT_BYTES)
  if (c instanceof Y.ContentEmbed) return key + valueWeight((c as unknown as { embed: unknown }).embed)
  if (c instanceof Y.ContentFormat) {
    const f = c as unknown as { key: string; value: unknown }
    return key + Math.floor(f.key.length / UNIT_BYTES) + valueWeight(f.value)
  }
  return key
}

/** How often a loaded document's weight may be counted whole again (a 2^22-struct text: about 170 ms). */
const RECOUNT_MS = 1_000

/** What a loaded document weighs in the hub's bound: each struct one, and what it holds (contentWeight). */
const heldWeight = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) for (const s of list) n += 1 + contentWeight(s)
  return n
}

/** Structs past which an apply lets the event loop turn before the next update of its batch. */
const HEAVY_APPLY_STRUCTS = 4_096
/** Stored updates a load merges between turns of the event loop (each about 0.1 ms in a large document). */
const RESTORE_SLICE = 64
/** Or fewer: a slice of a load's merge ends past this many milliseconds. */
const RESTORE_SLICE_MS = 20


export { MAX_YJS_CLOCK }

interface Decoded {
  readonly structs: ReadonlyArray<Y.Item | Y.GC | Y.Skip>
  readonly ds: { readonly clients: Map<number, Array<{ readonly clock: number; readonly len: number }>> }
}

/** Whether each document's last transaction changed anything (set by the afterTransaction hook). */
const changedFlag = new WeakMap<Y.Doc, boolean>()

/** A hub-side Y.Doc: formatting cleanup off (see the header), change tracking on. */
export const newHubYDoc = (): Y.Doc => {
  const doc = new Y.Doc()
  doc.on("afterTransaction", (tr: Y.Transaction) => {
    ;(tr as unknown as { _needFormattingCleanup: boolean })._needFormattingCleanup = false
    let changed = tr.deleteSet.clients.size > 0
    if (!changed) {
      for (const [client, clock] of tr.afterState) {
        if ((tr.beforeState.get(client) ?? 0) !== clock) {
          changed = true
          break
        }
      }
    }
    changedFlag.set(doc, changed)
  })
  return doc
}

const reject = (code: CrdtRejection["code"], message: string): CheckResult => ({ ok: false, code, message })

/**
 * What keeps Yjs from integrating all of `update` (decoded) into a document whose state vector
 * is `stateOf`: a missing dependency, a cycle inside the update, a client in two blocks
 * (adapters/yjs/integrable.ts, the check the CRDT fields use too); undefined if nothing.
 */
export const missingDependency: (update: Uint8Array, decoded: Decoded, stateOf: (client: number) => number, doc?: Y.Doc) => NotIntegrable | undefined = notIntegrable

type StoredStruct = { readonly id: { readonly clock: number }; readonly length: number; readonly deleted: boolean }

const structsOf = (doc: Y.Doc, client: number): ReadonlyArray<StoredStruct> | undefined =>
  (doc.store.clients as Map<number, ReadonlyArray<StoredStruct>>).get(client)

/** The next clock the document expects from `client` (its state vector entry). */
const clockOf = (doc: Y.Doc, client: number): number => {
  const structs = structsOf(doc, client)
  const last = structs?.[structs.length - 1]
  return last === undefined ? 0 : last.id.clock + last.length
}


/**
 * 1 if `clock` falls inside a live (not deleted) struct of `structs` (a client's, up to clock
 * `state`), past its start: a deletion from or up to there splits it.
 */
const splitsAt = (structs: ReadonlyArray<StoredStruct> | undefined, state: number, clock: number): number => {
  if (structs === undefined || clock <= 0 || clock >= state) return 0
  const s = structs[Y.findIndexSS(structs as unknown as Array<Y.Item>, clock)]!
  return s.deleted || s.id.clock === clock ? 0 : 1
}

/**
 * At most how many structs applying `d` adds to `doc`, read before applying it. A struct the
 * document lacks adds itself and may split the one it lands in: the halves stay apart only
 * with something between them, and a struct sits in one place (halves with nothing between
 * merge back when the transaction ends). A deleted range splits at most the live structs its
 * start and its end fall inside (Yjs splits nothing already deleted). What the document has
 * adds nothing, so a reconnecting client's step2, which carries its whole delete set, does
 * not count as growth; ranges past what the document has (over the update's own structs)
 * count 2.
 */
const structsAdded = (doc: Y.Doc, d: Decoded): { plain: number; weighed: number } => {
  let n = 0
  let held = 0
  for (const s of d.structs) {
    if (s instanceof Y.Skip) continue
    if (s.id.clock + s.length > clockOf(doc, s.id.client)) {
      n += 2
      held += contentWeight(s)
    }
  }
  for (const [client, ranges] of d.ds.clients) {
    const structs = structsOf(doc, client)
    const state = clockOf(doc, client)
    for (const { clock, len } of ranges) {
      if (clock + len > state) n += 2
      else n += splitsAt(structs, state, clock) + splitsAt(structs, state, clock + len)
    }
  }
  // `plain` for the document's bound (a type as one); `weighed` for the hub's, with what the new structs hold (contentWeight).
  return { plain: n, weighed: n + held }
}

export const yjsDocEngine = (options: YjsEngineOptions = {}): CrdtDocEngine<Y.Doc> => {
  const maxBytes = options.maxUpdateBytes ?? DEFAULT_MAX_DOC_UPDATE_BYTES
  const maxDocStructs = options.maxDocStructs ?? DEFAULT_MAX_DOC_STRUCTS
  if (!Number.isSafeInteger(maxDocStructs) || maxDocStructs < 1) {
    throw new TypeError(`maxDocStructs must be a whole number of at least 1, not ${String(options.maxDocStructs)}.`)
  }
  const maxHostStructs = options.maxHostStructs ?? DEFAULT_MAX_HOST_STRUCTS
  if (!Number.isSafeInteger(maxHostStructs) || maxHostStructs < 1) {
    throw new TypeError(`maxHostStructs must be a whole number of at least 1, not ${String(options.maxHostStructs)}.`)
  }
  /**
   * What each loaded document weighs (heldWeight, counted at load and when a refusal is near,
   * else added up from what each update could add: deletions may free some, so it is an upper
   * bound between counts), and their sum.
   */
  const loaded = new HeldWeight(maxHostStructs)
  /** When each loaded document's weight was last counted whole (its keys: the loaded documents). */
  const countedAt = new Map<Y.Doc, number>()
  const weightOf = (doc: Y.Doc): number => loaded.of(doc)
  /** `weight` counted whole (heldWeight) at `at`, or added up (`at` kept). */
  const hold = (doc: Y.Doc, weight: number, at = countedAt.get(doc) ?? -Infinity): void => {
    loaded.set(doc, weight)
    countedAt.set(doc, at)
    // Added up from updates, a weight is an upper bound: another kind's refusal counts it again.
    loaded.shared?.onRecount(doc, () => recount(doc, performance.now()))
  }
  /** Counts `doc` again if its last count is RECOUNT_MS behind (a count is O(document)). */
  const recount = (doc: Y.Doc, now: number): void => {
    if (now - (countedAt.get(doc) ?? -Infinity) >= RECOUNT_MS) hold(doc, heldWeight(doc), now)
  }
  /** Whether `doc` may hold `weight` within the engine's bound and the hub's memory. */
  const room = (doc: Y.Doc | undefined, weight: number): boolean => loaded.fits(doc, weight)
  /** What is full when `doc` may not hold `weight`: the engine's bound or the hub's memory. */
  const full = (doc: Y.Doc | undefined, weight: number): string =>
    fullText(loaded, doc, weight, `The hub holds ${loaded.total} structs in its loaded Yjs documents and takes at most ${maxHostStructs}`)
  /** Why a stored document weighing `weight` is not loaded now. */
  const unavailable = (weight: number | string): string =>
    `${full(undefined, typeof weight === "number" ? weight : maxHostStructs + 1)}; this document (${weight}) is opened once others are unloaded. Try again later.`
  /** Whether `doc` (undefined: one not built yet) weighing `weight` fits beside the others; alone, a document always loads (one stored under a larger bound is never lost). */
  const fits = (doc: Y.Doc | undefined, weight: number): boolean => loaded.alone(doc) || room(doc, weight)
  /** A document just built from storage, counted whole: held, or refused if it does not fit beside the others. */
  const holdLoaded = (doc: Y.Doc): void => {
    const weight = heldWeight(doc)
    if (!fits(doc, weight)) throw new CrdtDocError("doc-unavailable", unavailable(weight))
    hold(doc, weight, performance.now())
  }
  // prepare() decodes; writers() and apply() reuse it (the same Uint8Array object, right after).
  const decodedCache = new WeakMap<Uint8Array, Decoded>()
  /** Per batch being fitted: what its deletions weighed so far delete (deletion.ts Claimed). */
  const claimedIn = new WeakMap<object, Claimed>()
  const claimedFor = (batch: object): Claimed => {
    let claimed = claimedIn.get(batch)
    if (claimed === undefined) claimedIn.set(batch, (claimed = new Map()))
    return claimed
  }

  /** Bounded and weighed from the bytes alone (check): the hub work it stands for, in estimated µs. */
  const measure = (update: Uint8Array): number | CheckResult => {
    if (update.length === 0) return reject("update-malformed", "An empty Yjs update.")
    if (update.length > maxBytes) return reject("update-too-large", `A Yjs update of ${update.length} bytes; the hub accepts at most ${maxBytes}. Send it in smaller pieces.`)
    const seen = { deleteRanges: 0, types: 0, values: 0 }
    const structs = countV1Structs(update, MAX_UPDATE_STRUCTS, seen)
    if (typeof structs === "string") return reject("update-malformed", structs)
    if (structs === undefined) return reject("update-too-large", `A Yjs update of more than ${MAX_UPDATE_STRUCTS} structs; send it in smaller pieces.`)
    // Measured on this project's machine: check and apply took 408 ms for 262,144 structs
    // (about 2 µs each), 1.4 s for 150,000 deleted ranges (about 9 µs each); an 8 MiB update of
    // one struct of text 20 ms to decode and apply, and 35-66 ms more to encode into the base;
    // 65,536 empty shared types 1.1-2.3 s (17-35 µs each, a review), 8 of them in `structs`;
    // a value of a list or map entry is decoded into an object of its own (an empty `{}`: 2 bytes).
    return 2 * structs + 28 * seen.types + seen.values + 9 * seen.deleteRanges + Math.ceil(update.length / 128)
  }

  /** Updates `check` counted and passed: decode does not count them again. */
  const counted = new WeakSet<Uint8Array>()

  /**
   * The refusal of an update that could take `doc` past its bound or the hub's, if it could;
   * else what it could add to the hub's bound (apply adds it to the document's weight).
   */
  const pastBound = (doc: Y.Doc, d: Decoded): CrdtRejection | number => {
    const added = structsAdded(doc, d)
    if (structCount(doc) + added.plain > maxDocStructs) {
      return { code: "update-too-large", message: `The document would pass the hub's bound of ${maxDocStructs} structs; split its data into more documents.` }
    }
    const more = added.weighed
    if (room(doc, weightOf(doc) + more)) return more
    // Added up from updates, weights are upper bounds (deletions free what they held): this
    // document and the others are counted again before a refusal, each at most once a second
    // (a count is O(document): refused updates must not each pay for one).
    const now = performance.now()
    recount(doc, now)
    if (room(doc, weightOf(doc) + more)) return more
    for (const other of countedAt.keys()) if (other !== doc) recount(other, now)
    if (room(doc, weightOf(doc) + more)) return more
    // And the hub's other documents, whose weights are upper bounds too (machine states).
    loaded.shared?.recountOthers(doc, () => room(doc, weightOf(doc) + more))
    if (room(doc, weightOf(doc) + more)) return more
    // Not the update's fault, and not for good: `doc-unavailable`, which endpoints tell as "retry later".
    const mine = loaded.within(doc, weightOf(doc) + more)
    return { code: "doc-unavailable", message: `${full(doc, weightOf(doc) + more)}: try again once documents are unloaded (their readers gone), or ask the operator to raise ${mine ? "it" : "maxHostStructs"}.` }
  }

  /** Decoded (prepare, on the update's turn; kept for writers and apply). */
  const decode = (update: Uint8Array): Decoded | CheckResult => {
    if (!counted.has(update)) {
      const measured = measure(update)
      if (typeof measured !== "number") return measured
    }
    let decoded: Decoded
    try {
      decoded = Y.decodeUpdate(update) as unknown as Decoded
    } catch (e) {
      return reject("update-malformed", `Not a Yjs V1 update (${errorText(e)}).`)
    }
    const unsupported = unsupportedStructs(decoded)
    if (unsupported !== undefined) return reject("update-malformed", unsupported)
    return decoded
  }

  /** One update of a batch, decoded: refused whole before Yjs sees it, or merged. */
  const applyOne = (doc: Y.Doc, u: Uint8Array, d: Decoded | CheckResult): boolean | Uint8Array | CrdtRejection => {
    if ("ok" in d) return d as CrdtRejection
    const cannot = missingDependency(u, d, (client) => clockOf(doc, client), doc)
    if (cannot !== undefined) {
      return cannot.reason === "missing"
        ? { code: "update-missing-deps", message: `${cannot.message} The hub does not integrate it; sync from the hub first.` }
        : { code: "update-malformed", message: cannot.message }
    }
    // Refused whole, before Yjs sees it: the document stays as it was.
    const more = pastBound(doc, d)
    if (typeof more !== "number") return more
    changedFlag.set(doc, false)
    // What the document took in, as Yjs encodes the transaction: stored and relayed instead of
    // `u`, whose IDs the document holds already are skipped whatever content they claim (sent
    // on as they came, a peer still syncing took another writer's text for good).
    let took: Uint8Array | undefined
    const keep = (update: Uint8Array) => void (took = update)
    doc.on("update", keep)
    try {
      Y.applyUpdate(doc, u)
    } finally {
      doc.off("update", keep)
    }
    hold(doc, weightOf(doc) + more)
    // The check above makes this unreachable; if Yjs disagrees, the authority rebuilds (throw).
    if (holdsPending(doc)) throw new Error("Yjs held part of an update whose dependencies looked complete.")
    if (changedFlag.get(doc) !== true) return false
    if (took === undefined) throw new Error("Yjs changed the document without an update to show for it.")
    // Only deletions, and fewer bytes as sent: no content to differ from the document's, and
    // Yjs lists every range it deleted (8 bytes over a text of every other character deleted:
    // 31,749 bytes stored and relayed). As sent only if smaller: past its delete set, or in
    // ranges deleted already, it may carry a megabyte for one character.
    return d.structs.length === 0 && u.length < took.length ? true : took
  }

  return {
    kind: "yjs",
    shareMemory(memory) {
      loaded.shareWith(memory, UNIT_HEAP_BYTES)
    },
    empty() {
      const doc = newHubYDoc()
      hold(doc, 0)
      return doc
    },
    load(bytes) {
      // Counted before it is built: one that does not fit beside the loaded ones waits for them to go.
      const weight = countV2Structs(bytes, maxHostStructs)
      if (typeof weight !== "string" && !fits(undefined, weight ?? maxHostStructs + 1)) {
        throw new CrdtDocError("doc-unavailable", unavailable(weight ?? `more than ${maxHostStructs}`))
      }
      const doc = newHubYDoc()
      Y.applyUpdateV2(doc, bytes)
      // A base an older hub wrote may hold structs Yjs could not integrate: never serve them.
      dropPending(doc)
      // Or types nested past the bound (written before it): serving it would break every reader.
      const deep = docTooDeep(doc)
      if (deep !== undefined) {
        doc.destroy()
        throw canonError("storage-corrupt", `${deep} The stored document is not loaded; restore it from a backup or rewrite it flatter.`)
      }
      // The count above sees structs and types, not the values in them: weighed whole, it may not fit after all.
      try {
        holdLoaded(doc)
      } catch (e) {
        doc.destroy()
        throw e
      }
      return doc
    },
    // Stored updates (trusted: none of the peer's limits, nor the document's bound, judge them).
    async restore(doc, updates, meter) {
      // Counted before they are merged, as a base is (load): one that does not fit waits.
      let weight = 0
      for (const u of updates) {
        const n = countV1Structs(u, maxHostStructs)
        weight += typeof n === "number" ? n : typeof n === "string" ? 0 : maxHostStructs
      }
      if (!fits(doc, weightOf(doc) + weight)) {
        throw new CrdtDocError("doc-unavailable", unavailable(weight))
      }
      // In slices, the event loop turning between them: a tail of tiny updates costs per update
      // (scattered inserts in a large text: 60,000 took 6 s), however few bytes it holds.
      let sliceAt = performance.now()
      for (let i = 0; i < updates.length; i++) {
        // Every RESTORE_SLICE updates, or sooner once the slice took RESTORE_SLICE_MS: one
        // 18-byte update can take 377 ms (Yjs scans every sibling of its origin).
        if (i > 0 && (i % RESTORE_SLICE === 0 || performance.now() - sliceAt >= RESTORE_SLICE_MS)) {
          await outside(meter, turn)
          sliceAt = performance.now()
        }
        try {
          Y.applyUpdate(doc, updates[i]!)
        } catch (e) {
          throw new Error(`update ${i + 1} of ${updates.length} is not a Yjs V1 update (${errorText(e)})`)
        }
      }
      // Each was integrated in full when it was stored: anything Yjs holds now means a gap.
      if (holdsPending(doc)) throw new Error("stored updates depend on data that is not stored")
      // As for a base: nested past the bound (stored before it), serving it would break every reader.
      const deep = docTooDeep(doc)
      if (deep !== undefined) throw new Error(deep)
      // Refused, the authority disposes of it (which gives back what it held).
      holdLoaded(doc)
    },
    encode: (doc) => encodeIntegratedV2(doc),
    // Where it enters: counted, not decoded (decoding is held until apply: 24 MB for a 512 KB update).
    check(update) {
      const weight = measure(update)
      if (typeof weight !== "number") return weight
      counted.add(update)
      return { ok: true, weight }
    },
    // On its turn, within the host's bound on heavy work in flight.
    async prepare(update) {
      const d = decode(update)
      if ("ok" in d) return d
      decodedCache.set(update, d)
      return { ok: true }
    },
    deletionGrowth(doc, update, batch) {
      // Decoded by `prepare` (its turn came before the batch is fitted): never decoded again here.
      const d = decodedCache.get(update)
      return d === undefined || !onlyDeletes(d) ? undefined : deletionGrowth(doc, d.ds.clients, update.length, claimedFor(batch))
    },
    extraGrowth(doc, update, batch) {
      const d = decodedCache.get(update)
      if (d === undefined || d.structs.length === 0 || d.ds.clients.size === 0) return 0
      // Its bytes are charged already (for its content): the deletions' own are not counted again.
      return Math.max(0, deletionGrowth(doc, d.ds.clients, 0, claimedFor(batch)))
    },
    async apply(doc, updates, _stop, meter) {
      const out: Array<boolean | Uint8Array | CrdtRejection> = []
      let heavy = false
      for (const u of updates) {
        // One update of many structs is seconds of work Yjs does in one go: the next waits a turn.
        if (heavy) await outside(meter, turn)
        const d = decodedCache.get(u) ?? decode(u)
        decodedCache.delete(u)
        heavy = !("ok" in d) && d.structs.length >= HEAVY_APPLY_STRUCTS
        out.push(applyOne(doc, u, d))
      }
      return out
    },
    writers(doc, update) {
      const d = decodedCache.get(update) ?? decode(update)
      if ("ok" in d) return []
      const out = new Set<string>()
      for (const s of d.structs) {
        // A Skip holds no data and is never integrated: it writes nothing.
        if (s instanceof Y.Skip) continue
        if (s.id.clock + s.length > clockOf(doc, s.id.client)) out.add(String(s.id.client))
      }
      return [...out]
    },
    dispose(doc) {
      loaded.release(doc)
      countedAt.delete(doc)
      doc.destroy()
    },
  }
}

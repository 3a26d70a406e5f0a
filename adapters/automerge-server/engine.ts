/**
 * The Automerge engine of whole CRDT documents (core/crdt-docs/engine.ts). An update is one
 * Automerge change (binary). The document is a mutable box around Automerge's immutable
 * handle: endpoints that run the sync protocol replace `box.doc` with the handle
 * `receiveSyncMessage` returns (an outdated handle refuses further use).
 *
 * Untrusted changes are decoded (`decodeChange`: hash, deps) and bounded before they touch
 * the document; a change whose dependencies are neither in the document nor earlier in the
 * same batch is refused (`update-missing-deps`) instead of held. Single changes are applied in
 * one `applyChanges` call per submit: Automerge's apply has a large fixed cost per call on long
 * histories (~110 ms on the automerge-paper document), so batching is what keeps it usable. A
 * document chunk is applied with `loadIncremental` (8x cheaper per change than `applyChanges`).
 * `check` only measures (bytes, chunk count, column runs) and weighs the update; `prepare`
 * decodes it on its turn, and `apply` admits it, both in slices between turns of the event
 * loop (../automerge/admit.ts), so they return promises.
 *
 * What the ops do is checked before `applyChanges` (adapters/automerge/validate.ts, shared with
 * CRDT fields): first the decoded work is bounded without decoding (column runs counted,
 * deflated parts inflated under `maxInflatedBytes`, at most `maxChangeOps` ops per update:
 * `decodeChange` costs ~10 µs per op), then each new change must start above every op counter
 * of its history and follow its actor's last seq, and every op must name an existing object
 * of the right type, existing elements and preds of the same object and key: otherwise
 * `update-malformed`. The index this needs is built per loaded document when its first
 * update arrives (`warm`; O(document) once, about 12 µs an op, in slices between turns of the
 * event loop: ../automerge/admit.ts's indexInSlices), and kept up to date after; an apply
 * arriving while it is built waits for it.
 *
 * Stored changes (the tail after the base) come in through `restore`: trusted, judged by none
 * of the limits below, whatever they were lowered to since; one that does not load throws.
 *
 * Writers (the authority binds them to principals): the actors of the changes an update
 * carries that the document lacks.
 *
 * Size: each update is bounded where it enters, and the document as a whole too: an update
 * whose new changes could take it past `maxDocOps` ops or `maxDocChanges` changes is refused
 * (`update-too-large`), all of it, before Automerge sees it (see DEFAULT_MAX_DOC_OPS). Without
 * it, peers sending accepted changes one after another grew one document until the hub ran
 * out of memory.
 *
 * The base record is the save with its columns plain (validate.ts `savePlain`: what the
 * document's bound measures), only if it loads back with the same heads
 * (otherwise `encode` throws and the authority keeps the previous base); heads, not `save()` bytes, identify a state
 * (save differs by arrival order).
 */
import * as A from "@automerge/automerge"
import zlib from "node:zlib"
import { DEFAULT_MAX_DOC_UPDATE_BYTES, type CrdtDocEngine, type CrdtRejection, type StopSignal } from "../../core/crdt-docs/engine.js"
import { errorText } from "../../core/errors.js"
import { CrdtDocError } from "../../core/crdt-docs/authority.js"
import { HeldWeight, UNIT_HEAP_BYTES, fullText } from "../../core/authority/held-weight.js"
import { CRDT_GROWTH_FACTOR } from "../../core/authority/size-bound.js"
import { CHUNK_DOCUMENT, MAX_ACTOR_BYTES, OpIndex, Overlay, measureChunk, savePlain, saveReloads, splitChunks, type Measured } from "../automerge/validate.js"
import { admitChanges, changesOfAsync, indexInSlices, type UntrustedChange } from "../automerge/admit.js"
import { Weighed, updateGrowth } from "../automerge/growth.js"
import { outside } from "../../core/stopwatch.js"

export interface AutomergeBox {
  doc: A.Doc<unknown>
}

export interface AutomergeEngineOptions {
  /**
   * Largest change or document chunk accepted from a peer. Default 8 MiB (DEFAULT_MAX_DOC_UPDATE_BYTES).
   * This and every bound below judge a peer's updates only, never stored ones (`restore`):
   * lowering one never drops what the hub accepted before.
   */
  readonly maxChangeBytes?: number
  /**
   * Most ops (or preds, or changes) one update may decode to, counted before decoding.
   * Default 262,144 (~2.6 s of decoding at most; the automerge-paper editing trace, 259,778
   * ops, fits as one document chunk).
   */
  readonly maxChangeOps?: number
  /** Most bytes the deflated parts of one update may inflate to. Default 16 MiB. */
  readonly maxInflatedBytes?: number
  /**
   * Most ops a document may hold, every op of every change counted, deletes too: an update
   * from a peer whose new changes could take it past is refused (`update-too-large`).
   * Updates read back from storage are not judged (the hub took them; refusing them on load
   * would drop acknowledged edits after the bound was lowered): such a document loads whole
   * and takes no more from peers. Default DEFAULT_MAX_DOC_OPS (2^20).
   */
  readonly maxDocOps?: number
  /** Most changes a document may hold, likewise. Default DEFAULT_MAX_DOC_CHANGES (2^18). */
  readonly maxDocChanges?: number
  /**
   * Most ops and changes (each counts one) the documents this engine holds loaded may hold
   * together: a peer's update that could take them past is refused (`update-too-large`), and
   * a stored document that does not fit beside the loaded ones is not loaded
   * (`doc-unavailable`) until some are unloaded. Default DEFAULT_MAX_HOST_OPS (2^22).
   */
  readonly maxHostOps?: number
}

/**
 * A document's bounds by default, those of a CRDT field (MAX_FIELD_OPS, MAX_FIELD_CHANGES):
 * 2^20 ops and 2^18 changes. Counted from the hub's index of the document (OpIndex: an entry
 * per op and per change, kept up to date as changes are applied), not from `A.stats`, whose
 * `numOps` leaves deletes out: 100,000 re-deletes of one character (one change of a few
 * hundred bytes) showed as 3 ops and took 129 MiB on the hub. Measured on this project's
 * machine (Node 20, Automerge 3.5): the hub holds about 560 bytes an op (Automerge's memory
 * and the index's), loads a base in 1.2-2.8 µs an op, and builds the index on the document's
 * first update in 11-12 µs an op, so 2^20 ops are about 560 MiB, 1.3-2.9 s and 12 s; 2^18
 * one-keystroke changes (an op each) took 550 MiB, 2.1 s and 10 s. That is as much as one
 * document should cost; the automerge-paper editing trace (259,778 ops) fits, even made one
 * change a keystroke.
 */
export const DEFAULT_MAX_DOC_OPS = 1 << 20
export const DEFAULT_MAX_DOC_CHANGES = 1 << 18

/**
 * Most ops and changes the documents of one hub hold loaded together, by default: four
 * documents at their op bound. Each document was bounded on its own, and nothing bounded
 * their sum: on this project's machine (Node 20, Automerge 3.5) a document of 2^20 ops took
 * 290 MB of the hub's memory (222 MB of it the index, in V8's heap) and a change about 500 B
 * (one change of 250,000 characters after another, through this engine), so 20 such documents filled Node's 4.3 GB heap. At this bound
 * (four of them) the hub's RSS was 1.8 GB, 0.9 GB of it V8's heap.
 */
export const DEFAULT_MAX_HOST_OPS = 1 << 22

/**
 * A document's bytes (its save's columns, values inflated) count one op or change per this
 * many toward `maxHostOps`: an op counts one whatever it holds, and a review held 31 MB of
 * memory for an 8 MB string (4 ops), and 626 MB for 20 documents of a 10 MB value each (a
 * 9.9 KB chunk apiece, deflated).
 */
const CONTENT_BYTES = 128

/** `value` (default `fallback`) if it is a whole number of at least 1; throws otherwise. */
const bound = (name: string, value: number | undefined, fallback: number): number => {
  const n = value ?? fallback
  if (!Number.isSafeInteger(n) || n < 1) throw new TypeError(`${name} must be a whole number of at least 1, not ${String(value)}.`)
  return n
}

/** The changes an update carries: one change, or all of a document chunk (sync sends whole documents). */
interface DecodedInfo {
  readonly changes: ReadonlyArray<UntrustedChange>
  /** A document chunk: applied with `loadIncremental`, several times cheaper per change than `applyChanges`. */
  readonly document: boolean
}

/** Raw DEFLATE, refusing output over `max` bytes. */
const inflate = (data: Uint8Array, max: number): Uint8Array | undefined => {
  try {
    return zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, max) })
  } catch {
    return undefined
  }
}

/**
 * The hub work an update stands for, in estimated microseconds (the principal's work budget
 * pays it, core/crdt-docs/work-budget.ts): measured on this project's machine, a document
 * chunk of 262,000 empty changes took 9.2 s to check and apply (35 µs a change),
 * `decodeChange` with the op checks costs about 15 µs an op, and decoding a value about
 * 0.3 µs a byte (a 15.9 KB change inflating to one 15.5 MiB value took 4.7 s).
 */
const weightOf = (m: { readonly changes: number; readonly ops: number; readonly bytes: number }): number => 35 * m.changes + 15 * m.ops + Math.ceil(0.3 * m.bytes)

/**
 * The work of building a document's index (indexInSlices), in estimated microseconds:
 * measured on this project's machine, 1.1-1.7 s for 131,072 ops in 1,025 changes and
 * 3.0-3.4 s for 65,536 one-op changes.
 */
const indexWeight = (ops: number, changes: number): number => 12 * ops + 40 * changes

export const automergeDocEngine = (options: AutomergeEngineOptions = {}): CrdtDocEngine<AutomergeBox> => {
  const maxBytes = options.maxChangeBytes ?? DEFAULT_MAX_DOC_UPDATE_BYTES
  const maxOps = options.maxChangeOps ?? 1 << 18
  const maxInflatedBytes = options.maxInflatedBytes ?? 16 << 20
  const maxDocOps = bound("maxDocOps", options.maxDocOps, DEFAULT_MAX_DOC_OPS)
  const maxDocChanges = bound("maxDocChanges", options.maxDocChanges, DEFAULT_MAX_DOC_CHANGES)
  const maxHostOps = bound("maxHostOps", options.maxHostOps, DEFAULT_MAX_HOST_OPS)
  /**
   * What each loaded document weighs: its ops and changes, and its bytes (values: an 8 MB
   * string is 4 ops and 31 MB of memory) one per CONTENT_BYTES. Measured from its save at
   * load, exact from its index after each apply (the bytes added up from what it took).
   * Deletes never give anything back (Automerge keeps its history), so no recount.
   */
  const loaded = new HeldWeight(maxHostOps)
  /** Of a document's weight, what its bytes weigh. */
  const contents = new Map<AutomergeBox, number>()
  /** What a stored document or update weighs (ops, changes, bytes), counted from its columns without decoding; past the bound, more than it. */
  const storedWeight = (bytes: Uint8Array): { readonly weight: number; readonly content: number } => {
    // Trusted (this hub took it): not judged by the peer's inflate limit, which may have been lowered since.
    const m = measureChunk(bytes, { maxOps: maxHostOps, maxInflatedBytes: 1 << 30, inflate })
    if (!m.ok) return { weight: m.tooLarge ? maxHostOps + 1 : 0, content: 0 }
    const content = Math.ceil(m.bytes / CONTENT_BYTES)
    return { weight: m.ops + m.encodedChanges + content, content }
  }
  /**
   * Throws `doc-unavailable` when `box` (undefined: one not built yet) weighing `weight` in all
   * does not fit beside the other loaded documents. Alone, a document always loads: one stored
   * under a larger bound is never lost.
   */
  const fitOrRefuse = (box: AutomergeBox | undefined, weight: number): void => {
    if (loaded.alone(box) || loaded.fits(box, weight)) return
    throw new CrdtDocError("doc-unavailable", `${full(box, weight)}; this document (${weight > maxHostOps ? `more than ${maxHostOps}` : weight}) is opened once others are unloaded. Try again later.`)
  }
  /** What is full: the engine's bound, or the hub's memory it shares (shareMemory). */
  const full = (box: AutomergeBox | undefined, weight: number): string =>
    fullText(loaded, box, weight, `The hub holds ${loaded.total} ops and changes in its loaded Automerge documents and takes at most ${maxHostOps}`)
  const decoded = new WeakMap<Uint8Array, DecodedInfo>()
  /**
   * Per live document, what validation needs of it: built in slices before its first apply
   * (warm, or that apply), then kept up to date by apply. While it is being built, apply waits for it.
   */
  const indexes = new WeakMap<AutomergeBox, Promise<OpIndex>>()
  /** Indexes built (`indexes` resolved), for what must read one at once (`extraGrowth`). */
  const built = new WeakMap<AutomergeBox, OpIndex>()
  /** What a batch's updates weighed so far hold (`extraGrowth`'s batch): their strings and top counter. */
  const batchWeighed = new WeakMap<object, Weighed>()
  /** Documents released (dispose): a build still running on one stops at its next slice. */
  const released = new WeakSet<AutomergeBox>()

  /** Measured updates (check), for prepare to decode without measuring again. */
  const measuredOf = new WeakMap<Uint8Array, Extract<Measured, { ok: true }>>()

  /**
   * The refusal of an update whose new changes (`fresh`) could take the document past a bound,
   * if they could; `held`: what the document and the batch's earlier updates hold (ops, changes).
   */
  const pastBound = (held: { readonly ops: number; readonly changes: number }, fresh: ReadonlyArray<UntrustedChange>): CrdtRejection | undefined => {
    let ops = held.ops
    for (const x of fresh) ops += x.decoded.ops.length
    const over = ops > maxDocOps ? `${maxDocOps} ops` : held.changes + fresh.length > maxDocChanges ? `${maxDocChanges} changes` : undefined
    if (over === undefined) return undefined
    return { code: "update-too-large", message: `The document would pass the hub's bound of ${over}; split its data into more documents.` }
  }

  /** The refusal of an update that would take `box` to `weight` (ops and changes) if the loaded documents could not hold it together. */
  const pastHostBound = (box: AutomergeBox, weight: number): CrdtRejection | undefined => {
    if (loaded.fits(box, weight)) return undefined
    // Not the update's fault, and not for good: `doc-unavailable`, which endpoints tell as "retry later".
    return { code: "doc-unavailable", message: `${full(box, weight)}: try again once documents are unloaded (their readers gone), or ask the operator to raise ${loaded.within(box, weight) ? "it" : "maxHostOps"}.` }
  }

  /** The bounds, before decoding: column runs and deflate make a few hundred bytes 300,000 ops. */
  const measure = (change: Uint8Array): Extract<Measured, { ok: true }> | CrdtRejection => {
    if (change.length === 0) return { code: "update-malformed", message: "An empty Automerge change." }
    if (change.length > maxBytes) return { code: "update-too-large", message: `An Automerge change of ${change.length} bytes; the hub accepts at most ${maxBytes}.` }
    const m = measureChunk(change, { maxOps, maxInflatedBytes, inflate, maxActorBytes: MAX_ACTOR_BYTES })
    if (m.ok) return m
    return m.tooLarge
      ? { code: "update-too-large", message: `An Automerge update that decodes to more than the hub's limit (${m.message}); at most ${maxOps} ops and ${maxInflatedBytes} inflated bytes.` }
      : { code: "update-malformed", message: `Not an Automerge change or document (${m.message.slice(0, 120)}).` }
  }

  /** Decoded in slices (admit.ts): one change, or every change of a document chunk. */
  const decode = async (change: Uint8Array, stop: StopSignal | undefined): Promise<DecodedInfo | CrdtRejection> => {
    const m = measuredOf.get(change) ?? measure(change)
    if ("code" in m) return m
    try {
      return { changes: await changesOfAsync(change, m, stop), document: m.type === CHUNK_DOCUMENT }
    } catch (e) {
      if (stop?.aborted === true) throw e
      return { code: "update-malformed", message: `Not an Automerge change or document (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).` }
    }
  }

  // The box's document is replaced by sync rounds, always with content that went through apply
  // (which waits for the index): the build reads box.doc afresh after every pause.
  const indexOf = (box: AutomergeBox, stop: StopSignal | undefined): Promise<OpIndex> => {
    let building = indexes.get(box)
    if (building === undefined) {
      const mine = indexInSlices(() => {
        if (released.has(box)) throw new Error("The document was released while its index was built.")
        return box.doc
      }, stop)
      indexes.set(box, (building = mine))
      mine.then((index) => void (indexes.get(box) === mine && built.set(box, index)), () => {})
      // A failed build is started again by the next apply.
      mine.catch(() => {
        if (indexes.get(box) === mine) indexes.delete(box)
      })
    }
    return building
  }

  /**
   * The document's index, for the strings of its rows (growth.ts). Built in slices before the
   * authority weighs an update (warm); should that have failed, it is built here in one
   * stretch, and kept as the document's index unless a build is under way.
   */
  const indexFor = (box: AutomergeBox): OpIndex => {
    const index = built.get(box)
    if (index !== undefined) return index
    const made = OpIndex.of(box.doc)
    if (!indexes.has(box)) {
      indexes.set(box, Promise.resolve(made))
      built.set(box, made)
    }
    return made
  }

  return {
    kind: "automerge",
    shareMemory(memory) {
      loaded.shareWith(memory, UNIT_HEAP_BYTES)
    },
    empty() {
      const box = { doc: A.init() }
      loaded.set(box, 0)
      return box
    },
    load(bytes) {
      // Counted before it is built: one that does not fit beside the loaded ones waits for them to go.
      const { weight, content } = storedWeight(bytes)
      fitOrRefuse(undefined, weight)
      const box = { doc: A.load(bytes) }
      loaded.set(box, weight)
      contents.set(box, content)
      return box
    },
    // Stored changes (trusted: none of the peer's limits, nor the document's bounds, judge them).
    // Each chunk on its own: loadIncremental of several skips, silently, all of them after one
    // that does not parse (a change and 3 bytes of garbage load as nothing); applyChanges throws.
    restore(box, updates) {
      // Counted before they are merged, at least (a document chunk may repeat what the base or
      // another chunk has: one per reconnect of a stock client; the largest is counted): ones that do not fit wait.
      // Split once: a stored update that is not Automerge chunks is damage, reported as such.
      const split = updates.map((u, i) => {
        let chunks: ReturnType<typeof splitChunks>
        try {
          chunks = splitChunks(u)
        } catch (e) {
          throw new Error(`update ${i + 1} of ${updates.length} is not Automerge chunks (${errorText(e)})`)
        }
        if (chunks.length === 0) throw new Error(`update ${i + 1} of ${updates.length} is empty`)
        return chunks
      })
      let changes = 0, documents = 0
      for (const c of split.flat()) {
        const { weight } = storedWeight(c.bytes)
        if (c.type === CHUNK_DOCUMENT) documents = Math.max(documents, weight)
        else changes += weight
      }
      fitOrRefuse(box, loaded.of(box) + changes + documents)
      let singles: Uint8Array[] = []
      const flush = () => {
        if (singles.length > 0) [box.doc] = A.applyChanges(box.doc, singles as A.Change[])
        singles = []
      }
      split.forEach((chunks) => {
        for (const c of chunks) {
          if (c.type !== CHUNK_DOCUMENT) singles.push(c.bytes)
          else {
            flush()
            box.doc = A.loadIncremental(box.doc, c.bytes)
          }
        }
      })
      flush()
      // Automerge holds a change whose dependencies are not there: the stored history has a gap.
      const missing = A.getMissingDeps(box.doc, [])
      if (missing.length > 0) throw new Error(`stored changes depend on ${missing.length} change(s) that are not stored, ${missing[0]!.slice(0, 12)}... first`)
      // Built, it is counted once (a save takes milliseconds where the load took seconds): what
      // the stored updates repeat weighs nothing, and it may not fit after all (refused, the authority disposes of it).
      const { weight, content } = storedWeight(savePlain(box.doc))
      fitOrRefuse(box, weight)
      loaded.set(box, weight)
      contents.set(box, content)
    },
    // The index, in slices (admit.ts's indexInSlices), started by the authority when the first update arrives.
    warm(box) {
      if (indexes.has(box)) return undefined
      // numOps leaves deletes out: an estimate, for the host's bound on heavy work in flight.
      const { numOps, numChanges } = A.stats(box.doc)
      return { weight: indexWeight(numOps, numChanges), run: async (stop) => void (await indexOf(box, stop)) }
    },
    encode: (box) => {
      // Plain columns, as stored and measured against the bound (validate.ts savePlain).
      const saved = savePlain(box.doc)
      // Last line of defence: never a base that does not load back as this document.
      const why = saveReloads(box.doc, saved)
      if (why !== undefined) throw new Error(`The document's ${why}; the previous base is kept.`)
      return saved
    },
    // Where it enters: bounded and weighed from its bytes alone.
    check(change) {
      const m = measure(change)
      if ("code" in m) return { ok: false, ...m }
      measuredOf.set(change, m)
      return { ok: true, weight: weightOf(m) }
    },
    // On its turn: decoded in slices between turns of the event loop (admit.ts), and kept for apply.
    async prepare(change, stop) {
      const d = await decode(change, stop)
      if ("code" in d) return { ok: false, ...d }
      decoded.set(change, d)
      return { ok: true }
    },
    async apply(box, changes, stop, meter) {
      // box.doc is read afresh after every pause: an endpoint may have replaced the handle.
      const has = (hash: string) => A.getBackend(box.doc).getChangeByHash(hash) != null
      const batch = new Set<string>()
      /** Single changes taken, applied together (Automerge's apply has a large fixed cost per call). */
      let singles: A.Change[] = []
      let took = false
      const flush = () => {
        if (singles.length > 0) [box.doc] = A.applyChanges(box.doc, singles)
        singles = []
      }
      // Built before anything of this apply is decided (it waits for a build under way, never races it).
      const index = await outside(meter, () => indexOf(box, stop))
      const overlay = new Overlay(index)
      // Exact from here on: every op and change it holds is an entry of the index (or, for this batch, the overlay).
      const weighed = () => index.ops.size + overlay.ops.size + index.historyMax.size + overlay.historyMax.size + (contents.get(box) ?? 0)
      if (loaded.holds(box)) loaded.set(box, weighed())
      const out: Array<boolean | CrdtRejection> = []
      for (const c of changes) {
        // Decoded in slices where prepare did not (its turns are not this apply's time).
        const d = decoded.get(c) ?? (await outside(meter, () => decode(c, stop)))
        // Held from prepare until now only: an applied update's decoding is let go at once.
        decoded.delete(c)
        if ("code" in d) {
          out.push(d)
          continue
        }
        // Changes of one update may depend on each other (a document chunk is in causal order);
        // what the ops do is checked against the document and what this batch took before (all or nothing per update).
        const mine = new Overlay(overlay)
        const admitted = await admitChanges(mine, d.changes, (hash) => batch.has(hash) || has(hash), stop)
        if (!admitted.ok) {
          out.push("missing" in admitted
            ? { code: "update-missing-deps", message: `A change depends on ${admitted.missing.slice(0, 12)}..., which the hub does not have; sync from the hub first.` }
            : { code: "update-malformed", message: `${admitted.verdict.message}: not what Automerge makes.` })
          continue
        }
        const fresh = admitted.fresh
        if (fresh.length === 0) {
          out.push(false)
          continue
        }
        // Every op and change the document and this batch hold is an entry of the index or the batch's overlay.
        const held = { ops: index.ops.size + overlay.ops.size, changes: index.historyMax.size + overlay.historyMax.size }
        // Its bytes as measured (inflated), all of them: which of its changes were new does not matter much.
        const content = Math.ceil((measuredOf.get(c)?.bytes ?? c.length) / CONTENT_BYTES)
        let more = fresh.length + content
        for (const x of fresh) more += x.decoded.ops.length
        const tooLarge = pastBound(held, fresh) ?? pastHostBound(box, weighed() + more)
        if (tooLarge !== undefined) {
          out.push(tooLarge)
          continue
        }
        mine.commit()
        // Held at once: other documents' applies run while this one pauses.
        if (loaded.holds(box)) {
          contents.set(box, (contents.get(box) ?? 0) + content)
          loaded.set(box, weighed())
        }
        for (const x of fresh) batch.add(x.hash)
        took = true
        out.push(true)
        if (d.document) {
          // The chunk's changes are exactly those admitted (and known ones, which Automerge skips).
          flush()
          box.doc = A.loadIncremental(box.doc, c)
        } else for (const x of fresh) singles.push(x.bytes)
      }
      flush()
      if (took) {
        // Automerge holds changes it cannot integrate yet; the checks above should prevent any.
        if (A.getMissingDeps(box.doc, []).length > 0) throw new Error("Automerge held changes whose dependencies looked complete.")
        overlay.commit()
      }
      return out
    },
    // What its changes' ops can add to the save beyond three times its bytes (growth.ts): a
    // change of runs stands for any number of ops, each a new row where it lands. Asked of a
    // prepared update (the authority weighs after prepare and warm-up).
    extraGrowth(box, change, batch) {
      const d = decoded.get(change)
      if (d === undefined) throw new Error("an update that was not checked")
      const backend = A.getBackend(box.doc)
      let seen = batchWeighed.get(batch)
      if (seen === undefined) batchWeighed.set(batch, (seen = new Weighed()))
      // Three times its bytes weigh a document chunk's deflated columns as they come: the
      // document saves its changes otherwise (what one chunk folds may not fold beside what the
      // document holds), so they are weighed as inflated (a review: 23 KB of chunk grew a save
      // by 293 KB).
      const m = measuredOf.get(change)
      const inflated = m === undefined ? 0 : CRDT_GROWTH_FACTOR * Math.max(0, m.bytes - change.length)
      // The index holds what is applied; the batch's earlier updates are weighed, not applied yet.
      return inflated + updateGrowth(d.changes.filter((x) => backend.getChangeByHash(x.hash) == null).map((x) => x.decoded), indexFor(box), seen)
    },
    writers(box, change) {
      // Asked only of a prepared update, whose decoding prepare kept; anything else is refused (the authority turns a throw into a refusal).
      const d = decoded.get(change)
      if (d === undefined) throw new Error("an update that was not checked")
      const backend = A.getBackend(box.doc)
      const out = new Set<string>()
      for (const x of d.changes) if (backend.getChangeByHash(x.hash) == null) out.add(x.decoded.actor)
      return [...out]
    },
    dispose: (box) => {
      released.add(box)
      loaded.release(box)
      contents.delete(box)
      A.free(box.doc)
    },
  }
}

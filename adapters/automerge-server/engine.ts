/**
 * The Automerge engine of whole CRDT documents (core/crdt-docs/engine.ts). An update is one
 * Automerge change (binary). The document is a mutable box around Automerge's immutable
 * handle: endpoints that run the sync protocol replace `box.doc` with the handle
 * `receiveSyncMessage` returns (an outdated handle refuses further use).
 *
 * Untrusted changes are decoded (`decodeChange`: hash, deps) and bounded before they touch
 * the document; a change whose dependencies are neither in the document nor earlier in the
 * same batch is refused (`update-missing-deps`) instead of held. Changes are applied in one
 * `applyChanges` call per submit: Automerge's apply has a large fixed cost per call on long
 * histories (~110 ms on the automerge-paper document), so batching is what keeps it usable.
 *
 * The base record is `save()` (compressed); heads, not `save()` bytes, identify a state
 * (save differs by arrival order).
 */
import * as A from "@automerge/automerge"
import type { CheckResult, CrdtDocEngine, CrdtRejection } from "../../core/crdt-docs/engine.js"

export interface AutomergeBox {
  doc: A.Doc<unknown>
}

export interface AutomergeEngineOptions {
  /** Largest change accepted. Default 1 MiB. */
  readonly maxChangeBytes?: number
}

/** The changes an update carries: one change, or all of a document chunk (sync sends whole documents). */
interface DecodedInfo {
  readonly changes: ReadonlyArray<{ readonly bytes: A.Change; readonly hash: string; readonly deps: ReadonlyArray<string> }>
}

export const automergeDocEngine = (options: AutomergeEngineOptions = {}): CrdtDocEngine<AutomergeBox> => {
  const maxBytes = options.maxChangeBytes ?? 1 << 20
  const decoded = new WeakMap<Uint8Array, DecodedInfo>()

  const decode = (change: Uint8Array): DecodedInfo | CheckResult => {
    if (change.length === 0) return { ok: false, code: "update-malformed", message: "An empty Automerge change." }
    if (change.length > maxBytes) return { ok: false, code: "update-too-large", message: `An Automerge change of ${change.length} bytes; the hub accepts at most ${maxBytes}.` }
    const one = (bytes: A.Change) => {
      const d = A.decodeChange(bytes)
      if (typeof d.hash !== "string" || !Array.isArray(d.deps)) throw new Error("a change without a hash")
      return { bytes, hash: d.hash, deps: d.deps }
    }
    try {
      return { changes: [one(change as A.Change)] }
    } catch (e) {
      // Not a change chunk: maybe a document chunk (Automerge's sync sends those on first contact).
      try {
        const doc = A.load(change)
        const all = A.getAllChanges(doc).map(one)
        A.free(doc)
        return { changes: all }
      } catch {
        return { ok: false, code: "update-malformed", message: `Not an Automerge change or document (${e instanceof Error ? e.message.slice(0, 120) : String(e)}).` }
      }
    }
  }

  return {
    kind: "automerge",
    empty: () => ({ doc: A.init() }),
    load: (bytes) => ({ doc: A.load(bytes) }),
    encode: (box) => A.save(box.doc),
    check(change) {
      const d = decode(change)
      if ("ok" in d) return d
      decoded.set(change, d)
      return { ok: true }
    },
    apply(box, changes) {
      const backend = A.getBackend(box.doc)
      const has = (hash: string) => backend.getChangeByHash(hash) != null
      const batch = new Set<string>()
      const take: A.Change[] = []
      const out = changes.map((c): boolean | CrdtRejection => {
        const d = decoded.get(c) ?? decode(c)
        if ("ok" in d) return d as CrdtRejection
        const fresh = d.changes.filter((x) => !batch.has(x.hash) && !has(x.hash))
        if (fresh.length === 0) return false
        // Changes of one update may depend on each other (a document chunk is in causal order).
        const inUpdate = new Set(fresh.map((x) => x.hash))
        for (const x of fresh) {
          const missing = x.deps.find((dep) => !batch.has(dep) && !inUpdate.has(dep) && !has(dep))
          if (missing !== undefined) return { code: "update-missing-deps", message: `A change depends on ${missing.slice(0, 12)}..., which the hub does not have; sync from the hub first.` }
        }
        for (const x of fresh) {
          batch.add(x.hash)
          take.push(x.bytes)
        }
        return true
      })
      if (take.length > 0) {
        ;[box.doc] = A.applyChanges(box.doc, take)
        // Automerge holds changes it cannot integrate yet; the checks above should prevent any.
        if (A.getMissingDeps(box.doc, []).length > 0) throw new Error("Automerge held changes whose dependencies looked complete.")
      }
      return out
    },
    dispose: (box) => A.free(box.doc),
  }
}

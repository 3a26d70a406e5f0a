/**
 * The Yjs engine of whole CRDT documents (core/crdt-docs/engine.ts).
 *
 * Untrusted updates are Yjs **V1** only: V1 decoding is bounded by the input's length, while
 * a 26-byte V2 update can make Yjs allocate until Node dies (RLE runs that repeat forever).
 * Each update is decoded with `Y.decodeUpdate` before it touches the document, bounded
 * (bytes, clocks below 2^40, no subdocuments) and checked for missing dependencies against
 * the document's state vector: the hub refuses an update it cannot integrate instead of
 * holding it (held updates cost a re-merge per apply and let a peer grow memory).
 *
 * Determinism: Yjs cleans up rich-text formatting after a *remote* transaction by making a
 * new local one; the hub would then hold content nobody else has. The cleanup is switched
 * off on the hub's documents (an afterTransaction hook on a private field, pinned with yjs
 * and tested in test/yjs-server.test.ts).
 *
 * The stored base is `encodeStateAsUpdateV2` of the live document (written by this hub, so
 * trusted), the compact form: 159,918 B for the automerge-paper trace against 3.8 MB of
 * V1 updates.
 */
import * as Y from "yjs"
import type { CheckResult, CrdtDocEngine, CrdtRejection } from "../../core/crdt-docs/engine.js"

export interface YjsEngineOptions {
  /** Largest V1 update accepted. Default 1 MiB (the WebSocket frame limit). */
  readonly maxUpdateBytes?: number
}

/** Clocks at or past this are refused (a 2^52 clock would exhaust a client's range for good). */
export const MAX_YJS_CLOCK = 2 ** 40

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

/** What an update needs that `sv` (plus the update itself) does not have, as "client:clock", or undefined. */
export const missingDependency = (decoded: Decoded, stateOf: (client: number) => number): string | undefined => {
  const have = new Map<number, number>()
  const known = (client: number): number => {
    let n = have.get(client)
    if (n === undefined) have.set(client, (n = stateOf(client)))
    return n
  }
  const needs = (client: number, clock: number): boolean => clock >= known(client)
  // Structs come sorted by client, then clock: each client's run must start at or before what we have.
  for (const s of decoded.structs) {
    if (s instanceof Y.Skip) continue
    const { client, clock } = s.id
    const at = known(client)
    if (clock > at) return `${client}:${at}`
    have.set(client, Math.max(at, clock + s.length))
  }
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item)) continue
    for (const id of [s.origin, s.rightOrigin, s.parent instanceof Y.ID ? s.parent : null]) {
      if (id !== null && needs(id.client, id.clock)) return `${id.client}:${id.clock}`
    }
  }
  for (const [client, ranges] of decoded.ds.clients) {
    for (const r of ranges) {
      if (r.len > 0 && needs(client, r.clock + r.len - 1)) return `${client}:${r.clock + r.len - 1}`
    }
  }
  return undefined
}

/** The next clock the document expects from `client` (its state vector entry). */
const clockOf = (doc: Y.Doc, client: number): number => {
  const structs = (doc.store.clients as Map<number, ReadonlyArray<{ id: { clock: number }; length: number }>>).get(client)
  const last = structs?.[structs.length - 1]
  return last === undefined ? 0 : last.id.clock + last.length
}

export const yjsDocEngine = (options: YjsEngineOptions = {}): CrdtDocEngine<Y.Doc> => {
  const maxBytes = options.maxUpdateBytes ?? 1 << 20
  // check() decodes; apply() reuses it (the same Uint8Array object, right after).
  const decodedCache = new WeakMap<Uint8Array, Decoded>()

  const decode = (update: Uint8Array): Decoded | CheckResult => {
    if (update.length === 0) return reject("update-malformed", "An empty Yjs update.")
    if (update.length > maxBytes) return reject("update-too-large", `A Yjs update of ${update.length} bytes; the hub accepts at most ${maxBytes}. Send it in smaller pieces.`)
    let decoded: Decoded
    try {
      decoded = Y.decodeUpdate(update) as unknown as Decoded
    } catch (e) {
      return reject("update-malformed", `Not a Yjs V1 update (${e instanceof Error ? e.message : String(e)}).`)
    }
    for (const s of decoded.structs) {
      if (!(s.id.clock + s.length <= MAX_YJS_CLOCK) || !(s.length >= 0)) return reject("update-malformed", `A Yjs struct at clock ${s.id.clock} (length ${s.length}) is past the hub's clock limit 2^40.`)
      if (s instanceof Y.Item && s.content instanceof Y.ContentDoc) return reject("update-malformed", "Subdocuments are not supported by the hub.")
    }
    for (const ranges of decoded.ds.clients.values()) {
      for (const r of ranges) {
        if (!(r.clock + r.len <= MAX_YJS_CLOCK)) return reject("update-malformed", `A Yjs deletion at clock ${r.clock} is past the hub's clock limit 2^40.`)
      }
    }
    return decoded
  }

  return {
    kind: "yjs",
    empty: newHubYDoc,
    load(bytes) {
      const doc = newHubYDoc()
      Y.applyUpdateV2(doc, bytes)
      return doc
    },
    encode: (doc) => Y.encodeStateAsUpdateV2(doc),
    check(update) {
      const d = decode(update)
      if ("ok" in d) return d
      decodedCache.set(update, d)
      return { ok: true }
    },
    apply(doc, updates) {
      return updates.map((u) => {
        const d = decodedCache.get(u) ?? decode(u)
        if ("ok" in d) return d as CrdtRejection
        const missing = missingDependency(d, (client) => clockOf(doc, client))
        if (missing !== undefined) return { code: "update-missing-deps", message: `The update depends on ${missing}, which the hub does not have; sync from the hub first.` }
        changedFlag.set(doc, false)
        Y.applyUpdate(doc, u)
        const store = doc.store as unknown as { pendingStructs: unknown; pendingDs: unknown }
        // The dependency check above makes this unreachable; if Yjs disagrees, rebuild (throw).
        if (store.pendingStructs !== null || store.pendingDs !== null) throw new Error("Yjs held part of an update whose dependencies looked complete.")
        return changedFlag.get(doc) === true
      })
    },
    dispose: (doc) => doc.destroy(),
  }
}

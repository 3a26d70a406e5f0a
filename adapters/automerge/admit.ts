/**
 * Admitting an untrusted Automerge update into a document: the steps every route that takes
 * changes from a peer runs, in this order, so that none can skip one. CRDT fields run the
 * same checks of ./validate.ts on single changes (adapters/automerge/engine.ts).
 *
 * 1. `measureChunk` (./validate.ts; `measureChunkAsync` where inflating is asynchronous):
 *    the decoded work bounded before decoding.
 * 2. `changesOf` (`changesOfAsync`, in slices): decoded, change chunks (one, or several back
 *    to back, as Automerge's sync sends a peer's new changes) or every change of a document
 *    chunk (Automerge's sync sends a whole document on first contact).
 * 3. What each op does checked against the document (`Overlay`): depth, `__proto__`, preds,
 *    op counters, only once every dependency is present (Automerge would hold a change that
 *    lacks one and apply it later, unchecked). The hub's whole documents
 *    (adapters/automerge-server/engine.ts) refuse such a change (`admitChanges`); a replica
 *    syncing with peers (adapters/peer/automerge-sync.ts) holds it and asks for what it lacks.
 */
import * as A from "@automerge/automerge"
import type { StopSignal } from "../../core/crdt-docs/engine.js"
import { CHUNK_DOCUMENT, OpIndex, Overlay, countersBelow, measureChunk, splitChunks, type Measured, type Verdict } from "./validate.js"
import { turn } from "../system/turn.js"

/** One change an update carries, decoded. */
export interface UntrustedChange {
  readonly bytes: A.Change
  readonly hash: string
  readonly deps: ReadonlyArray<string>
  readonly decoded: A.DecodedChange
}

/**
 * The changes of a measured chunk (`measured` is `measureChunk`'s verdict on `bytes`), in
 * causal order. Throws when Automerge cannot decode them.
 */
export const changesOf = (bytes: Uint8Array, measured: Extract<Measured, { ok: true }>): UntrustedChange[] => {
  if (measured.type !== CHUNK_DOCUMENT) {
    if (measured.chunks === 1) return [decodeUntrusted(bytes as A.Change)]
    // Changes back to back (a stock peer's sync sends them so); a document comes alone.
    return splitChunks(bytes).map((c) => {
      if (c.type === CHUNK_DOCUMENT) throw new Error("a document chunk after a change; a document comes alone")
      return decodeUntrusted(c.bytes as A.Change)
    })
  }
  const doc = A.load(bytes)
  try {
    return changesLoaded(doc, measured).map(decodeUntrusted)
  } finally {
    A.free(doc)
  }
}

/**
 * Every change of a loaded document chunk, or a throw when the bytes carried anything else.
 * Decoded changes must be all the bytes stand for: a route may hand the same bytes to
 * Automerge (the hub's `loadIncremental`), and Automerge would apply there what it held back
 * here, unchecked (a change chunk after the document whose dependency only the hub has).
 */
const changesLoaded = (doc: A.Doc<unknown>, measured: Extract<Measured, { ok: true }>): A.Change[] => {
  if (measured.chunks !== 1) throw new Error("a document chunk followed by more chunks; a document comes alone")
  const all = A.getAllChanges(doc)
  // Against the changes it encodes, not `changes` (a bound, counting each dependency of a merge).
  if (all.length !== measured.encodedChanges || A.getMissingDeps(doc, []).length > 0) throw new Error("a document chunk whose changes do not all load")
  return all
}

/** Changes decoded (or admitted) between two turns of the event loop. */
export const DECODE_SLICE = 1_000

/**
 * A turn of the event loop, after which the work goes on only while its owner wants it:
 * a closing hub's document or a detached link aborts `stop`, and the work rejects here
 * instead of decoding for seconds more for nobody.
 */
const pause = async (stop: StopSignal | undefined): Promise<void> => {
  await turn()
  throwIfStopped(stop)
}

const throwIfStopped = (stop: StopSignal | undefined): void => {
  if (stop?.aborted === true) throw new Error("the work was stopped: its document closed or its link went away")
}

/**
 * changesOf, yielding to the event loop between slices of a document chunk's changes: a
 * replica's page stays responsive, and a hub keeps serving its other documents (a 150-byte
 * chunk can carry 262,144 changes; decoding them is seconds).
 */
export const changesOfAsync = async (bytes: Uint8Array, measured: Extract<Measured, { ok: true }>, stop?: StopSignal): Promise<UntrustedChange[]> => {
  if (measured.type !== CHUNK_DOCUMENT) return changesOf(bytes, measured)
  // Loading is one synchronous stretch (over a second at the bound): not for an owner already gone.
  throwIfStopped(stop)
  const doc = A.load(bytes)
  try {
    await pause(stop)
    const all = changesLoaded(doc, measured)
    const out: UntrustedChange[] = []
    for (let i = 0; i < all.length; i++) {
      if (i % DECODE_SLICE === 0) await pause(stop)
      out.push(decodeUntrusted(all[i]!))
    }
    return out
  } finally {
    A.free(doc)
  }
}

/**
 * The work of one slice of building an index (`indexInSlices`): an op counts 1, looking a
 * change up and decoding it 2 each (measured on this project's machine: about 12 µs an op,
 * 17 µs to look a change up, 21 µs to decode one besides its ops), so a slice is about 12 ms
 * of work (a median of 6-14 ms measured under jest's vm on 2 cores with a load average of 7).
 * A change is decoded in one call, so a slice is at least one change: up to the largest
 * update a hub takes (2^18 ops by default, about 3 s).
 */
export const INDEX_SLICE = 1024

/**
 * The document's OpIndex (./validate.ts), built in slices between turns of the event loop:
 * `OpIndex.of` decodes every change in one synchronous stretch (about 12 s for 2^20 ops),
 * and Automerge's calls that list a document's changes (`getAllChanges`, its history in
 * order) are one synchronous call each, seconds at a document's bound. So the history is
 * walked from the heads, a change at a time (`getChangeMetaByHash`), depth first, and each
 * change decoded (`getDecodedChangeByHash`) and staged once its dependencies are: no call
 * costs more than one change. `current` gives the document afresh after every pause (an
 * endpoint may replace its handle; a throw from it stops the build). Heads that appeared
 * meanwhile are walked too, so the index is the document's as it is when the promise resolves.
 */
export const indexInSlices = async (current: () => A.Doc<unknown>, stop?: StopSignal): Promise<OpIndex> => {
  const index = new OpIndex()
  const overlay = new Overlay(index)
  /** Changes to stage, their dependencies above them; `expanded` those whose dependencies were pushed. */
  const stack: string[] = []
  const expanded = new Set<string>()
  for (;;) {
    await pause(stop)
    const doc = current()
    const backend = A.getBackend(doc)
    if (stack.length === 0) {
      for (const head of A.getHeads(doc)) if (!overlay.has(head)) stack.push(head)
      if (stack.length === 0) return index
    }
    let work = 0
    while (stack.length > 0 && work < INDEX_SLICE) {
      const hash = stack[stack.length - 1]!
      if (overlay.has(hash)) {
        stack.pop()
        continue
      }
      if (!expanded.has(hash)) {
        const meta = backend.getChangeMetaByHash(hash)
        if (meta == null) throw new Error(`the document lacks change ${hash.slice(0, 12)} of its own history`)
        expanded.add(hash)
        work += 2
        const before = stack.length
        for (const dep of meta.deps) if (!overlay.has(dep)) stack.push(dep)
        if (stack.length > before) continue
      }
      // Every dependency is staged (they were above it on the stack).
      stack.pop()
      expanded.delete(hash)
      const change = backend.getDecodedChangeByHash(hash)
      if (change == null) throw new Error(`the document lacks change ${hash.slice(0, 12)} of its own history`)
      overlay.stage(change)
      work += 2 + change.ops.length
    }
    overlay.commit()
  }
}

/** One change decoded (throws when Automerge cannot). */
export const decodeUntrusted = (bytes: A.Change): UntrustedChange => {
  const d = A.decodeChange(bytes)
  if (typeof d.hash !== "string" || !Array.isArray(d.deps)) throw new Error("a change without a hash")
  return { bytes, hash: d.hash, deps: d.deps, decoded: d }
}

/** What `admitChanges` decided: the changes to apply, or why none of them. */
export type Admitted =
  | { readonly ok: true; readonly fresh: ReadonlyArray<UntrustedChange> }
  | { readonly ok: false; readonly missing: string }
  | { readonly ok: false; readonly verdict: Verdict }

/**
 * Which of `changes` to apply, all or nothing: those `known` does not have, each with every
 * dependency known or earlier among them, each passing `overlay`'s checks (on success they
 * are staged in it; the caller commits it once they are applied).
 */
export const admitChanges = async (overlay: Overlay, changes: ReadonlyArray<UntrustedChange>, known: (hash: string) => boolean, stop?: StopSignal): Promise<Admitted> => {
  // In slices, like the decoding: each change costs lookups in the document and its ops' checks.
  const fresh: UntrustedChange[] = []
  for (let i = 0; i < changes.length; i++) {
    if (i > 0 && i % DECODE_SLICE === 0) await pause(stop)
    if (!known(changes[i]!.hash)) fresh.push(changes[i]!)
  }
  const inUpdate = new Set(fresh.map((x) => x.hash))
  for (let i = 0; i < fresh.length; i++) {
    if (i > 0 && i % DECODE_SLICE === 0) await pause(stop)
    const missing = fresh[i]!.deps.find((dep) => !inUpdate.has(dep) && !known(dep))
    if (missing !== undefined) return { ok: false, missing }
  }
  const below = countersBelow(fresh.map((x) => x.decoded))
  for (let i = 0; i < fresh.length; i++) {
    if (i > 0 && i % DECODE_SLICE === 0) await pause(stop)
    const verdict = overlay.check(fresh[i]!.decoded, below[i])
    if (verdict !== undefined) return { ok: false, verdict }
  }
  return { ok: true, fresh }
}

/** Most hashes a sync message's heads, need or have list may name (an honest one names its heads and a few needs). */
export const MAX_SYNC_HASHES = 4096
/** Most `have` entries of a sync message (Automerge sends one). */
const MAX_SYNC_HAVES = 16
const HASH = /^[0-9a-f]{64}$/

/**
 * A peer's decoded sync message with its lists checked before they reach a SyncState:
 * hashes well formed and each named once, lists bounded. A `need` naming a change of the
 * document twice made every later `generateSyncMessage` on that SyncState panic
 * (`PanicError: ... MissingOps`). Returns the cleaned message, or why it is refused.
 */
export const cleanSyncMessage = (m: A.DecodedSyncMessage): A.DecodedSyncMessage | string => {
  const hashes = (list: unknown, what: string): string[] | string => {
    if (!Array.isArray(list) || list.length > MAX_SYNC_HASHES) return `its ${what} list is not a list of at most ${MAX_SYNC_HASHES} hashes`
    for (const h of list) if (typeof h !== "string" || !HASH.test(h)) return `its ${what} list names something that is not a change hash`
    return [...new Set(list as string[])]
  }
  const heads = hashes(m.heads, "heads")
  if (typeof heads === "string") return heads
  const need = hashes(m.need, "need")
  if (typeof need === "string") return need
  if (!Array.isArray(m.have) || m.have.length > MAX_SYNC_HAVES) return `it has more than ${MAX_SYNC_HAVES} have entries`
  const have: A.DecodedSyncMessage["have"] = []
  for (const h of m.have) {
    const lastSync = hashes(h.lastSync, "lastSync")
    if (typeof lastSync === "string") return lastSync
    have.push({ ...h, lastSync })
  }
  return { ...m, heads, need, have }
}

/**
 * Most bytes of a sync message's Bloom filters, all its `have` entries together: Automerge
 * spends 10 bits a change the peer has since its last sync (2^18 changes, a document's bound
 * on the hub, are 320 KiB), and the SyncState holds them until the peer's next message.
 */
export const MAX_SYNC_BLOOM_BYTES = 1 << 20
/** Most changes a sync message may carry: a document's bound on the hub (DEFAULT_MAX_DOC_CHANGES), and every one of them is a JS object once decoded. */
export const MAX_SYNC_CHANGES = 1 << 18
/** A Bloom filter's parameters (Automerge uses 10 and 7): every change Automerge sends is checked against each filter, a loop and an allocation per probe. */
const MAX_BLOOM_BITS_PER_ENTRY = 64
const MAX_BLOOM_PROBES = 64
/** The shortest Automerge chunk: magic (4), checksum (4), type (1), length (1). */
const MIN_CHUNK_BYTES = 10
const SYNC_V1 = 0x42
const SYNC_V2 = 0x43
const HASH_BYTES = 32

/** What a sync message's bytes hold, counted without decoding them. */
export interface SyncMessageCounts {
  readonly heads: number
  readonly need: number
  readonly have: number
  /** Hashes of every `have` entry's lastSync list together. */
  readonly lastSync: number
  /** Bytes of every `have` entry's Bloom filter together. */
  readonly bloomBytes: number
  readonly changes: number
  /** Bytes of every change chunk together. */
  readonly changeBytes: number
}

/**
 * What a peer's sync message holds, from its bytes alone, or why it is refused: the limits of
 * `cleanSyncMessage` (and MAX_SYNC_BLOOM_BYTES, MAX_SYNC_CHANGES) checked before
 * `A.decodeSyncMessage`, which makes a JS object and a Uint8Array of every entry: 8 MB of
 * empty `have` entries were 4 million of them, and the hub's heap was gone before any list
 * could be counted. This reads only the counts and lengths (Automerge's format, rust
 * automerge src/sync.rs: type byte, heads, need, have entries of lastSync hashes and a Bloom
 * filter, change chunks, then an optional length-prefixed flags section), so what a refusal
 * costs is a pass over at most the bytes, with nothing allocated per entry. The heads, need
 * and lastSync lists share one bound: an honest peer names its heads, a few needs and its
 * last sync, and all of them stay in the SyncState.
 */
export const countSyncMessage = (bytes: Uint8Array): SyncMessageCounts | string => {
  const end = bytes.length
  let at = 1
  /** An unsigned LEB128 (as Automerge writes it: no overlong form) ending by `limit`; -1: truncated or malformed. */
  const uleb = (limit: number): number => {
    let value = 0
    // Five bytes hold every count a message can have (they are all far below 2^32).
    for (let i = 0, scale = 1; i < 5 && at < limit; i++, scale *= 128) {
      const b = bytes[at++]!
      value += (b & 0x7f) * scale
      if ((b & 0x80) === 0) return i > 0 && b === 0 ? -1 : value
    }
    return -1
  }
  if (end === 0 || (bytes[0] !== SYNC_V1 && bytes[0] !== SYNC_V2)) return "it is not an Automerge sync message (its first byte is not 0x42 or 0x43)"
  let hashes = 0
  const hashList = (what: string): string | undefined => {
    const n = uleb(end)
    if (n < 0) return `its ${what} list is cut short or its count malformed`
    hashes += n
    // Each list as cleanSyncMessage bounds it, and all of them together (kept in a SyncState).
    if (n > MAX_SYNC_HASHES) return `its ${what} list names more than ${MAX_SYNC_HASHES} hashes`
    if (hashes > 3 * MAX_SYNC_HASHES) return `its heads, need and lastSync lists name more than ${3 * MAX_SYNC_HASHES} hashes together`
    if (n * HASH_BYTES > end - at) return `its ${what} list is cut short`
    at += n * HASH_BYTES
    return undefined
  }
  const heads = hashList("heads")
  if (heads !== undefined) return heads
  const headCount = hashes
  const need = hashList("need")
  if (need !== undefined) return need
  const needCount = hashes - headCount
  const haves = uleb(end)
  if (haves < 0) return "its have list is cut short or its count malformed"
  if (haves > MAX_SYNC_HAVES) return `it has more than ${MAX_SYNC_HAVES} have entries`
  let bloomBytes = 0
  for (let i = 0; i < haves; i++) {
    const refused = hashList("lastSync")
    if (refused !== undefined) return refused
    const length = uleb(end)
    if (length < 0 || length > end - at) return "a Bloom filter of its have list is cut short"
    bloomBytes += length
    if (bloomBytes > MAX_SYNC_BLOOM_BYTES) return `its Bloom filters have more than ${MAX_SYNC_BLOOM_BYTES} bytes together`
    const bloomEnd = at + length
    if (length > 0) {
      // Automerge panics on a filter of no bits (a remainder by zero) and loops once per probe.
      const entries = uleb(bloomEnd)
      const bitsPerEntry = uleb(bloomEnd)
      const probes = uleb(bloomEnd)
      if (entries < 1 || entries > 0xffffffff || bitsPerEntry < 1 || bitsPerEntry > MAX_BLOOM_BITS_PER_ENTRY || probes < 1 || probes > MAX_BLOOM_PROBES) {
        return `a Bloom filter of its have list is not what Automerge makes (at least 1 entry, 1-${MAX_BLOOM_BITS_PER_ENTRY} bits an entry, 1-${MAX_BLOOM_PROBES} probes)`
      }
      if (bloomEnd - at !== Math.ceil((entries * bitsPerEntry) / 8)) return "a Bloom filter of its have list is not as long as its entries make it"
    }
    at = bloomEnd
  }
  const lastSync = hashes - headCount - needCount
  const changes = uleb(end)
  if (changes < 0) return "its change list is cut short or its count malformed"
  if (changes > MAX_SYNC_CHANGES) return `it carries more than ${MAX_SYNC_CHANGES} changes`
  let changeBytes = 0
  for (let i = 0; i < changes; i++) {
    const length = uleb(end)
    if (length < 0 || length > end - at) return "a change of it is cut short"
    if (length < MIN_CHUNK_BYTES) return "a change of it is shorter than any Automerge chunk"
    changeBytes += length
    at += length
  }
  // Flags (capabilities, read-only): one length-prefixed byte string; Automerge ignores what follows it.
  if (at < end) {
    const length = uleb(end)
    if (length < 0 || length > end - at) return "its flags are cut short"
  }
  return { heads: headCount, need: needCount, have: haves, lastSync, bloomBytes, changes, changeBytes }
}

/**
 * A peer's sync message admitted: checked from its bytes (`countSyncMessage`), only then
 * decoded, and cleaned (`cleanSyncMessage`). Returns the cleaned message (encode it for
 * `receiveSyncMessage`: the peer's own bytes may name a hash twice), or why it is refused.
 */
export const admitSyncMessage = (bytes: Uint8Array): A.DecodedSyncMessage | string => {
  const counted = countSyncMessage(bytes)
  if (typeof counted === "string") return counted
  let decoded: A.DecodedSyncMessage
  try {
    decoded = A.decodeSyncMessage(bytes)
  } catch (e) {
    return `it does not decode (${e instanceof Error ? e.message.slice(0, 120) : String(e)})`
  }
  return cleanSyncMessage(decoded)
}

/** Raw DEFLATE, asynchronously, with a bound: undefined when the output passes `max`. Throws on data that is not DEFLATE. */
export type InflateAsync = (data: Uint8Array, max: number) => Promise<Uint8Array | undefined>

/**
 * Raw DEFLATE through the platform's DecompressionStream (browsers; Node 18+), read chunk by
 * chunk and cancelled as soon as the output passes `max`: a few kilobytes can stand for
 * gigabytes.
 */
export const inflateWithStreams: InflateAsync = async (data, max) => {
  const stream = new DecompressionStream("deflate-raw")
  const writer = stream.writable.getWriter()
  // Errors surface on the reading side; the writer's own promises would only repeat them.
  writer.write(data as Uint8Array<ArrayBuffer>).catch(() => {})
  writer.close().catch(() => {})
  const reader = stream.readable.getReader()
  const parts: Uint8Array[] = []
  let length = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    length += value.length
    if (length > max) {
      await reader.cancel().catch(() => {})
      return undefined
    }
    parts.push(value)
  }
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** How many deflated parts one chunk may have (an honest one has a few per column group). */
const MAX_DEFLATED_PARTS = 64

/**
 * `measureChunk` where inflating is asynchronous (a browser has no synchronous inflate): each
 * deflated part is inflated once, under the whole chunk's bound, and the measure run again
 * with what is inflated so far until it needs nothing more.
 */
export const measureChunkAsync = async (
  bytes: Uint8Array,
  limits: { readonly maxOps: number; readonly maxInflatedBytes: number; readonly inflate: InflateAsync; readonly maxActorBytes?: number },
): Promise<Measured> => {
  // By buffer, then offset and length: a compressed change's columns are parts of its inflated body.
  const inflated = new Map<ArrayBufferLike, Map<string, Uint8Array>>()
  const keyOf = (data: Uint8Array) => `${data.byteOffset}:${data.length}`
  for (let round = 0; round <= MAX_DEFLATED_PARTS; round++) {
    let wanted: Uint8Array | undefined
    const measured = measureChunk(bytes, {
      maxOps: limits.maxOps,
      maxInflatedBytes: limits.maxInflatedBytes,
      ...(limits.maxActorBytes !== undefined ? { maxActorBytes: limits.maxActorBytes } : {}),
      inflate: (data, max) => {
        const out = inflated.get(data.buffer)?.get(keyOf(data))
        if (out === undefined) wanted = data
        return out !== undefined && out.length <= max ? out : undefined
      },
    })
    if (wanted === undefined) return measured
    let out: Uint8Array | undefined
    try {
      out = await limits.inflate(wanted, limits.maxInflatedBytes)
    } catch {
      return { ok: false, tooLarge: false, message: "deflated data that does not inflate" }
    }
    if (out === undefined) return { ok: false, tooLarge: true, message: `deflated data inflates to more than ${limits.maxInflatedBytes} bytes` }
    const parts = inflated.get(wanted.buffer) ?? new Map<string, Uint8Array>()
    inflated.set(wanted.buffer, parts.set(keyOf(wanted), out))
  }
  return { ok: false, tooLarge: true, message: `more than ${MAX_DEFLATED_PARTS} deflated parts` }
}

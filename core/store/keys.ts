/**
 * Key layout of Canon's records in a KVStore. Keys sort bytewise, so:
 *
 *   [0x00] "format"                     -> storage format version (format.ts: migrated on open)
 *   "a" "m" <docId>                     -> authority: document head (machine, seq, checkpoint)
 *   "a" "e" <docId> <seq:8 BE>          -> authority: log entry; one doc's log is one range, in seq order
 *   "a" "c" <docId> <clientId>          -> authority: idempotency record of a client (format 1 only: format 2 holds none)
 *   "a" "w" <docId> <clientId>          -> authority: a client's high-water mark (kept forever)
 *   "a" "o" <docId> <clientId> <clientSeq:8 BE> -> authority: a run of outcomes from that clientSeq
 *   "a" "k" <docId> <seq:8 BE>          -> authority: checkpoint, the state hash after entry seq
 *   "a" "s" <docId> <seq:8 BE>          -> authority: a complete snapshot of the state at seq (hash, size, chunks)
 *   "a" "t" <docId> <seq:8 BE> <i:4 BE> -> authority: chunk i of that snapshot's canonical bytes
 *   "a" "z" <docId>                     -> authority: compaction horizon (entries up to it may be gone)
 *   "c" "m" <docId>                     -> CRDT document (core/crdt-docs): kind, last seq, base seq
 *   "c" "b" <docId>                     -> CRDT document: compacted base state (engine bytes) at the base seq
 *   "c" "e" <docId> <seq:8 BE>          -> CRDT document: one accepted update after the base
 *   "c" "o" <docId> <writer>            -> CRDT document: the principal that owns a writer identity (Yjs clientID, Automerge actor)
 *   "i" <clientId>                      -> hub: who owns a clientId (principal, secret hashes)
 *   "r" "i"                             -> replica: its clientId
 *   "r" "p"                             -> replica: the secret that proves its clientId
 *   "r" "m" <docId>                     -> replica: confirmedSeq, nextClientSeq, machine
 *   "r" "s" <docId>                     -> replica: confirmed state snapshot
 *   "r" "e" <docId> <seq:8 BE>          -> replica: confirmed entries after the snapshot
 *   "r" "o" <docId> <clientSeq:8 BE>    -> replica: outbox, in clientSeq order
 *   "r" "v" <docId>                     -> replica: its state was migrated locally (an app upgrade): fetch the authority's
 *   "r" "q" <docId> <n:8 BE>            -> replica: a CRDT change the hub refused for needing a refused one, waiting to go again
 *
 * <docId> and <clientId> are a varint length then UTF-8, so no id's key is a prefix of
 * another's and each document's records are contiguous. Seqs are 8-byte big-endian so
 * numeric order is byte order.
 */
import { ByteWriter } from "../bytes.js"

const A = 0x61 // "a"
const C = 0x63 // "c": whole CRDT documents (core/crdt-docs), a key space apart from machines
const I = 0x69 // "i"
const R = 0x72 // "r"

const w = new ByteWriter(128)

const key = (parts: (wr: ByteWriter) => void): Uint8Array => {
  w.reset()
  parts(w)
  return w.finish()
}

const seq8 = (wr: ByteWriter, n: number): void => {
  const hi = Math.floor(n / 4294967296)
  const lo = n >>> 0
  wr.byte((hi >>> 24) & 0xff); wr.byte((hi >>> 16) & 0xff); wr.byte((hi >>> 8) & 0xff); wr.byte(hi & 0xff)
  wr.byte((lo >>> 24) & 0xff); wr.byte((lo >>> 16) & 0xff); wr.byte((lo >>> 8) & 0xff); wr.byte(lo & 0xff)
}

/** Length of an entry key of `docId` (prefix + 8-byte seq): anything else in the range is not an entry. */
export const entryKeyLength = (prefix: Uint8Array): number => prefix.length + 8

/** Reads the 8-byte big-endian number at the end of a key. */
export const seqFromKey = (k: Uint8Array): number => {
  const o = k.length - 8
  const hi = ((k[o]! << 24) | (k[o + 1]! << 16) | (k[o + 2]! << 8) | k[o + 3]!) >>> 0
  const lo = ((k[o + 4]! << 24) | (k[o + 5]! << 16) | (k[o + 6]! << 8) | k[o + 7]!) >>> 0
  return hi * 4294967296 + lo
}

/** Smallest key greater than every key starting with `prefix`. */
export const prefixEnd = (prefix: Uint8Array): Uint8Array => {
  const out = prefix.slice()
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++
      return out.subarray(0, i + 1)
    }
  }
  return new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
}

export const formatKey = key((k) => { k.byte(0); k.string("format") })

export const writeAuthHeadKey = (k: ByteWriter, docId: string): void => { k.byte(A); k.byte(0x6d); k.string(docId) }
export const authHead = (docId: string) => key((k) => writeAuthHeadKey(k, docId))
export const authHeadPrefix = key((k) => { k.byte(A); k.byte(0x6d) })
export const authEntryPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x65); k.string(docId) })
export const writeAuthEntryKey = (k: ByteWriter, docId: string, seq: number): void => { k.byte(A); k.byte(0x65); k.string(docId); seq8(k, seq) }
export const authEntry = (docId: string, seq: number) => key((k) => writeAuthEntryKey(k, docId, seq))
export const authClientPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x63); k.string(docId) })
export const writeAuthClientKey = (k: ByteWriter, docId: string, clientId: string): void => { k.byte(A); k.byte(0x63); k.string(docId); k.string(clientId) }
export const authClient = (docId: string, clientId: string) => key((k) => writeAuthClientKey(k, docId, clientId))

export const writeAuthMarkKey = (k: ByteWriter, docId: string, clientId: string): void => { k.byte(A); k.byte(0x77); k.string(docId); k.string(clientId) }
export const authMark = (docId: string, clientId: string) => key((k) => writeAuthMarkKey(k, docId, clientId))
export const authMarkPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x77); k.string(docId) })
export const authOutcomePrefix = (docId: string, clientId: string) => key((k) => { k.byte(A); k.byte(0x6f); k.string(docId); k.string(clientId) })
export const authOutcomeDocPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x6f); k.string(docId) })
export const writeAuthOutcomeKey = (k: ByteWriter, docId: string, clientId: string, first: number): void => { k.byte(A); k.byte(0x6f); k.string(docId); k.string(clientId); seq8(k, first) }
export const authOutcome = (docId: string, clientId: string, first: number) => key((k) => writeAuthOutcomeKey(k, docId, clientId, first))

export const authSnapshotPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x73); k.string(docId) })
export const authSnapshot = (docId: string, seq: number) => key((k) => { k.byte(A); k.byte(0x73); k.string(docId); seq8(k, seq) })
export const authChunkPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x74); k.string(docId) })
export const authChunksOf = (docId: string, seq: number) => key((k) => { k.byte(A); k.byte(0x74); k.string(docId); seq8(k, seq) })
export const authChunk = (docId: string, seq: number, i: number) => key((k) => {
  k.byte(A); k.byte(0x74); k.string(docId); seq8(k, seq)
  k.byte((i >>> 24) & 0xff); k.byte((i >>> 16) & 0xff); k.byte((i >>> 8) & 0xff); k.byte(i & 0xff)
})
export const authHorizon = (docId: string) => key((k) => { k.byte(A); k.byte(0x7a); k.string(docId) })

export const identity = (clientId: string) => key((k) => { k.byte(I); k.string(clientId) })

export const authCheckpointPrefix = (docId: string) => key((k) => { k.byte(A); k.byte(0x6b); k.string(docId) })
export const writeAuthCheckpointKey = (k: ByteWriter, docId: string, seq: number): void => { k.byte(A); k.byte(0x6b); k.string(docId); seq8(k, seq) }
export const authCheckpoint = (docId: string, seq: number) => key((k) => writeAuthCheckpointKey(k, docId, seq))

export const replicaClientId = key((k) => { k.byte(R); k.byte(0x69) })
export const replicaSecret = key((k) => { k.byte(R); k.byte(0x70) })
export const replicaMeta = (docId: string) => key((k) => { k.byte(R); k.byte(0x6d); k.string(docId) })
export const replicaSnapshot = (docId: string) => key((k) => { k.byte(R); k.byte(0x73); k.string(docId) })
export const replicaEntryPrefix = (docId: string) => key((k) => { k.byte(R); k.byte(0x65); k.string(docId) })
export const replicaEntry = (docId: string, seq: number) => key((k) => { k.byte(R); k.byte(0x65); k.string(docId); seq8(k, seq) })
/** Every document's outbox, and every document's queue (a range over all of either). */
export const replicaOutboxAll = key((k) => { k.byte(R); k.byte(0x6f) })
export const replicaQueueAll = key((k) => { k.byte(R); k.byte(0x71) })
export const replicaOutboxPrefix = (docId: string) => key((k) => { k.byte(R); k.byte(0x6f); k.string(docId) })
export const replicaProvisional = (docId: string) => key((k) => { k.byte(R); k.byte(0x76); k.string(docId) })
export const replicaOutbox = (docId: string, clientSeq: number) => key((k) => { k.byte(R); k.byte(0x6f); k.string(docId); seq8(k, clientSeq) })
export const replicaQueuePrefix = (docId: string) => key((k) => { k.byte(R); k.byte(0x71); k.string(docId) })
export const replicaQueued = (docId: string, n: number) => key((k) => { k.byte(R); k.byte(0x71); k.string(docId); seq8(k, n) })

// Whole CRDT documents (core/crdt-docs/store.ts).
export const crdtMeta = (docId: string) => key((k) => { k.byte(C); k.byte(0x6d); k.string(docId) })
export const crdtBase = (docId: string) => key((k) => { k.byte(C); k.byte(0x62); k.string(docId) })
export const crdtEntryPrefix = (docId: string) => key((k) => { k.byte(C); k.byte(0x65); k.string(docId) })
export const crdtEntry = (docId: string, seq: number) => key((k) => { k.byte(C); k.byte(0x65); k.string(docId); seq8(k, seq) })
export const crdtOwnerPrefix = (docId: string) => key((k) => { k.byte(C); k.byte(0x6f); k.string(docId) })
export const crdtOwner = (docId: string, writer: string) => key((k) => { k.byte(C); k.byte(0x6f); k.string(docId); k.string(writer) })

/**
 * Writes a store in storage format 1, explicitly: the key layout and record tuples of the
 * first format (Canon before e4be877), built here byte by byte rather than with today's
 * encoders, so the migration tests start from what an old Canon actually left on disk.
 *
 *   [0x00] "format"                   -> 1
 *   "a" "m" <docId>                   -> [machine, version, seq, lastTime, checkpointSeq, checkpointHash]
 *   "a" "e" <docId> <seq:8 BE>        -> [time, clientId, clientSeq, name, args]
 *   "a" "k" <docId> <seq:8 BE>        -> checkpoint hash
 *   "a" "c" <docId> <clientId>        -> [last, acked, [[clientSeq, seq] | [clientSeq, -1, code, message], ...]]
 *   "r" "i"                           -> clientId
 *   "r" "m" <docId>                   -> [machine, version, confirmedSeq, nextClientSeq]
 *   "r" "s" <docId>                   -> [seq, stateBytes]
 *   "r" "e" <docId> <seq:8 BE>        -> [time, clientId, clientSeq, name, args]
 *   "r" "o" <docId> <clientSeq:8 BE>  -> [name, args]
 *
 * Strings in keys are a varint length then UTF-8; seqs 8-byte big-endian.
 */
import { encodeCanonical, type BatchOp, type KVStore } from "../../core/index.js"

const utf8 = new TextEncoder()

const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}
const str = (s: string): number[] => {
  const b = utf8.encode(s)
  return [...varint(b.length), ...b]
}
const seq8 = (n: number): number[] => {
  const out: number[] = []
  for (let i = 7; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) % 256)
  return out
}
const ch = (c: string): number => c.charCodeAt(0)

export const F1 = {
  format: Uint8Array.of(0, ...str("format")),
  head: (docId: string) => Uint8Array.of(ch("a"), ch("m"), ...str(docId)),
  entry: (docId: string, seq: number) => Uint8Array.of(ch("a"), ch("e"), ...str(docId), ...seq8(seq)),
  checkpoint: (docId: string, seq: number) => Uint8Array.of(ch("a"), ch("k"), ...str(docId), ...seq8(seq)),
  client: (docId: string, clientId: string) => Uint8Array.of(ch("a"), ch("c"), ...str(docId), ...str(clientId)),
  replicaClientId: Uint8Array.of(ch("r"), ch("i")),
  replicaMeta: (docId: string) => Uint8Array.of(ch("r"), ch("m"), ...str(docId)),
  replicaSnapshot: (docId: string) => Uint8Array.of(ch("r"), ch("s"), ...str(docId)),
  replicaEntry: (docId: string, seq: number) => Uint8Array.of(ch("r"), ch("e"), ...str(docId), ...seq8(seq)),
  outbox: (docId: string, clientSeq: number) => Uint8Array.of(ch("r"), ch("o"), ...str(docId), ...seq8(clientSeq)),
}

export interface F1Entry {
  readonly seq: number
  readonly time: number
  readonly clientId: string
  readonly clientSeq: number
  readonly name: string
  readonly args: unknown
}

export type F1Outcome =
  | { readonly clientSeq: number; readonly seq: number }
  | { readonly clientSeq: number; readonly code: string; readonly message: string }

export interface F1Client {
  readonly clientId: string
  readonly last: number
  readonly acked: number
  /** Outcomes kept for clientSeqs in (acked, last], in clientSeq order. */
  readonly outcomes: ReadonlyArray<F1Outcome>
}

export interface F1Doc {
  readonly docId: string
  readonly machine: string
  readonly version: number
  readonly entries: ReadonlyArray<F1Entry>
  readonly checkpoint?: { readonly seq: number; readonly hash: string }
  readonly clients: ReadonlyArray<F1Client>
}

export interface F1Replica {
  readonly clientId: string
  readonly docs: ReadonlyArray<{
    readonly docId: string
    readonly machine: string
    readonly version: number
    readonly confirmedSeq: number
    readonly nextClientSeq: number
    readonly snapshot?: { readonly seq: number; readonly state: Uint8Array }
    readonly entries: ReadonlyArray<F1Entry>
    readonly outbox: ReadonlyArray<{ readonly clientSeq: number; readonly name: string; readonly args: unknown }>
  }>
}

const entryValue = (e: F1Entry): Uint8Array => encodeCanonical([e.time, e.clientId, e.clientSeq, e.name, e.args])

/** The records of one format-1 authority document. */
export const docOps = (d: F1Doc): BatchOp[] => {
  const ops: BatchOp[] = []
  const last = d.entries[d.entries.length - 1]
  ops.push({ type: "put", key: F1.head(d.docId), value: encodeCanonical([d.machine, d.version, last?.seq ?? 0, last?.time ?? 0, d.checkpoint?.seq ?? 0, d.checkpoint?.hash ?? ""]) })
  for (const e of d.entries) ops.push({ type: "put", key: F1.entry(d.docId, e.seq), value: entryValue(e) })
  if (d.checkpoint !== undefined) ops.push({ type: "put", key: F1.checkpoint(d.docId, d.checkpoint.seq), value: encodeCanonical(d.checkpoint.hash) })
  for (const c of d.clients) {
    const outs = c.outcomes.map((o) => ("seq" in o ? [o.clientSeq, o.seq] : [o.clientSeq, -1, o.code, o.message]))
    ops.push({ type: "put", key: F1.client(d.docId, c.clientId), value: encodeCanonical([c.last, c.acked, outs]) })
  }
  return ops
}

/** The records of a format-1 replica. */
export const replicaOps = (r: F1Replica): BatchOp[] => {
  const ops: BatchOp[] = [{ type: "put", key: F1.replicaClientId, value: encodeCanonical(r.clientId) }]
  for (const d of r.docs) {
    ops.push({ type: "put", key: F1.replicaMeta(d.docId), value: encodeCanonical([d.machine, d.version, d.confirmedSeq, d.nextClientSeq]) })
    if (d.snapshot !== undefined) ops.push({ type: "put", key: F1.replicaSnapshot(d.docId), value: encodeCanonical([d.snapshot.seq, d.snapshot.state]) })
    for (const e of d.entries) ops.push({ type: "put", key: F1.replicaEntry(d.docId, e.seq), value: entryValue(e) })
    for (const o of d.outbox) ops.push({ type: "put", key: F1.outbox(d.docId, o.clientSeq), value: encodeCanonical([o.name, o.args]) })
  }
  return ops
}

/** Writes a format-1 store: the format key, then the records, in batches of `per`. */
export const writeFormat1 = async (kv: KVStore, ops: ReadonlyArray<BatchOp>, per = 2000): Promise<void> => {
  await kv.batch([{ type: "put", key: F1.format, value: encodeCanonical(1) }])
  for (let i = 0; i < ops.length; i += per) await kv.batch(ops.slice(i, i + per))
}

/** A small deterministic generator (mulberry32). */
export const rng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A large format-1 hub store of Counter documents: `docs` documents, each with `clients`
 * clients who submitted 1-4 `incr` commands (the last one or two outcomes kept, some of them
 * rejections), so every client has a format-1 record to migrate.
 */
export const bigFormat1Docs = (seed: number, docs: number, clients: number): F1Doc[] => {
  const random = rng(seed)
  const out: F1Doc[] = []
  for (let d = 0; d < docs; d++) {
    const docId = `doc-${d}`
    const entries: F1Entry[] = []
    const recs: F1Client[] = []
    for (let c = 0; c < clients; c++) {
      const clientId = `client-${d}-${c}`
      const n = 1 + Math.floor(random() * 4)
      const outcomes: F1Outcome[] = []
      for (let cs = 1; cs <= n; cs++) {
        if (random() < 0.1) outcomes.push({ clientSeq: cs, code: "rejected", message: `no (${clientId} #${cs})` })
        else {
          const seq = entries.length + 1
          entries.push({ seq, time: 1_700_000_000_000 + seq, clientId, clientSeq: cs, name: "incr", args: { by: 1 + (cs % 3) } })
          outcomes.push({ clientSeq: cs, seq })
        }
      }
      const acked = Math.floor(random() * n)
      recs.push({ clientId, last: n, acked, outcomes: outcomes.filter((o) => o.clientSeq > acked) })
    }
    out.push({ docId, machine: "counter", version: 1, entries, clients: recs })
  }
  return out
}

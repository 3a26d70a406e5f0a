/**
 * The simulator's invariants (DESIGN.md), checked once the network has healed:
 * 1. convergence: every replica's confirmed state hash equals the authority's, at its seq;
 * 2. nothing acknowledged is lost: every confirmed command is in the durable log at its seq,
 *    and the authority reloaded from storage has the same state;
 * 3. exactly once: no (clientId, clientSeq) appears twice in the log;
 * 4. every command that reached the outbox was confirmed or rejected, and the app was told;
 * 5. bad input (the raw client's) was refused with a clear code and never entered the log.
 */
import type { Doc, Entry, Machine } from "../../core/index.js"

export interface Ledger {
  /** Commands the app submitted, by "clientId:clientSeq". */
  readonly submitted: Map<string, { name: string; persisted: boolean }>
  /** Confirmations the app saw (receipt or event), with their seq. */
  readonly confirmed: Map<string, number>
  /** Rejections the app saw, with their code. */
  readonly rejected: Map<string, string>
  /** Outcomes the raw client received, by its clientSeq. */
  readonly rawOutcomes: Map<number, string>
  /** Inconsistencies noticed while running. */
  readonly errors: string[]
}

export interface WorldView {
  readonly machine: Machine<any, any>
  readonly docId: string
  readonly authority: { readonly seq: number; readonly hash: string }
  readonly entries: ReadonlyArray<Entry>
  readonly replicas: ReadonlyArray<{ name: string; clientId: string; doc: Doc<any> | undefined; status: string | undefined }>
  readonly ledger: Ledger
  readonly reload: () => Promise<{ seq: number; hash: string }>
  /** A replay of the log reproduces the state (false for deliberately non-deterministic machines). */
  readonly replayable: boolean
}

export const checkWorld = async (w: WorldView): Promise<string[]> => {
  const failures: string[] = [...w.ledger.errors]
  const fail = (s: string) => { if (failures.length < 30) failures.push(s) }

  // The log itself: contiguous seqs, each idempotency key once.
  const bySeq = new Map<number, Entry>()
  const byKey = new Map<string, number>()
  w.entries.forEach((e, i) => {
    if (e.seq !== i + 1) fail(`log: entry at index ${i} has seq ${e.seq}`)
    bySeq.set(e.seq, e)
    const key = `${e.clientId}:${e.clientSeq}`
    if (byKey.has(key)) fail(`exactly-once: ${key} is in the log at seq ${byKey.get(key)} and ${e.seq}`)
    byKey.set(key, e.seq)
  })
  if (w.entries.length !== w.authority.seq) fail(`log: ${w.entries.length} entries stored but the authority is at ${w.authority.seq}`)

  // Durability: the authority rebuilt from storage is the authority that served.
  const reloaded = await w.reload()
  if (reloaded.seq !== w.authority.seq || (w.replayable && reloaded.hash !== w.authority.hash)) {
    fail(`durability: reloaded authority at ${reloaded.seq}/${reloaded.hash}, live one at ${w.authority.seq}/${w.authority.hash}`)
  }

  // Convergence.
  for (const r of w.replicas) {
    if (r.doc === undefined) { fail(`${r.name}: not running at the end`); continue }
    if (r.status !== "online") fail(`${r.name}: status ${r.status} at the end`)
    if (r.doc.confirmedSeq !== w.authority.seq) fail(`convergence: ${r.name} at seq ${r.doc.confirmedSeq}, authority at ${w.authority.seq}`)
    const h = r.doc.confirmedHash()
    if (h !== w.authority.hash) fail(`convergence: ${r.name} hash ${h} != authority ${w.authority.hash} (seq ${r.doc.confirmedSeq})`)
    if (r.doc.pendingCount !== 0) fail(`outbox: ${r.name} still has ${r.doc.pendingCount} pending`)
  }

  // Acknowledged commands are in the log where the app was told.
  for (const [key, seq] of w.ledger.confirmed) {
    const e = bySeq.get(seq)
    if (e === undefined || `${e.clientId}:${e.clientSeq}` !== key) fail(`lost: ${key} was confirmed at seq ${seq} but the log has ${e ? `${e.clientId}:${e.clientSeq}` : "nothing"} there`)
    if (w.ledger.rejected.has(key)) fail(`${key} was both confirmed and rejected`)
  }

  // Every durable command settled, and the app heard of it.
  for (const [key, s] of w.ledger.submitted) {
    const inLog = byKey.has(key)
    const confirmed = w.ledger.confirmed.has(key)
    const rejected = w.ledger.rejected.has(key)
    if (inLog && !confirmed) fail(`${key} (${s.name}) is in the log but the app was never told it was confirmed`)
    if (inLog && rejected) fail(`${key} (${s.name}) is in the log but the app was told it was rejected`)
    if (s.persisted && !inLog && !rejected) fail(`${key} (${s.name}) reached the outbox but was neither confirmed nor rejected`)
    if (!s.persisted && (confirmed || rejected) && !inLog && !rejected) fail(`${key} settled without persisting`)
  }
  // Nothing from our replicas is in the log that the app did not submit.
  const clientIds = new Set(w.replicas.map((r) => r.clientId))
  for (const [key] of byKey) {
    const [cid] = key.split(":")
    if (clientIds.has(cid!) && !w.ledger.submitted.has(key)) fail(`${key} is in the log but was never submitted`)
  }

  // Bad input: refused, clearly, and not in the log.
  for (const [cs, outcome] of w.ledger.rawOutcomes) {
    if (outcome.startsWith("seq:")) fail(`bad input: raw command ${cs} was accepted (${outcome})`)
    else if (outcome !== "invalid-args" && outcome !== "unknown-command") fail(`bad input: raw command ${cs} got ${outcome}`)
  }
  for (const [key] of byKey) if (key.startsWith("raw-client:")) fail(`bad input: ${key} is in the log`)
  return failures
}

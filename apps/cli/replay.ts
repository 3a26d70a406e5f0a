/**
 * `canon inspect DIR docId`'s replay: rebuilds a document's state from as far back as its
 * stored log reaches and checks every stored hash it passes.
 *
 * A whole log (never compacted) is replayed from the machine's initial state. A compacted
 * one cannot be (entries at or below the horizon are gone): the replay starts from the
 * oldest stored snapshot that verifies and is not behind the horizon, so the log after it
 * is complete, and goes on through the tail. On the way every stored checkpoint after the
 * start is checked, and so is every newer snapshot (its hash is the state hash at its seq).
 *
 * A machine with versions is replayed as the hub loads it: each entry with the version of its
 * epoch (`headVersion` after the last `$migrate` entry, each marker's `from` before it), each
 * marker migrating the state.
 */
import { CanonError, decodeCanonical, hashState, type KVStore, type Machine } from "../../core/index.js"
import { AuthorityStore, JournaledState } from "../../core/internal.js"
import { applyLogged } from "../../core/apply.js"
import { historyOf } from "../../core/schema/registry.js"
import { applyMigration, markerOf, scanMarkers, versionAt, type Marker } from "../../core/schema/serve.js"
import * as K from "../../core/store/keys.js"
import type { SnapshotMeta } from "../../core/store/snapshot-store.js"
import { fmt, type DocSurvey } from "./doc-records.js"

export interface ReplayResult {
  /** The snapshot the replay started from, or undefined for the machine's initial state. */
  readonly base: SnapshotMeta | undefined
  /** Seq reached. */
  readonly at: number
  readonly replayed: number
  readonly hash: string
  /** The state at `at` (live: the caller owns it). */
  readonly state: unknown
  /** Stored checkpoints compared with the replay. */
  readonly checked: number
  /** Stored checkpoints before the replay's start (the log behind them is compacted). */
  readonly before: number
  /** Newer snapshots compared with the replay. */
  readonly snapshotsChecked: number
  readonly problems: ReadonlyArray<string>
}

/** Reads a verified snapshot's state (its chunks into one buffer of its size, as the hub does on load). */
const readState = async (kv: KVStore, docId: string, meta: SnapshotMeta): Promise<unknown> => {
  const bytes = new Uint8Array(meta.size)
  let at = 0
  for (let i = 0; i < meta.chunks; i++) {
    const chunk = await kv.get(K.authChunk(docId, meta.seq, i))
    if (chunk === undefined || at + chunk.length > meta.size) throw new Error(`chunk ${i} changed while it was read`)
    bytes.set(chunk, at)
    at += chunk.length
  }
  return decodeCanonical(bytes)
}

/** Where a replay can start: undefined for the initial state, a snapshot, or a sentence saying why none will do. */
export const replayBase = (survey: DocSurvey, headSeq: number): { base: SnapshotMeta | undefined } | { problem: string } => {
  if (survey.horizon === 0) return { base: undefined }
  const usable = survey.snapshots.filter((s) => s.verdict.ok && s.meta.seq >= survey.horizon && s.meta.seq <= headSeq)
  const base = usable[usable.length - 1]?.meta
  if (base !== undefined) return { base }
  return {
    problem: `The log is compacted through seq ${fmt(survey.horizon)} and no stored snapshot at or after it verifies: ` +
      "the document cannot be rebuilt (the hub will refuse to load it). Restore the data directory from a backup.",
  }
}

export const replayDoc = async (
  kv: KVStore,
  docId: string,
  machine: Machine<any, any>,
  headSeq: number,
  survey: DocSurvey,
  progress: (done: number, total: number) => void,
  headVersion = machine.version,
): Promise<ReplayResult | { readonly problem: string }> => {
  const start = replayBase(survey, headSeq)
  if ("problem" in start) return start
  const { base } = start
  const store = new AuthorityStore(kv, { readOnly: true })
  const checkpoints = await store.checkpoints(docId)
  const expected = new Map(checkpoints.map((c) => [c.seq, c.hash]))
  const from = base?.seq ?? 0
  const problems: string[] = []
  // A machine that changed may break every entry: keep the first few, count the rest.
  const MAX_PROBLEMS = 100
  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text)
  }
  let checked = 0
  let snapshotsChecked = 0
  // The version changes after the start, read first: they say the version the replay starts at.
  const history = historyOf(machine)
  /** The machine of a version (the module's own where it has no such version: told as entries fail). */
  const machineAt = (v: number): Machine<any, any> => (history?.has(v) === true ? history.at(v) : machine)
  let markers: Marker[] = []
  try {
    if (history !== undefined) markers = await scanMarkers(store, docId, from, headSeq, 4096)
  } catch (e) {
    if (!(e instanceof CanonError)) throw e // told by the replay below
  }
  let epoch = versionAt(markers, headVersion, from)
  const startMachine = machineAt(epoch)
  let state: unknown
  if (base === undefined) state = startMachine.initial()
  else {
    try {
      state = await readState(kv, docId, base)
    } catch (e) {
      return { problem: `The snapshot at seq ${fmt(base.seq)} verifies but cannot be read back as a state: ${e instanceof Error ? e.message : String(e)}` }
    }
  }
  // Newer snapshots that verify are states the hub may load: each must agree with the replay.
  // (With CRDT fields a snapshot's byte hash is not the state hash, which covers the fields'
  // hashes (core/hash.ts): not comparable.)
  const later = new Map(machine.crdt !== undefined ? [] : survey.snapshots.filter((s) => s.verdict.ok && s.meta.seq > from).map((s) => [s.meta.seq, s.meta.hash]))
  const host = new JournaledState(state)
  // CRDT fields (the start's version's) load from the snapshot's `$crdt` before anything reads or hashes the root.
  if (startMachine.crdt !== undefined) startMachine.crdtRuntime?.fieldsOf(startMachine.crdt, host)
  if (base !== undefined) {
    const cp = expected.get(base.seq)
    // The snapshot's state hash: its bytes' hash, or with CRDT fields the state's with the fields loaded.
    const hash = startMachine.crdt !== undefined ? hashState(host.root) : base.hash
    if (cp !== undefined) {
      checked++
      if (cp !== hash) problem(`Checkpoint mismatch at seq ${fmt(base.seq)}: stored ${cp}, the snapshot there hashes to ${hash}.`)
    }
  }
  let at = from
  while (at < headSeq) {
    let page
    try {
      page = await store.entries(docId, at, 4096)
    } catch (e) {
      if (!(e instanceof CanonError)) throw e
      problem(e.message)
      break
    }
    if (page.length === 0) break
    for (const e of page) {
      if (e.seq > headSeq) break
      const marker = history === undefined ? undefined : markerOf(e)
      if (marker !== undefined) {
        if (marker.from !== epoch || !history!.has(marker.to)) problem(`Entry ${fmt(e.seq)} ($migrate) moves the document from v${marker.from} to v${marker.to}, but it is at v${epoch} there and the module has v${history!.oldest}..v${history!.newest}.`)
        else {
          try {
            applyMigration(host, docId, history!, e)
            epoch = marker.to
          } catch (err) {
            problem(`Entry ${fmt(e.seq)} ($migrate) no longer applies: ${err instanceof Error ? err.message : String(err)}`)
          }
        }
      } else {
        const rejection = applyLogged(host, docId, machineAt(epoch), e)
        if (rejection !== undefined) problem(`Entry ${fmt(e.seq)} (${e.name}) no longer applies: ${rejection.message}`)
      }
      at = e.seq
      const cp = expected.get(e.seq)
      const snap = later.get(e.seq)
      if (cp === undefined && snap === undefined) continue
      const actual = hashState(host.root)
      if (cp !== undefined) {
        checked++
        if (actual !== cp) problem(`Checkpoint mismatch at seq ${fmt(e.seq)}: stored ${cp}, replay gives ${actual}.`)
      }
      if (snap !== undefined) {
        snapshotsChecked++
        if (actual !== snap) problem(`The snapshot at seq ${fmt(e.seq)} holds a state with hash ${snap}, but replaying the log to seq ${fmt(e.seq)} gives ${actual}: the machine is not deterministic, or changed without a version bump.`)
      }
    }
    progress(at - from, headSeq - from)
  }
  if (at !== headSeq && problems.length === 0) problem(`The log ends at ${fmt(at)} but the head says ${fmt(headSeq)}.`)
  return {
    base, at, replayed: at - from, hash: hashState(host.root), state: host.root, checked, before: checkpoints.filter((c) => c.seq < from).length, snapshotsChecked, problems,
  }
}

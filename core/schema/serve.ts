/**
 * What the authority needs to serve several versions of a machine at once.
 *
 * - The log holds each entry in the version of the document's epoch at its seq: a command
 *   from a session at an older version is decoded with that version's schema, upcast, and
 *   logged (and applied) as the newest version's command; several become one `$batch`
 *   entry, none a rejection. A `$migrate {from, to}` entry written by the hub marks an
 *   epoch change: entries before it are of version `from`.
 * - Replay (`replayEntry`) applies each entry with its epoch's version and runs the state
 *   migrations at each marker.
 * - A session at an older version t receives entries converted down to t
 *   (`entriesForVersion`); the first one that cannot be is its barrier: it is told
 *   `update-required` with that seq, and gets no more entries of the document.
 * - A session at an older version that asks for the state (an app upgraded on its device:
 *   the state it migrated is its previous version's view) is sent its version's initial state
 *   at seq 0 (`initialStateFor`) and the whole log converted, while the log has its start.
 * - Exactly-once across forms: a command's idempotency hash is over the form it was first
 *   written in (`$as` carries that form); `alternateForms` gives the forms a retry in another
 *   version can take (down the versions), so a retry after an upgrade is still a retry.
 */
import { encodeCanonical } from "../canonical.js"
import { hashBytes } from "../hash.js"
import type { Entry } from "../entry.js"
import type { Rejection } from "../errors.js"
import { fieldsOfRoot, isMergeName, registerRoot } from "../crdt/roots.js"
import type { JournaledState } from "../journal.js"
import { decodeArgs, makeContext, runApply, type CompiledCommand, type Machine } from "../machine.js"
import { asOne, decodeCmd, encodeCmds, settleCmds } from "./commands.js"
import { canonError } from "../errors.js"
import { MAX_ARGS_DEPTH, depthExceeds } from "../limits.js"
import { AS, BATCH, MIGRATE, historyOf, isReserved, type Cmd, type MachineHistory } from "./registry.js"

/** A version change in a document's log. */
export interface Marker {
  readonly seq: number
  readonly from: number
  readonly to: number
}

export const markerOf = (e: Entry): Marker | undefined => {
  if (e.name !== MIGRATE) return undefined
  const a = e.args as { from?: unknown; to?: unknown } | null
  return a !== null && typeof a === "object" && typeof a.from === "number" && typeof a.to === "number" ? { seq: e.seq, from: a.from, to: a.to } : undefined
}

/** The version changes in a document's log from `from` to `head`, read `page` entries at a time. */
export const scanMarkers = async (
  store: { entries(docId: string, from: number, limit: number): Promise<ReadonlyArray<Entry>> }, docId: string, from: number, head: number, page: number,
): Promise<Marker[]> => {
  const out: Marker[] = []
  let at = from
  while (at < head) {
    const entries = await store.entries(docId, at, Math.min(page, head - at))
    if (entries.length === 0) break
    for (const e of entries) {
      const m = markerOf(e)
      if (m !== undefined) out.push(m)
    }
    at = entries[entries.length - 1]!.seq
  }
  return out
}

/** The version of the entry at `seq`, given the document's markers (ascending) and its current epoch. */
export const versionAt = (markers: ReadonlyArray<Marker>, epoch: number, seq: number): number => {
  for (const m of markers) if (m.seq > seq) return m.from
  return epoch
}

/** A command accepted from a session: what to apply, what to log, what its idempotency hash covers. */
export type Accepted =
  | { readonly ok: true; readonly cmd: CompiledCommand<any>; readonly args: unknown; readonly log: Cmd; readonly hashed: Cmd }
  | { readonly ok: false; readonly rejection: Rejection; readonly hashed: Cmd }

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * Decodes a command sent by a session at version `sessionVersion` to an authority running
 * `machine` (its newest version). One-version machines and same-version sessions take
 * today's path exactly (`decodeArgs`, logged as sent).
 */
export const acceptCommand = (machine: Machine<any, any>, sessionVersion: number, name: string, args: unknown): Accepted => {
  const sent: Cmd = { name, args }
  const h = historyOf(machine)
  // Canon's own built-ins are never submitted as such (other `$` names, e.g. CRDT merges, are the machine's).
  const builtin = name === AS || name === BATCH || name === MIGRATE
  if (h === undefined || (sessionVersion === machine.version && !builtin)) {
    if (h !== undefined && builtin) return { ok: false, rejection: { code: "unknown-command", message: `"${name}" cannot be submitted.` }, hashed: sent }
    const d = decodeArgs(machine, name, args)
    return d.ok ? { ok: true, cmd: d.cmd, args: d.args, log: sent, hashed: sent } : { ok: false, rejection: d.rejection, hashed: sent }
  }
  let from = sessionVersion
  let inner: Cmd = sent
  if (name === AS) {
    const a = args as { v?: unknown; name?: unknown; args?: unknown } | null
    if (a === null || typeof a !== "object" || typeof a.v !== "number" || typeof a.name !== "string") {
      return { ok: false, rejection: { code: "invalid-args", message: `A "$as" command is { v, name, args }.` }, hashed: sent }
    }
    from = a.v
    inner = { name: a.name, args: a.args }
    // A merge is the same in every version, so it is never wrapped; wrapped, it would pass
    // where merges are charged for their work (core/authority/crdt-work.ts reads the name).
    if (isMergeName(inner.name)) return { ok: false, rejection: { code: "invalid-args", message: `A CRDT merge ("${inner.name}") travels as itself, never inside a "$as".` }, hashed: inner }
  } else if (builtin) {
    return { ok: false, rejection: { code: "unknown-command", message: `"${name}" cannot be submitted.` }, hashed: sent }
  }
  if (!h.has(from) || from > machine.version) {
    return { ok: false, rejection: { code: "unknown-command", message: `Machine "${machine.name}" has no version ${from} here (it serves ${h.oldest}..${machine.version}).` }, hashed: inner }
  }
  const d = decodeCmd(h.at(from), inner.name, inner.args)
  if (!d.ok) return { ok: false, rejection: d.rejection, hashed: inner }
  if (from === machine.version) return { ok: true, cmd: d.cmd, args: d.args, log: inner, hashed: inner }
  let up: ReturnType<typeof settleCmds>
  try {
    // Applied as the log's form decodes (settleCmds): an upcast's output is not trusted as it is.
    up = settleCmds(machine, h.convert([{ name: inner.name, args: d.args }], from, machine.version)!)
  } catch (e) {
    return { ok: false, rejection: { code: "command-failed", message: `Upcasting "${inner.name}" from v${from} failed: ${errorMessage(e)}` }, hashed: inner }
  }
  if (up.apply.length === 0) {
    return { ok: false, rejection: { code: "rejected", message: `"${inner.name}" (v${from}) does nothing in v${machine.version}: a migration removed it.` }, hashed: inner }
  }
  const log = asOne(up.log)
  if (up.apply.length === 1) return { ok: true, cmd: up.apply[0]!.cmd, args: up.apply[0]!.args, log, hashed: inner }
  return { ok: true, cmd: machine.compiled.get(BATCH)!, args: up.apply, log, hashed: inner }
}

/**
 * Other forms a retry of `hashed` (sent by a session at `sessionVersion`) may have been
 * first written in: its downcasts to older versions, one command each. A command sent
 * first at an older version and again after an upgrade travels as `$as`, in its first form.
 */
export const alternateForms = (machine: Machine<any, any>, sessionVersion: number, hashed: Cmd): Cmd[] => {
  const h = historyOf(machine)
  if (h === undefined || hashed.name === AS || isReserved(hashed.name) || !h.has(sessionVersion)) return []
  const d = decodeCmd(h.at(sessionVersion), hashed.name, hashed.args)
  if (!d.ok) return []
  const out: Cmd[] = []
  let cur: Cmd[] = [{ name: hashed.name, args: d.args }]
  for (let v = sessionVersion - 1; v >= h.oldest; v--) {
    const down = h.convert(cur, v + 1, v)
    if (down === undefined || down.length !== 1) break
    cur = down
    try {
      out.push(encodeCmds(h.at(v), down)[0]!)
    } catch {
      break
    }
  }
  return out
}

/** The canonical bytes of a form's arguments (for its hash). */
export const formBytes = (c: Cmd): Uint8Array => encodeCanonical(c.args)

/**
 * Applies one logged entry during a replay at `epoch`; returns the epoch after it. A marker
 * migrates the state (through each version in between); other entries apply with the
 * machine of their epoch, as they did when they were accepted.
 */
export const replayEntry = <S>(host: JournaledState<S>, docId: string, h: MachineHistory, epoch: number, e: Entry): number => {
  const marker = markerOf(e)
  if (marker !== undefined) {
    if (marker.from !== epoch || !h.has(marker.to)) return epoch
    applyMigration(host, docId, h, e)
    return marker.to
  }
  const machine = h.at(epoch) as Machine<S>
  const d = decodeArgs(machine, e.name, e.args)
  if (!d.ok) return epoch
  const j = host.begin()
  const r = runApply(host, d.cmd, e.name, d.args, makeContext(docId, e.seq, e.time, e.clientId))
  host.end()
  if (r !== undefined) host.undo(j)
  return epoch
}

/**
 * Runs the migrations of a `$migrate` entry on the host (inside a journal). When the app's
 * migration throws, or returns a state that cannot be stored, the host is left as it was and
 * this throws `migration-failed`.
 */
export const applyMigration = <S>(host: JournaledState<S>, docId: string, h: MachineHistory, e: Entry): void => {
  const { from, to } = markerOf(e)!
  const migrate: CompiledCommand<S> = {
    decode: () => { throw new Error("not decodable") },
    encode: () => { throw new Error("not encodable") },
    apply: (state, _args, ctx) => h.migrateState(state, from, to, ctx) as S,
  }
  // CRDT fields loaded from this state (the hub's, a replica's) stay the new state's: the
  // migration sees and returns the plain state only.
  const fields = fieldsOfRoot(host.root)
  const j = host.begin()
  const r = runApply(host, migrate, MIGRATE, null, makeContext(docId, e.seq, e.time, e.clientId))
  host.end()
  if (r === undefined) {
    if (fields !== undefined) registerRoot(host.root as object, fields)
    // The fields `to` adds (its first ones, or more) join now, empty: the checkpoint of this entry counts them.
    const m = h.at(to)
    try {
      m.crdtRuntime?.fieldsOf(m.crdt!, host)
      return
    } catch (e) {
      // The migrated state's fields do not load: the host is left as it was, as for a migration that throws.
      host.undo(j)
      throw canonError("migration-failed", `Migrating the state of "${docId}" from v${from} to v${to} failed: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  host.undo(j)
  throw canonError("migration-failed", `Migrating the state of "${docId}" from v${from} to v${to} failed: ${r.message}`)
}

/**
 * Entries converted for a session at version `t`: each entry of epoch version `ve` goes up or
 * down to `t` (several commands as one `$batch`, none as an empty `$batch`); markers pass as
 * they are (replicas treat them as nothing). Stops at the first entry that has no downcast,
 * or whose downcast's arguments take more than `maxArgsBytes` (and more than the entry as
 * logged) or nest deeper than a command may (it could not be sent, or not be stored): that seq
 * is the barrier. An entry whose
 * upcast fails (throws, or is over those bounds) is shown as nothing, as an entry its own
 * version cannot read: an upcast never makes a barrier.
 */
export const entriesForVersion = (
  h: MachineHistory, entries: ReadonlyArray<Entry>, t: number, versionOf: (seq: number) => number, maxArgsBytes = Infinity,
): { readonly entries: Entry[]; readonly barrier: number | undefined } => {
  const out: Entry[] = []
  for (const e of entries) {
    const ve = versionOf(e.seq)
    if (e.name === MIGRATE || ve === t) {
      out.push(e)
      continue
    }
    const converted = convertEntry(h, e, ve, t, maxArgsBytes)
    // Only a downcast stops a reader (its app is older: an update fixes it). An upcast that
    // fails in any way (throws, or nests or grows past a command's bounds) is shown as
    // nothing: the newer reader could never be updated past it.
    if (converted === undefined && ve < t) out.push({ ...e, name: BATCH, args: [] })
    else if (converted === undefined) return { entries: out, barrier: e.seq }
    else out.push(converted)
  }
  return { entries: out, barrier: undefined }
}

/**
 * The document's start for a session at version `t`: `t`'s initial state at seq 0, as a
 * snapshot stream carries it (canonical bytes and their hash). What a replica of `t` that
 * follows from the start begins with; undefined when the history has no version `t`.
 */
export const initialStateFor = (h: MachineHistory, t: number): { readonly bytes: Uint8Array; readonly hash: string } | undefined => {
  if (!h.has(t)) return undefined
  const bytes = encodeCanonical(h.at(t).initial())
  return { bytes, hash: hashBytes(bytes) }
}

const convertEntry = (h: MachineHistory, e: Entry, from: number, to: number, maxArgsBytes: number): Entry | undefined => {
  const m = h.at(from)
  let cmds: Cmd[]
  if (e.name === BATCH) {
    if (!Array.isArray(e.args)) return undefined
    cmds = []
    for (const item of e.args as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== "string") return undefined
      const d = decodeCmd(m, item[0], item[1])
      if (!d.ok) return undefined
      cmds.push({ name: item[0], args: d.args })
    }
  } else {
    const d = decodeCmd(m, e.name, e.args)
    // An entry its own version cannot read was a no-op there: it stays one.
    if (!d.ok) return { ...e, name: BATCH, args: [] }
    cmds = [{ name: e.name, args: d.args }]
  }
  const noop: Entry = { ...e, name: BATCH, args: [] }
  let conv: Cmd[] | undefined
  try {
    conv = h.convert(cmds, from, to)
  } catch {
    // Only an upcast throws (a failed downcast is undefined): this version cannot apply it.
    return noop
  }
  if (conv === undefined) return undefined
  if (conv.length === 0) return noop
  try {
    const one = asOne(encodeCmds(h.at(to), conv))
    // The bounds of a command as sent (doc-authority.ts `bound`) hold for what a reader is
    // shown: a migration may nest or grow what a client sent just under them, and a reader
    // could not store an entry over them (it would fail on it at every catch-up).
    if (depthExceeds(one.args, MAX_ARGS_DEPTH)) return undefined
    // An entry the log holds was accepted under the limit of its day (a hub may restart with a
    // lower one): readers of its own version are sent it as it is, so others may be too.
    if (maxArgsBytes !== Infinity) {
      const size = encodeCanonical(one.args).length
      if (size > maxArgsBytes && size > encodeCanonical(e.args).length) return undefined
    }
    return { seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: one.name, args: one.args }
  } catch {
    return from < to ? noop : undefined
  }
}

/**
 * Compat mode's part of a replica (core/replica/doc.ts): what a document does differently on a
 * connection to a hub that runs an older version of its machine than the app. Entries arrive
 * in the hub's version and are upcast here, the state a snapshot brings is migrated here, and
 * commands go out downcast. Carried by the machine's history (core/schema/versions.ts), so an
 * app whose machines have no history does not ship it.
 */
import { sameBytes } from "../bytes.js"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import { makeContext, type Machine } from "../machine.js"
import { commandArgsCodec } from "../protocol/args-codec.js"
import type { ClientMessage } from "../protocol/messages.js"
import { submitParts } from "../replica/submit-parts.js"
import { decodeCmd, encodeCmds } from "./commands.js"
import { AS, MIGRATE, type CompatSession, type MachineHistory, type PendingForm } from "./registry.js"

export const compatSession = (h: MachineHistory, hub: number, app: Machine<any, any>): CompatSession => {
  const older = h.at(hub)
  let blocked = false
  /**
   * The form the hub logged pending command `p` in, had it taken it: what this app sends, or
   * for a `$as` (written by an earlier app version) its command converted to the hub's version,
   * as the hub upcasts an older one and as the app that wrote a newer one downcast it.
   * Undefined when there is no single such form.
   */
  const logged = (p: PendingForm): { name: string; args: unknown } | undefined => {
    const a = p.encoded as { v: number; name: string; args: unknown }
    // What goes as it is (a `$as` of the hub's version goes as its command): its sent form.
    // (A damaged store's `$as` that is not an object has none: the throw below is caught.)
    if (p.name !== AS || a?.v === hub) return h.downcastOutbox([p], app.version, hub).out[0]
    try {
      const d = decodeCmd(h.at(a.v), a.name, a.args)
      const c = d.ok ? h.convert([{ name: a.name, args: d.args }], a.v, hub) : undefined
      return c?.length === 1 ? encodeCmds(older, c)[0] : undefined
    } catch {
      return undefined
    }
  }
  return {
    machine: older,
    get blocked() {
      return blocked
    },
    submits: (docId, commands, acked, protocol, stuck) => {
      // Commands after one that waits for the hub's upgrade wait too (sent now they would be a clientSeq gap).
      if (blocked) return []
      const downcast = h.downcastOutbox(commands, app.version, hub)
      const compact = protocol >= 2
      // Protocol 3: renumbered commands say the number they were made under (CommandRequest.madeAs).
      const made = new Map(protocol > 2 ? commands.filter((p) => p.madeAs !== undefined).map((p) => [p.clientSeq, p.madeAs]) : [])
      const wire = downcast.out.map((c) => ({ ...c, ...(compact && { args: commandArgsCodec(older.commands, c.name).encode(c.args) }), ...(made.has(c.clientSeq) && { madeAs: made.get(c.clientSeq) }) }))
      // Cut by the bytes sent, as Doc does: a long outbox of large commands never makes one frame too large.
      const messages: ClientMessage[] = submitParts(wire, (c) => 16 + c.name.length * 3 + (compact ? (c.args as Uint8Array) : encodeCanonical(c.args)).length)
        .map((part) => ({ type: "submit", docId, commands: part, ackedClientSeq: acked, ...(compact ? { compact: true as const } : {}) }))
      if (downcast.stuck !== undefined) {
        blocked = true
        stuck(`"${downcast.stuck}" cannot be sent to a hub running "${app.name}" v${hub}: it waits, with the commands after it, until the hub is upgraded. Nothing is lost.`)
      }
      return messages
    },
    ownEntry: (e, p) => {
      // A `$as` is filled in as written; another command in the form the hub logged (downcast), which may have lost something.
      const form = p.name === AS ? p : h.downcastOutbox([p], app.version, hub).out[0]
      return form === undefined ? undefined : { seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: form.name, args: p.name === AS ? p.encoded : form.args }
    },
    sameForm: (e, p) => e.name === p.name && sameBytes(encodeCanonical(e.args), encodeCanonical(p.encoded)),
    upcast(entries, wire, pendingOf) {
      // Own `$as` commands are filled in as written (the app's version); other own ones in the hub's form.
      const own = new Set(wire.filter((e) => e.elided === true && pendingOf(e)?.name === AS).map((e) => e.seq))
      // An own entry that came whole is the pending command under its number only if the hub
      // logged that command's form (`logged`): upcast, a lossy form cannot be compared any more.
      // (`entries` are `wire` expanded, one for one.)
      const foreign = new Set<number>()
      entries.forEach((e, i) => {
        const p = wire[i]?.elided === true ? undefined : pendingOf(e)
        if (p === undefined) return
        const form = logged(p)
        if (form === undefined || form.name !== e.name || !sameBytes(encodeCanonical(form.args), encodeCanonical(e.args))) foreign.add(e.seq)
      })
      const up = h.entriesForVersion(entries, app.version, (seq) => (own.has(seq) ? app.version : hub)).entries
      return foreign.size === 0 ? up : up.map((e) => (foreign.has(e.seq) ? { ...e, foreign: true as const } : e))
    },
    movedOn: (entries) => entries.some((e) => e.name === MIGRATE && ((e.args as { to?: unknown } | null)?.to as number) > hub),
    migrate: (bytes, docId, seq) =>
      encodeCanonical(h.migrateState(decodeCanonical(bytes), hub, app.version, makeContext(docId, seq, 0, "$local"))),
  }
}


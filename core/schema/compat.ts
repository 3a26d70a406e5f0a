/**
 * Compat mode's part of a replica (core/replica/doc.ts): what a document does differently on a
 * connection to a hub that runs an older version of its machine than the app. Entries arrive
 * in the hub's version and are upcast here, the state a snapshot brings is migrated here, and
 * commands go out downcast. Carried by the machine's history (core/schema/versions.ts), so an
 * app whose machines have no history does not ship it.
 */
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import type { Entry } from "../entry.js"
import { makeContext, type Machine } from "../machine.js"
import { commandArgsCodec } from "../protocol/args-codec.js"
import type { ClientMessage } from "../protocol/messages.js"
import { submitParts } from "../replica/submit-parts.js"
import { AS, type CompatSession, type MachineHistory, type PendingForm } from "./registry.js"

export const compatSession = (h: MachineHistory, hub: number, app: Machine<any, any>): CompatSession => {
  const older = h.at(hub)
  return {
    machine: older,
    submits: (docId, commands, acked, protocol) => {
      const { out, stuck } = h.downcastOutbox(commands, app.version, hub)
      const compact = protocol >= 2
      const wire = compact ? out.map((c) => ({ ...c, args: commandArgsCodec(older.commands, c.name).encode(c.args) })) : out
      // Cut by the bytes sent, as Doc does: a long outbox of large commands never makes one frame too large.
      const messages: ClientMessage[] = submitParts(wire, (c) => 16 + c.name.length * 3 + (compact ? (c.args as Uint8Array) : encodeCanonical(c.args)).length)
        .map((part) => ({ type: "submit", docId, commands: part, ackedClientSeq: acked, ...(compact ? { compact: true as const } : {}) }))
      return {
        messages,
        stuck: stuck === undefined ? undefined : `"${stuck}" cannot be sent to a hub running "${app.name}" v${hub}: it waits, with the commands after it, until the hub is upgraded. Nothing is lost.`,
      }
    },
    ownEntry: (e, p) => {
      // The hub logged the form it was sent (downcast), which may have lost something.
      const form = h.downcastOutbox([p], app.version, hub).out[0]
      return form === undefined ? undefined : { seq: e.seq, time: e.time, clientId: e.clientId, clientSeq: e.clientSeq, name: form.name, args: form.args }
    },
    upcast: (entries, wire, pendingAt) => {
      // Own `$as` commands are filled in as written (the app's version); other own ones in the hub's form.
      const own = new Set(wire.filter((e) => e.elided === true && pendingAt(e.clientSeq)?.name === AS).map((e) => e.seq))
      return h.entriesForVersion(entries, app.version, (seq) => (own.has(seq) ? app.version : hub)).entries
    },
    migrate: (bytes, docId, seq) =>
      encodeCanonical(h.migrateState(decodeCanonical(bytes), hub, app.version, makeContext(docId, seq, 0, "$local"))),
  }
}


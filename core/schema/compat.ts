/**
 * Compat mode's part of a replica (core/replica/doc.ts): what a document does differently on a
 * connection to a hub that runs an older version of its machine than the app. Entries arrive
 * in the hub's version and are upcast here, the state a snapshot brings is migrated here, and
 * commands go out downcast. Carried by the machine's history (core/schema/versions.ts), so an
 * app whose machines have no history does not ship it.
 */
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import type { Entry } from "../entry.js"
import { makeContext, type Machine } from "../machine.js"
import { argsCodecOf } from "../protocol/args-codec.js"
import type { ClientMessage } from "../protocol/messages.js"
import { AS, type CompatSession, type MachineHistory, type PendingForm } from "./registry.js"

/** Commands per submit message (as core/replica/doc.ts sends them). */
const SUBMIT_CHUNK = 256

export const compatSession = (h: MachineHistory, hub: number, app: Machine<any, any>): CompatSession => {
  const older = h.at(hub)
  const schemaOf = (name: string): SchemaAST.AST =>
    (older.commands as Record<string, { args: { ast: SchemaAST.AST } } | undefined>)[name]?.args.ast ?? Schema.Unknown.ast
  return {
    machine: older,
    submits: (docId, commands, acked, protocol) => {
      const { out, stuck } = h.downcastOutbox(commands, app.version, hub)
      const messages: ClientMessage[] = []
      for (let i = 0; i < out.length; i += SUBMIT_CHUNK) {
        const part = out.slice(i, i + SUBMIT_CHUNK)
        messages.push(protocol >= 2
          ? { type: "submit", docId, commands: part.map((c) => ({ ...c, args: argsCodecOf(schemaOf(c.name)).encode(c.args) })), ackedClientSeq: acked, compact: true }
          : { type: "submit", docId, commands: part, ackedClientSeq: acked })
      }
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


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

/** Commands, and bytes as sent, per submit message (as core/replica/doc.ts cuts them: half a 1 MiB frame). */
const SUBMIT_CHUNK = 256
const SUBMIT_BYTES = 512 << 10

export const compatSession = (h: MachineHistory, hub: number, app: Machine<any, any>): CompatSession => {
  const older = h.at(hub)
  const schemaOf = (name: string): SchemaAST.AST =>
    (older.commands as Record<string, { args: { ast: SchemaAST.AST } } | undefined>)[name]?.args.ast ?? Schema.Unknown.ast
  return {
    machine: older,
    submits: (docId, commands, acked, protocol) => {
      const { out, stuck } = h.downcastOutbox(commands, app.version, hub)
      const messages: ClientMessage[] = []
      let part: Array<{ clientSeq: number; name: string; args: unknown }> = []
      let size = 0
      const flush = () => {
        if (part.length > 0) messages.push({ type: "submit", docId, commands: part, ackedClientSeq: acked, ...(protocol >= 2 ? { compact: true as const } : {}) })
        part = []
        size = 0
      }
      // Cut by the bytes sent, as Doc does: a long outbox of large commands never makes one frame too large.
      for (const c of out) {
        const compact = protocol >= 2 ? argsCodecOf(schemaOf(c.name)).encode(c.args) : undefined
        const args = compact ?? c.args
        const n = 16 + c.name.length * 3 + (compact ?? encodeCanonical(c.args)).length
        if (part.length >= SUBMIT_CHUNK || (part.length > 0 && size + n > SUBMIT_BYTES)) flush()
        part.push({ ...c, args })
        size += n
      }
      flush()
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


/**
 * Bounds on what a peer may send, checked where it enters (the hub's handshake and submit,
 * the client's submit), so that nothing accepted can later fail to fit in a frame, a record
 * or the decoder's depth limit. Every number here leaves headroom under the 1 MiB frame
 * limit and the canonical decoder's depth limit (512).
 */
import { utf8Length, wellFormed } from "./bytes.js"
import { MAX_DEPTH } from "./canonical.js"

/** A clientId: what Canon makes (core/client-id.ts; 16 base-36 characters before) or an app's own id. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/

/** UTF-8 bytes of a docId. Documents are named by the app; a name is not a payload. */
export const MAX_DOC_ID_BYTES = 512

/**
 * UTF-8 bytes of a command name. Names travel in every submit and entry, and protocol 2 keeps
 * each one a connection uses for the connection's life; defineMachine refuses longer ones.
 */
export const MAX_COMMAND_NAME_BYTES = 256

/**
 * Default bound of one command's encoded arguments (canonical bytes). An entry adds at most
 * a few hundred bytes (clientId, name, seq, time), so one entry always fits in a frame with
 * room to spare, and a catch-up page of many entries is cut below the frame limit.
 */
export const DEFAULT_MAX_COMMAND_BYTES = 256 << 10

/**
 * Nesting of a command's arguments. Stored entries wrap the arguments in one more level and
 * snapshots of the state are bytes, so this keeps every record under the decoder's limit.
 */
export const MAX_ARGS_DEPTH = MAX_DEPTH - 16

/**
 * The depth at which a replica reads an entry's arguments: whatever a hub takes reads
 * (MAX_ARGS_DEPTH levels of objects and arrays, `depthExceeds`, and bytes or a string one
 * level deeper, which the decoder counts as a level), and nothing deeper does, so every entry
 * read can be stored inside a record, a level down. A hostile hub's deeper entry failed every
 * later write of the replica's store.
 */
export const ENTRY_ARGS_READ_DEPTH = MAX_DEPTH - MAX_ARGS_DEPTH - 1

/**
 * Presence a replica holds for one document, all other clients together, in about the memory
 * it takes (core/replica/doc.ts `presenceBytes`: decoded values cost more than their bytes on
 * the wire). The hub keeps each state to 4 KiB of wire by default, so this holds hundreds of
 * full ones and thousands of cursors; past it a newcomer is not shown. Without it, a
 * hostile hub (or anyone on a ws:// path) could grow a tab's memory with clientIds.
 */
export const MAX_PRESENCE_HELD_BYTES = 8 << 20

/** Longest rejection or error sentence carried on the wire; longer ones are cut. */
export const MAX_MESSAGE_CHARS = 1024

/** Why a docId of `bytes` UTF-8 bytes is too long for the wire, or undefined. */
export const docIdBytesProblem = (bytes: number): string | undefined =>
  bytes > MAX_DOC_ID_BYTES ? `A document id is at most ${MAX_DOC_ID_BYTES} bytes of UTF-8, not ${bytes}.` : undefined

/** Why a docId cannot be used, or undefined if it can. */
export const docIdProblem = (docId: string): string | undefined => {
  if (docId.length === 0) return "A document id cannot be empty."
  // The wire's strings are UTF-8: half of a surrogate pair (a slice through an emoji) has none.
  if (!wellFormed(docId)) return "A document id must be well-formed Unicode (no lone surrogate)."
  return docIdBytesProblem(utf8Length(docId))
}

/** Why a command name cannot travel (it is too long), or undefined if it can. */
export const commandNameProblem = (name: string, bytes = utf8Length(name)): string | undefined =>
  bytes > MAX_COMMAND_NAME_BYTES ? `A command name is at most ${MAX_COMMAND_NAME_BYTES} bytes of UTF-8, not ${bytes}.` : undefined

/** Why a clientId cannot be used, or undefined if it can. */
export const clientIdProblem = (clientId: string): string | undefined =>
  CLIENT_ID_PATTERN.test(clientId)
    ? undefined
    : "A client id is 1-128 characters of letters, digits and _ . : @ - (let Canon make one: omit `clientId`)."

/** Longest client-given string (a machine name, a docId, a message type) a sentence quotes whole. */
export const MAX_QUOTED_CHARS = 128

/** What a machine's name may be (defineMachine refuses others): a name that is not this is no hub's machine. */
export const MACHINE_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,64}$/

/** The first `n` UTF-16 units of `s`, one fewer if the cut would split a surrogate pair (a lone half has no UTF-8 form). */
const cut = (s: string, n: number): string => {
  const code = s.charCodeAt(n - 1)
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n)
}

/** A lone surrogate: half of a pair, with no other half beside it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * `s` with every lone surrogate replaced by U+FFFD (as TextDecoder reads one). A sentence
 * quotes app and peer text (`ctx.reject(\`"${title.slice(0, 10)}…"\`)`, a thrown error's
 * message), which may hold half an emoji; it has no UTF-8 form, so a record or frame holding
 * it cannot be written, and a stored rejection with one would fail its document's whole commit.
 */
const repaired = (s: string): string => (wellFormed(s) ? s : s.replace(LONE_SURROGATE, "\uFFFD"))

/** Cuts a human sentence to what the wire carries, well-formed (every record and frame can hold it). */
export const boundedMessage = (s: string): string =>
  repaired(s.length <= MAX_MESSAGE_CHARS ? s : `${cut(s, MAX_MESSAGE_CHARS - 1)}…`)

/**
 * A string a peer sent, quoted in a sentence sent back to it: whole up to MAX_QUOTED_CHARS,
 * else its start and its length. The hub never echoes what a peer sends at the size it was
 * sent: each error would otherwise cost the hub as many bytes as the peer's request, once
 * per request.
 */
export const quoted = (s: string): string =>
  repaired(s.length <= MAX_QUOTED_CHARS ? `"${s}"` : `"${cut(s, MAX_QUOTED_CHARS)}…" (${s.length} characters)`)

/**
 * Depth of a plain value, stopping as soon as it exceeds `max` (so a hostile value costs at
 * most `max` levels of recursion). Arrays and objects count one level each.
 */
export const depthExceeds = (value: unknown, max: number): boolean => {
  // An array's items (not its other properties, as canonical encoding), an object's own enumerable values.
  const walk = (v: unknown, depth: number): boolean =>
    typeof v === "object" && v !== null && !ArrayBuffer.isView(v) &&
    (depth >= max || (Array.isArray(v) ? v : Object.values(v)).some((x) => walk(x, depth + 1)))
  return walk(value, 0)
}

/**
 * The binary codec of the wire protocol: the only modules that know how messages look as
 * bytes. This module gathers both directions; a client imports codec-client.ts (what it
 * sends and reads), the hub codec-server.ts, both on codec-shared.ts (options, session,
 * primitives), so a browser bundle carries one direction. This header is the protocol's
 * specification; test/fixtures/protocol/v1/ to v4/ hold the golden frames that pin it
 * (a change to a version's bytes is a new protocol version, never an edit).
 *
 * ## Primitives
 *
 * - `u`      unsigned LEB128 varint, an integer in [0, 2^53) (at most 8 bytes).
 * - `z`      zigzag varint of a signed delta d in [-2^52, 2^52): `u(d >= 0 ? 2d : -2d - 1)`.
 *            (Delta-coded values below 2^52 always fit.)
 * - `str`    `u` byte length, then that many bytes of UTF-8.
 * - `bytes`  `u` length, then the raw bytes.
 * - `val`    one canonical value (core/canonical.ts: tagged, sorted keys, max depth 512).
 *            Command args and presence state use it.
 * - `byte`   one byte.
 * - `opt`    one byte whose bit i says whether optional field i follows; other bits are 0.
 *
 * ## Frame
 *
 *     byte type | byte flags | body
 *
 * Flags bit 0 = optional: a peer that does not know the type ignores the frame (decoders
 * return `{ ok: "ignore" }`); an unknown type without it is an `unknown-type` error. Other
 * bits are reserved: a known type must carry exactly its flags below. Client and server
 * types are disjoint; a type of the other direction is an `unknown-type` error. A body must
 * be consumed exactly (`trailing-bytes` otherwise). Every v1 type is required (flags 0)
 * except presence messages (flags 1).
 *
 * The handshake frames (hello, welcome, refused) are read before a version is agreed:
 * their layout is the same in every protocol version. A version does not travel in other
 * frames: both sides use the one the handshake settled (`CodecOptions.version`).
 *
 * ## Client -> hub
 *
 *     0x01 hello          u protocol.min, u protocol.max, str clientId,
 *                         u n, n x (str name, u version, str fingerprint),
 *                         opt (bit 0: credentials, bit 1: secret), [str credentials], [str secret]
 *                           (bit 1 was added compatibly: the secret proving the clientId)
 *     0x02 subscribe      str docId, str machine, u version, str fingerprint, u fromSeq, u ackedClientSeq
 *     0x03 submit         str docId, u ackedClientSeq, u n, n x command
 *                           command = clientSeq, name, val args
 *                           clientSeq: the first as u; each next as z(clientSeq - previous - 1)
 *                           name: u k; k = 0: str name follows and joins this frame's name
 *                           table; k >= 1: the table's (k-1)th name. A name is defined once
 *                           per frame (a second definition is bad-value).
 *     0x04 fetch-state    str docId
 *     0x05 unsubscribe    str docId
 *     0x06 snapshot-ack   str docId, u snapshotId, u received
 *     0x07 presence-set   (optional) str docId, val state
 *
 * ## Hub -> client
 *
 *     0x40 welcome        u protocol, str clientId
 *     0x41 refused        str code (a RefusalCode), str message,
 *                         opt (bit 0: protocol, bit 1: machine), [u min, u max], [str machine]
 *     0x42 entries        str docId, u n, [if n > 0: u firstSeq, n x entry],
 *                         opt (bit 0: checkpoint), [u checkpoint.seq, str checkpoint.hash]
 *                           seqs are contiguous: entry i has seq firstSeq + i (not written)
 *                           entry = client, name, z time, val args
 *                           client: u c; c = 0: str clientId, u clientSeq follow and the
 *                           clientId joins this frame's client table (once per clientId);
 *                           c >= 1: the table's (c-1)th clientId, then z(clientSeq - that
 *                           client's previous clientSeq in this frame - 1)
 *                           name: as in submit (a name table per frame)
 *                           time: z(time - previous entry's time), the first from 0;
 *                           times are integers in [0, 2^52)
 *     0x43 results        str docId, u n, n x outcome
 *                           outcome = clientSeq (as in submit), byte kind, then
 *                           kind 0: accepted, z(seq - previous accepted seq in this frame),
 *                                   the first from 0
 *                           kind 1..8: rejected with code rejected, command-failed,
 *                                   invalid-args, unknown-command, outcome-expired,
 *                                   unauthorized, state-unencodable, command-too-large
 *                                   (in that order; 7 and 8 were added compatibly), str message
 *                           kind 9 (added compatibly): the outcome is no longer kept; the
 *                                   command was settled at or before seq: u seqAtMost
 *     0x44 synced         str docId, u seq
 *     0x45 checkpoint     str docId, u seq, str hash
 *     0x46 state          str docId, u seq, str hash, bytes state
 *     0x47 error          str code, str message, opt (bit 0: docId, bit 1: seq), [str docId], [u seq]
 *                           (bit 1 was added compatibly: the sequence number the error is
 *                           about, e.g. where a client's clientSeqs must resume)
 *     0x48 snapshot-begin str docId, u snapshotId, u seq, str hash, u size
 *     0x49 snapshot-chunk str docId, u snapshotId, u offset, bytes
 *     0x4a snapshot-end   str docId, u snapshotId
 *     0x4b presence       (optional) str docId, str clientId, val state
 *     0x4c keepalive      (optional) no body
 *
 * ## Protocol 2
 *
 * Everything above, plus compact forms of the three hot messages. Their frames depend on
 * the connection (`CodecSession`): the n-th document subscribed on a connection is its channel
 * n (both ends count subscribe frames as they pass), command names in submits are defined once
 * per connection, and the client's own clientId (from its hello) names its elided entries.
 * Arguments are the bytes of their schema-driven encoding (core/protocol/args-codec.ts).
 * A peer speaks them only once version 2 was agreed; a frame that a session cannot resolve
 * (an unknown channel, an undefined name) is `bad-value`.
 *
 *     0x08 submit2        u channel, u ackedClientSeq, u n, n x command
 *                           command = clientSeq (as in submit), name2, bytes args
 *                           name2: u k; k = 0: str name follows and joins the connection's
 *                           name table; k >= 1: the table's k-th name
 *     0x4d entries2       u channel, u n, [if n > 0: u firstSeq, n x entry2], opt (bit 0:
 *                         checkpoint), [u checkpoint.seq, str checkpoint.hash]
 *                           entry2 = u head, then
 *                             head 0: the receiver's own command: u clientSeq, z time
 *                             head 1: a client new to this frame: str clientId, u clientSeq,
 *                                     name, z time, bytes args
 *                             head 2 + k: the frame's (k+1)th client: z(clientSeq - its previous
 *                                     clientSeq in this frame - 1), name, z time, bytes args
 *                           name and time as in entries
 *     0x4e results2       u channel, then as results after its docId
 *
 * ## Protocol 3
 *
 * Everything above, plus one client frame: a submit that holds a command the hub renumbered
 * (a `sequence-reset`) says the number each command was made under, so that the hub can
 * find the command when a store restored from an older backup sends it under that number
 * (core/authority/client-table.ts). A client sends it only once version 3 was agreed; a
 * submit without a renumbered command is a submit or submit2 frame as before.
 *
 *     0x09 submit3        byte form (0: as submit, 1: as submit2; others are bad-value),
 *                         then that frame's body with each command's clientSeq followed by
 *                         u madeAs (0: made under its clientSeq)
 *
 * ## Protocol 4
 *
 * The frames of protocol 3, unchanged. What is new is one error a hub sends: `hub-newer`
 * (docId, no seq), at a subscribe accepted at an older version of the document's machine
 * than the hub runs. A client that declared that older version for an older hub (compat
 * mode) takes it as the cue to connect again offering its own version; an app that is that
 * old ignores it. Older clients are never sent it (they would show it as an error).
 *
 * ## Failures
 *
 * Decoding never throws: a frame is a message, `ignore`, or a `DecodeError` with a code.
 * Frames over `maxFrameBytes` are refused before parsing, and every count and length is
 * checked against the bytes left before anything is allocated, so a decode allocates in
 * proportion to its frame. Bytes fields are copies (never views of the frame, which the
 * transport may reuse). A DecodeError carries no stack trace: it is the peer's doing, and a
 * flood of garbage must stay cheap. Decoders check shapes, not meaning (a range with
 * min > max or a checkpoint outside its batch decode; the engine judges them).
 *
 * Encoding throws a `CanonError`: `protocol-error` for a message the protocol cannot carry
 * (a negative or fractional seq, non-contiguous entries, a delta out of range, a frame over
 * `maxFrameBytes`...), `state-unencodable` for args or state that are not plain data (and,
 * from core/bytes, for a string holding a lone UTF-16 surrogate, which has no UTF-8 form).
 */
export {
  CodecSession, DEFAULT_MAX_FRAME_BYTES, DecodeError, PROTOCOL_VERSIONS,
  type CodecOptions, type Decoded, type DecodeErrorCode,
} from "./codec-shared.js"
export { decodeServerMessage, encodeClientMessage } from "./codec-client.js"
export { decodeClientMessage, defineReceived, encodeServerMessage } from "./codec-server.js"

/**
 * State hashes for checkpoints: a 64-bit non-cryptographic hash of the canonical bytes of a
 * state, as 16 hex characters. It detects divergence (non-deterministic commands, bugs,
 * corrupted stores); it is not an integrity check against an attacker, who could only lie
 * about a state they serve anyway. The algorithm: core/snapshot/stream-hash.ts.
 */
import { encodeCanonical } from "./canonical.js"
import { StreamHash } from "./snapshot/stream-hash.js"
import { fieldsOfRoot } from "./crdt/roots.js"

/** Hash of raw bytes, 16 hex characters. */
export const hashBytes = (bytes: Uint8Array): string => new StreamHash().update(bytes).digest()

/**
 * Hash of a state: hash of its canonical encoding. A state with CRDT fields (core/crdt) also
 * covers each field's canonical hash: `canonical([state, [[field, hash], ...]])`.
 */
export const hashState = (state: unknown): string => {
  const fields = fieldsOfRoot(state)
  return hashBytes(encodeCanonical(fields === undefined ? state : [state, fields.hashes()]))
}

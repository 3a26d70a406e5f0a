/**
 * `canon/internal`: the engine's parts, for adapters, tools and tests (the CLI's inspect and
 * compact, the wire adapters, the simulator). No stability promise: apps use `canon`.
 */
export { sizeBound } from "./canonical.js"
export { hashBytes } from "./hash.js"
export { sha256 } from "./sha256.js"
export { seededRandom, entryRandom } from "./random.js"
export { DocAuthority, type AuthorityOptions } from "./authority/doc-authority.js"
export { ReplicaState } from "./replica/replica-state.js"
export { backoffDelay } from "./replica/backoff.js"
export { JournaledState, freezeState } from "./journal.js"
export { AuthorityStore } from "./store/authority-store.js"
export { ReplicaStore } from "./store/replica-store.js"
export { STORAGE_FORMAT } from "./store/format.js"
export {
  encodeClientMessage, decodeClientMessage, encodeServerMessage, decodeServerMessage, DecodeError, PROTOCOL_VERSIONS, CodecSession,
  type Decoded, type DecodeErrorCode, type CodecOptions,
} from "./protocol/codec.js"
export { SUPPORTED_PROTOCOL, chooseVersion, checkMachine, describeMachine } from "./protocol/negotiate.js"

/**
 * Canon core: machines, the ordered log, optimistic replicas, the authority, and the ports
 * adapters implement. No I/O here: time, timers, randomness, storage and transport all come
 * in through the ports.
 */
export { defineMachine, command, type Machine, type MachineDef, type CommandDef, type CommandContext, type StateOf, type CommandName, type ArgsOf } from "./machine.js"
export { CanonError, CommandRejected, canonError, type CanonErrorCode, type Rejection, type RejectionCode } from "./errors.js"
export type { Entry, Outcome, Checkpoint, CommandRequest } from "./entry.js"
export type * from "./protocol/messages.js"
export type * from "./ports/storage.js"
export type * from "./ports/transport.js"
export type * from "./ports/runtime.js"
export { newClientId } from "./ports/runtime.js"
export { encodeCanonical, decodeCanonical, sizeBound } from "./canonical.js"
export { hashState, hashBytes } from "./hash.js"
export { seededRandom, entryRandom } from "./random.js"
export { Hub, type HubOptions, type HubEvent } from "./authority/hub.js"
export { DocAuthority, type AuthorityOptions } from "./authority/doc-authority.js"
export { CanonClient, type ClientOptions, type ClientStatus } from "./replica/client.js"
export { Doc, type Receipt, type DocEvents, type DocOptions } from "./replica/doc.js"
export { ReplicaState } from "./replica/replica-state.js"
export { backoffDelay, type BackoffOptions } from "./replica/backoff.js"
export { JournaledState } from "./journal.js"
export { AuthorityStore } from "./store/authority-store.js"
export { ReplicaStore } from "./store/replica-store.js"
export { STORAGE_FORMAT } from "./store/format.js"
export {
  encodeClientMessage, decodeClientMessage, encodeServerMessage, decodeServerMessage, DecodeError, PROTOCOL_VERSIONS, DEFAULT_MAX_FRAME_BYTES, CodecSession,
  type Decoded, type DecodeErrorCode, type CodecOptions,
} from "./protocol/codec.js"
export { SUPPORTED_PROTOCOL, chooseVersion, checkMachine, describeMachine } from "./protocol/negotiate.js"
export type { Principal, Authenticate, Authorize, AuthenticateResult } from "./authority/auth.js"
export { DEFAULT_LIMITS, type HubLimits } from "./authority/limits.js"

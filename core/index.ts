/**
 * Canon core: machines, the ordered log, optimistic replicas, the authority, and the ports
 * adapters implement. No I/O here: time, timers, randomness, storage and transport all come
 * in through the ports. This is the public API apps need; the engine's parts (the document
 * authority, replica state, journal, stores, wire codec, negotiation) are in `canon/internal`
 * (core/internal.ts), for adapters and tools, without a stability promise.
 */
export { defineMachine, command, type Machine, type MachineDef, type CommandDef, type CommandContext, type StateOf, type CommandName, type ArgsOf } from "./machine.js"
export { CanonError, CommandRejected, canonError, type CanonErrorCode, type Rejection, type RejectionCode } from "./errors.js"
export type { Entry, Outcome, Checkpoint, CommandRequest } from "./entry.js"
export type * from "./protocol/messages.js"
export type * from "./ports/storage.js"
export { REPLICA_STORE } from "./ports/storage.js"
export { replicaStorage } from "./store/replica-store.js"
export type * from "./ports/transport.js"
export type * from "./ports/runtime.js"
export { newClientId } from "./ports/runtime.js"
export { encodeCanonical, decodeCanonical } from "./canonical.js"
export { hashState } from "./hash.js"
export { Hub, type HubOptions, type HubEvent } from "./authority/hub.js"
export { CanonClient, type ClientOptions, type ClientStatus } from "./replica/client.js"
export { Doc, type Receipt, type DocEvents, type DocOptions } from "./replica/doc.js"
export type { BackoffOptions } from "./replica/backoff.js"
export { DEFAULT_MAX_FRAME_BYTES } from "./protocol/codec.js"
export type { Principal, Authenticate, Authorize, AuthenticateResult } from "./authority/auth.js"
export { DEFAULT_LIMITS, type HubLimits } from "./authority/limits.js"

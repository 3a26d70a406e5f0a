/** Whole CRDT documents (Yjs, Automerge) over the hub, and the PeerLink port. See host.ts. */
export type { Applied, CrdtDocEngine, CrdtRejection, CrdtRejectionCode, CheckResult, DocWarmUp, SliceMeter, StopSignal } from "./engine.js"
export { DEFAULT_MAX_DOC_MESSAGE_BYTES, DEFAULT_MAX_DOC_UPDATE_BYTES, DOC_MESSAGE_OVERHEAD_BYTES } from "./engine.js"
export { CrdtDocAuthority, CrdtDocError, RELAY_TICK_MS, type CrdtSubscriber, type SubmitOutcome, type CrdtAuthorityOptions } from "./authority.js"
export { CrdtDocHost, type CrdtHostOptions, type CrdtDocEvent } from "./host.js"
export { CrdtWorkBudget, DEFAULT_CRDT_WORK, WorkInFlight, loadPayer, workPayer, type CrdtWorkLimits } from "./work-budget.js"
export { CrdtDocStore, type CrdtMeta, type StoredCrdtDoc, type OwnerRecord } from "./store.js"
export { memoryLinkPair, type PeerLink, type PeerLinkListener, type MemoryLink } from "./peer-link.js"

/**
 * The messages replicas and the hub exchange, as typed values. Transports carry them; the
 * binary codec is the only place that knows their bytes.
 */
import type { CommandRequest, Entry, Checkpoint, Outcome } from "../entry.js"

// ---- client -> hub ----

/** First message on a connection: who the client is. */
export interface Hello {
  readonly type: "hello"
  readonly clientId: string
}

/** Start (or resume) following a document from `fromSeq` (the replica's confirmedSeq). */
export interface Subscribe {
  readonly type: "subscribe"
  readonly docId: string
  readonly machine: string
  readonly version: number
  readonly fromSeq: number
  /** Every command of this client up to here is settled and stored: the hub may forget their outcomes. */
  readonly ackedClientSeq: number
}

/** Commands to order, in clientSeq order. An empty list only carries `ackedClientSeq`. */
export interface Submit {
  readonly type: "submit"
  readonly docId: string
  readonly commands: ReadonlyArray<CommandRequest>
  readonly ackedClientSeq: number
}

/** Ask for the authority's whole state (after a desync). */
export interface FetchState {
  readonly type: "fetch-state"
  readonly docId: string
}

export interface Unsubscribe {
  readonly type: "unsubscribe"
  readonly docId: string
}

export type ClientMessage = Hello | Subscribe | Submit | FetchState | Unsubscribe

// ---- hub -> client ----

export interface Welcome {
  readonly type: "welcome"
  readonly clientId: string
}

/** Entries in seq order, contiguous; `checkpoint` (if any) is for a seq in this batch. */
export interface Entries {
  readonly type: "entries"
  readonly docId: string
  readonly entries: ReadonlyArray<Entry>
  readonly checkpoint?: Checkpoint
}

/** Outcomes of this client's commands, in clientSeq order. */
export interface Results {
  readonly type: "results"
  readonly docId: string
  readonly outcomes: ReadonlyArray<Outcome>
}

/** The client has every entry up to `seq`: catch-up is over, updates follow live. */
export interface Synced {
  readonly type: "synced"
  readonly docId: string
  readonly seq: number
}

/** A checkpoint published on its own (when the document goes quiet). */
export interface CheckpointMsg {
  readonly type: "checkpoint"
  readonly docId: string
  readonly seq: number
  readonly hash: string
}

/** The authority's whole state at `seq`, canonically encoded. */
export interface StateMsg {
  readonly type: "state"
  readonly docId: string
  readonly seq: number
  readonly hash: string
  readonly state: Uint8Array
}

/** Something the client did was refused; `docId` names the document when it is about one. */
export interface ErrorMsg {
  readonly type: "error"
  readonly code: string
  readonly message: string
  readonly docId?: string
}

export type ServerMessage = Welcome | Entries | Results | Synced | CheckpointMsg | StateMsg | ErrorMsg

/**
 * The messages replicas and the hub exchange, as typed values. Transports carry them; the
 * binary codec is the only place that knows their bytes.
 */
import type { CommandRequest, Entry, Checkpoint, Outcome } from "../entry.js"

// ---- client -> hub ----

/** A machine as a peer knows it: the hub checks name, version and schema fingerprint. */
export interface MachineInfo {
  readonly name: string
  readonly version: number
  /** Hash of the command schemas (see machine.ts `fingerprint`). */
  readonly fingerprint: string
}

/** An inclusive range of protocol versions. */
export interface VersionRange {
  readonly min: number
  readonly max: number
}

/** First message on a connection: what the client speaks and who it is. */
export interface Hello {
  readonly type: "hello"
  readonly protocol: VersionRange
  readonly clientId: string
  readonly machines: ReadonlyArray<MachineInfo>
  /** Opaque to Canon: handed to the hub's `authenticate` hook. */
  readonly credentials?: string
  /**
   * Proves the clientId: made by the client when it made its clientId and stored with it.
   * The first hello registers it (the hub stores only its hash); later ones must match.
   */
  readonly secret?: string
}

/** Start (or resume) following a document from `fromSeq` (the replica's confirmedSeq). */
export interface Subscribe {
  readonly type: "subscribe"
  readonly docId: string
  readonly machine: string
  readonly version: number
  /** The machine's schema fingerprint: the hub refuses the document on a mismatch. */
  readonly fingerprint: string
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
  /**
   * Protocol 2's compact form: each command's `args` are the bytes of its schema-driven
   * encoding (core/protocol/args-codec.ts); on the wire the document is its channel and
   * command names are defined once per connection.
   */
  readonly compact?: true
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

/** Flow control for a snapshot stream: the client has taken `received` bytes of it. */
export interface SnapshotAck {
  readonly type: "snapshot-ack"
  readonly docId: string
  readonly snapshotId: number
  readonly received: number
}

/** Ephemeral state of this client on a document (cursor, name, colour); null when leaving. Never logged. */
export interface PresenceSet {
  readonly type: "presence-set"
  readonly docId: string
  readonly state: unknown
}

export type ClientMessage = Hello | Subscribe | Submit | FetchState | Unsubscribe | SnapshotAck | PresenceSet

// ---- hub -> client ----

/** The handshake succeeded: `protocol` is the version both sides now speak. */
export interface Welcome {
  readonly type: "welcome"
  readonly protocol: number
  readonly clientId: string
}

export type RefusalCode =
  | "protocol-unsupported"
  | "machine-unknown"
  | "schema-too-old"
  | "schema-too-new"
  | "schema-mismatch"
  | "unauthorized"

/** The handshake failed; the hub closes the connection after this. */
export interface Refused {
  readonly type: "refused"
  readonly code: RefusalCode
  readonly message: string
  /** The versions the hub speaks (with protocol-unsupported). */
  readonly protocol?: VersionRange
  /** The machine concerned (with the schema codes and machine-unknown). */
  readonly machine?: string
}

/** Entries in seq order, contiguous; `checkpoint` (if any) is for a seq in this batch. */
export interface Entries {
  readonly type: "entries"
  readonly docId: string
  readonly entries: ReadonlyArray<Entry>
  readonly checkpoint?: Checkpoint
  /** Protocol 2's compact form: `args` are schema-encoded bytes and the document is its channel. */
  readonly compact?: true
  /** Compact form, to the client that submitted them: these seqs go without name and arguments. */
  readonly elide?: ReadonlySet<number>
}

/** Outcomes of this client's commands, in clientSeq order. */
export interface Results {
  readonly type: "results"
  readonly docId: string
  readonly outcomes: ReadonlyArray<Outcome>
  /** Protocol 2's compact form: the document is its channel. */
  readonly compact?: true
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
  /**
   * A sequence number the error is about: for `sequence-reset` and `sequence-gap`, the
   * clientSeq the client's next command must have.
   */
  readonly seq?: number
}

/** A snapshot stream starts: `size` bytes of canonical state at `seq`, sent in chunks. */
export interface SnapshotBegin {
  readonly type: "snapshot-begin"
  readonly docId: string
  readonly snapshotId: number
  readonly seq: number
  readonly hash: string
  readonly size: number
}

export interface SnapshotChunk {
  readonly type: "snapshot-chunk"
  readonly docId: string
  readonly snapshotId: number
  readonly offset: number
  readonly bytes: Uint8Array
}

export interface SnapshotEnd {
  readonly type: "snapshot-end"
  readonly docId: string
  readonly snapshotId: number
}

/** Another client's presence on a document (`state` null: it left). */
export interface Presence {
  readonly type: "presence"
  readonly docId: string
  readonly clientId: string
  readonly state: unknown
}

/** Sent by WebSocket hubs with each ping: a browser page cannot see pings, it sees this. */
export interface Keepalive {
  readonly type: "keepalive"
}

export type ServerMessage =
  | Welcome | Refused | Entries | Results | Synced | CheckpointMsg | StateMsg | ErrorMsg
  | SnapshotBegin | SnapshotChunk | SnapshotEnd | Presence | Keepalive

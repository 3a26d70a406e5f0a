/**
 * Log entries and command outcomes: the records that cross the wire and sit in storage.
 */
import type { Rejection } from "./errors.js"

/** One accepted command in a document's total order. `seq` is contiguous from 1. */
export interface Entry {
  readonly seq: number
  /** Milliseconds since the epoch, stamped by the authority. */
  readonly time: number
  readonly clientId: string
  /** With clientId, the idempotency key: applied once, ever. */
  readonly clientSeq: number
  readonly name: string
  /** Arguments in their encoded (wire) form. */
  readonly args: unknown
  /**
   * Protocol 2, to the client that submitted it: the entry came without its name and
   * arguments, which that client holds in its outbox.
   */
  readonly elided?: true
  /**
   * Compat mode, in memory only: an entry of this replica's clientId that is not the pending
   * command under its number (core/schema/compat.ts `upcast`).
   */
  readonly foreign?: true
}

/** A command as a replica sends it. */
export interface CommandRequest {
  readonly clientSeq: number
  readonly name: string
  readonly args: unknown
  /**
   * Protocol 3: the number the command was first made under, when the hub has renumbered it
   * since (a sequence-reset). A store restored from a backup may send it again under that
   * number: the hub finds it by this and answers its outcome instead of applying it again.
   */
  readonly madeAs?: number
}

/**
 * What became of a submitted command: its seq, or why it was refused. `seqAtMost` answers a
 * retry whose outcome the authority no longer keeps (the client never acknowledged it and
 * more than the window of outcomes came after it): the command was applied at a seq no
 * higher than that, or settled without an entry, and is never to be applied again.
 */
export type Outcome =
  | { readonly clientSeq: number; readonly seq: number }
  | { readonly clientSeq: number; readonly rejection: Rejection }
  | { readonly clientSeq: number; readonly seqAtMost: number }

export const isAccepted = (o: Outcome): o is { readonly clientSeq: number; readonly seq: number } => "seq" in o

/** A published `(seq, stateHash)`: the state after entry `seq` hashes to `hash`. */
export interface Checkpoint {
  readonly seq: number
  readonly hash: string
}

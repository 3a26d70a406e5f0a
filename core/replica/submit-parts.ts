/**
 * How a replica cuts its pending commands into submit messages (Doc, and compat mode in
 * core/schema/compat.ts): well under the hub's per-submit and frame limits, so a long offline
 * outbox goes out in pieces.
 */

import { consecutiveRuns } from "../runs.js"

/** Commands per submit message. */
export const SUBMIT_CHUNK = 256
/** Bytes, as sent, per submit message: half the default 1 MiB frame limit. */
export const SUBMIT_BYTES = 512 << 10

/**
 * Consecutive parts of `commands`, each at most SUBMIT_CHUNK commands and SUBMIT_BYTES of
 * `bytes` (a command's bytes as sent: a compact form may be larger than the canonical one)
 * unless one command alone is more.
 */
export const submitParts = <C>(commands: ReadonlyArray<C>, bytes: (command: C) => number): C[][] =>
  consecutiveRuns(commands, bytes, SUBMIT_BYTES, SUBMIT_CHUNK)

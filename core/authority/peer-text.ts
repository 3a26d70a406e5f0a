/**
 * What a peer is told of a failure on the hub: `told`, a sentence of the hub's. What failed
 * (a storage adapter's error, which names its directory and the driver's text; a hook's; a
 * bug's) goes to the operator (onEvent), as it can name hosts, paths or credentials. The
 * exceptions are sentences the hub writes for the peer (PEER_SENTENCES): a document held at an
 * older version (migration-failed, held-version.ts), a stored document of another machine.
 */
import { CanonError } from "../errors.js"

export const peerText = (e: unknown, told: string): string => (e instanceof CanonError && PEER_SENTENCES.has(e.code) ? e.message : told)

/** Codes whose sentences the hub writes for the peer: a held document's, a document of another machine's, a hub without room for a document's fields. */
const PEER_SENTENCES: ReadonlySet<string> = new Set(["migration-failed", "machine-mismatch", "hub-full"])

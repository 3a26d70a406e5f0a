/**
 * What a peer is told of a failure on the hub. A CanonError the hub raised about a document
 * (storage-corrupt, migration-failed: sentences it wrote for whoever follows the document) is
 * the peer's to read. A storage failure, or any other error, carries a driver's or a hook's
 * text, which can name hosts, paths or credentials: that goes to the operator (onEvent), and
 * the peer gets `told`.
 */
import { CanonError } from "../errors.js"

export const peerText = (e: unknown, told: string): string => (e instanceof CanonError && e.code !== "storage-failed" ? e.message : told)

/**
 * What a peer is told of a failure on the hub: `told`, a sentence of the hub's. What failed
 * (a storage adapter's error, which names its directory and the driver's text; a hook's; a
 * bug's) goes to the operator (onEvent), as it can name hosts, paths or credentials. The one
 * exception is a document held at an older version (migration-failed), whose sentence the hub
 * wrote for the apps following it (held-version.ts).
 */
import { CanonError } from "../errors.js"

export const peerText = (e: unknown, told: string): string => (e instanceof CanonError && e.code === "migration-failed" ? e.message : told)

/**
 * Which CRDT fields belong to a state's root object, so that `hashState(root)` covers them
 * (core/hash.ts). Kept apart from fields.ts: apps without CRDT fields bundle only this.
 */
/** The root key carrying encoded fields inside snapshots. Reserved in machines with fields. */
export const CRDT_KEY = "$crdt"

/** A CRDT field's merge command (`$crdt.<field>`; core/crdt/fields.ts crdtCommandName). */
export const isMergeName = (name: string): boolean => name.startsWith(`${CRDT_KEY}.`)

export interface HashedFields {
  /** Field hashes in sorted field order. */
  hashes(): Array<[string, string]>
}

const byRoot = new WeakMap<object, HashedFields>()

export const registerRoot = (root: object, fields: HashedFields): void => {
  if (byRoot.get(root) !== fields) byRoot.set(root, fields)
}

/** The fields registered for a root object, if any (none for a primitive: WeakMap.get says undefined). */
export const fieldsOfRoot = (root: unknown): HashedFields | undefined => byRoot.get(root as object)

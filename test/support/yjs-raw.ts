/**
 * Yjs V1 updates written by hand, for what no Y.Doc emits: items whose origins point at each
 * other or forward, a client in two blocks, an empty block, zero-length deletions. Used by the
 * hostile-update tests of both Yjs engines (crdt-yjs, crdt-doc-authority, crdt-fuzz).
 */
import * as encoding from "lib0/encoding"

export type RawId = readonly [client: number, clock: number]

/**
 * An item: its left origin, right origin, or (neither) its parent: a root type's name (`root`)
 * or a shared type's item (`parent`), with a map key (`key`). Its content is a string, or one
 * lib0 value when `value` is set.
 */
export interface RawItem {
  readonly origin?: RawId
  readonly right?: RawId
  readonly root?: string
  readonly parent?: RawId
  readonly key?: string
  readonly text: string
  readonly value?: unknown
}

export interface RawBlock {
  readonly client: number
  readonly clock: number
  readonly items: ReadonlyArray<RawItem>
}

/** A V1 update of `blocks` (in the given order, repeats and empty ones allowed) and deletions. */
export const rawUpdate = (blocks: ReadonlyArray<RawBlock>, deletes: ReadonlyArray<readonly [client: number, clock: number, len: number]> = []): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, blocks.length)
  for (const b of blocks) {
    encoding.writeVarUint(e, b.items.length)
    encoding.writeVarUint(e, b.client)
    encoding.writeVarUint(e, b.clock)
    for (const it of b.items) {
      // Content ref 4 (string) or 8 (any); bit 8: has origin, bit 7: has right origin, bit 6: has a map key (only without origins).
      const parentInfo = !it.origin && !it.right
      const key = parentInfo && it.key !== undefined
      encoding.writeUint8(e, (it.value === undefined ? 4 : 8) | (it.origin ? 128 : 0) | (it.right ? 64 : 0) | (key ? 32 : 0))
      if (it.origin) { encoding.writeVarUint(e, it.origin[0]); encoding.writeVarUint(e, it.origin[1]) }
      if (it.right) { encoding.writeVarUint(e, it.right[0]); encoding.writeVarUint(e, it.right[1]) }
      if (parentInfo) {
        if (it.parent) { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, it.parent[0]); encoding.writeVarUint(e, it.parent[1]) }
        else { encoding.writeVarUint(e, 1); encoding.writeVarString(e, it.root ?? "t") }
        if (key) encoding.writeVarString(e, it.key!)
      }
      if (it.value === undefined) encoding.writeVarString(e, it.text)
      else { encoding.writeVarUint(e, 1); encoding.writeAny(e, it.value as never) }
    }
  }
  encoding.writeVarUint(e, deletes.length)
  for (const [client, clock, len] of deletes) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, clock)
    encoding.writeVarUint(e, len)
  }
  return encoding.toUint8Array(e)
}

/**
 * One item per client, each item's left origin the next client's item, the last the first's:
 * a cycle Yjs holds pending forever (18 bytes for two clients).
 */
export const cyclicUpdate = (clients: ReadonlyArray<number>, text = "x"): Uint8Array =>
  rawUpdate(clients.map((client, i) => ({ client, clock: 0, items: [{ origin: [clients[(i + 1) % clients.length]!, 0] as const, text }] })))

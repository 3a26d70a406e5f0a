/**
 * What a Yjs deletion (a delete set, no structs) does to the size of the document it is
 * applied to. A deletion carries no content, but it is not free: each range that starts or
 * ends inside a live item splits it in two (a struct more in the encoding), and ranges of a
 * byte each can be sent by the thousand. Nor is it a cost: the content of the live text it
 * covers goes (the hub's documents collect deleted content). So the hub charges a deletion
 * what it can add less what it surely frees, on the document as it is before it: a deletion
 * of text frees room (and passes a full document's bound, which it brings back down), a
 * scattered one that splits much and frees little pays for its splits.
 */
import * as Y from "yjs"

/**
 * Upper bound of the bytes one split adds to a document's encoding (an item's info, origins
 * and length; measured at about 4 in a V2 encoding, which packs them by column).
 */
export const SPLIT_BYTES = 16

/** A decoded update's delete set: per client, its deleted ranges. */
export type DeleteSet = ReadonlyMap<number, ReadonlyArray<{ readonly clock: number; readonly len: number }>>

/**
 * The bytes applying `ds` (a deletion of `bytes` bytes, checked against `doc`) can add to
 * `doc`'s encoding, less the bytes of live text it deletes (UTF-16 units: no more than their
 * UTF-8 bytes), its own bytes included (the document keeps a delete set); negative when it
 * frees more than it adds. Ranges past what `doc` holds count as nothing freed.
 */
export const deletionGrowth = (doc: Y.Doc, ds: DeleteSet, bytes: number): number => {
  let splits = 0
  let freed = 0
  for (const [client, ranges] of ds) {
    const structs = doc.store.clients.get(client)
    if (structs === undefined || structs.length === 0) continue
    const last = structs[structs.length - 1]!
    const held = last.id.clock + last.length
    for (const { clock, len } of ranges) {
      const end = Math.min(clock + len, held)
      if (clock >= end) continue
      for (let i = Y.findIndexSS(structs, clock); i < structs.length; i++) {
        const s = structs[i]!
        const from = s.id.clock
        const to = from + s.length
        if (from >= end) break
        if (!(s instanceof Y.Item) || s.deleted) continue
        if (from < clock) splits++
        if (to > end) splits++
        if (s.content instanceof Y.ContentString) freed += Math.min(to, end) - Math.max(from, clock)
      }
    }
  }
  return bytes + splits * SPLIT_BYTES - freed
}

/**
 * What a Yjs deletion (a delete set, no structs) does to the size of the document it is
 * applied to. A deletion carries no content, but it is not free: each range that starts or
 * ends inside a live item splits it in two (a struct more in the encoding), and ranges of a
 * byte each can be sent by the thousand. Nor is it a cost: the content of the live text it
 * covers goes (the hub's documents collect deleted content). So the hub charges a deletion
 * what it can add less what it surely frees, on the document as it is before it: a deletion
 * of text frees room (and passes a full document's bound, which it brings back down), a
 * scattered one that splits much and frees little pays for its splits.
 *
 * What it can add is a bound, not a guess: every column a split or a deleted item touches is
 * charged as if its runs broke there, at the widths of the widest clientID and clock the
 * document holds. Typical deletions cost far less (measured: a word cut from a paragraph is
 * charged 119 bytes and grew the encoding by 13; 100 scattered characters, 10,033 and 752; a
 * whole text's deletion, -1,050 and -1,073). That only matters near a full document, where a
 * refusal has the document measured again; an estimate below the truth would let a hostile
 * writer's deletions take it past its bound.
 */
import * as Y from "yjs"

/** Bytes of `n` (>= 0) as lib0 writes an unsigned varint. */
const varUintBytes = (n: number): number => {
  let b = 1
  while (n >= 128) { n = Math.floor(n / 128); b++ }
  return b
}

/** Bytes of `n` as lib0 writes a signed varint (6 bits in the first byte, 7 in the others). */
const varIntBytes = (n: number): number => 1 + (Math.abs(n) < 64 ? 0 : varUintBytes(Math.floor(Math.abs(n) / 64)))

/**
 * What one change to an item can add to the V2 encoding, from the widest values the document
 * holds. V2 writes every item field in a column, run-length encoded (lib0 RleEncoder,
 * UintOptRleEncoder, IntDiffOptRleEncoder: a value, then its count when it repeats). One value
 * put into a column adds at most its own run and splits the run it lands in: two runs, each a
 * value and a count. Measured, a split costs 4 to 15 bytes; the bound is several times that
 * (a constant of 16 a split, and nothing for a deleted item, was passed among 32-bit clientIDs
 * and among items of a character each: test/yjs-deletion-growth).
 */
const costs = (doc: Y.Doc): { split: number; item: number } => {
  let structs = 0
  let client = 0
  let clock = 0
  for (const [c, list] of doc.store.clients) {
    structs += list.length
    if (c > client) client = c
    const last = list[list.length - 1]
    if (last !== undefined && last.id.clock + last.length > clock) clock = last.id.clock + last.length
  }
  const count = varUintBytes(2 * structs) // any run's count, with the splits' structs too
  const id = varIntBytes(client) // a clientID (origin and right origin: one column)
  const diff = varIntBytes(2 * clock + 1) // a clock as a difference to the one before, and its flag
  const len = varIntBytes(clock) // an item's length
  const info = 1 + count
  // A split makes a struct: its info, the clients of its origin and right origin (with the run
  // they land in), both clocks (each changing the difference after it too), its length, and a
  // surrogate pair cut in two (two U+FFFD, 6 bytes in UTF-8, where the pair took 4).
  const split = 2 * info + 3 * (id + count) + 2 * 3 * (diff + count) + 2 * (len + count) + 2
  // A deleted item changes its info (content deleted) and has its length in another column.
  const item = 2 * info + 2 * (len + count)
  return { split, item }
}

/** Each column's length prefix (nine columns) may take a byte more. */
const PREFIX_BYTES = 9

/** A decoded update's delete set: per client, its deleted ranges. */
export type DeleteSet = ReadonlyMap<number, ReadonlyArray<{ readonly clock: number; readonly len: number }>>

/**
 * The bytes applying `ds` (a deletion of `bytes` bytes, checked against `doc`) can add to
 * `doc`'s V2 encoding, less the bytes of live text it deletes (UTF-16 units: no more than their
 * UTF-8 bytes), its own bytes included (the document keeps a delete set); negative when it
 * frees more than it adds. Ranges past what `doc` holds count as nothing freed.
 */
export const deletionGrowth = (doc: Y.Doc, ds: DeleteSet, bytes: number): number => {
  let splits = 0
  let items = 0
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
        items++
        if (from < clock) splits++
        if (to > end) splits++
        if (s.content instanceof Y.ContentString) freed += Math.min(to, end) - Math.max(from, clock)
      }
    }
  }
  if (items === 0) return bytes
  const cost = costs(doc)
  return bytes + PREFIX_BYTES + splits * cost.split + items * cost.item - freed
}

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
 * document holds, and a nested type it deletes for every struct under it. Typical deletions
 * cost far less (measured: a word cut from a paragraph is charged 120 bytes and grew the
 * encoding by 13; 100 scattered characters, 13,010 and 752; a whole text's deletion, -1,050
 * and -1,073). That only matters near a full document, where a
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
const costs = (doc: Y.Doc, splits: number): { split: number; item: number; range: number; structs: number } => {
  let structs = 0
  let client = 0
  let clock = 0
  for (const [c, list] of doc.store.clients) {
    structs += list.length
    if (c > client) client = c
    const last = list[list.length - 1]
    if (last !== undefined && last.id.clock + last.length > clock) clock = last.id.clock + last.length
  }
  const count = varUintBytes(structs + splits) // any run's count, with the splits' structs too
  const id = varIntBytes(client) // a clientID (origin and right origin: one column)
  const diff = varIntBytes(2 * clock + 1) // a clock as a difference to the one before, and its flag
  const len = varIntBytes(clock) // an item's length
  const info = 1 + count
  // A split makes a struct: its info, the clients of its origin and right origin (with the run
  // they land in), both clocks (each changing the difference after it too), its length, and a
  // surrogate pair cut in two (two U+FFFD, 6 bytes in UTF-8, where the pair took 4).
  const split = 2 * info + 3 * (id + count) + 2 * 3 * (diff + count) + 2 * (len + count) + 2
  // A deleted item changes its info (content deleted, or GC under a deleted type) and has its
  // length in another column.
  const item = 2 * info + 2 * (len + count)
  // A range of the document's delete set: its client and count, its clock and length.
  const range = varUintBytes(client) + count + 2 * varUintBytes(clock)
  return { split, item, range, structs }
}

/** Each column's length prefix (nine columns) may take a byte more. */
const PREFIX_BYTES = 9

/** A decoded update's delete set: per client, its deleted ranges. */
export type DeleteSet = ReadonlyMap<number, ReadonlyArray<{ readonly clock: number; readonly len: number }>>

/**
 * What the deletions estimated so far in one batch delete, per client: sorted, disjoint
 * [from, to) clock ranges. Pass the same map to each deletion of a batch that is estimated on
 * the document as it was before the batch: text an earlier one deletes is not freed again.
 */
export type Claimed = Map<number, Array<[number, number]>>

/** [from, to) ranges (any order, overlapping, empty ones ignored) as a sorted, disjoint list. */
const merged = (ranges: Iterable<readonly [number, number]>): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  for (const [from, to] of [...ranges].sort((x, y) => x[0] - y[0])) {
    if (from >= to) continue
    const last = out[out.length - 1]
    if (last !== undefined && from <= last[1]) last[1] = Math.max(last[1], to)
    else out.push([from, to])
  }
  return out
}

/** `ranges` sorted and merged, cut to [0, held), less what `taken` holds (sorted, disjoint). */
const unclaimed = (ranges: ReadonlyArray<{ readonly clock: number; readonly len: number }>, taken: ReadonlyArray<[number, number]>, held: number): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  let t = 0
  for (let [from, to] of merged(ranges.map(({ clock, len }) => [clock, Math.min(clock + len, held)] as const))) {
    while (t < taken.length && taken[t]![1] <= from) t++
    for (let k = t; k < taken.length && taken[k]![0] < to && from < to; k++) {
      const [a, b] = taken[k]!
      if (a > from) out.push([from, a])
      from = Math.max(from, b)
    }
    if (from < to) out.push([from, to])
  }
  return out
}

/** Past this many structs under the nested types a deletion deletes, every struct of the document is counted instead. */
const MAX_WALK = 10_000

/**
 * The structs under a nested type, at any depth: deleting the type deletes them all and, the
 * hub's documents collecting, turns each into a GC struct, those deleted before included.
 * Counted up to `max` (a refused deletion may come again: its cost stays bounded), then
 * Infinity.
 */
const descendants = (type: Y.AbstractType<unknown>, max: number): number => {
  let n = 0
  const stack = [type]
  for (let t = stack.pop(); t !== undefined && n <= max; t = stack.pop()) {
    const visit = (item: Y.Item | null, next: (i: Y.Item) => Y.Item | null) => {
      for (let i = item; i !== null && n <= max; i = next(i)) {
        n++
        if (i.content instanceof Y.ContentType) stack.push(i.content.type)
      }
    }
    visit(t._start, (i) => i.right)
    for (const last of t._map.values()) visit(last, (i) => i.left)
  }
  return n > max ? Infinity : n
}

/**
 * The bytes applying `ds` (a deletion of `bytes` bytes, checked against `doc`) can add to
 * `doc`'s V2 encoding, less the bytes of live text it deletes (UTF-16 units: no more than their
 * UTF-8 bytes), its own bytes included (the document keeps a delete set); negative when it
 * frees more than it adds. Each clock counts once: a delete set may name a range many times
 * (Yjs deletes it once), and what `claimed` holds (earlier deletions of the same batch) is
 * taken as deleted already; `claimed` gets this one's ranges. Ranges past what `doc` holds
 * count as nothing freed.
 */
export const deletionGrowth = (doc: Y.Doc, ds: DeleteSet, bytes: number, claimed: Claimed = new Map()): number => {
  let splits = 0
  let items = 0
  let under = 0
  let freed = 0
  // Each client's struct count (a varint in the encoding) grows by its splits.
  let counts = 0
  for (const [client, ranges] of ds) {
    const structs = doc.store.clients.get(client)
    if (structs === undefined || structs.length === 0) continue
    const last = structs[structs.length - 1]!
    const taken = claimed.get(client) ?? []
    const mine = unclaimed(ranges, taken, last.id.clock + last.length)
    claimed.set(client, merged([...taken, ...mine]))
    const before = splits
    for (const [clock, end] of mine) {
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
        else if (s.content instanceof Y.ContentType && under !== Infinity) under += descendants(s.content.type, MAX_WALK - under)
      }
    }
    if (splits > before) counts += varUintBytes(splits - before)
  }
  if (items === 0) return bytes
  const cost = costs(doc, splits)
  if (under === Infinity) under = cost.structs
  return bytes + PREFIX_BYTES + counts + splits * cost.split + items * cost.item + under * (cost.item + cost.range) - freed
}

/**
 * What the documents of one hub hold in memory together, in units a document counts itself
 * (here: the ops and changes of Automerge fields, the structs of Yjs fields), against one bound.
 * Each owner (a loaded document) sets its own weight; the total is theirs summed. An owner asks
 * `fits` before it takes more, and `release`s when it is unloaded.
 *
 * Why: each CRDT field was bounded on its own (2^20 ops) and nothing bounded their sum. A
 * field of a run of one value stores in a few hundred bytes and held 350 MB on the hub
 * (Automerge's memory and the hub's index of it), so a few documents with a few fields
 * each filled Node's heap (a review: 1.9 GB for 2 documents of 3 fields, 2,411 bytes stored).
 */
export class HeldWeight {
  private readonly weights = new Map<object, number>()
  private sum = 0

  constructor(
    /** The most the owners may hold together. */
    readonly max: number,
  ) {
    if (!(max >= 1)) throw new TypeError(`A bound on held weight must be at least 1, not ${String(max)}.`)
  }

  get total(): number {
    return this.sum
  }

  /** Whether `owner` is counted (it may hold 0). */
  holds(owner: object): boolean {
    return this.weights.has(owner)
  }

  /** What `owner` holds now. */
  of(owner: object): number {
    return this.weights.get(owner) ?? 0
  }

  /** Whether `owner` may hold `weight` beside the others (`reserve` more past the bound). */
  fits(owner: object, weight: number, reserve = 0): boolean {
    return this.sum - this.of(owner) + weight <= this.max + reserve
  }

  /** What may pass the bound for what holds no content (a refused change's tombstone, a deletion): a 16th of it. */
  get reserve(): number {
    return Math.floor(this.max / 16)
  }

  set(owner: object, weight: number): void {
    this.sum += weight - this.of(owner)
    this.weights.set(owner, weight)
  }

  release(owner: object): void {
    this.sum -= this.of(owner)
    this.weights.delete(owner)
  }
}

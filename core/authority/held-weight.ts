/**
 * What the documents of one hub hold in memory together, in units a document counts itself
 * (the ops and changes of Automerge fields, the structs of Yjs fields; whole Yjs and
 * Automerge documents; or bytes), against one bound. Each owner (a loaded document) sets its
 * own weight; the total is theirs summed. An owner asks `fits` before it takes more, and
 * `release`s when it is unloaded.
 *
 * Why: each CRDT field was bounded on its own (2^20 ops) and nothing bounded their sum. A
 * field of a run of one value stores in a few hundred bytes and held 350 MB on the hub
 * (Automerge's memory and the hub's index of it), so a few documents with a few fields
 * each filled Node's heap (a review: 1.9 GB for 2 documents of 3 fields, 2,411 bytes stored).
 *
 * A gauge may also count toward the hub's memory (`shareWith`): one gauge in estimated bytes
 * that every kind of loaded document shares (machine states, their CRDT fields, whole Yjs
 * and Automerge documents). Each kind bounded alone, an attacker filling all of them at once
 * still reached Node's heap (the kinds' own bounds summed to about 3.5 GB of a 4.3 GB heap).
 */
export class HeldWeight {
  private readonly weights = new Map<object, number>()
  /** How owners whose weight is an upper bound count it again (`recountOthers`). */
  private readonly recounts = new Map<object, () => void>()
  private sum = 0
  private host: HeldWeight | undefined
  /** Bytes of the host's memory one unit of this gauge stands for. */
  private unitBytes = 1

  constructor(
    /** The most the owners may hold together. */
    readonly max: number,
  ) {
    if (!(max >= 1)) throw new TypeError(`A bound on held weight must be at least 1, not ${String(max)}.`)
  }

  /**
   * Counts this gauge's owners toward `host` too, each unit as `unitBytes` bytes: `fits`
   * then asks both bounds. Set before anything is held (a hub does it as it is made).
   */
  shareWith(host: HeldWeight, unitBytes: number): void {
    if (this.sum !== 0 || this.weights.size > 0) throw new Error("A gauge is shared before anything is held.")
    this.host = host
    this.unitBytes = unitBytes
  }

  /** The hub's memory gauge this one counts toward, if any. */
  get shared(): HeldWeight | undefined {
    return this.host
  }

  get total(): number {
    return this.sum
  }

  /** Whether `owner` is counted (it may hold 0). */
  holds(owner: object): boolean {
    return this.weights.has(owner)
  }

  /** What `owner` holds now. */
  of(owner: object | undefined): number {
    return owner === undefined ? 0 : this.weights.get(owner) ?? 0
  }

  /**
   * Nothing but `owner` is held, here nor on the host: such an owner always loads (a
   * document stored under a larger bound is never lost), whatever it weighs.
   */
  alone(owner?: object): boolean {
    return this.sum - this.of(owner) === 0 && (this.host === undefined || this.host.alone(owner))
  }

  /** Whether `owner` may hold `weight` beside the others (`reserve` more past the bound), here and in the host's memory. */
  fits(owner: object | undefined, weight: number, reserve = 0): boolean {
    return this.within(owner, weight, reserve) && (this.host === undefined || this.host.fits(owner, weight * this.unitBytes, reserve * this.unitBytes))
  }

  /** Whether `owner` may hold `weight` beside the others within this gauge's own bound (the host's memory aside). */
  within(owner: object | undefined, weight: number, reserve = 0): boolean {
    return this.sum - this.of(owner) + weight <= this.max + reserve
  }

  /** What may pass the bound for what holds no content (a refused change's tombstone, a deletion): a 16th of it. */
  get reserve(): number {
    return Math.floor(this.max / 16)
  }

  set(owner: object, weight: number): void {
    this.sum += weight - this.of(owner)
    this.weights.set(owner, weight)
    this.host?.set(owner, weight * this.unitBytes)
  }

  /**
   * How `owner` counts its weight again when others have no room: an owner that adds up upper
   * bounds between counts (a machine state: what commands wrote, nothing they removed) would
   * otherwise keep others out after it shrank. `count` sets the weight, or leaves it (too soon
   * since its last count).
   */
  onRecount(owner: object, count: () => void): void {
    this.recounts.set(owner, count)
  }

  /** Has the owners but `owner` that can count again do so (before a refusal), until `enough`. */
  recountOthers(owner?: object, enough?: () => boolean): void {
    for (const [o, count] of [...this.recounts]) {
      if (enough?.() === true) return
      if (o !== owner) count()
    }
  }

  release(owner: object): void {
    this.sum -= this.of(owner)
    this.weights.delete(owner)
    this.recounts.delete(owner)
    this.host?.release(owner)
  }
}

/**
 * Memory one unit of a CRDT gauge stands for, about: a Yjs struct, an Automerge op or change,
 * 128 bytes of their values (measured at their bounds: /yjs rooms of empty types 2.0 GB of
 * V8's heap for 2^23 structs; /automerge documents 0.9 GB for 4.0M; fields 1.1 GB for 2^22).
 */
export const UNIT_HEAP_BYTES = 256

/** The sentence for a hub whose memory gauge is full: what it holds, at most, and what to do. */
export const hubMemoryFull = (memory: HeldWeight): string =>
  `The hub's loaded documents hold about ${mib(memory.total)} MiB of memory together and it takes at most ${mib(memory.max)} MiB (maxHeldBytes)`

/**
 * Which bound refuses `owner` holding `weight` in `gauge`: the hub's memory it shares, when its
 * own bound has room, else its own (`own`, the sentence for it).
 */
export const fullText = (gauge: HeldWeight, owner: object | undefined, weight: number, own: string): string =>
  gauge.shared !== undefined && gauge.within(owner, weight) ? hubMemoryFull(gauge.shared) : own

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)

/**
 * The canonical encoding of a state (core/canonical.ts), produced in pieces: each `next`
 * call encodes until about `budget` bytes are out, then returns them, keeping its place in
 * an explicit stack. The concatenation of the pieces is exactly `encodeCanonical(state)`, so
 * a big state is snapshotted, hashed and streamed a slice at a time, never as one buffer and
 * never in one long pause of the event loop.
 *
 * `resolve` maps a container to the version to encode: while a snapshot of seq S is being
 * written the document keeps changing, and the journal hands out the copy of a container as
 * it was at S once it is written to after S (see `freezeState` in core/journal.ts).
 */
import { ByteWriter } from "../bytes.js"
import { MAX_DEPTH, encodeCanonical, isBytes, writeValue } from "../canonical.js"
import { canonError } from "../errors.js"

// The container tags of the canonical encoding, read off the encoder itself.
const T_ARRAY = encodeCanonical([])[0]!
const T_OBJECT = encodeCanonical({})[0]!

/**
 * A container being encoded. `origin` is the live container: it is resolved again at every
 * read, because it may be written (and its as-of copy taken) after its frame was pushed.
 * Its length or keys are read once, at push: until a write after the freeze, the live
 * container is the as-of one.
 */
type Frame =
  | { readonly origin: object; readonly length: number; i: number; readonly array: true }
  | { readonly origin: object; readonly keys: string[]; i: number; readonly array: false }
  | { readonly origin: object; readonly sorting: SlicedSort; readonly array: "sorting" }

/** Objects with more keys than this have them sorted a slice per `next` (see SlicedSort). */
const SLICED_KEYS = 4096
/** Keys sorted or merged per slice: a few milliseconds. */
const SORT_WORK = 32768

/**
 * Sorts strings in the canonical key order (UTF-16 code units, as `Array.prototype.sort`) a
 * bounded amount of work per `step`: runs of SLICED_KEYS keys sorted natively, then bottom-up
 * merge passes. Sorting the 100k keys of one object in one go held the event loop for a
 * quarter of a second (bench snapshots, row 7).
 */
class SlicedSort {
  private a: string[]
  private b: string[]
  /** 0: sorting runs; then the width of the runs being merged. */
  private width = 0
  private lo = 0
  private i = 0
  private j = 0
  private k = 0
  private mid = 0
  private hi = 0

  constructor(keys: string[]) {
    this.a = keys
    this.b = new Array<string>(keys.length)
  }

  /** The sorted keys, once `step` said done. */
  get sorted(): string[] {
    return this.a
  }

  /** About `work` units of sorting; true when done. */
  step(work: number): boolean {
    const n = this.a.length
    while (work > 0) {
      if (this.width === 0) {
        if (this.lo >= n) {
          this.width = SLICED_KEYS
          this.pair(0)
          continue
        }
        const end = Math.min(n, this.lo + SLICED_KEYS)
        const run = this.a.slice(this.lo, end).sort()
        for (let x = 0; x < run.length; x++) this.a[this.lo + x] = run[x]!
        work -= run.length
        this.lo = end
        continue
      }
      if (this.width >= n) return true
      const { a, b, mid, hi } = this
      let { i, j, k } = this
      const stop = Math.min(hi, k + work)
      while (k < stop) b[k++] = i < mid && (j >= hi || a[i]! <= a[j]!) ? a[i++]! : a[j++]!
      work -= stop - this.k
      this.i = i
      this.j = j
      this.k = k
      if (k < hi) continue
      if (hi < n) this.pair(hi)
      else {
        this.a = b
        this.b = a
        this.width *= 2
        this.pair(0)
      }
    }
    return this.width >= n
  }

  private pair(lo: number): void {
    const n = this.a.length
    this.lo = this.i = this.k = lo
    this.mid = this.j = Math.min(n, lo + this.width)
    this.hi = Math.min(n, lo + 2 * this.width)
  }
}

const isContainer = (v: unknown): v is object => typeof v === "object" && v !== null && !isBytes(v)

export class StateEncoder {
  private readonly stack: Frame[] = []
  private readonly w = new ByteWriter(1 << 16)
  private started = false
  private finished = false
  /** Bytes produced so far. */
  produced = 0

  constructor(
    private readonly root: unknown,
    private readonly resolve: (container: object) => object = (c) => c,
  ) {}

  get done(): boolean {
    return this.finished
  }

  /** The next piece (at least `budget` bytes unless it is the last one), or undefined when done. */
  next(budget: number): Uint8Array | undefined {
    if (this.finished) return undefined
    const w = this.w
    w.reset()
    if (!this.started) {
      this.started = true
      this.value(this.root)
    }
    while (this.stack.length > 0 && w.pos < budget) {
      const top = this.stack[this.stack.length - 1]!
      if (top.array === "sorting") {
        // Give the caller its slice back between sorting steps.
        if (!top.sorting.step(SORT_WORK)) break
        this.stack.pop()
        this.objectHeader(top.origin, this.resolve(top.origin) as Record<string, unknown>, top.sorting.sorted)
        continue
      }
      if (top.array) {
        if (top.i >= top.length) {
          this.stack.pop()
          continue
        }
        this.value((this.resolve(top.origin) as unknown[])[top.i++])
      } else {
        if (top.i >= top.keys.length) {
          this.stack.pop()
          continue
        }
        const k = top.keys[top.i++]!
        w.string(k)
        this.value((this.resolve(top.origin) as Record<string, unknown>)[k])
      }
    }
    if (this.stack.length === 0) this.finished = true
    const out = w.finish()
    this.produced += out.length
    return out
  }

  /** Writes a leaf, or a container's header and pushes it. */
  private value(v: unknown): void {
    if (!isContainer(v)) {
      writeValue(this.w, v, this.stack.length)
      return
    }
    if (this.stack.length >= MAX_DEPTH) throw canonError("state-unencodable", `Value nests deeper than ${MAX_DEPTH} levels.`)
    const c = this.resolve(v)
    if (Array.isArray(c)) {
      this.w.byte(T_ARRAY)
      this.w.varint(c.length)
      this.stack.push({ origin: v, length: c.length, i: 0, array: true })
      return
    }
    const obj = c as Record<string, unknown>
    const proto = Object.getPrototypeOf(obj)
    if (proto !== null && Object.getPrototypeOf(proto) !== null) {
      // Not plain data: let the canonical encoder say why, in its words.
      writeValue(this.w, obj, this.stack.length)
      return
    }
    const keys = Object.keys(obj)
    if (keys.length > SLICED_KEYS) {
      // Its header is written once its keys are sorted; nothing else is written meanwhile.
      this.stack.push({ origin: v, sorting: new SlicedSort(keys), array: "sorting" })
      return
    }
    if (keys.length > 1) keys.sort()
    this.objectHeader(v, obj, keys)
  }

  /** An object's header (its defined keys' count), then its frame. `obj` is its version to encode. */
  private objectHeader(origin: object, obj: Record<string, unknown>, sortedKeys: string[]): void {
    const keys = sortedKeys.filter((k) => obj[k] !== undefined)
    this.w.byte(T_OBJECT)
    this.w.varint(keys.length)
    this.stack.push({ origin, keys, i: 0, array: false })
  }
}

/**
 * The canonical encoding of a state (core/canonical.ts), produced in pieces: each `next`
 * call encodes until about `budget` bytes are out, then returns them, keeping its place in
 * an explicit stack. The concatenation of the pieces is exactly `encodeCanonical(state)`, so
 * a big state is snapshotted, hashed and streamed a slice at a time, never as one buffer and
 * never in one long pause of the event loop.
 *
 * `resolve` maps a container to the version to encode: while a snapshot of seq S is being
 * written the document keeps changing, and the journal hands out the copy of a container as
 * it was at S once it is written to after S (see `JournaledState.freeze`).
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
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined)
    if (keys.length > 1) keys.sort()
    this.w.byte(T_OBJECT)
    this.w.varint(keys.length)
    this.stack.push({ origin: v, keys, i: 0, array: false })
  }
}

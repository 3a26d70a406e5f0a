/**
 * An ordered map of byte keys for MemoryStorage: sorted blocks of at most BLOCK keys, found
 * by binary search over each block's first key. Inserts and deletes touch one block (a short
 * splice), so a store of a million keys takes a batch of thousands of deletes at the front in
 * time proportional to the batch, not to the store (a single sorted array made a long outbox's
 * confirmation quadratic).
 */
import { compareBytes } from "../../core/bytes.js"

export { compareBytes }

const BLOCK = 512

interface Block {
  keys: Uint8Array[]
  values: Uint8Array[]
}

/** Index of the first element of `keys` not below `key`. */
const lowerBound = (keys: ReadonlyArray<Uint8Array>, key: Uint8Array): number => {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareBytes(keys[mid]!, key) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class SortedBytesMap {
  private blocks: Block[] = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** The block that holds `key` or would: the last one whose first key is <= key. */
  private blockFor(key: Uint8Array): number {
    let lo = 0
    let hi = this.blocks.length - 1
    let found = 0
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (compareBytes(this.blocks[mid]!.keys[0]!, key) <= 0) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  get(key: Uint8Array): Uint8Array | undefined {
    if (this.blocks.length === 0) return undefined
    const b = this.blocks[this.blockFor(key)]!
    const i = lowerBound(b.keys, key)
    return i < b.keys.length && compareBytes(b.keys[i]!, key) === 0 ? b.values[i] : undefined
  }

  set(key: Uint8Array, value: Uint8Array): void {
    if (this.blocks.length === 0) {
      this.blocks.push({ keys: [key], values: [value] })
      this.count = 1
      return
    }
    const bi = this.blockFor(key)
    const b = this.blocks[bi]!
    const i = lowerBound(b.keys, key)
    if (i < b.keys.length && compareBytes(b.keys[i]!, key) === 0) {
      b.values[i] = value
      return
    }
    b.keys.splice(i, 0, key)
    b.values.splice(i, 0, value)
    this.count++
    if (b.keys.length > BLOCK * 2) {
      this.blocks.splice(bi + 1, 0, { keys: b.keys.splice(BLOCK), values: b.values.splice(BLOCK) })
    }
  }

  delete(key: Uint8Array): void {
    if (this.blocks.length === 0) return
    const bi = this.blockFor(key)
    const b = this.blocks[bi]!
    const i = lowerBound(b.keys, key)
    if (i >= b.keys.length || compareBytes(b.keys[i]!, key) !== 0) return
    b.keys.splice(i, 1)
    b.values.splice(i, 1)
    this.count--
    if (b.keys.length === 0) this.blocks.splice(bi, 1)
  }

  /** Entries with gte <= key < lt, in order (or reverse), at most `limit`. */
  range(gte: Uint8Array | undefined, lt: Uint8Array | undefined, limit: number, reverse: boolean): Array<readonly [Uint8Array, Uint8Array]> {
    const out: Array<readonly [Uint8Array, Uint8Array]> = []
    if (this.blocks.length === 0 || limit <= 0) return out
    const inLow = (k: Uint8Array) => gte === undefined || compareBytes(k, gte) >= 0
    const inHigh = (k: Uint8Array) => lt === undefined || compareBytes(k, lt) < 0
    if (!reverse) {
      let bi = gte === undefined ? 0 : this.blockFor(gte)
      let i = gte === undefined ? 0 : lowerBound(this.blocks[bi]!.keys, gte)
      for (; bi < this.blocks.length; bi++, i = 0) {
        const b = this.blocks[bi]!
        for (; i < b.keys.length; i++) {
          const k = b.keys[i]!
          if (!inHigh(k)) return out
          out.push([k, b.values[i]!])
          if (out.length >= limit) return out
        }
      }
      return out
    }
    let bi = lt === undefined ? this.blocks.length - 1 : this.blockFor(lt)
    let i = lt === undefined ? this.blocks[bi]!.keys.length - 1 : lowerBound(this.blocks[bi]!.keys, lt) - 1
    for (; bi >= 0; bi--, i = bi >= 0 ? this.blocks[bi]!.keys.length - 1 : -1) {
      const b = this.blocks[bi]!
      for (; i >= 0; i--) {
        const k = b.keys[i]!
        if (!inLow(k)) return out
        out.push([k, b.values[i]!])
        if (out.length >= limit) return out
      }
    }
    return out
  }
}

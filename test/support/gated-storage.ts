/**
 * Memory storage whose writes can be held back (a slow disk) or failed, on demand: a test
 * looks at what a hub does while a write is in flight.
 */
import { MemoryStorage } from "../../adapters/memory/index.js"
import type { BatchOp, BatchOptions } from "../../core/ports/storage.js"

export class GatedStorage extends MemoryStorage {
  private gate: { promise: Promise<void>; open: () => void; fail: () => void } | undefined

  /** Writes from now on wait (until `releaseWrites` or `failHeldWrites`). */
  holdWrites(): void {
    let open!: () => void
    let fail!: () => void
    const promise = new Promise<void>((resolve, reject) => ((open = resolve), (fail = () => reject(new Error("The disk failed (test).")))))
    promise.catch(() => {})
    this.gate = { promise, open, fail }
  }

  /** The held writes land, and later ones go at once. */
  releaseWrites(): void {
    this.gate?.open()
    this.gate = undefined
  }

  /** The held writes fail (nothing of them applied); later ones go at once. */
  failHeldWrites(): void {
    this.gate?.fail()
    this.gate = undefined
  }

  override batch(ops: ReadonlyArray<BatchOp>, options?: BatchOptions): Promise<void> {
    const gate = this.gate
    return gate === undefined ? super.batch(ops, options) : gate.promise.then(() => super.batch(ops, options))
  }
}

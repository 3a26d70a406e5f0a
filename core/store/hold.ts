/**
 * One holder at a time for a store object: the part of `KVStore.claim` (core/ports/storage.ts)
 * every adapter shares. Another realm (a tab, a process) needs the adapter's own lock on top
 * (IndexedDB: a Web Lock; LevelDB on disk: its directory lock); this one refuses a second
 * client on the same object in this one, whatever the platform offers.
 *
 * @example
 * ```ts
 * readonly #hold = new Hold()
 * async claim() { return this.#hold.take(() => canonError("storage-in-use", "...")) }
 * ```
 */
export class Hold {
  #holder: object | undefined

  /** Holds it: the function that lets go (a stale one frees nobody else). Throws `inUse()` while held. */
  take(inUse: () => Error): () => void {
    if (this.#holder !== undefined) throw inUse()
    const token = {}
    this.#holder = token
    return () => {
      if (this.#holder === token) this.#holder = undefined
    }
  }

  /** Lets go whoever holds it: the holding process died (a simulated crash). */
  reset(): void {
    this.#holder = undefined
  }
}

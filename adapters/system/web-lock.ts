/**
 * A store held for one replica across the tabs and workers of a site, with the browser's Web
 * Locks (`navigator.locks`): what `claim` (core/ports/storage.ts) does for the stores that
 * reach IndexedDB (canon/indexeddb, canon/level's browser build). The lock is named after the
 * database, so both adapters on the same data hold the same lock. The browser lets go of a
 * tab's locks when the tab goes away.
 *
 * @example
 * ```ts
 * const letGo = await holdWebLock("level-js-my-app", () => canonError("storage-in-use", "..."))
 * ```
 */
interface Locks {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | undefined): Promise<unknown>
}

/**
 * Holds the lock for `database` until the returned function is called; rejects with
 * `inUse()` while another tab or worker holds it. Without Web Locks (Node, old browsers) it
 * holds nothing.
 */
export const holdWebLock = (database: string, inUse: () => Error): Promise<() => void> => {
  const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks
  if (locks === undefined) return Promise.resolve(() => {})
  return new Promise((resolve, reject) => {
    locks.request(`canon:${database}`, { ifAvailable: true }, (lock) => {
      if (lock === null) {
        reject(inUse())
        return undefined
      }
      // Held until let go: the lock is released when this promise settles.
      return new Promise<void>((letGo) => resolve(() => letGo()))
    }).catch(reject)
  })
}

/**
 * A store held for one replica across the tabs and workers of a site, with the browser's Web
 * Locks (`navigator.locks`): what `claim` (core/ports/storage.ts) does for the stores that
 * reach IndexedDB (canon/indexeddb, canon/level's browser build). The lock is named after the
 * database, so both adapters on the same data hold the same lock. The browser lets go of a
 * tab's locks when the tab goes away.
 *
 * @example
 * ```ts
 * const letGo = await holdWebLock(this.#hold, "level-js-my-app", () => canonError("storage-in-use", "..."))
 * ```
 */
import type { Hold } from "../../core/store/hold.js"
import { pageLockRequester } from "./tab-locks.js"


/**
 * How long a claim waits for another tab to let go before refusing: a reloaded page's old
 * document may hold the lock for a moment after the new one starts.
 */
export const WEB_LOCK_WAIT_MS = 2_000

/**
 * Holds `hold` (this page's holder of the store object) and the Web Lock for `database` until
 * the returned function is called; rejects with `inUse()` while another client of this page
 * holds the object, or another tab or worker the lock (after waiting up to
 * `WEB_LOCK_WAIT_MS` for it). A page without Web Locks (served over plain http from
 * another machine) holds it through TabLocks (./tab-locks.ts); in Node only the object is held.
 */
export const holdWebLock = async (hold: Hold, database: string, inUse: () => Error): Promise<() => void> => {
  const letGoObject = hold.take(inUse)
  try {
    const letGoLock = await webLock(database, inUse)
    return () => {
      letGoLock()
      letGoObject()
    }
  } catch (e) {
    letGoObject()
    throw e
  }
}

const webLock = (database: string, inUse: () => Error): Promise<() => void> => {
  const locks = pageLockRequester()
  if (locks === undefined) return Promise.resolve(() => {})
  return new Promise((resolve, reject) => {
    locks.request(`canon:${database}`, { signal: AbortSignal.timeout(WEB_LOCK_WAIT_MS) }, () =>
      // Held until let go: the lock is released when this promise settles.
      new Promise<void>((letGo) => resolve(() => letGo())),
    ).catch((e: unknown) => {
      const name = (e as { name?: unknown } | null)?.name
      reject(name === "TimeoutError" || name === "AbortError" ? inUse() : e)
    })
  })
}

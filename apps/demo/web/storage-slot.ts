/**
 * Which storage slot (one IndexedDB replica, `canon-demo-<slot>`) this tab uses. A tab holds a
 * Web Lock on its slot for its life, so two tabs never share a clientId and outbox.
 *
 * A reload must get its own slot back. The old page lets go of its lock only once it is gone,
 * which on a busy machine takes seconds; taking the next free slot meanwhile opens another
 * replica, one without the edits made before the reload (offline, they would look lost until
 * some later reload). So the tab remembers its slot (sessionStorage lasts across reloads of one
 * tab, not into a new tab) and a reload waits for it longer than a first load waits for any.
 */
import type { LockRequester } from "../../../adapters/system/tab-locks.js"

/** The locks a slot is held with (navigator.locks, or TabLocks where a page has none). */
export type SlotLocks = LockRequester

/** Where the tab keeps its slot across reloads (sessionStorage in the page). */
export interface SlotMemory {
  get(): number | undefined
  set(slot: number): void
}

export const SLOT_COUNT = 16

/** How long each claim waits for a held lock, in ms. */
export interface SlotWaits {
  /** The tab's own slot after a reload: the old page still holds it until it is torn down. */
  readonly reload: number
  /** The tab's own slot otherwise, or slot 0 for a new tab: an old page may hold it for a moment. */
  readonly first: number
  /** Any other slot: held means another tab has it. */
  readonly other: number
}

export const SLOT_WAITS: SlotWaits = { reload: 10_000, first: 1_500, other: 200 }

const lockName = (slot: number): string => `canon-demo-slot-${slot}`

/** Takes the lock of `slot`, held until the page goes; false if it is still held after `ms`. */
const take = (locks: SlotLocks, slot: number, ms: number): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    locks
      .request(lockName(slot), { signal: AbortSignal.timeout(ms) }, () => {
        resolve(true)
        return new Promise<void>(() => {}) // held for the life of the page
      })
      .catch(() => resolve(false))
  })

/**
 * A slot no other tab holds: the remembered one first, then 0, 1, 2... undefined when all of
 * them are held. `locks`: Web Locks, or the page's locks over a BroadcastChannel where it has
 * none (adapters/system/tab-locks.ts); without any, slot 0.
 */
export const claimSlot = async (locks: SlotLocks | undefined, memory: SlotMemory, reloaded: boolean, waits: SlotWaits = SLOT_WAITS): Promise<number | undefined> => {
  if (locks === undefined) return 0
  const own = memory.get()
  const order = own === undefined ? [] : [own]
  for (let slot = 0; slot < SLOT_COUNT; slot++) if (slot !== own) order.push(slot)
  for (const [i, slot] of order.entries()) {
    const ms = i > 0 ? waits.other : own !== undefined && reloaded ? waits.reload : waits.first
    if (await take(locks, slot, ms)) {
      memory.set(slot)
      return slot
    }
  }
  return undefined
}

/** The page's sessionStorage as a SlotMemory (forgetful where storage is refused). */
export const sessionSlotMemory = (key = "canon-demo-slot"): SlotMemory => ({
  get: () => {
    try {
      const text = sessionStorage.getItem(key) ?? ""
      return /^\d{1,2}$/.test(text) && Number(text) < SLOT_COUNT ? Number(text) : undefined
    } catch {
      return undefined
    }
  },
  set: (slot) => {
    try {
      sessionStorage.setItem(key, String(slot))
    } catch {
      // Not remembered: a reload then looks for a slot as a new tab does.
    }
  },
})

/** Whether this page load is a reload of the same tab. */
export const pageWasReloaded = (): boolean => {
  try {
    return (performance.getEntriesByType("navigation")[0] as { type?: string } | undefined)?.type === "reload"
  } catch {
    return false
  }
}

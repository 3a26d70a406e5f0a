/**
 * The browser replica: a CanonClient on IndexedDB (canon/indexeddb) and the hub's WebSocket
 * at /sync on this page's origin.
 *
 * - Offline-first: state and outbox live in IndexedDB, so edits made offline survive a
 *   reload and go out when the network returns.
 * - The browser's own network signal drives the connection: going offline closes the socket
 *   at once (a socket on a dead network can look open for a long time); coming back online
 *   or back to the tab reconnects without waiting for the backoff (the browser transport's
 *   wake signal, in CanonClient).
 * - One replica per tab: each tab holds a Web Lock on a storage slot, so two tabs never share
 *   a clientId and outbox (their command numbers would collide); a reload gets its slot back
 *   (web/storage-slot.ts).
 */
import { CanonClient, type KVStore } from "../../../core/index.js"
// IndexedDB straight, not through canon/level: the same data (an older build of this demo stored
// it through level), without abstract-level and its shims in the first script (about 14 kB gzipped).
import { IndexedDbStorage } from "../../../adapters/indexeddb/index.js"
import { wsClientTransport } from "../../../adapters/ws/client-browser.js"
import { systemRuntime } from "../../../adapters/system/index.js"
import { boardMachine } from "./version.js"
import type { NetworkShaper } from "./net-shaper.js"
import { claimSlot, pageWasReloaded, sessionSlotMemory } from "./storage-slot.js"
import { pageLockRequester } from "../../../adapters/system/tab-locks.js"

export interface Replica {
  readonly client: CanonClient
  /** undefined when IndexedDB is unavailable (private mode in some browsers): nothing survives a reload. */
  readonly storage: KVStore | undefined
  /** -1 when every slot is held by another tab (then no storage either). */
  readonly slot: number
}

export const syncUrl = (): string => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/sync`

export const openReplica = async (onStorageProblem: (message: string) => void, shaper?: NetworkShaper): Promise<Replica> => {
  // Web Locks, or where the page has none (plain http on a LAN) locks over a BroadcastChannel.
  const slot = await claimSlot(pageLockRequester(), sessionSlotMemory(), pageWasReloaded())
  let storage: IndexedDbStorage | undefined
  if (slot === undefined) {
    // A replica per tab: this one would share a store, and with it another tab's clientId.
    onStorageProblem("The board is open in too many tabs to give this one its own storage; its edits are kept only while the page is open.")
  } else {
    try {
      storage = await IndexedDbStorage.open(`canon-demo-${slot}`)
    } catch (e) {
      onStorageProblem(`This browser won't let the board store data (${e instanceof Error ? e.message : String(e)}); edits are kept only while the page is open.`)
    }
  }
  const client = await CanonClient.open({
    transport: shaper === undefined ? wsClientTransport(syncUrl()) : shaper.wrap(wsClientTransport(syncUrl())),
    runtime: systemRuntime,
    // The board only: the card-text machine is declared once a description is first opened
    // (web/description.ts, loaded then), so Yjs is not in the script the first render waits for.
    machines: [boardMachine()],
    storage,
    autoConnect: navigator.onLine,
  })
  addEventListener("offline", () => client.disconnect())
  // After a disconnect on purpose the client waits for the app: the network is back.
  addEventListener("online", () => client.connect())
  return { client, storage, slot: slot ?? -1 }
}

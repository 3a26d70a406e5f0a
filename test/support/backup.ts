/**
 * A backup of a store, as a phone's cloud backup or a VM snapshot takes one: everything it
 * holds now, copied to a store of its own (opened later, it is the store gone back in time).
 */
import { MemoryStorage } from "../../adapters/memory/index.js"

export const backupOf = async (store: MemoryStorage): Promise<MemoryStorage> => {
  const copy = new MemoryStorage()
  await copy.batch((await store.range({})).map(([key, value]) => ({ type: "put" as const, key, value })))
  return copy
}

/**
 * The page test/storage-indexeddb-tabs.test.ts opens in several tabs: a replica on
 * IndexedDbStorage or canon/level's browser build (never connected), opened and closed from
 * the test through `window`.
 */
import { CanonClient, CanonError } from "../../core/index.js"
import { IndexedDbStorage } from "../../adapters/indexeddb/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { offlineTransport } from "./offline.js"

let client: CanonClient | undefined

const page = window as unknown as { openReplica(name: string, adapter?: "indexeddb" | "level"): Promise<string>; closeReplica(): Promise<void> }

/** The clientId of the replica opened on store `name` (canon/indexeddb, or canon/level's browser build), or "error <code>". */
page.openReplica = async (name, adapter = "indexeddb") => {
  try {
    const storage = adapter === "level" ? await LevelStorage.open(name) : await IndexedDbStorage.open(name)
    client = await CanonClient.open({ transport: offlineTransport, runtime: systemRuntime, storage, autoConnect: false })
    return client.clientId
  } catch (e) {
    return `error ${e instanceof CanonError ? e.code : String(e)}`
  }
}

page.closeReplica = async () => {
  await client?.close()
  client = undefined
}

/**
 * The page test/storage-indexeddb-tabs.test.ts opens in several tabs: a replica on
 * IndexedDbStorage (never connected), opened and closed from the test through `window`.
 */
import { CanonClient, CanonError } from "../../core/index.js"
import { IndexedDbStorage } from "../../adapters/indexeddb/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { offlineTransport } from "./offline.js"

let client: CanonClient | undefined

const page = window as unknown as { openReplica(name: string): Promise<string>; closeReplica(): Promise<void> }

/** The clientId of the replica opened on store `name`, or "error <code>". */
page.openReplica = async (name) => {
  try {
    const storage = await IndexedDbStorage.open(name)
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

/**
 * A real hub for CLI and compaction tests: the core Hub on LevelDB on disk, served over
 * WebSocket on 127.0.0.1, with a snapshot policy of the test's choosing (the hub app's
 * `startHub` takes none, so its documents would snapshot only past 256 KiB of log).
 */
import { Hub, type HubEvent, type Machine } from "../../core/index.js"
import type { SnapshotPolicy } from "../../core/authority/snapshots.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { WsServer } from "../../adapters/ws/index.js"
import { systemRuntime } from "../../adapters/system/index.js"

export interface SnapshotHub {
  readonly hub: Hub
  readonly storage: LevelStorage
  readonly syncUrl: string
  readonly events: HubEvent[]
  close(): Promise<void>
}

export const startSnapshotHub = async (dataDir: string, machines: ReadonlyArray<Machine<any, any>>, snapshots?: SnapshotPolicy): Promise<SnapshotHub> => {
  const storage = await LevelStorage.open(dataDir)
  const events: HubEvent[] = []
  const hub = new Hub({ machines, storage, runtime: systemRuntime, sync: false, onEvent: (e) => events.push(e), ...(snapshots ? { snapshots } : {}) })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  return {
    hub, storage, events,
    syncUrl: server.urls()[0]!,
    close: async () => {
      await server.close()
      await hub.close()
      await storage.close()
    },
  }
}

/**
 * A small world for tests of machine versions with CRDT fields: hubs started one after another
 * on one store (each closes the one before, as an upgrade does), apps opened on the network,
 * and what went wrong collected: the hubs' reports (a checkpoint that did not match on load, a
 * broken document; an upgrade is not one) and each document's errors, refusals and desyncs.
 * test/schema-crdt-added-field*.test.ts, test/schema-crdt-first-field*.test.ts.
 */
import { CanonClient, Hub, type HubEvent, type Machine } from "../../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { settleWithTurns } from "./virtual-time.js"

/** Small logs are compacted behind a snapshot: a newcomer starts from the snapshot. */
export const COMPACTING = { minLogBytes: 2 << 10, logRatio: 1, tailBytes: 0, chunkBytes: 1 << 10 }

export const versionsWorld = (docId: string, snapshots?: typeof COMPACTING, seed = 11) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hubStore = new MemoryStorage()
  let hub: Hub | undefined
  const reports: string[] = []
  const start = async (m: Machine<any, any>, extra: Record<string, unknown> = {}) => {
    if (hub !== undefined) {
      await hub.close()
      net.stopServer()
    }
    hub = new Hub({
      machines: [m], storage: hubStore, runtime: rt, quietCheckpointMs: 200,
      onEvent: (e: HubEvent) => { if (e.type === "doc-report" && e.code !== "machine-upgraded" || e.type === "doc-broken") reports.push(JSON.stringify(e)) },
      ...(snapshots !== undefined ? { snapshots } : {}),
      ...extra,
    } as never)
    net.listen(hub)
    return hub
  }
  const open = async <M extends Machine<any, any>>(m: M, name: string, storage = new MemoryStorage()) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage })
    const doc = await client.open(m, docId)
    const errors: string[] = []
    doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
    doc.on("rejected", (e) => errors.push(`rejected ${e.rejection.code}: ${e.rejection.message}`))
    doc.on("desync", (e) => errors.push(`desync ${JSON.stringify(e)}`))
    return { client, doc, errors, storage }
  }
  return { rt, net, reports, hubStore, start, open, run: (ms: number) => settleWithTurns(rt, ms), hub: () => hub! }
}

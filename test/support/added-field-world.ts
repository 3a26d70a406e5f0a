/**
 * A machine with a v3 chain of added CRDT fields, and a small world of hubs and apps on one
 * store (test/schema-crdt-added-field-*.test.ts).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type HubEvent } from "../../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { yText } from "../../adapters/yjs/index.js"
import { automergeText } from "../../adapters/automerge/index.js"
import { evolve, historyOf } from "../../core/schema/versions.js"
import { settleWithTurns } from "./virtual-time.js"

export const DOC = "p"
export type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }

export const A1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), crdt: { body: yText() }, commands: { rename } })
export const A2 = evolve(A1, { version: 2, crdt: { notes: yText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
export const A3 = evolve(A2, { version: 3, crdt: { log: automergeText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
/** v1 and v2 as the v3 build has them. */
export const V1 = historyOf(A3)!.at(1) as typeof A1
export const V2 = historyOf(A3)!.at(2) as typeof A2

export const COMPACTING = { minLogBytes: 2 << 10, logRatio: 1, tailBytes: 0, chunkBytes: 1 << 10 }

export type AnyPad = typeof A1 | typeof A2 | typeof A3

export const world = (snapshots?: typeof COMPACTING, seed = 11) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hubStore = new MemoryStorage()
  let hub: Hub | undefined
  const reports: string[] = []
  const start = async (m: AnyPad, extra: Record<string, unknown> = {}) => {
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
  const open = async <M extends AnyPad>(m: M, name: string, storage = new MemoryStorage()) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name, storage })
    const doc = await client.open(m, DOC)
    const errors: string[] = []
    doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
    doc.on("rejected", (e) => errors.push(`rejected ${e.rejection.code}: ${e.rejection.message}`))
    doc.on("desync", (e) => errors.push(`desync ${JSON.stringify(e)}`))
    return { client, doc, errors, storage }
  }
  return { rt, net, reports, start, open, hubStore, run: (ms: number) => settleWithTurns(rt, ms), hub: () => hub! }
}

/**
 * What keeping idle documents buys (core/authority/idle-documents.ts): a subscribe after an
 * unsubscribe of a document of a few MB of state, on a real LevelDB on disk, when the document
 * was unloaded meanwhile (`idleDocuments: { count: 0 }`, the behaviour before 2aa818a; a standalone script, not a suite of npm run bench) versus
 * kept (the defaults). Timed over the wire protocol: from the subscribe message to `synced`.
 *
 *   npx tsx bench/hub-idle-reload.ts [stateMB=4] [runs=7] [itemBytes=10000]
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { performance } from "node:perf_hooks"
import { Hub, type HubOptions } from "../core/index.js"
import type { Connection, ConnectionListener } from "../core/ports/transport.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { systemRuntime } from "../adapters/system/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { Todo } from "../test/support/machines.js"

const stateMB = Number(process.argv[2] ?? 4)
const runs = Number(process.argv[3] ?? 7)
const itemBytes = Number(process.argv[4] ?? 10_000)
const DOC = "big"
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

class Peer {
  readonly received: ServerMessage[] = []
  waiter: ((m: ServerMessage) => void) | undefined
  listener!: ConnectionListener<ClientMessage>
  readonly conn: Connection<ServerMessage>
  constructor(readonly clientId: string) {
    const self = this
    this.conn = {
      send(m) { self.received.push(m); self.waiter?.(m) },
      close() {},
      get bufferedAmount() { return 0 },
    }
  }
  send(m: ClientMessage | Record<string, unknown>): void {
    this.listener.onMessage(m as ClientMessage)
  }
  next(pred: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    return new Promise((resolve) => {
      this.waiter = (m) => { if (pred(m)) { this.waiter = undefined; resolve(m) } }
    })
  }
}

const connect = async (hub: Hub, clientId: string): Promise<Peer> => {
  const p = new Peer(clientId)
  const welcomed = p.next((m) => m.type === "welcome")
  p.listener = hub.accept(p.conn, { remoteAddress: "bench" })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: newClientSecret(systemRuntime) })
  await welcomed
  return p
}

const subscribe = async (p: Peer, fromSeq: number): Promise<number> => {
  const t0 = performance.now()
  const synced = p.next((m) => m.type === "synced" && m.docId === DOC)
  p.send({ type: "subscribe", docId: DOC, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq, ackedClientSeq: 0 })
  await synced
  return performance.now() - t0
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "canon-idle-measure-"))
  const location = path.join(dir, "db")
  try {
    // The document: `stateMB` MB of state (items of `itemBytes` titles), snapshotted as the hub does.
    let storage = await LevelStorage.open({ location, sync: true })
    let hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime })
    const writer = await connect(hub, "writer0000000001")
    const doc = await hub.doc(DOC, Todo)
    const n = Math.round((stateMB * 1e6) / itemBytes)
    const per = Math.max(1, Math.min(500, Math.floor(200_000 / itemBytes)))
    for (let i = 0; i < n; i += per) {
      doc.submit(writer.conn, writer.clientId, { type: "submit", docId: DOC, ackedClientSeq: 0, commands: Array.from({ length: Math.min(per, n - i) }, (_, k) => ({ clientSeq: i + k + 1, name: "add", args: { id: `i${i + k}`, title: String(i + k).padEnd(itemBytes, "x") } })) })
      await sleep(0)
    }
    while (doc.headSeq < n) await sleep(5)
    // Quiet: the hub's own snapshots and compaction are done before the one below.
    await sleep(2_000)
    await doc.snapshotNow()
    const head = doc.headSeq
    const size = doc.stateSize
    await hub.close()
    await storage.close()

    const measure = async (label: string, idleDocuments: HubOptions["idleDocuments"]) => {
      storage = await LevelStorage.open({ location, sync: true })
      hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime, ...(idleDocuments !== undefined ? { idleDocuments } : {}) })
      const reader = await connect(hub, `reader${label.startsWith("kept") ? "k" : "u"}00000000001`)
      const first = await subscribe(reader, head)
      const times: number[] = []
      for (let r = 0; r < runs; r++) {
        reader.send({ type: "unsubscribe", docId: DOC })
        // Past idleUnloadMs (250): with count 0 the document is unloaded by now; kept otherwise.
        await sleep(1_000)
        const loadedBefore = hub.stats().documents
        times.push(await subscribe(reader, head))
        if (r === 0) console.log(`  ${label}: documents loaded before the resubscribe: ${loadedBefore}`)
      }
      await hub.close()
      await storage.close()
      console.log(`  ${label}: first subscribe (cold load) ${first.toFixed(1)} ms; resubscribe median ${median(times).toFixed(2)} ms over ${runs} [${times.map((t) => t.toFixed(1)).join(", ")}]`)
      return median(times)
    }
    console.log(`document "${DOC}": ${n} entries, state ${(size / 1e6).toFixed(2)} MB encoded (snapshot at seq ${head}); LevelDB at ${location}, sync: true`)
    const unloaded = await measure("unloaded (idleDocuments: { count: 0 })", { count: 0 })
    const kept = await measure("kept (defaults)", undefined)
    console.log(`resubscribe after unsubscribe: unloaded ${unloaded.toFixed(2)} ms vs kept ${kept.toFixed(2)} ms (x${(unloaded / kept).toFixed(0)})`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

void main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })

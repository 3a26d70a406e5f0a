/**
 * A storage adapter's own errors do not reach peers: LevelStorage turns a LevelDB corruption
 * into `storage-corrupt` "LevelDB get failed on "<the store's path>" ... (<the driver's
 * text>)", and after close `closed` names the path too. Peers are told the hub's sentence;
 * only migration-failed's (written for the apps following a held document) passes as it is
 * (core/authority/peer-text.ts). Found by a helper's review of eb0b71a; real LevelDB on disk.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Hub, type HubEvent, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { Todo } from "./support/machines.js"

const SECRET_DIR = "tenant-acme-hunter2"

test("a document load that meets a LevelDB corruption does not send the peer the store's path or the driver's text", async () => {
  const dir = mkdtempSync(join(tmpdir(), SECRET_DIR))
  const storage = await LevelStorage.open(dir)
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, onEvent: (e) => events.push(e) })
  net.listen(hub)
  const db = (storage as unknown as { db: { get: unknown; iterator: unknown } }).db
  const corrupt = () => Object.assign(new Error(`Corruption: block checksum mismatch: ${dir}/000005.ldb`), { code: "LEVEL_CORRUPTION" })
  const heard: Array<ServerMessage | { closed: string; reason: string }> = []
  const conn = net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 4 }, clientId: "client-0001", secret: "a-secret-of-enough-characters", machines: [] }),
    onMessage: (m) => {
      heard.push(m)
      if (m.type === "welcome") {
        // The disk goes bad under the document's records.
        db.get = () => Promise.reject(corrupt())
        db.iterator = () => ({ nextv: () => Promise.reject(corrupt()), close: () => Promise.resolve() })
        conn.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
      }
    },
    onClose: (i) => heard.push({ closed: i.code, reason: i.reason }),
  })
  for (let i = 0; i < 20; i++) await rt.run({ forMs: 20 })
  await new Promise((r) => setTimeout(r, 50))
  await rt.run({ forMs: 50 })
  try {
    expect(heard.some((m) => "type" in m && m.type === "welcome")).toBe(true)
    // The operator is told (onEvent) ...
    expect(JSON.stringify(events.map((e) => ("error" in e ? String((e.error as Error)?.message) : e.type)))).toContain(SECRET_DIR)
    // ... the peer is told the document failed, but not where the hub keeps its data.
    expect(heard.some((m) => "type" in m && m.type === "error")).toBe(true)
    expect(JSON.stringify(heard)).not.toContain(SECRET_DIR)
  } finally {
    await hub.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

/**
 * The Canon hub of the `wire` suite in its own process (started by CanonWorld through
 * wire-process.ts, plain node on an esbuild bundle): a Hub on LevelStorage in a fresh
 * directory, with the hub's default durability (`sync` on: LevelDB fsyncs each group commit
 * before it is acknowledged) unless the spec says otherwise, served by WsServer on 127.0.0.1.
 * Rate limits are lifted (BENCH_LIMITS); everything else keeps its default.
 *
 * argv[2]: `{"dir": "...", "sync"?: boolean}`
 */
import { rmSync } from "node:fs"
import { Hub, type Machine } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { Counter } from "./machines.js"
import { WireTodo } from "./wire-todo.js"
import { serveParent } from "./wire-process.js"
import { BENCH_LIMITS } from "./wire-limits.js"

const spec = JSON.parse(process.argv[2] ?? "{}") as { dir: string; sync?: boolean }
const machines: ReadonlyArray<Machine<any, any>> = [Counter, WireTodo]

const started = (async () => {
  const storage = await LevelStorage.open(spec.dir)
  const hub = new Hub({ machines, storage, runtime: systemRuntime, limits: BENCH_LIMITS, ...(spec.sync !== undefined ? { sync: spec.sync } : {}) })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  return { storage, hub, server }
})()

// Listening from the first tick: the parent's first request may arrive before the hub is up.
serveParent({
  ready: async () => ({ url: (await started).server.urls()[0]!, pid: process.pid }),
  head: async (a) => (await (await started).hub.doc(a.docId as string, machines.find((m) => m.name === a.machine)!)).headSeq,
  close: async () => {
    const { storage, hub, server } = await started
    await server.close()
    await hub.close()
    await storage.close()
    rmSync(spec.dir, { recursive: true, force: true })
  },
})

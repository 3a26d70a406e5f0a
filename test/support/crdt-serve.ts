/**
 * A hub serving whole CRDT documents, as a child process for tests (the stand-in for
 * `canon serve` with CRDT endpoints): LevelDB in argv[2], port argv[3] (0: any), endpoints
 * /yjs (y-websocket) and /automerge (automerge-repo) beside the Canon protocol.
 * Auth: the `token` query parameter; "writer-*" may write, "reader-*" may only read,
 * anything else (or none, when argv[4] is "auth") is refused. Prints "LISTENING <port>".
 */
import { Hub } from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { WsServer } from "../../adapters/ws/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../../adapters/yjs-server/index.js"
import { automergeDocEngine, automergeRoute } from "../../adapters/automerge-server/index.js"

const [dir, portArg, authArg] = process.argv.slice(2)
const storage = await LevelStorage.open(dir!)
const withAuth = authArg === "auth"
const hub = new Hub({
  machines: [], storage, runtime: systemRuntime, sync: false,
  crdt: { engines: [yjsDocEngine(), automergeDocEngine()], compactAfterBytes: 4096 },
  ...(withAuth ? {
    authenticate: (hello: { credentials?: string }) =>
      hello.credentials?.startsWith("writer-") || hello.credentials?.startsWith("reader-") ? { id: hello.credentials } : { refuse: "Unknown token." },
    authorize: (p: { id: string }, _docId: string, access: "read" | "write") => access === "read" || p.id.startsWith("writer-"),
  } : {}),
  onEvent: (e) => {
    if (process.env.CRDT_SERVE_LOG) console.error(JSON.stringify(e, (_k, v) => (v instanceof Error ? v.message : v)))
  },
})
const yjs = yjsRoute(hub.crdtDocs)
const am = automergeRoute(hub.crdtDocs)
const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: Number(portArg ?? 0) }], routes: [yjs, am] })
console.log(`LISTENING ${server.addresses()[0]!.port}`)
const stop = async () => {
  yjs.close()
  am.close()
  await server.close()
  await hub.close()
  await storage.close()
  process.exit(0)
}
process.on("SIGTERM", () => void stop())
process.on("SIGINT", () => void stop())

/**
 * A hub in its own process for the wide crash scenario (wide-crash.ts): the core Hub on
 * LevelDB over WebSocket on 127.0.0.1, serving `Notes` (ordered commands beside a Yjs and an
 * Automerge text field) and the versioned todo machine at `--version` 1 or 2, with a small
 * snapshot policy so documents with CRDT fields are snapshotted and compacted often (a kill
 * lands inside those writes too).
 *
 *   node --import tsx test/crash/wide-hub-process.ts --data DIR --port P [--version 1|2] [--sync] [--max-ms MS]
 *     [--min-log-kib K] [--log-ratio R] [--tail-kib K] [--chunk-kib K]
 *
 * The snapshot policy flags default to the wide scenario's (8, 0.5, 2, 1); the install
 * scenario (install-crash.ts) streams with larger chunks.
 * Prints `READY <port> <pid>` once it listens, `EVENT <type> <docId> <detail>` for each hub
 * event that says a document could not be served (doc-broken, doc-load-failed, doc-report,
 * storage-failed). SIGTERM closes it cleanly (`STOPPED`, exit 0). A port or LevelDB lock still
 * held by a SIGKILLed predecessor is retried for up to 5 s. Exits by itself when its stdin
 * closes or after --max-ms (default 10 minutes).
 */
import { Hub } from "../../core/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { Notes, TodoV1, TodoV2 } from "./wide-machines.js"
import { exitWithParent, parseFlags, say } from "./harness.js"
import { serveHubUntilStopped } from "./hub-child.js"

const flags = parseFlags(process.argv.slice(2))
const dataDir = flags.get("data")
if (dataDir === undefined) {
  process.stderr.write("wide-hub-process: --data DIR is required\n")
  process.exit(2)
}
const version = flags.num("version", 1)
const port = flags.num("port", 0)
const sync = flags.has("sync")
exitWithParent(flags.num("max-ms", 600_000))

const oneLine = (e: unknown): string => (e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)).replace(/\s+/g, " ").slice(0, 300)

await serveHubUntilStopped("wide-hub-process", dataDir, port, sync, (storage) => new Hub({
  machines: [Notes, version === 2 ? TodoV2 : TodoV1], storage, runtime: systemRuntime, sync,
  snapshots: { minLogBytes: flags.num("min-log-kib", 8) * 1024, logRatio: flags.num("log-ratio", 0.5), tailBytes: flags.num("tail-kib", 2) * 1024, chunkBytes: flags.num("chunk-kib", 1) * 1024 },
  onEvent: (e) => {
    if (e.type === "doc-broken" || e.type === "doc-load-failed") say("EVENT", e.type, e.docId, oneLine(e.error))
    else if (e.type === "doc-report") say("EVENT", e.type, e.docId, `${e.code}: ${oneLine(e.message)}`)
    else if (e.type === "storage-failed") say("EVENT", e.type, "-", oneLine(e.message))
  },
}))

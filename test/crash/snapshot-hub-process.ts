/**
 * A hub in its own process for the snapshot crash scenario: the core Hub with the Ledger
 * machine on LevelDB, over WebSocket on 127.0.0.1, with a small snapshot policy so
 * snapshots and compactions come every few hundred commands. Its store reports (and can
 * hold) the snapshot and compaction windows: window-store.ts.
 *
 *   node --import tsx test/crash/snapshot-hub-process.ts --data DIR --port P [--aim chunk|horizon|drop]
 *        [--min-log-bytes N] [--tail-bytes N] [--chunk-bytes N] [--log-ratio R] [--sync] [--max-ms MS]
 *
 * Prints `READY <port> <pid>` once it listens, then the store's lines (CHUNK, META, DROP,
 * HORIZON, DELETED, HOLD). SIGTERM closes it cleanly (`STOPPED`, exit 0). A port or LevelDB
 * lock still held by a SIGKILLed predecessor is retried for up to 5 s. Exits by itself when
 * its stdin closes (the parent is gone) or after --max-ms (default 10 minutes).
 */
import { Hub } from "../../core/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { Ledger } from "./ledger-machine.js"
import { WindowStore, type Window } from "./window-store.js"
import { exitWithParent, parseFlags, say } from "./harness.js"
import { serveHubUntilStopped } from "./hub-child.js"

const flags = parseFlags(process.argv.slice(2))
const dataDir = flags.get("data")
if (dataDir === undefined) {
  process.stderr.write("snapshot-hub-process: --data DIR is required\n")
  process.exit(2)
}
const aim = flags.get("aim") as Window | undefined
if (aim !== undefined && !["chunk", "horizon", "drop"].includes(aim)) {
  process.stderr.write(`snapshot-hub-process: --aim must be chunk, horizon or drop, not "${aim}"\n`)
  process.exit(2)
}
const port = flags.num("port", 0)
const sync = flags.has("sync")
exitWithParent(flags.num("max-ms", 600_000))

await serveHubUntilStopped("snapshot-hub-process", dataDir, port, sync, (storage) => new Hub({
  machines: [Ledger], storage: new WindowStore(storage, aim, say), runtime: systemRuntime, sync,
  snapshots: {
    minLogBytes: flags.num("min-log-bytes", 16 << 10),
    logRatio: flags.num("log-ratio", 0.5),
    tailBytes: flags.num("tail-bytes", 4 << 10),
    chunkBytes: flags.num("chunk-bytes", 1 << 10),
  },
  onEvent: (e) => {
    if (e.type === "doc-report" || e.type === "doc-broken" || e.type === "doc-load-failed") {
      const detail = "code" in e ? `${e.code}: ${e.message}` : String((e as { error: unknown }).error)
      process.stderr.write(`hub event ${e.type} ${detail}\n`)
    }
  },
}))

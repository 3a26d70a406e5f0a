/**
 * A hub in its own process, for the crash tests: the hub app's `startHub` (LevelDB on disk,
 * WebSocket on /sync) with the Todo machine of test/support/machines.ts and Notes of
 * wide-machines.ts (CRDT text fields, for the client crash scenario's typing), on 127.0.0.1.
 *
 *   node --import tsx test/crash/hub-process.ts --data DIR --port P [--sync] [--auth] [--max-ms MS]
 *
 * `--auth`: the connection's `token` (or hello credentials) is its principal, so the CRDT
 * routes (/yjs, /automerge, served by `startHub` as `npm start` does) bind each writer
 * identity to its user, as a hub with users does.
 *
 * Prints `READY <port> <pid>` once it listens (port 0 picks one). SIGTERM (or SIGINT) closes
 * it cleanly and prints `STOPPED` before exiting 0. A port still held a moment after a
 * SIGKILLed predecessor is retried for up to 5 s. Exits by itself when its stdin closes (the
 * parent is gone) or after --max-ms (default 10 minutes).
 */
import { startHub, type RunningHub } from "../../apps/hub/start.js"
import { Todo } from "../support/machines.js"
import { Notes } from "./wide-machines.js"
import { exitWithParent, parseFlags, say, sleep } from "./harness.js"

const flags = parseFlags(process.argv.slice(2))
const dataDir = flags.get("data")
if (dataDir === undefined) {
  process.stderr.write("hub-process: --data DIR is required\n")
  process.exit(2)
}
const port = flags.num("port", 0)
exitWithParent(flags.num("max-ms", 600_000))

let running: RunningHub | undefined
const deadline = Date.now() + 5_000
for (let attempt = 0; running === undefined; attempt++) {
  try {
    running = await startHub({ dataDir, host: "127.0.0.1", port, publicUrl: undefined, sync: flags.has("sync") }, [Todo, Notes], () => false,
      flags.has("auth") ? { authenticate: (hello) => ({ id: typeof hello.credentials === "string" ? hello.credentials : "anonymous" }) } : {})
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    // The port, or LevelDB's lock, of a process that was just killed: wait a little.
    if (/in use/.test(message) && Date.now() < deadline) {
      process.stderr.write(`hub-process: ${message} (retrying)\n`)
      await sleep(50 + attempt * 20)
      continue
    }
    process.stderr.write(`hub-process: ${message}\n`)
    process.exit(1)
  }
}
const hub = running
say("READY", new URL(hub.url).port, process.pid)

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await hub.close()
  say("STOPPED")
  process.exit(0)
}
process.on("SIGTERM", () => void stop())
process.on("SIGINT", () => void stop())

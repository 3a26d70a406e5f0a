/**
 * A replica in its own process, for the client crash test: a CanonClient on a LevelStorage
 * directory over the ws transport, on one Todo document.
 *
 *   node --import tsx test/crash/client-process.ts --data DIR --url ws://127.0.0.1:P/sync
 *     [--doc D] [--tag T] [--submit N] [--interval MS] [--no-connect] [--wait] [--wait-ms MS] [--max-ms MS]
 *
 * Submits N `add` commands (ids `<tag>-<i>`, always accepted by the machine), one every
 * `interval` ms. `--no-connect` keeps it offline (autoConnect false); pointing --url at a dead
 * port does too, with reconnect attempts. `--wait`: after submitting, waits (at most
 * --wait-ms) until it is online, synced and has nothing pending, prints DONE, closes and
 * exits 0. Without it, it idles until killed.
 *
 * One line per event on stdout (printed synchronously, so a line is out before a SIGKILL
 * that follows it):
 *   CLIENT <clientId>
 *   OPENED <confirmedSeq> <pending clientSeqs, comma-separated, or ->
 *   SUBMITTED <clientSeq> <id>
 *   PERSISTED <clientSeq> <id>        the command is in the durable outbox (receipt.persisted)
 *   CONFIRMED <clientSeq> <seq>       also for commands recovered from the outbox
 *   REJECTED <clientSeq> <code>
 *   STATUS <status>
 *   SUBMITS-DONE
 *   DONE <confirmedSeq> <confirmedHash> <pendingCount>
 *   TIMEOUT <what>                    (--wait only; exit code 3)
 */
import { CanonClient } from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Todo } from "../support/machines.js"
import { exitWithParent, parseFlags, say, sleep, until } from "./harness.js"

const flags = parseFlags(process.argv.slice(2))
const dataDir = flags.get("data")
const url = flags.get("url")
if (dataDir === undefined || url === undefined) {
  process.stderr.write("client-process: --data DIR and --url URL are required\n")
  process.exit(2)
}
const docId = flags.get("doc") ?? "crash-client"
const tag = flags.get("tag") ?? "c"
const count = flags.num("submit", 0)
const interval = flags.num("interval", 1)
exitWithParent(flags.num("max-ms", 600_000))

const storage = await LevelStorage.open(dataDir)
const client = await CanonClient.open({
  transport: wsClientTransport(url),
  runtime: systemRuntime,
  storage,
  machines: [Todo],
  backoff: { baseMs: 20, maxMs: 200 },
  autoConnect: !flags.has("no-connect"),
})
say("CLIENT", client.clientId)
client.onStatus((s) => say("STATUS", s))
const doc = await client.open(Todo, docId)
say("OPENED", doc.confirmedSeq, doc.pending.length === 0 ? "-" : doc.pending.map((p) => p.clientSeq).join(","))
doc.on("confirmed", ({ clientSeq, seq }) => say("CONFIRMED", clientSeq, seq))
doc.on("rejected", ({ clientSeq, rejection }) => say("REJECTED", clientSeq, rejection.code))
doc.on("error", ({ code, message }) => process.stderr.write(`client-process: doc error ${code}: ${message}\n`))

for (let i = 0; i < count; i++) {
  const id = `${tag}-${i}`
  const receipt = doc.submit("add", { id, title: `${tag} item ${i}` })
  say("SUBMITTED", receipt.clientSeq, id)
  void receipt.persisted.then((lost) => lost === undefined && say("PERSISTED", receipt.clientSeq, id))
  if (interval > 0) await sleep(interval)
  else if (i % 8 === 7) await new Promise((r) => setImmediate(r))
}
say("SUBMITS-DONE")

if (flags.has("wait")) {
  const ok = await until(() => client.status === "online" && doc.synced && doc.pendingCount === 0, flags.num("wait-ms", 30_000))
  if (!ok) {
    say("TIMEOUT", `status=${client.status}`, `synced=${doc.synced}`, `pending=${doc.pendingCount}`)
    process.exit(3)
  }
  say("DONE", doc.confirmedSeq, doc.confirmedHash(), doc.pendingCount)
  await client.close()
  await storage.close()
  process.exit(0)
}

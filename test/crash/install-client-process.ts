/**
 * A replica in its own process for the install crash scenario (install-crash.ts): a
 * CanonClient on a LevelStorage directory, on one large `Notes` document (wide-machines.ts)
 * that the hub sends it as a snapshot stream, submitting `record` commands meanwhile.
 *
 *   node --import tsx test/crash/install-client-process.ts --data DIR --url ws://127.0.0.1:P/
 *     --doc D --first T --submit N [--interval MS] [--wait] [--wait-ms MS] [--max-ms MS]
 *
 * Submits N `record` commands with tokens T, T+1, ... (one every `interval` ms; the first
 * before the document is open on the hub side, so the outbox is never empty while the
 * snapshot streams in). `--wait`: then waits (at most --wait-ms) until it is online, synced
 * and has nothing pending, prints DONE, closes and exits 0; without it, idles until killed.
 *
 * Lines (synchronous on a pipe: out before a SIGKILL that follows):
 *   CLIENT <clientId>
 *   OPENED <confirmedSeq> <snapshotSeq or -> <tokens of this client in the view, comma-separated, or ->
 *   PENDING <pending tokens, comma-separated, or ->
 *   SNAP <seq> <received> <size>          a snapshot streaming in (received < size) or installed (received == size)
 *   SNAPWRITE <bytes>                     the store's batch that writes the installed state is issued
 *   SNAPWRITTEN                           ... and done (durable)
 *   SUBMITTED <clientSeq> <token>
 *   PERSISTED <clientSeq> <token>         in the durable outbox (receipt.persisted)
 *   CONFIRMED <clientSeq> <seq>
 *   REJECTED <clientSeq> <code>
 *   ERROR <code> <message>                a doc error or desync event
 *   DONE <confirmedSeq> <confirmedHash> <pendingCount>
 *   TIMEOUT <what>                        (--wait only; exit code 3)
 */
import { CanonClient, type BatchOp } from "../../core/index.js"
import { replicaSnapshot } from "../../core/store/keys.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Notes, type NotesState } from "./wide-machines.js"
import { exitWithParent, parseFlags, say, sleep, until } from "./harness.js"

const flags = parseFlags(process.argv.slice(2))
const dataDir = flags.get("data")
const url = flags.get("url")
const docId = flags.get("doc")
if (dataDir === undefined || url === undefined || docId === undefined) {
  process.stderr.write("install-client-process: --data DIR, --url URL and --doc D are required\n")
  process.exit(2)
}
const first = flags.num("first", 1)
const count = flags.num("submit", 0)
const interval = flags.num("interval", 10)
exitWithParent(flags.num("max-ms", 600_000))

const storage = await LevelStorage.open(dataDir)
// Tell the parent when the batch that stores an installed state goes to LevelDB, and when it is done.
const snapKey = replicaSnapshot(docId)
const sameKey = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])
const batch = storage.batch.bind(storage)
storage.batch = async (ops: ReadonlyArray<BatchOp>, options?: Parameters<typeof batch>[1]) => {
  const snap = ops.find((op) => op.type === "put" && sameKey(op.key, snapKey))
  if (snap === undefined) return batch(ops, options)
  say("SNAPWRITE", snap.type === "put" ? snap.value.length : 0)
  await batch(ops, options)
  say("SNAPWRITTEN")
}

const client = await CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, storage, machines: [Notes], backoff: { baseMs: 20, maxMs: 200 } })
say("CLIENT", client.clientId)
const doc = await client.open(Notes, docId)
const mine = () => Object.keys((doc.state as NotesState).applied[client.clientId] ?? {})
const tokensOf = (xs: ReadonlyArray<string | number>) => (xs.length === 0 ? "-" : xs.join(","))
say("OPENED", doc.confirmedSeq, "-", tokensOf(mine()))
say("PENDING", tokensOf((doc as unknown as { pending: ReadonlyArray<{ args?: { token?: number } }> }).pending.map((p) => p.args?.token ?? "?")))
doc.on("snapshot", (p) => say("SNAP", p.seq, p.received, p.size))
doc.on("confirmed", ({ clientSeq, seq }) => say("CONFIRMED", clientSeq, seq))
doc.on("rejected", ({ clientSeq, rejection }) => say("REJECTED", clientSeq, rejection.code))
doc.on("error", ({ code, message }) => say("ERROR", code, message.replace(/\s+/g, " ").slice(0, 200)))
doc.on("desync", (e) => say("ERROR", "desync", JSON.stringify(e).slice(0, 200)))

for (let i = 0; i < count; i++) {
  const token = first + i
  const receipt = doc.submit("record", { token })
  say("SUBMITTED", receipt.clientSeq, token)
  void receipt.persisted.then((lost) => lost === undefined && say("PERSISTED", receipt.clientSeq, token))
  await sleep(interval)
}

if (flags.has("wait")) {
  const ok = await until(() => client.status === "online" && doc.synced && doc.pendingCount === 0, flags.num("wait-ms", 60_000))
  if (!ok) {
    say("TIMEOUT", `status=${client.status}`, `synced=${doc.synced}`, `pending=${doc.pendingCount}`)
    process.exit(3)
  }
  say("DONE", doc.confirmedSeq, doc.confirmedHash(), doc.pendingCount)
  await client.close()
  await storage.close()
  process.exit(0)
}

/**
 * A replica in its own process, for the client crash test: a CanonClient on a LevelStorage
 * directory over the ws transport, on one Todo document.
 *
 *   node --import tsx test/crash/client-process.ts --data DIR --url ws://127.0.0.1:P/sync
 *     [--doc D] [--tag T] [--submit N] [--interval MS] [--text] [--seed S] [--no-connect] [--wait] [--wait-ms MS] [--max-ms MS]
 *
 * Submits N `add` commands (ids `<tag>-<i>`, always accepted by the machine), one every
 * `interval` ms. `--no-connect` keeps it offline (autoConnect false); pointing --url at a dead
 * port does too, with reconnect attempts. `--wait`: after submitting, waits (at most
 * --wait-ms) until it is online, synced and has nothing pending, prints DONE, closes and
 * exits 0. Without it, it idles until killed.
 *
 * `--text`: it also opens `<doc>-notes`, a `Notes` document (wide-machines.ts: a Yjs text
 * `text` and an Automerge text `am`), and with each `add` types a marker `⟨<tag>:<i>⟩` into one
 * of the two texts (between markers, never inside one), so a kill lands while the field's
 * changes are being stored in the client's outbox too. The library submits each field's
 * changes as merge commands through the document's `submit`, which this process watches: a
 * merge carries every marker typed into its field since the field's previous merge.
 * *
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
 *   TYPED <field> <marker>            (--text) the marker is in the field, locally
 *   MERGE <field> <clientSeq> <markers, comma-separated, or ->   a merge command of the notes document carrying them
 *   MPERSISTED <field> <clientSeq>    that merge command is in the durable outbox
 *   NOTES-OPENED <confirmedSeq> <pending count>
 *   TEXT <field> <the field's text>   (--text, --wait only) just before DONE
 *   DONE <confirmedSeq> <confirmedHash> <pendingCount>
 *   TIMEOUT <what>                    (--wait only; exit code 3)
 */
import { CanonClient } from "../../core/index.js"
import { seededRandom } from "../../core/internal.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Todo } from "../support/machines.js"
import { Notes } from "./wide-machines.js"
import type { Receipt } from "../../core/index.js"
import type * as Y from "yjs"
import type { AutomergeTextHandle } from "../../adapters/automerge/index.js"
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
  machines: [Todo, Notes],
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

const text = flags.has("text")
const textRandom = seededRandom(flags.num("seed", 1))
const MARKER = /⟨[^⟩]*⟩/g
type Field = "text" | "am"
const notes = text ? await client.open(Notes, `${docId}-notes`) : undefined
const unsent: Record<Field, string[]> = { text: [], am: [] }
const readField = (field: Field): string => {
  const h = (notes!.crdt as Record<string, unknown>)[field]
  return field === "text" ? (h as Y.Text).toString() : (h as AutomergeTextHandle).text
}
if (notes !== undefined) {
  say("NOTES-OPENED", notes.confirmedSeq, notes.pendingCount)
  notes.on("error", ({ code, message }) => process.stderr.write(`client-process: notes error ${code}: ${message}\n`))
  notes.on("rejected", ({ clientSeq, rejection }) => say("REJECTED", `notes:${clientSeq}`, rejection.code))
  // Watch the library's merge submits (arguments and receipt pass through untouched).
  const submit = notes.submit.bind(notes) as (name: string, args: unknown) => Receipt
  Object.defineProperty(notes, "submit", {
    configurable: true,
    writable: true,
    value: (name: string, args: unknown): Receipt => {
      const receipt = submit(name, args)
      const field = name === "$crdt.text" ? "text" : name === "$crdt.am" ? "am" : undefined
      if (field !== undefined) {
        const carried = unsent[field].splice(0)
        say("MERGE", field, receipt.clientSeq, carried.length === 0 ? "-" : carried.join(","))
        void receipt.persisted.then((lost) => lost === undefined && say("MPERSISTED", field, receipt.clientSeq))
      }
      return receipt
    },
  })
}
const type = (i: number) => {
  const field: Field = i % 2 === 0 ? "text" : "am"
  const current = readField(field)
  const boundaries = [0, ...[...current.matchAll(MARKER)].map((m) => m.index! + m[0].length)]
  const at = boundaries[Math.floor(textRandom() * boundaries.length)]!
  const marker = `⟨${tag}:${i}⟩`
  unsent[field].push(marker)
  const h = (notes!.crdt as Record<string, unknown>)[field]
  if (field === "text") (h as Y.Text).insert(at, marker)
  else (h as AutomergeTextHandle).splice(at, 0, marker)
  say("TYPED", field, marker)
}

for (let i = 0; i < count; i++) {
  const id = `${tag}-${i}`
  const receipt = doc.submit("add", { id, title: `${tag} item ${i}` })
  say("SUBMITTED", receipt.clientSeq, id)
  if (notes !== undefined) type(i)
  void receipt.persisted.then((lost) => lost === undefined && say("PERSISTED", receipt.clientSeq, id))
  if (interval > 0) await sleep(interval)
  else if (i % 8 === 7) await new Promise((r) => setImmediate(r))
}
say("SUBMITS-DONE")

if (flags.has("wait")) {
  const ok = await until(() => client.status === "online" && doc.synced && doc.pendingCount === 0 && (notes === undefined || (notes.synced && notes.pendingCount === 0)), flags.num("wait-ms", 30_000))
  if (!ok) {
    say("TIMEOUT", `status=${client.status}`, `synced=${doc.synced}`, `pending=${doc.pendingCount}`)
    process.exit(3)
  }
  if (notes !== undefined) for (const f of ["text", "am"] as const) say("TEXT", f, readField(f) || "-")
  say("DONE", doc.confirmedSeq, doc.confirmedHash(), doc.pendingCount)
  await client.close()
  await storage.close()
  process.exit(0)
}

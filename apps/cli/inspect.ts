/**
 * `canon inspect DIR [docId]`: what a hub's data directory holds. Without a docId, one line
 * per document (machine, seq, entries, size on disk, last checkpoint); with one, a replay of
 * its log that checks every stored checkpoint hash and names the first mismatch.
 *
 * It never writes: it opens only a directory that holds a Canon store (a LevelDB store with
 * Canon's format record), never creates one, and cannot open the data of a running hub
 * (LevelDB's lock), which it says (read-only-store.ts).
 */
import { AuthorityStore, CanonError, JournaledState, hashState, type Machine } from "../../core/index.js"
import { applyLogged } from "../../core/apply.js"
import { formatKey } from "../../core/store/keys.js"
import { ConfigError } from "../hub/config.js"
import { loadMachines } from "./load-machines.js"
import { NotInspectable, ReadOnlyStore } from "./read-only-store.js"

export interface InspectOutput {
  log(line: string): void
  progress(done: number, total: number): void
}

export const INSPECT_USAGE = `Usage: canon inspect DIR [docId] [--machines MODULE]   (from a checkout: npm run canon -- inspect ...)
Lists the documents in a hub's data directory DIR; with a docId, replays that document's log
and checks every stored checkpoint hash.
  --machines MODULE  the module exporting the document's machine (default: the demo board)
  -h, --help         this text
It never writes to DIR, and cannot read the data of a running hub (LevelDB lets one process
open a directory): stop the hub first, or use the hub's /status page.`

export interface InspectArgs {
  readonly dir: string
  readonly docId: string | undefined
  readonly machines: string | undefined
}

export const parseInspectArgs = (argv: ReadonlyArray<string>): InspectArgs | "help" => {
  const positional: string[] = []
  let machines: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") return "help"
    if (a === "--machines" || a.startsWith("--machines=")) {
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i]
      if (value === undefined || value === "" || (!a.includes("=") && value.startsWith("--"))) throw new ConfigError(`--machines needs a value.\n${INSPECT_USAGE}`)
      machines = value
      continue
    }
    if (a.startsWith("--")) throw new ConfigError(`Unknown option ${a.split("=")[0]}.\n${INSPECT_USAGE}`)
    positional.push(a)
  }
  if (positional.length === 0) throw new ConfigError(`Which data directory? Pass it: canon inspect DIR.\n${INSPECT_USAGE}`)
  if (positional.length > 2) throw new ConfigError(`Unexpected argument "${positional[2]}".\n${INSPECT_USAGE}`)
  return { dir: positional[0]!, docId: positional[1], machines }
}

const fmt = (n: number): string => n.toLocaleString("en-US")
/** "1 entry", "2 entries", "1,000 entries". */
export const plural = (n: number, one: string, many: string): string => `${fmt(n)} ${n === 1 ? one : many}`
const kib = (n: number): string => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`)

/** Returns the exit code: 0 fine, 1 a checkpoint mismatch, 2 usage or unreadable data. */
export const inspect = async (dir: string, docId: string | undefined, machinesModule: string | undefined, out: InspectOutput): Promise<number> => {
  let storage: ReadOnlyStore
  try {
    storage = await ReadOnlyStore.open(dir)
  } catch (e) {
    if (!(e instanceof NotInspectable)) throw e
    out.log(e.message)
    return 2
  }
  try {
    if ((await storage.get(formatKey)) === undefined) {
      // A hub that never stored anything has an empty store; anything else is not Canon's.
      if (await storage.isEmpty()) {
        out.log(`${dir} holds no documents.`)
        return 0
      }
      out.log(`${dir} is not a Canon data directory (a LevelDB store without Canon's format record): pass the hub's --data directory.`)
      return 2
    }
    const store = new AuthorityStore(storage)
    let heads: Awaited<ReturnType<AuthorityStore["heads"]>>
    try {
      heads = await store.heads()
    } catch (e) {
      if (!(e instanceof CanonError)) throw e
      out.log(`${dir}: ${e.message}`)
      return 2
    }
    if (docId === undefined) {
      if (heads.length === 0) out.log(`${dir} holds no documents.`)
      for (const { docId: id, head } of heads) {
        const { bytes, entries } = await store.sizeOf(id)
        const cp = head.checkpoint ? `checkpoint at ${fmt(head.checkpoint.seq)} (${head.checkpoint.hash})` : "no checkpoint yet"
        out.log(`${id}  ${head.machine} v${head.version}  seq ${fmt(head.seq)}  ${plural(entries, "entry", "entries")}  ${kib(bytes)}  ${cp}`)
      }
      return 0
    }
    const found = heads.find((h) => h.docId === docId)
    if (found === undefined) {
      out.log(`No document "${docId}" in ${dir}. Run \`canon inspect ${dir}\` to list them.`)
      return 2
    }
    const machines = await loadMachines(machinesModule)
    const machine: Machine<any, any> | undefined = machines.find((m) => m.name === found.head.machine)
    if (machine === undefined) {
      out.log(`Document "${docId}" is a "${found.head.machine}" machine; pass --machines with a module that exports it.`)
      return 2
    }
    const checkpoints = await store.checkpoints(docId)
    const expected = new Map(checkpoints.map((c) => [c.seq, c.hash]))
    const host = new JournaledState(machine.initial())
    const total = found.head.seq
    let at = 0
    let checked = 0
    const failed: string[] = []
    while (at < total) {
      const page = await store.entries(docId, at, 4096)
      if (page.length === 0) break
      for (const e of page) {
        const rejection = applyLogged(host, docId, machine, e)
        if (rejection !== undefined && failed.length === 0) failed.push(`Entry ${e.seq} (${e.name}) no longer applies: ${rejection.message}`)
        at = e.seq
        const hash = expected.get(e.seq)
        if (hash !== undefined) {
          checked++
          const actual = hashState(host.root)
          if (actual !== hash && failed.length === 0) failed.push(`Checkpoint mismatch at seq ${fmt(e.seq)}: stored ${hash}, replay gives ${actual}.`)
        }
      }
      out.progress(at, total)
    }
    if (at !== total) failed.push(`The log ends at ${fmt(at)} but the head says ${fmt(total)}.`)
    out.log(`${docId}: replayed ${plural(at, "entry", "entries")} of ${machine.name} v${machine.version}, checked ${plural(checked, "checkpoint", "checkpoints")}; state hash ${hashState(host.root)}.`)
    if (failed.length > 0) {
      out.log(`FIRST PROBLEM: ${failed[0]}`)
      return 1
    }
    out.log("All checkpoints match.")
    return 0
  } finally {
    await storage.close()
  }
}

/**
 * `canon inspect DIR [docId]`: what a hub's data directory holds. Without a docId, one line
 * per document (machine, seq, entries, size on disk, last checkpoint); with one, a replay of
 * its log that checks every stored checkpoint hash and names the first mismatch.
 */
import { existsSync, statSync } from "node:fs"
import { AuthorityStore, JournaledState, hashState, type Machine } from "../../core/index.js"
import { applyLogged } from "../../core/apply.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { loadMachines } from "./load-machines.js"

export interface InspectOutput {
  log(line: string): void
  progress(done: number, total: number): void
}

const fmt = (n: number): string => n.toLocaleString("en-US")
const kib = (n: number): string => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`)

/** Returns the exit code: 0 fine, 1 a checkpoint mismatch, 2 usage or unreadable data. */
export const inspect = async (dir: string, docId: string | undefined, machinesModule: string | undefined, out: InspectOutput): Promise<number> => {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    out.log(`No Canon data at ${dir}: the directory does not exist. Pass the hub's --data directory.`)
    return 2
  }
  const storage = await LevelStorage.open(dir)
  try {
    const store = new AuthorityStore(storage)
    const heads = await store.heads()
    if (docId === undefined) {
      if (heads.length === 0) out.log(`${dir} holds no documents.`)
      for (const { docId: id, head } of heads) {
        const { bytes, entries } = await store.sizeOf(id)
        const cp = head.checkpoint ? `checkpoint at ${fmt(head.checkpoint.seq)} (${head.checkpoint.hash})` : "no checkpoint yet"
        out.log(`${id}  ${head.machine} v${head.version}  seq ${fmt(head.seq)}  ${fmt(entries)} entries  ${kib(bytes)}  ${cp}`)
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
    out.log(`${docId}: replayed ${fmt(at)} entries of ${machine.name} v${machine.version}, checked ${fmt(checked)} checkpoints; state hash ${hashState(host.root)}.`)
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

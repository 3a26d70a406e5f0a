/**
 * How many sockets the hub holds in all, by default: three quarters of the process's open-file
 * limit (its soft `ulimit -n`), so that however many addresses fill their share the quarter
 * left keeps LevelDB's files, the data directory and the hub's own work going (a hub out of
 * descriptors fails its storage, not only its connections). No cap where the limit is
 * unlimited or cannot be read (only Linux says it, in /proc/self/limits).
 */
import { readFileSync } from "node:fs"

/** The soft open-file limit, or undefined if unlimited or unknown. */
export const openFileLimit = (limits = "/proc/self/limits"): number | undefined => {
  let text: string
  try {
    text = readFileSync(limits, "utf8")
  } catch {
    return undefined
  }
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1]
  return soft === undefined ? undefined : Number(soft)
}

export const defaultMaxSockets = (limit: number | undefined): number =>
  limit === undefined ? Infinity : Math.max(1, Math.floor((limit * 3) / 4))

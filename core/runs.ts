/**
 * Cutting a list into consecutive runs under a count and a byte bound: the replica's submits
 * (core/replica/submit-parts.ts) and the CRDT outbox's coalesced merges (core/crdt/outbox.ts).
 */

/**
 * Consecutive runs of `items`, each at most `maxCount` items and `maxBytes` of `size`, unless
 * one item alone is more (it then is a run of its own). Order is kept.
 */
export const consecutiveRuns = <T>(items: ReadonlyArray<T>, size: (item: T) => number, maxBytes: number, maxCount: number): T[][] => {
  const runs: T[][] = []
  let run: T[] = []
  let bytes = 0
  for (const item of items) {
    const n = size(item)
    if (run.length > 0 && (run.length >= maxCount || bytes + n > maxBytes)) {
      runs.push(run)
      run = []
      bytes = 0
    }
    run.push(item)
    bytes += n
  }
  if (run.length > 0) runs.push(run)
  return runs
}

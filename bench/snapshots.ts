/**
 * The `snapshots` suite (issue 10): what authority snapshots, log compaction and snapshot
 * streams buy, each figure beside the old path or a peer where that helps.
 *
 * 1. Cold open of a document with a 1M-entry history from LevelDB (snapshot + tail), beside
 *    full replay (snapshots-coldstart.ts).
 * 2. Hub cold start of a 100k-op board history beside Yjs and Automerge loading it.
 * 3. Stored bytes after compaction, the peers board workload, beside Yjs and Automerge
 *    (snapshots-board.ts).
 * 4. Snapshot stream of a 100 MB state over WebSocket loopback to a replica that verifies and
 *    installs it (snapshots-stream.ts; the hub in its own process).
 * 5. The hub's RSS growth while 10 replicas stream it at once.
 * 6. Join storm: 50 clients join a 5 MB document at once, Canon beside @y/websocket-server
 *    serving y-websocket clients the same content: time, hub peak RSS.
 * 7. The longest event-loop stall while the hub snapshots or checkpoints the 100 MB state.
 *
 * Sizes fit the 2-core, 24 GiB machine as they are; --quick shrinks them (labels say so) and
 * makes one run of each, in well under a minute.
 */
import os from "node:os"
import { now, type Figure, type Suite, type SuiteContext, figureLog } from "./harness.js"
import { coldStartWorkload, type ColdStartSizes } from "./snapshots-coldstart.js"
import { boardStoredWorkload, type BoardStoredSizes } from "./snapshots-board.js"
import { streamWorkload, type StreamSizes } from "./snapshots-stream.js"

const sizes = (quick: boolean): { cold: ColdStartSizes; board: BoardStoredSizes; stream: StreamSizes } => ({
  cold: quick
    ? { entries: 20_000, plan: { warmup: 1, warmupMs: 0, runs: 1 }, boardOps: 2_000, boardPlan: { warmup: 1, warmupMs: 0, runs: 1 } }
    : { entries: 1_000_000, plan: { warmup: 1, warmupMs: 0, runs: 5 }, boardOps: 100_000, boardPlan: { warmup: 1, warmupMs: 0, runs: 5 } },
  board: quick ? { replicas: 5, rounds: 10, opsPerRound: 5 } : { replicas: 5, rounds: 100, opsPerRound: 10 },
  stream: quick
    ? { bigState: 4e6, streamRuns: 1, joiners: 10, stormState: 0.5e6, stormClients: 20, stormRuns: 1, stormWarmup: 0, bytesPerNote: 1000 }
    : { bigState: 100e6, streamRuns: 3, joiners: 10, stormState: 5e6, stormClients: 50, stormRuns: 3, stormWarmup: 1, bytesPerNote: 1000 },
})

const run = async (ctx: SuiteContext): Promise<Figure[]> => {
  const s = sizes(ctx.quick)
  const { figures, add } = figureLog(ctx)
  const timed = async (name: string, work: () => Promise<void>) => {
    const t0 = now()
    await work()
    ctx.log(`(${name}: ${((now() - t0) / 1000).toFixed(1)} s; load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")})`)
  }
  await timed("cold start", () => coldStartWorkload(ctx, s.cold, add))
  await timed("board stored", () => boardStoredWorkload(ctx, s.board, add))
  await timed("streams", () => streamWorkload(ctx, s.stream, add))
  return figures
}

export const suite: Suite = { name: "snapshots", title: "Authority snapshots: cold open, stored bytes, snapshot streams, join storm vs y-websocket, event-loop stalls", run }

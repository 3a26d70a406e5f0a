/**
 * A Canon hub in its own process for the `snapshots` suite (started by HubChild in
 * snapshots-common.ts): LevelStorage on a store the parent built, WsServer on 127.0.0.1, the
 * document loaded before it says it is ready, so the parent's baseline RSS includes the
 * document itself. Besides `mark` / `peak` (snapshots-ipc.ts) it measures event-loop stalls
 * during a snapshot and a quiet checkpoint of the loaded document, with
 * perf_hooks.monitorEventLoopDelay, while a writer on this same event loop keeps submitting.
 *
 * `node --expose-gc --import tsx bench/snapshots-hub.ts '{"dir": ..., "hub": {...}}'`
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Hub, hashState, type Connection, type HubOptions, type ServerMessage } from "../core/index.js"
import type { DocAuthority } from "../core/internal.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { DOC, Notes, compacted, noteText } from "./snapshots-common.js"
import { collect, serveParent } from "./snapshots-ipc.js"

const spec = JSON.parse(process.argv[2] ?? "{}") as { dir: string; hub?: Partial<HubOptions> }

/** A follower on this event loop that submits `put`s and times each one's results. */
class Writer implements Connection<ServerMessage> {
  readonly bufferedAmount = 0
  private clientSeq = 0
  private readonly sent = new Map<number, number>()
  latencies: number[] = []
  checkpoints: Array<{ seq: number; at: number }> = []
  errors: string[] = []

  send(m: ServerMessage): void {
    if (m.type === "results") {
      for (const o of m.outcomes) {
        const t = this.sent.get(o.clientSeq)
        if (t !== undefined) this.latencies.push(performance.now() - t)
        this.sent.delete(o.clientSeq)
        if (!("seq" in o)) this.errors.push(`rejected ${o.clientSeq}`)
      }
    } else if (m.type === "checkpoint") this.checkpoints.push({ seq: m.seq, at: performance.now() })
    else if (m.type === "error") this.errors.push(m.message)
  }

  close(): void {}

  submit(doc: DocAuthority<any>): void {
    const seq = ++this.clientSeq
    this.sent.set(seq, performance.now())
    doc.submit(this, "stall-writer", { type: "submit", docId: DOC, commands: [{ clientSeq: seq, name: "put", args: { id: `w${seq % 64}`, text: noteText(seq, 1000) } }], ackedClientSeq: seq - 1 })
  }

  get outstanding(): number {
    return this.sent.size
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const main = async (): Promise<void> => {
  let ready: (v: unknown) => void
  const isReady = new Promise((r) => (ready = r))
  let storage: LevelStorage | undefined
  let hub: Hub | undefined
  let server: WsServer | undefined
  const writer = new Writer()
  let subscribed = false

  serveParent({
    ready: () => isReady,
    /** Time of one synchronous hash of the whole state: what a checkpoint cost inline before. */
    hashSync: async () => {
      const doc = await hub!.doc(DOC, Notes)
      collect()
      const t0 = performance.now()
      hashState(doc.state)
      return { ms: performance.now() - t0 }
    },
    /**
     * The longest event-loop stall while the document takes a snapshot (`snapshot`: writes
     * keep arriving every `everyMs`, the job and the compaction behind it run to the end) or
     * hashes a quiet checkpoint (`checkpoint`: a few writes, then quiet until the checkpoint
     * of the head is published).
     */
    stall: async (a) => {
      const kind = a.kind as "snapshot" | "checkpoint"
      const everyMs = (a.everyMs as number | undefined) ?? 5
      const resolution = (a.resolution as number | undefined) ?? 5
      const doc = await hub!.doc(DOC, Notes)
      if (!subscribed) {
        doc.subscribe(writer, "stall-writer", doc.headSeq, 0)
        subscribed = true
      }
      collect()
      writer.latencies = []
      writer.checkpoints = []
      const h = monitorEventLoopDelay({ resolution })
      let writing = true
      let commands = 0
      const loop = (async () => {
        while (writing) {
          writer.submit(doc)
          commands++
          await sleep(everyMs)
        }
      })()
      const t0 = performance.now()
      h.enable()
      let jobMs: number
      let snapshotSeq = 0
      if (kind === "snapshot") {
        // Memory must be past the stored snapshot, or snapshotNow returns the stored one.
        while (doc.headSeq <= (doc.latestSnapshot?.seq ?? 0)) await sleep(1)
        const meta = await doc.snapshotNow()
        snapshotSeq = meta.seq
        jobMs = performance.now() - t0
        await compacted(storage!, doc, meta)
        writing = false
        await loop
      } else {
        await sleep(50)
        writing = false
        await loop
        while (writer.outstanding > 0) await sleep(1)
        const head = doc.headSeq
        const quietFrom = performance.now()
        while (!writer.checkpoints.some((c) => c.seq === head)) {
          if (performance.now() - quietFrom > 300_000) throw new Error("no checkpoint of the head within 300 s")
          await sleep(2)
        }
        // From the end of the quiet period (1 s by default) to the published checkpoint.
        jobMs = writer.checkpoints.find((c) => c.seq === head)!.at - quietFrom - (spec.hub?.quietCheckpointMs ?? 1000)
      }
      while (writer.outstanding > 0) await sleep(1)
      await sleep(100)
      h.disable()
      if (writer.errors.length > 0) throw new Error(writer.errors.join("; "))
      return {
        // The histogram records whole timer periods: a stall is what exceeds the period.
        maxMs: h.max / 1e6 - resolution,
        p99Ms: h.percentile(99) / 1e6 - resolution,
        windowMs: performance.now() - t0,
        jobMs,
        snapshotSeq,
        commands,
        maxLatencyMs: Math.max(0, ...writer.latencies),
      }
    },
    close: async () => {
      await server?.close()
      await hub?.close()
      await storage?.close()
    },
  })

  storage = await LevelStorage.open(spec.dir)
  hub = new Hub({ machines: [Notes], storage, runtime: systemRuntime, ...spec.hub })
  server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const t0 = performance.now()
  const doc = await hub.doc(DOC, Notes)
  const loadMs = performance.now() - t0
  const hash = doc.stateHash()
  collect()
  ready!({ url: server.urls()[0]!, rss: process.memoryUsage.rss(), hash, head: doc.headSeq, loadMs })
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})

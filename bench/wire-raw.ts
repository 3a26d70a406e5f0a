/**
 * The raw WebSocket baseline of the `wire` suite: the `ws` package alone, no Canon, on
 * 127.0.0.1; the server (bench/wire-raw-server.ts) in its own process, as the Canon hub is,
 * the client in the bench process, as the Canon clients are.
 *
 * - one-way throughput: the client sends 50-byte binary messages; the server counts them and
 *   answers a 4-byte ack every `ackEvery` messages; the client keeps at most `window`
 *   messages unacknowledged (so the figure is messages the server took, not bytes parked in
 *   kernel buffers);
 * - RTT: a 50-byte echo, one outstanding at a time.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Level } from "level"
import { WebSocket, type RawData } from "ws"
import { check, now } from "./harness.js"
import { deadline, percentile } from "./wire-util.js"
import { ChildServer } from "./wire-process.js"

export const MESSAGE_BYTES = 50

const size = (data: RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length

/** The raw server (bench/wire-raw-server.ts) in its own process, and connections to it. */
export class RawWs {
  private constructor(private readonly child: ChildServer, readonly url: string) {}

  static async start(ackEvery: number): Promise<RawWs> {
    const { child, ready } = await ChildServer.start("wire-raw-server.ts", { ackEvery, messageBytes: MESSAGE_BYTES })
    return new RawWs(child, ready.url as string)
  }

  connect(path: "/count" | "/echo"): Promise<WebSocket> {
    const ws = new WebSocket(`${this.url}${path}`, { perMessageDeflate: false })
    ws.on("error", () => {})
    return deadline(new Promise<WebSocket>((resolve, reject) => {
      ws.once("open", () => resolve(ws))
      ws.once("error", reject)
    }), 5_000, "raw ws connect", () => ws.terminate())
  }

  async close(): Promise<void> {
    await this.child.stop()
  }
}

const closeSocket = (ws: WebSocket): Promise<void> =>
  deadline(new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve()
    ws.once("close", () => resolve())
    ws.close()
  }), 2_000, "raw ws close", () => ws.terminate()).catch(() => ws.terminate())

/**
 * One run: `total` 50-byte messages, at most `window` unacknowledged; returns messages/s the
 * server received (timed until the last ack is back).
 */
export const rawMessagesPerSecond = async (raw: RawWs, total: number, window: number, ackEvery: number, timeoutMs: number): Promise<number> => {
  check(total % ackEvery === 0 && window >= ackEvery, "raw ws: total is a multiple of ackEvery, window holds an ack's worth")
  const ws = await raw.connect("/count")
  try {
    const payload = Buffer.alloc(MESSAGE_BYTES, 7)
    let sent = 0
    let acked = 0
    const t0 = now()
    await deadline(new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < total && sent - acked < window) {
          ws.send(payload)
          sent++
        }
      }
      ws.on("message", (data) => {
        acked = (data as Buffer).readUInt32LE(0)
        if (acked >= total) resolve()
        else pump()
      })
      pump()
    }), timeoutMs, "raw ws throughput run")
    const ms = now() - t0
    check(sent === total && acked === total, "raw ws: the server took every message")
    return total / (ms / 1000)
  } finally {
    await closeSocket(ws)
  }
}

/**
 * One run: `samples` echoes of 50 bytes, one outstanding at a time; returns p50 and p99 in µs.
 * Back to back by default; with `rate`, each echo starts on a timer at that rate (as the
 * paced Canon commands do), so the loop goes idle between them.
 */
export const rawEchoRtt = async (raw: RawWs, samples: number, timeoutMs: number, rate?: number): Promise<{ p50: number; p99: number }> => {
  const ws = await raw.connect("/echo")
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const payload = Buffer.alloc(MESSAGE_BYTES, 9)
    const rtts: number[] = []
    await deadline(new Promise<void>((resolve) => {
      let t = 0
      const t0 = now()
      const next = () => {
        t = now()
        ws.send(payload)
      }
      ws.on("message", (data) => {
        rtts.push((now() - t) * 1000)
        check(size(data) === MESSAGE_BYTES, "raw ws: the echo is the message")
        if (rtts.length >= samples) resolve()
        else if (rate === undefined) next()
        else timer = setTimeout(next, Math.max(0, t0 + (rtts.length * 1000) / rate - now()))
      })
      next()
    }), timeoutMs, "raw ws echo run", () => clearTimeout(timer))
    check(rtts.length === samples, "raw ws: every echo came back")
    return { p50: percentile(rtts, 0.5), p99: percentile(rtts, 0.99) }
  } finally {
    clearTimeout(timer)
    await closeSocket(ws)
  }
}

/**
 * The floor under an acknowledged command: one raw LevelDB chained batch (one 40-byte put
 * under a log-like key, `sync` as given) per timer tick at `rate`/s, `samples` writes in a
 * fresh directory; returns the write latency p50 and p99 in µs.
 */
export const rawLevelWriteLatency = async (samples: number, rate: number, sync: boolean, timeoutMs: number): Promise<{ p50: number; p99: number }> => {
  const dir = mkdtempSync(join(tmpdir(), "canon-wire-level-"))
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" })
  try {
    await db.open()
    const value = new Uint8Array(40).fill(5)
    const latencies: number[] = []
    const t0 = now()
    await deadline((async () => {
      for (let i = 0; i < samples; i++) {
        const wait = t0 + (i * 1000) / rate - now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        const key = new Uint8Array(20).fill(0x61)
        new DataView(key.buffer).setUint32(16, i)
        const t = now()
        const chain = db.batch()
        chain.put(key, value)
        await (sync ? chain.write({ sync: true }) : chain.write())
        latencies.push((now() - t) * 1000)
      }
    })(), timeoutMs, "raw LevelDB paced writes")
    check(latencies.length === samples, "raw LevelDB: every write done")
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
  } finally {
    await db.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

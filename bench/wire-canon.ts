/**
 * Canon over WebSocket for the `wire` suite: a Hub on LevelStorage in its own process
 * (bench/wire-hub.ts), served by WsServer on 127.0.0.1, and Node CanonClients over
 * wsClientTransport in this process. Each function measures one run and checks the end state, so a broken path
 * cannot look fast; every wait is bounded.
 */
import type { WebSocket } from "ws"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CanonClient, type Doc, type Machine } from "../core/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { wsClientTransport } from "../adapters/ws/index.js"
import { ChildServer } from "./wire-process.js"
import { check, now } from "./harness.js"
import { Counter } from "./machines.js"
import { WireTodo, todoWorkload, type TodoCommand } from "./wire-todo.js"
import { deadline, turn, until } from "./wire-util.js"

/** A hub in its own process (bench/wire-hub.ts), and the clients opened on it here; `close` ends them all. */
export class CanonWorld {
  private readonly clients: CanonClient[] = []

  private constructor(private readonly child: ChildServer, readonly url: string, readonly pid: number) {}

  /** A hub on a fresh LevelDB directory; `sync` unset keeps the hub's default (fsync on). */
  static async start(options: { sync?: boolean; execArgv?: ReadonlyArray<string> } = {}): Promise<CanonWorld> {
    const dir = mkdtempSync(join(tmpdir(), "canon-wire-"))
    const { child, ready } = await ChildServer.start("wire-hub.ts", { dir, ...(options.sync !== undefined ? { sync: options.sync } : {}) }, options.execArgv ?? [])
    return new CanonWorld(child, ready.url as string, ready.pid as number)
  }

  /** A connected client (online, the newest protocol both sides speak), optionally told about its socket. */
  async client(machine: Machine<any, any>, onSocket?: (ws: WebSocket) => void): Promise<CanonClient> {
    const client = await CanonClient.open({
      transport: wsClientTransport(this.url, onSocket !== undefined ? { onSocket } : {}),
      runtime: systemRuntime,
      machines: [machine],
    })
    this.clients.push(client)
    await until(() => client.status === "online", 10_000, "a client to come online")
    return client
  }

  /** Opens `docId` on `client` and waits until it has caught up. */
  async open<M extends Machine<any, any>>(client: CanonClient, machine: M, docId: string): Promise<Doc<M>> {
    const doc = await client.open(machine, docId)
    await until(() => doc.synced, 10_000, `document ${docId} to sync`)
    return doc
  }

  /** The authority's committed head of a document. */
  async head(docId: string, machine: Machine<any, any>): Promise<number> {
    return (await this.child.call("head", { docId, machine: machine.name })) as number
  }

  /** The hub process's CPU time (user + system) in ms since it started. */
  hubCpuMs(): Promise<number> {
    return this.child.cpuMs()
  }

  async close(): Promise<void> {
    const clients = this.clients.splice(0)
    await Promise.all(clients.map((c) => deadline(c.close(), 5_000, "closing a client").catch(() => {})))
    await this.child.stop()
  }
}

/**
 * Figure 2, one run: `total` Counter `incr` commands submitted `burst` per tick (Doc.submit
 * batches a tick's commands into one outbox flush and submit messages of up to 256), at most
 * `window` unconfirmed; returns confirmed commands/s (until the last receipt resolves).
 */
export const confirmedPerSecond = async (
  doc: Doc<typeof Counter>, total: number, burst: number, window: number, timeoutMs: number,
): Promise<number> => {
  const before = doc.state.value
  let submitted = 0
  let confirmed = 0
  let timer: ReturnType<typeof setImmediate> | undefined
  const t0 = now()
  await deadline(new Promise<void>((resolve, reject) => {
    const maybePump = () => {
      if (timer === undefined && submitted < total && submitted - confirmed + Math.min(burst, total - submitted) <= window) timer = setImmediate(pump)
    }
    const onConfirmed = () => {
      if (++confirmed === total) resolve()
      else maybePump()
    }
    const pump = () => {
      timer = undefined
      const n = Math.min(burst, total - submitted)
      for (let i = 0; i < n; i++) doc.submit("incr", { by: 1 }).then(onConfirmed, reject)
      submitted += n
      maybePump()
    }
    pump()
  }), timeoutMs, "Canon throughput run", () => clearImmediate(timer))
  const ms = now() - t0
  check(confirmed === total && doc.pendingCount === 0 && doc.state.value === before + total, "Canon: every command confirmed and applied once")
  return total / (ms / 1000)
}

/**
 * Figure 3, one run: `count` commands paced at `rate`/s (a timer submits whatever is due);
 * returns each receipt's submit -> confirmed time in µs, and the rate achieved.
 */
export const pacedLatencies = async (
  doc: Doc<typeof Counter>, count: number, rate: number, timeoutMs: number,
): Promise<{ latencies: number[]; rate: number }> => {
  const before = doc.state.value
  const interval = 1000 / rate
  const latencies: number[] = []
  let submitted = 0
  let lastSubmitAt = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const t0 = now()
  await deadline(new Promise<void>((resolve, reject) => {
    const tick = () => {
      const due = Math.min(count, Math.floor((now() - t0) / interval) + 1)
      while (submitted < due) {
        submitted++
        const t = now()
        lastSubmitAt = t
        doc.submit("incr", { by: 1 }).then(() => {
          latencies.push((now() - t) * 1000)
          if (latencies.length === count) resolve()
        }, reject)
      }
      if (submitted < count) timer = setTimeout(tick, Math.max(0, t0 + submitted * interval - now()))
    }
    tick()
  }), timeoutMs, "Canon paced latency run", () => clearTimeout(timer))
  check(latencies.length === count && doc.pendingCount === 0 && doc.state.value === before + count, "Canon: every paced command confirmed once")
  return { latencies, rate: (count - 1) / ((lastSubmitAt - t0) / 1000) }
}

/**
 * Figure 4, one run: the writer submits `count` commands in one tick; returns entries
 * delivered per second to the readers (count x readers, until every reader's confirmedSeq
 * reaches the new head).
 */
export const fanOutPerSecond = async (
  writer: Doc<typeof Counter>, readers: ReadonlyArray<Doc<typeof Counter>>, head: number, count: number, timeoutMs: number,
): Promise<number> => {
  const target = head + count
  const waiting = new Set(readers)
  const unsubscribe: Array<() => void> = []
  const t0 = now()
  try {
    await deadline(new Promise<void>((resolve, reject) => {
      for (const r of readers) {
        unsubscribe.push(r.subscribe(() => {
          if (r.confirmedSeq >= target && waiting.delete(r) && waiting.size === 0) resolve()
        }))
      }
      for (let i = 0; i < count; i++) writer.submit("incr", { by: 1 }).then(undefined, reject)
    }), timeoutMs, "Canon fan-out run")
  } finally {
    for (const u of unsubscribe) u()
  }
  const ms = now() - t0
  check(readers.every((r) => r.confirmedSeq === target && r.state.value === target), "Canon fan-out: every reader reached the head")
  return (count * readers.length) / (ms / 1000)
}

// ---- bytes on the wire ----

/** WebSocket frame header bytes for a payload (RFC 6455): client frames carry a 4-byte mask. */
const wsHeader = (payload: number, masked: boolean): number => 2 + (payload >= 65536 ? 8 : payload >= 126 ? 2 : 0) + (masked ? 4 : 0)

export interface Traffic {
  /** Client -> hub: Canon frame bytes, and with WebSocket framing. */
  upPayload: number
  upWire: number
  upFrames: number
  /** Hub -> client. */
  downPayload: number
  downWire: number
  downFrames: number
}

const emptyTraffic = (): Traffic => ({ upPayload: 0, upWire: 0, upFrames: 0, downPayload: 0, downWire: 0, downFrames: 0 })

/**
 * Counts what crosses one client's sockets: the frames it sends (its socket's `send`,
 * wrapped) and the frames it receives ('message' events). Data frames only; pings and pongs
 * (every 15 s) are not counted.
 */
export class Meter {
  traffic: Traffic = emptyTraffic()

  readonly onSocket = (ws: WebSocket): void => {
    const socket = ws as unknown as { send: (data: Uint8Array, ...rest: unknown[]) => void }
    const send = socket.send
    socket.send = (data: Uint8Array, ...rest: unknown[]) => {
      this.traffic.upPayload += data.length
      this.traffic.upWire += data.length + wsHeader(data.length, true)
      this.traffic.upFrames++
      return send.call(ws, data, ...rest)
    }
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const n = Array.isArray(data) ? data.reduce((s, b) => s + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length
      this.traffic.downPayload += n
      this.traffic.downWire += n + wsHeader(n, false)
      this.traffic.downFrames++
    })
  }

  reset(): void {
    this.traffic = emptyTraffic()
  }
}

export interface TodoBytes {
  readonly writer: Traffic
  readonly reader: Traffic
  readonly commands: number
}

/**
 * Figure 5, one run: `count` todo commands from the writer, either one at a time (each
 * awaited before the next: a person using the app) or all in one tick; the reader follows.
 * Counts both clients' traffic from the first submit until every receipt resolved, the
 * reader reached the head and the writer's trailing acknowledgement went out.
 */
export const todoTraffic = async (
  world: CanonWorld, docId: string, writer: Doc<typeof WireTodo>, writerMeter: Meter, reader: Doc<typeof WireTodo>, readerMeter: Meter,
  next: ReturnType<typeof todoWorkload>, count: number, mode: "interactive" | "burst", timeoutMs: number,
): Promise<TodoBytes> => {
  const head = await world.head(docId, WireTodo)
  check(writer.confirmedSeq === head && reader.confirmedSeq === head && writer.pendingCount === 0, "todo bytes: both replicas at the head before the run")
  await turn()
  writerMeter.reset()
  readerMeter.reset()
  const submit = (c: TodoCommand) => c.name === "toggle" ? writer.submit("toggle", c.args) : writer.submit(c.name, c.args)
  const work = async () => {
    if (mode === "interactive") {
      for (let i = 0; i < count; i++) await submit(next())
    } else {
      const receipts = []
      for (let i = 0; i < count; i++) receipts.push(submit(next()))
      await Promise.all(receipts)
    }
  }
  await deadline(work(), timeoutMs, `todo ${mode} run`)
  await until(() => reader.confirmedSeq >= head + count, timeoutMs, "the todo reader to reach the head")
  // The writer acknowledges its outcomes right after storing them: let that frame go out.
  await writer.whenStored()
  await turn()
  check(writer.confirmedSeq === head + count && reader.confirmedSeq === head + count && writer.pendingCount === 0, "todo bytes: every command confirmed, none rejected")
  return { writer: writerMeter.traffic, reader: readerMeter.traffic, commands: count }
}

export interface SharedLoad {
  /** Submit -> the entry confirmed at every other client, µs, one per command. */
  readonly delivered: number[]
  /** Submit -> the submitter's receipt resolved, µs, one per command. */
  readonly confirmed: number[]
  /** Hub process CPU over the run, in cores (CPU ms / wall ms). */
  readonly hubCores: number
  /** This process's CPU (the 50 clients) over the run, in cores. */
  readonly clientCores: number
  /** Commands/s achieved. */
  readonly rate: number
}

/**
 * Figure 4, one run: `docs.length` clients (one socket each) share `rate` commands/s on one
 * document, round robin, paced by one timer, for `count` commands. Each client notes when
 * its confirmedSeq moved (its change events); a command's delivery time is the latest
 * moment any other client reached its seq. Also returns the hub process's CPU over the run.
 */
export const sharedLoad = async (
  world: CanonWorld, docs: ReadonlyArray<Doc<typeof Counter>>, head: number, count: number, rate: number, timeoutMs: number,
): Promise<SharedLoad> => {
  const interval = 1000 / rate
  const seen: Array<Array<{ at: number; seq: number }>> = docs.map(() => [])
  const unsubscribe = docs.map((d, i) => d.subscribe(() => {
    seen[i]!.push({ at: now(), seq: d.confirmedSeq })
  }))
  const sent: Array<{ at: number; by: number; seq: number; confirmedAt: number }> = []
  let submitted = 0
  let lastSubmitAt = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const cpu0 = await world.hubCpuMs()
  const own0 = process.cpuUsage()
  const t0 = now()
  try {
    await deadline(new Promise<void>((resolve, reject) => {
      let confirmed = 0
      const tick = () => {
        const due = Math.min(count, Math.floor((now() - t0) / interval) + 1)
        while (submitted < due) {
          const by = submitted++ % docs.length
          const at = now()
          lastSubmitAt = at
          const record = { at, by, seq: -1, confirmedAt: 0 }
          sent.push(record)
          docs[by]!.submit("incr", { by: 1 }).then(({ seq }) => {
            record.seq = seq
            record.confirmedAt = now()
            if (++confirmed === count) resolve()
          }, reject)
        }
        if (submitted < count) timer = setTimeout(tick, Math.max(0, t0 + submitted * interval - now()))
      }
      tick()
    }), timeoutMs, "Canon shared load run", () => clearTimeout(timer))
    const target = head + count
    await until(() => docs.every((d) => d.confirmedSeq >= target), timeoutMs, "every client to reach the head")
    await turn()
  } finally {
    for (const u of unsubscribe) u()
  }
  const wallMs = now() - t0
  const own = process.cpuUsage(own0)
  const clientCores = (own.user + own.system) / 1000 / wallMs
  const hubCores = (await world.hubCpuMs() - cpu0) / wallMs
  check(docs.every((d) => d.confirmedSeq === head + count && d.state.value === head + count && d.pendingCount === 0), "shared load: every client reached the head, nothing pending")
  // For each client, the first moment its confirmedSeq reached each seq (seen[] is in time order).
  const firstAt = (i: number, seq: number): number => {
    const obs = seen[i]!
    let lo = 0
    let hi = obs.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (obs[mid]!.seq >= seq) hi = mid
      else lo = mid + 1
    }
    check(obs.length > 0 && obs[lo]!.seq >= seq, "shared load: every client saw every seq")
    return obs[lo]!.at
  }
  const delivered = sent.map((s) => {
    let last = 0
    for (let i = 0; i < docs.length; i++) if (i !== s.by) last = Math.max(last, firstAt(i, s.seq))
    return (last - s.at) * 1000
  })
  const confirmed = sent.map((s) => (s.confirmedAt - s.at) * 1000)
  return { delivered, confirmed, hubCores, clientCores, rate: (count - 1) / ((lastSubmitAt - t0) / 1000) }
}

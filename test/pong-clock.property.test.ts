/**
 * The liveness rule (adapters/ws/pong-clock.ts) against a model of what the hub can see of a
 * socket: a route sweeps, samples what the kernel took, pings, and reads pongs; the kernel holds
 * up to a buffer's worth and takes more from the hub only once a share of it is free (Linux
 * wakes a blocked writer so); it may pass them on at line speed to a second buffer the hub
 * cannot see (a proxy's, or the peer's own receive buffer); the reader reads at its own pace
 * and answers a ping once it has read up to it. Over random paces, buffers, wake-ups, line
 * speeds, sweep periods and document sizes:
 *
 * - an honest reader at 64 KiB/s or more is never dropped, and loads the document;
 * - a deaf peer (it stops reading at some point) is dropped within MAX_UNREAD_MS and the
 *   timeout (and a sweep) of its last read;
 * - a trickle (under MIN_READ_BYTES_PER_SECOND) is dropped within MAX_UNREAD_MS and the
 *   timeout of its start; behind a second buffer, within twice that: what the kernel took while
 *   that buffer filled and what the trickle read since can, once, look like reading.
 *
 * Judged per sweep, a reader seen in bursts seconds apart was dropped at every reconnect
 * (yjs-server-slow-reader over real sockets); judged by the pace it was seen at, one behind a
 * second buffer was dropped (that buffer fills at line speed, and that pace bought under a
 * second). A failing case prints its seed.
 */
import fc from "fast-check"
import { MAX_UNREAD_MS, MAX_UNANSWERED_PINGS, MIN_READ_BYTES_PER_SECOND, PongClock } from "../adapters/ws/pong-clock.js"

const STEP_MS = 10
const PING_BYTES = 10

interface World {
  readonly kernelBytes: number
  /** A second buffer after the kernel's (0: none), which the kernel fills at `lineBytesPerSecond`. */
  readonly relayBytes: number
  readonly lineBytesPerSecond: number
  /** Share of the kernel's buffer that must be free before it takes more from a blocked hub. */
  readonly wakeShare: number
  readonly periodMs: number
  readonly documentBytes: number
  /** When the document is sent (the socket is idle, pinged, until then). */
  readonly documentAtMs: number
  /** The reader's pace at each moment (bytes a second). */
  readonly pace: (t: number) => number
  readonly untilMs: number
}

/** Runs the world; when the hub dropped the socket (undefined: never), and what the reader read by then. */
const run = (w: World): { droppedAt: number | undefined; read: number; lastReadAt: number } => {
  const clock = new PongClock()
  const timeout = 3 * w.periodMs
  let queued = 0 // in the hub
  let inKernel = 0
  let inRelay = 0
  let line = 0
  let delivered = 0 // taken by the kernel in all
  let read = 0
  let lastReadAt = 0
  let carry = 0
  const pings: Array<{ at: number; nonce: Uint8Array }> = [] // stream offsets the reader must pass
  const ws = {
    get bufferedAmount() { return queued },
    _socket: { get bytesWritten() { return delivered }, writableLength: 0 },
    ping: (nonce: Uint8Array) => {
      queued += PING_BYTES
      pings.push({ at: delivered + queued, nonce })
    },
  }
  const kernelTakes = (blocked: boolean) => {
    const free = w.kernelBytes - inKernel
    if (queued === 0 || free <= 0 || (blocked && free < w.wakeShare * w.kernelBytes)) return
    const n = Math.min(queued, free)
    queued -= n
    inKernel += n
    delivered += n
  }
  for (let t = 0; t <= w.untilMs; t += STEP_MS) {
    if (t === w.documentAtMs) {
      queued += w.documentBytes
      kernelTakes(false) // written at once
    }
    if (w.relayBytes > 0) {
      line = Math.min(line + (w.lineBytesPerSecond * STEP_MS) / 1000, w.lineBytesPerSecond)
      const m = Math.min(inKernel, w.relayBytes - inRelay, Math.floor(line))
      line -= m
      inKernel -= m
      inRelay += m
    }
    carry += (w.pace(t) * STEP_MS) / 1000
    const n = Math.min(w.relayBytes > 0 ? inRelay : inKernel, Math.floor(carry))
    carry -= n
    if (n > 0) lastReadAt = t
    if (w.relayBytes > 0) inRelay -= n
    else inKernel -= n
    read += n
    while (pings.length > 0 && read >= pings[0]!.at) clock.pong(pings.shift()!.nonce)
    kernelTakes(true)
    if (t % w.periodMs === 0) {
      if (clock.overdue(ws as never, t, timeout)) return { droppedAt: t, read, lastReadAt }
      const nonce = clock.ping(t) // what a route's sendPing does
      if (nonce !== undefined) ws.ping(nonce)
      kernelTakes(true)
    }
  }
  return { droppedAt: undefined, read, lastReadAt }
}

/** A pace that prints as what it is in a counterexample. */
const named = <F extends (t: number) => number>(f: F, name: string): F => Object.assign(f, { toString: () => name })

const world = (pace: fc.Arbitrary<(t: number) => number>) =>
  fc.record({
    // At most 7.5 MiB in both: 120 s at 64 KiB/s, what a reader is given at most for what it has not read.
    kernelBytes: fc.integer({ min: 64 << 10, max: 5.5 * (1 << 20) }),
    relayBytes: fc.oneof(fc.constant(0), fc.integer({ min: 64 << 10, max: 2 << 20 })),
    lineBytesPerSecond: fc.constantFrom(1_000_000, 12_500_000, 125_000_000),
    wakeShare: fc.double({ min: 0.25, max: 0.5, noNaN: true }),
    periodMs: fc.constantFrom(100, 200, 500, 1_000, 2_000),
    documentBytes: fc.integer({ min: 1 << 10, max: 12 << 20 }),
    // Before the first sweep, or later: then what a second buffer takes at line speed is seen
    // leaving while a ping is owed.
    documentAtMs: fc.integer({ min: 0, max: 300 }).map((n) => n * STEP_MS),
    pace,
  })

test("an honest reader at 64 KiB/s or more, seen however coarsely, is never dropped and loads the document", () => {
  const steady = fc.integer({ min: 64 << 10, max: 8 << 20 }).map((r) => named(() => r, `${r} B/s`))
  fc.assert(
    fc.property(world(steady), (w) => {
      // Behind a second buffer, no faster than the line.
      const pace = w.relayBytes > 0 ? Math.min(w.pace(0), w.lineBytesPerSecond) : w.pace(0)
      // Long enough to read the document and the pings behind it, and then some sweeps.
      const untilMs = w.documentAtMs + Math.ceil(((w.documentBytes + 1_000 * PING_BYTES) / pace) * 1000 / w.periodMs) * w.periodMs + 10 * w.periodMs
      const r = run({ ...w, untilMs })
      expect(r.droppedAt).toBeUndefined()
      expect(r.read).toBeGreaterThanOrEqual(w.documentBytes)
    }),
    { numRuns: 1000, seed: 20261203 },
  )
})

/**
 * The most a deaf peer lives past its last read: MAX_UNREAD_MS and the timeout, two sweeps,
 * and the time a second buffer takes to fill at line speed (the kernel takes from the hub
 * meanwhile, which the hub cannot tell from reading).
 */
const bound = (w: { periodMs: number; relayBytes: number; lineBytesPerSecond: number }): number =>
  MAX_UNREAD_MS + 3 * w.periodMs + 2 * w.periodMs + (w.relayBytes > 0 ? (w.relayBytes * 1000) / w.lineBytesPerSecond : 0)

test("a deaf peer is dropped within MAX_UNREAD_MS and the timeout of its last read; a trickle within those of its start", () => {
  // Reads at `pace` until `stopsAt`, then nothing.
  const goesDeaf = fc
    .tuple(fc.integer({ min: 64 << 10, max: 8 << 20 }), fc.integer({ min: 0, max: 20_000 }))
    .map(([r, stopsAt]) => named((t: number) => (t < stopsAt ? r : 0), `${r} B/s until ${stopsAt} ms`))
  fc.assert(
    fc.property(world(goesDeaf), (w) => {
      const r = run({ ...w, untilMs: 400_000 })
      // Unless it read everything before it stopped (then its pongs came, and it is idle, not deaf).
      if (r.read >= w.documentBytes) return
      expect(r.droppedAt).toBeDefined()
      // (Or of the document's sending, if it stopped before: the kernel takes from the hub then.)
      expect(r.droppedAt! - Math.max(r.lastReadAt, w.documentAtMs)).toBeLessThanOrEqual(bound(w))
    }),
    { numRuns: 100, seed: 20261204 },
  )
  const trickle = fc.integer({ min: 1, max: MIN_READ_BYTES_PER_SECOND / 2 }).map((r) => named(() => r, `${r} B/s`))
  fc.assert(
    fc.property(world(trickle), (w) => {
      fc.pre(w.documentBytes > w.kernelBytes + 200_000)
      const r = run({ ...w, untilMs: 400_000 })
      expect(r.droppedAt).toBeDefined()
      // The space a filling second buffer left in the kernel, and the trickle's reading since,
      // can together show as 2 KiB/s once (a kernel wakes the hub only for a share of it).
      expect(r.droppedAt! - w.documentAtMs).toBeLessThanOrEqual(bound(w) + (w.relayBytes > 0 ? MAX_UNREAD_MS : 0))
    }),
    { numRuns: 50, seed: 20261205 },
  )
})

test("the model keeps at most MAX_UNANSWERED_PINGS pings behind a document", () => {
  // A sanity check of the model itself: the hub's queue holds the document and a few pings.
  const w = { kernelBytes: 1 << 20, relayBytes: 0, lineBytesPerSecond: 0, wakeShare: 0.5, periodMs: 100, documentBytes: 8 << 20, documentAtMs: 0, pace: () => 256 << 10, untilMs: 5_000 }
  const clock = new PongClock()
  const sent: Uint8Array[] = []
  for (let t = 0; t < w.untilMs; t += w.periodMs) clock.sendPing({ ping: (n: Uint8Array) => sent.push(n) } as never, t)
  expect(sent).toHaveLength(MAX_UNANSWERED_PINGS)
  expect(run(w).droppedAt).toBeUndefined()
})

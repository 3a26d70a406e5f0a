/**
 * The liveness rule (adapters/ws/pong-clock.ts) against a model of what the hub can see of a
 * socket: a route sweeps, samples what the kernel took, pings, and reads pongs; the kernel holds
 * up to a buffer's worth and takes more from the hub only once a share of it is free (Linux
 * wakes a blocked writer so); the reader reads the kernel at its own pace and answers a ping
 * once it has read up to it. Over random paces, buffers, wake-ups, sweep periods and document
 * sizes:
 *
 * - an honest reader at 64 KiB/s or more is never dropped, and loads the document;
 * - a deaf peer (it stops reading at some point) is dropped within MAX_IN_FLIGHT_MS and the
 *   timeout (and a sweep) of its last read;
 * - a trickle (under MIN_READ_BYTES_PER_SECOND) is dropped within MAX_IN_FLIGHT_MS and the
 *   timeout of its start.
 *
 * Judged per sweep (before), a reader seen in bursts seconds apart was dropped at every
 * reconnect (yjs-server-slow-reader over real sockets). A failing case prints its seed.
 */
import fc from "fast-check"
import { MAX_IN_FLIGHT_MS, MAX_UNANSWERED_PINGS, MIN_READ_BYTES_PER_SECOND, PongClock } from "../adapters/ws/pong-clock.js"

const STEP_MS = 10
const PING_BYTES = 10

interface World {
  readonly kernelBytes: number
  /** Share of the kernel's buffer that must be free before it takes more from a blocked hub. */
  readonly wakeShare: number
  readonly periodMs: number
  readonly documentBytes: number
  /** The reader's pace at each moment (bytes a second). */
  readonly pace: (t: number) => number
  readonly untilMs: number
}

/** Runs the world; when the hub dropped the socket (undefined: never), and what the reader read by then. */
const run = (w: World): { droppedAt: number | undefined; read: number; lastReadAt: number } => {
  const clock = new PongClock()
  const timeout = 3 * w.periodMs
  let queued = w.documentBytes // in the hub
  let inKernel = 0
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
  kernelTakes(false) // the document, written at once
  for (let t = STEP_MS; t <= w.untilMs; t += STEP_MS) {
    carry += (w.pace(t) * STEP_MS) / 1000
    const n = Math.min(inKernel, Math.floor(carry))
    carry -= n
    if (n > 0) lastReadAt = t
    inKernel -= n
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
    kernelBytes: fc.integer({ min: 64 << 10, max: 6 << 20 }),
    wakeShare: fc.double({ min: 0.25, max: 0.5, noNaN: true }),
    periodMs: fc.constantFrom(100, 200, 500, 1_000, 2_000),
    documentBytes: fc.integer({ min: 1 << 10, max: 12 << 20 }),
    pace,
  })

test("an honest reader at 64 KiB/s or more, seen however coarsely, is never dropped and loads the document", () => {
  const steady = fc.integer({ min: 64 << 10, max: 8 << 20 }).map((r) => named(() => r, `${r} B/s`))
  fc.assert(
    fc.property(world(steady), (w) => {
      const pace = w.pace(0)
      // Long enough to read the document and the pings behind it, and then some sweeps.
      const untilMs = Math.ceil(((w.documentBytes + 1_000 * PING_BYTES) / pace) * 1000 / w.periodMs) * w.periodMs + 10 * w.periodMs
      const r = run({ ...w, untilMs })
      expect(r.droppedAt).toBeUndefined()
      expect(r.read).toBeGreaterThanOrEqual(w.documentBytes)
    }),
    { numRuns: 60, seed: 20261203 },
  )
})

test("a deaf peer is dropped within MAX_IN_FLIGHT_MS and the timeout of its last read; a trickle within those of its start", () => {
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
      expect(r.droppedAt! - r.lastReadAt).toBeLessThanOrEqual(MAX_IN_FLIGHT_MS + 3 * w.periodMs + 2 * w.periodMs)
    }),
    { numRuns: 40, seed: 20261204 },
  )
  const trickle = fc.integer({ min: 1, max: MIN_READ_BYTES_PER_SECOND / 2 }).map((r) => named(() => r, `${r} B/s`))
  fc.assert(
    fc.property(world(trickle), (w) => {
      fc.pre(w.documentBytes > w.kernelBytes + 200_000)
      const r = run({ ...w, untilMs: 400_000 })
      expect(r.droppedAt).toBeDefined()
      expect(r.droppedAt!).toBeLessThanOrEqual(MAX_IN_FLIGHT_MS + 3 * w.periodMs + 2 * w.periodMs)
    }),
    { numRuns: 20, seed: 20261205 },
  )
})

test("the model keeps at most MAX_UNANSWERED_PINGS pings behind a document", () => {
  // A sanity check of the model itself: the hub's queue holds the document and a few pings.
  const w = { kernelBytes: 1 << 20, wakeShare: 0.5, periodMs: 100, documentBytes: 8 << 20, pace: () => 256 << 10, untilMs: 5_000 }
  const clock = new PongClock()
  const sent: Uint8Array[] = []
  for (let t = 0; t < w.untilMs; t += w.periodMs) clock.sendPing({ ping: (n: Uint8Array) => sent.push(n) } as never, t)
  expect(sent).toHaveLength(MAX_UNANSWERED_PINGS)
  expect(run(w).droppedAt).toBeUndefined()
})

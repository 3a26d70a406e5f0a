/**
 * The liveness rule of every route (adapters/ws/pong-clock.ts): only a pong echoing one of the
 * hub's pings, or what the hub sent leaving at a reader's pace, is a sign that the peer
 * reads, and only the time the hub reads the socket is owed. The routes' sweeps terminate a
 * socket once `owed` passes their timeout (ws-server-liveness, yjs-server-liveness,
 * automerge-server-backpressure over real sockets).
 */
import fc from "fast-check"
import { deliveredBytes, MAX_HELD_MS, MAX_UNREAD_MS, MAX_UNANSWERED_PINGS, MIN_READ_BYTES_PER_SECOND, PongClock, sentBytes, SweepLateness } from "../adapters/ws/pong-clock.js"

test("nothing is owed before a ping, or after a pong echoing it", () => {
  const c = new PongClock()
  expect(c.owed(1_000)).toBe(0)
  const nonce = c.ping(1_000)!
  expect(c.waiting).toBe(true)
  expect(c.owed(1_400)).toBe(400)
  expect(c.pong(nonce)).toBe(true)
  expect(c.waiting).toBe(false)
  expect(c.owed(9_000)).toBe(0)
})

test("a pong that echoes no ping of the hub's answers nothing: an unasked pong, an empty one, a guessed one", () => {
  const c = new PongClock()
  const nonce = c.ping(0)!
  expect(c.pong(new Uint8Array(0))).toBe(false)
  expect(c.pong(new Uint8Array(8))).toBe(false)
  expect(c.pong(nonce.map((b) => b ^ 1))).toBe(false)
  expect(c.pong(nonce.subarray(0, 7))).toBe(false)
  expect(c.owed(5_000)).toBe(5_000)
  // A pong to a later ping answers the earlier ones too (TCP keeps them in order).
  c.ping(1_000)
  const third = c.ping(2_000)!
  expect(c.pong(third)).toBe(true)
  expect(c.owed(6_000)).toBe(0)
  // Once answered, the same nonce answers no later ping.
  c.ping(6_000)
  expect(c.pong(third)).toBe(false)
  expect(c.owed(7_000)).toBe(1_000)
})

test("the oldest unanswered ping counts: pinging again does not restart the wait", () => {
  const c = new PongClock()
  c.ping(0)
  c.ping(500)
  c.ping(900)
  expect(c.owed(1_000)).toBe(1_000)
})

test("what the hub sent leaving at a reader's pace forgives what was owed, and the reader is given the time its unread bytes take at the slowest pace; a trickle or nothing forgives nothing", () => {
  const c = new PongClock()
  c.progress(0, 0)
  c.ping(0)
  // 1 s later, 8 MiB more left: forgiven. However fast that was (a proxy's or the peer's own
  // buffer filling at line speed looks as fast), its pong waits behind all of it: the reader is
  // given what 8 MiB take at the slowest pace that counts, at most MAX_UNREAD_MS. Judged by
  // the pace it was seen at, it had 1 s, and a 512 KiB/s reader behind a 4 MiB buffer filled at
  // 8 MB/s never loaded (attack review r20).
  c.progress(8 << 20, 1_000)
  expect(c.owed(1_000)).toBe(0)
  expect(c.owed(1_000 + MAX_UNREAD_MS)).toBe(0)
  expect(c.owed(1_000 + MAX_UNREAD_MS + 1_500)).toBe(1_500)
  // A trickle (less than the slowest pace that counts, since the last progress) forgives nothing.
  c.progress((8 << 20) + 100, 4_000)
  expect(c.owed(4_000 + MAX_UNREAD_MS)).toBe(3_000)
  // Nothing moved at all.
  c.progress((8 << 20) + 100, 7_000)
  expect(c.owed(7_000 + MAX_UNREAD_MS)).toBe(6_000)
  // The pace is measured since the last progress (at 1,000): 9 s at the slowest pace that
  // counts, the trickle included, forgives.
  c.progress((8 << 20) + 9 * MIN_READ_BYTES_PER_SECOND - 1, 10_000)
  expect(c.owed(10_000 + MAX_UNREAD_MS)).toBe(9_000)
  c.progress((8 << 20) + 9 * MIN_READ_BYTES_PER_SECOND, 10_000)
  expect(c.owed(10_000 + MAX_UNREAD_MS)).toBe(0)
  expect(c.owed(10_000 + MAX_UNREAD_MS + 500)).toBe(500)
  // A small backlog buys only its own time: 20 KiB unread is 10 s at the slowest pace.
  const small = new PongClock()
  small.progress(0, 0)
  small.ping(0)
  small.progress(20 * 1024, 1_000)
  expect(small.owed(1_000 + 10_000 + 700)).toBe(700)
  // A pong to a ping sent after what left answers: nothing owed, nothing given.
  const d = new PongClock()
  d.progress(0, 0)
  d.ping(0)
  d.progress(8 << 20, 1_000)
  expect(d.pong(d.ping(1_000)!)).toBe(true)
  d.ping(5_000)
  expect(d.owed(6_000)).toBe(1_000)
  // What left before anything was owed forgives nothing (it is no sign of reading): only time
  // for it is given, at the slowest pace that counts, since the ping waits behind it.
  const e = new PongClock()
  e.progress(0, 0)
  e.progress(MIN_READ_BYTES_PER_SECOND, 100)
  e.ping(200)
  expect(e.owed(1_200)).toBe(0)
  expect(e.owed(1_300)).toBe(100)
})

test("a reader seen in bursts (the kernel takes more only once much of its buffer is free) is judged at the pace it read between them", () => {
  // A reader at 256 KiB/s behind loopback-sized buffers: the kernel took 4 MiB at once, then the
  // hub sees 1.5 MiB leave every 6 s, none in between. Sweeps every 500 ms, timeout 1.5 s.
  // Judged per sweep, each burst looked like 3 MiB/s and bought under 3 s, and before the first
  // one nothing was given: the reader was dropped, at every reconnect.
  const burst = 1.5 * (1 << 20)
  const period = 500
  const timeout = 3 * period
  const reader = new PongClock()
  let delivered = 4 << 20
  reader.overdue(socketThatDelivered(delivered), 0, timeout)
  reader.ping(0)
  const last = 54_000
  for (let t = period; t <= last; t += period) {
    if (t % 6_000 === 0) delivered += burst
    expect(reader.overdue(socketThatDelivered(delivered), t, timeout)).toBe(false)
    reader.ping(t)
  }
  // Once nothing leaves, it is given the time its unread bytes take at the slowest pace (at most
  // MAX_UNREAD_MS), then dropped.
  let dropped: number | undefined
  for (let t = last + period; t <= 300_000 && dropped === undefined; t += period) {
    if (reader.overdue(socketThatDelivered(delivered), t, timeout)) dropped = t
    else reader.ping(t)
  }
  expect(dropped).toBe(last + MAX_UNREAD_MS + timeout)
  // A trickle seen in bursts is still a trickle: 1 KiB/s, 6 KiB every 6 s, is no sign of life.
  const trickle = new PongClock()
  trickle.overdue(socketThatDelivered(0), 0, timeout)
  trickle.ping(0)
  expect(trickle.overdue(socketThatDelivered(6_144), 6_000, timeout)).toBe(true)
})

test("a reader is given time for what it was sent since its last pong at the slowest pace that counts, at most MAX_UNREAD_MS; what a pong showed read is not given again", () => {
  const timeout = 1_000
  // The hub handed 20 KiB to the kernel before the ping: 10 s at the slowest pace.
  const c = new PongClock()
  c.overdue(socketThatDelivered(0), 0, timeout)
  c.overdue(socketThatDelivered(10 * MIN_READ_BYTES_PER_SECOND), 500, timeout)
  c.ping(500)
  expect(c.overdue(socketThatDelivered(10 * MIN_READ_BYTES_PER_SECOND), 500 + 10_000 + timeout - 1, timeout)).toBe(false)
  expect(c.overdue(socketThatDelivered(10 * MIN_READ_BYTES_PER_SECOND), 500 + 10_000 + timeout, timeout)).toBe(true)
  // At most MAX_UNREAD_MS, however much was sent.
  const big = new PongClock()
  big.progress(0, 0)
  big.progress(1e9, 1)
  big.ping(1)
  expect(big.owed(1 + MAX_UNREAD_MS + 10)).toBe(10)
  // What a pong showed read is not given again: a deaf peer that once read a large document
  // and then pongs no more owes from its next ping.
  const deaf = new PongClock()
  deaf.progress(0, 0)
  deaf.progress(1e9, 1_000)
  expect(deaf.pong(deaf.ping(1_000)!)).toBe(true)
  deaf.progress(1e9 + 30, 2_000)
  deaf.ping(2_000)
  expect(deaf.owed(3_000)).toBeCloseTo(1_000 - (30 * 1_000) / MIN_READ_BYTES_PER_SECOND, 6)
})

test("what the kernel takes while it may have room (the hub held nothing for it) is no sign of reading", () => {
  const timeout = 1_500
  // An idle socket is sent a 4 MiB document: the kernel takes it at once. That forgives nothing
  // and measures no pace (judged as a pace, it bought 1 s); the reader is given the time those
  // bytes take at the slowest pace that counts, at most MAX_UNREAD_MS.
  const c = new PongClock()
  c.overdue(socketThatDelivered(0, false), 0, timeout)
  c.ping(0)
  expect(c.overdue(socketThatDelivered(4 << 20, true), 500, timeout)).toBe(false)
  expect(c.overdue(socketThatDelivered(4 << 20, true), MAX_UNREAD_MS + timeout - 1, timeout)).toBe(false)
  expect(c.overdue(socketThatDelivered(4 << 20, true), MAX_UNREAD_MS + timeout, timeout)).toBe(true)
  // A deaf peer relayed 8 KiB/s that its kernel still takes: never a sign of reading, so it runs
  // out once that time is capped (judged as a pace, it stayed until the kernel was full).
  const deaf = new PongClock()
  deaf.overdue(socketThatDelivered(0, false), 0, timeout)
  deaf.ping(0)
  let dropped: number | undefined
  for (let t = 500; t <= 200_000 && dropped === undefined; t += 500) {
    if (deaf.overdue(socketThatDelivered(t * 8, false), t, timeout)) dropped = t
    else deaf.ping(t)
  }
  expect(dropped).toBe(MAX_UNREAD_MS + timeout)
})

test("no more than MAX_UNANSWERED_PINGS pings are sent unanswered; a pong to the last answers them all", () => {
  const c = new PongClock()
  const sent: Uint8Array[] = []
  const ws = { ping: (n: Uint8Array) => sent.push(n), _socket: { bytesWritten: 0, writableLength: 0 } } as never
  for (let t = 0; t < 100; t++) c.sendPing(ws, t * 100)
  expect(sent).toHaveLength(MAX_UNANSWERED_PINGS)
  expect(c.owed(10_000)).toBe(10_000)
  expect(c.pong(sent[MAX_UNANSWERED_PINGS - 1]!)).toBe(true)
  c.sendPing(ws, 10_000)
  expect(sent).toHaveLength(MAX_UNANSWERED_PINGS + 1)
})

test("a pong answers its own ping and the earlier ones, not the later: a peer that keeps a nonce back cannot clear a later wait with it", () => {
  const c = new PongClock()
  const first = c.ping(0)!
  c.ping(10_000)
  const third = c.ping(20_000)!
  c.ping(30_000)
  // The first answered at 30 s: the second is owed from when it went out.
  expect(c.pong(first)).toBe(true)
  expect(c.waiting).toBe(true)
  expect(c.owed(30_000)).toBe(20_000)
  expect(c.pong(first)).toBe(false)
  // The third answers the second too; the fourth stays owed.
  expect(c.pong(third)).toBe(true)
  expect(c.owed(35_000)).toBe(5_000)
  // A later ping is owed from when it went out on the clock that stops while the socket is held.
  const h = new PongClock()
  const early = h.ping(0)!
  h.paused(100)
  h.ping(200)
  h.resumed(1_100)
  expect(h.pong(early)).toBe(true)
  expect(h.owed(1_200)).toBe(100)
})

test("a deaf peer that withholds the pong to a ping it read, asks for a large document and answers just before its deadline is still dropped within MAX_UNREAD_MS and the timeout of its last read", () => {
  // /yjs's defaults: a sweep and a ping every 10 s, a 30 s timeout. It reads the first ping (at
  // 10 s, its last read) and keeps its nonce; the kernel takes 4 MiB of the 9 MiB answer at once,
  // the rest waits in the hub. When a pong answered every ping, the kept one bought a second
  // 120 s: dropped at 310 s instead of 160 s (attack review r20).
  const period = 10_000
  const timeout = 30_000
  const run = (pongAt: number | undefined): number => {
    const c = new PongClock()
    let delivered = 0
    let kept: Uint8Array | undefined
    for (let t = period; t <= 1_000_000; t += period / 2) {
      if (t === pongAt) c.pong(kept!)
      if (t % period !== 0) continue
      if (c.overdue(socketThatDelivered(delivered, t > period), t, timeout)) return t
      const nonce = c.ping(t)
      if (t === period) {
        kept = nonce
        delivered += 4 << 20
      }
    }
    throw new Error("never dropped")
  }
  const plain = run(undefined)
  expect(plain - period).toBeLessThanOrEqual(MAX_UNREAD_MS + timeout + period)
  for (let pongAt = period + period / 2; pongAt < plain; pongAt += period) expect(run(pongAt) - period).toBeLessThanOrEqual(MAX_UNREAD_MS + timeout + period)
})

test("a peer that withholds every pong until the hub stops pinging and answers the last one late gains at most one more wait", () => {
  // /yjs's defaults. It reads all it is sent, the 8 pings too, answering none; then it stops
  // reading. The pings the hub skipped at the cap it was never sent, so answering the last one
  // clears the wait (an honest reader that read them behind a document looks the same); the
  // pings after that sit behind what it does not read, so no later nonce is known to it.
  const period = 10_000
  const timeout = 30_000
  const lastRead = MAX_UNANSWERED_PINGS * period
  /** When the hub drops a peer that reads until `lastRead`, keeps the nonces it read, and answers them as `answer` says before each sweep. */
  const droppedAt = (answer: (c: PongClock, t: number, kept: Uint8Array[]) => void): number => {
    const c = new PongClock()
    const kept: Uint8Array[] = []
    let read = 0
    for (let t = period; t <= 3_000_000; t += period) {
      answer(c, t, kept)
      if (c.overdue(socketThatDelivered(read), t, timeout)) return t
      const nonce = c.ping(t)
      if (nonce !== undefined && t <= lastRead) kept.push(nonce)
      if (t < lastRead) read += 40 << 10 // what the room sends it, read while it reads
    }
    throw new Error("never dropped")
  }
  // It answers the last kept nonce late.
  const last = droppedAt((c, t, kept) => {
    if (t === 150_000) expect(c.pong(kept[MAX_UNANSWERED_PINGS - 1]!)).toBe(true)
  })
  expect(last - lastRead).toBeLessThanOrEqual(2 * (MAX_UNREAD_MS + timeout + period))
  // Or it answers the kept nonces one at a time, the oldest first, each as its wait runs out:
  // when a pong answered every ping, each bought a whole new wait (eight in all).
  const oneByOne = droppedAt((c, t, kept) => {
    if (c.owed(t) >= timeout && kept.length > 0) expect(c.pong(kept.shift()!)).toBe(true)
  })
  expect(oneByOne - lastRead).toBeLessThanOrEqual(2 * (MAX_UNREAD_MS + timeout + period))
})

test("a pong shows read what went out before its ping, what the hub still held then included", () => {
  const c = new PongClock()
  const sent: Uint8Array[] = []
  // A socket as the hub sees it: the kernel took `delivered`, the hub (ws and the socket's stream) holds `held` more.
  const ws = (delivered: number, held: number) => ({ bufferedAmount: held, ping: (n: Uint8Array) => sent.push(n), _socket: { bytesWritten: delivered + held, writableLength: held } }) as never
  expect(sentBytes(ws(1 << 20, 3 << 20))).toBe(4 << 20)
  // What ws still holds compressing (perMessageDeflate) it counts uncompressed: left out, or a
  // pong showed megabytes more read than were ever sent, and the reader was given nothing.
  expect(sentBytes({ bufferedAmount: 5 << 20, _socket: { bytesWritten: 1_000, writableLength: 0 } } as never)).toBe(1_000)
  // The ping goes out behind 4 MiB, of which the kernel has taken 1; all of it leaves, its pong comes.
  c.overdue(ws(1 << 20, 3 << 20), 0, 1_000)
  c.sendPing(ws(1 << 20, 3 << 20), 0)
  c.overdue(ws(4 << 20, 0), 2_000, 1_000)
  expect(c.pong(sent[0]!)).toBe(true)
  // 20 KiB more leave, a ping behind them: the reader is given what 20 KiB take at the slowest
  // pace (10 s), not what the 3 MiB it has shown it read would (counted from where the ping
  // went out, not from the last sample, they bought it 120 s more).
  c.overdue(ws((4 << 20) + 20 * 1024, 0), 3_000, 1_000)
  c.sendPing(ws((4 << 20) + 20 * 1024, 0), 3_000)
  expect(c.owed(3_000 + 10_000 + 700)).toBe(700)
})

test("deliveredBytes counts the kernel's part of a write in progress, never less than nothing nor more than the write (over TLS the handle's queue holds the encrypted bytes)", () => {
  // 1,000 bytes written before; a write of 100 in progress, of which the handle still queues `queue`.
  const socket = (queue: number | undefined) => ({ _socket: { bytesWritten: 1_100, writableLength: 100, _writableState: { writing: true, writelen: 100 }, _handle: queue === undefined ? null : { writeQueueSize: queue } } }) as never
  expect(deliveredBytes(socket(110))).toBe(1_000)
  expect(deliveredBytes(socket(100))).toBe(1_000)
  expect(deliveredBytes(socket(40))).toBe(1_060)
  expect(deliveredBytes(socket(0))).toBe(1_100)
  expect(deliveredBytes(socket(undefined))).toBe(1_000)
  // Over TLS, the TCP socket under it: what it was given, less what its handle still queues
  // (the TLS socket's own queue holds the whole encrypted write until it is done).
  const tls = (queue: number) => ({ _socket: { bytesWritten: 1_100, writableLength: 100, _writableState: { writing: true, writelen: 100 }, _handle: { writeQueueSize: 130 }, _parent: { bytesWritten: 1_130, writableLength: 0, _handle: { writeQueueSize: queue } } } }) as never
  expect(deliveredBytes(tls(130))).toBe(1_000)
  expect(deliveredBytes(tls(30))).toBe(1_100)
  expect(deliveredBytes(tls(0))).toBe(1_130)
})

test("time held unread is not owed, time read is: a socket held at every sweep still runs out", () => {
  const c = new PongClock()
  c.ping(0)
  // Held 40 ms of every 50, read 10: after 1 s it owes the 200 ms it was read.
  for (let t = 0; t < 1_000; t += 50) {
    c.paused(t + 10)
    expect(c.owed(t + 30)).toBe(t / 5 + 10)
    c.resumed(t + 50)
  }
  expect(c.owed(1_000)).toBe(200)
})

/** A socket as `deliveredBytes` reads it: `n` bytes handed to the network. */
const socketThatDelivered = (n: number, queued = true) => ({ bufferedAmount: queued ? 1 : 0, _socket: { bytesWritten: n, writableLength: 0 } }) as never

test("time held unread is forgiven up to MAX_HELD_MS a wait: a deaf peer that gets itself held at every chance still runs out", () => {
  // A /sync peer that sent thousands of commands past its rate, then stopped reading: each
  // release reads one more frame, which holds it again at once. Read 1 ms of every 50 for
  // 300 s: when every hold was forgiven, it owed 6 s and stayed for good (attack review r21).
  const c = new PongClock()
  c.ping(0)
  for (let t = 0; t < 300_000; t += 50) {
    c.paused(t + 1)
    c.resumed(t + 50)
  }
  expect(c.owed(300_000)).toBe(300_000 - MAX_HELD_MS)
  // A wait held for less than that is forgiven whole: a socket held 100 s behind a slow disk.
  const d = new PongClock()
  d.ping(0)
  d.paused(1_000)
  d.resumed(101_000)
  expect(d.owed(102_000)).toBe(2_000)
  // Each wait has its own: after a pong, holds before it are not counted against the next.
  expect(c.pong(c.ping(300_000)!)).toBe(true)
  c.ping(301_000)
  c.paused(302_000)
  c.resumed(402_000)
  expect(c.owed(403_000)).toBe(2_000)
})

test("a late sweep judges without the time the hub's process stalled, and measures a reading pace without it; the next sweep judges it all", () => {
  const timeout = 1_000
  const c = new PongClock()
  c.ping(0)
  // The sweep due at 100 ran at 2,600: 2,500 ms of stall, its pong perhaps waiting unread.
  expect(c.overdue(socketThatDelivered(0), 2_600, timeout, 2_500)).toBe(false)
  // Nothing is forgiven for good: the next sweep, on time, owes all of it.
  expect(c.overdue(socketThatDelivered(0), 2_700, timeout, 0)).toBe(true)
  // So stalls at every sweep stretch a deaf peer's life by one stall at most.
  const deaf = new PongClock()
  deaf.ping(0)
  let t = 0
  let dropped: number | undefined
  for (let i = 0; i < 20 && dropped === undefined; i++) {
    t += 100 + 900 // a period of 100, 900 late
    if (deaf.overdue(socketThatDelivered(0), t, timeout, 900)) dropped = t
  }
  expect(dropped).toBeDefined()
  expect(dropped!).toBeLessThanOrEqual(timeout + 900 + 1_000)
  // A reader sampled before and after a stall: 4 KiB in 3 s of which 2.5 s stalled is 8 KiB/s, a sign of life.
  const r = new PongClock()
  r.progress(0, 0)
  r.ping(0)
  r.progress(4_096, 3_000, 2_500)
  expect(r.owed(3_000)).toBe(0)
  // Without the stall taken out it read 1.4 KiB/s, under the floor: owed, less the time those
  // 4 KiB take at the floor (it was not seen reading).
  const slow = new PongClock()
  slow.progress(0, 0)
  slow.ping(0)
  slow.progress(4_096, 3_000)
  expect(slow.owed(3_000)).toBe(3_000 - (4_096 * 1_000) / MIN_READ_BYTES_PER_SECOND)
})

test("a sweep's lateness is what passed beyond its period since the last sweep", () => {
  const l = new SweepLateness(100, 900)
  expect(l.at(1_000)).toBe(0)
  expect(l.at(1_100)).toBe(0)
  // The first sweep is judged from when the timer was set.
  expect(new SweepLateness(100, 0).at(1_100)).toBe(1_000)
  expect(l.at(1_150)).toBe(0)
  expect(l.at(3_650)).toBe(2_400)
  expect(l.at(3_750)).toBe(0)
})

test("a hold that began before the ping does not count before the ping", () => {
  const c = new PongClock()
  c.paused(100)
  c.ping(300)
  c.resumed(500)
  expect(c.owed(600)).toBe(100)
})

test("owed equals the read time since the ping, for any schedule of holds, pings and pongs", () => {
  // Events at increasing times: pings, pongs (echoing the last ping), holds and releases; owed is checked against a tally.
  const step = fc.record({ gap: fc.integer({ min: 0, max: 100 }), op: fc.constantFrom("pause", "resume", "ping", "pong") })
  fc.assert(fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
    const c = new PongClock()
    let now = 0
    let held = false
    let since: number | undefined
    let readOwed = 0
    let last: Uint8Array | undefined
    for (const { gap, op } of steps) {
      if (since !== undefined && !held) readOwed += gap
      now += gap
      if (op === "pause") { c.paused(now); held = true }
      if (op === "resume") { c.resumed(now); held = false }
      if (op === "ping" && since === undefined) { since = now; readOwed = 0 }
      if (op === "ping") last = c.ping(now)
      if (op === "pong" && last !== undefined) { expect(c.pong(last)).toBe(since !== undefined); since = undefined; readOwed = 0 }
      expect(c.owed(now)).toBe(since === undefined ? 0 : readOwed)
    }
  }))
})

test("owed is the time since the oldest unanswered ping less its holds (at most MAX_HELD_MS), for pongs to any earlier ping and holds of any length", () => {
  // Holds kept as intervals and summed over the wait: a model apart from the clock's moments.
  const step = fc.record({
    gap: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 60_000 })),
    op: fc.constantFrom("pause", "resume", "ping", "pong"),
    pick: fc.nat(),
  })
  fc.assert(fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
    const c = new PongClock()
    let now = 0
    const holds: Array<readonly [number, number]> = []
    let pausedAt: number | undefined
    const pings: Array<{ at: number; nonce: Uint8Array }> = []
    const heldBetween = (a: number, b: number): number =>
      holds.reduce((sum, [x, y]) => sum + Math.max(0, Math.min(y, b) - Math.max(x, a)), 0) + (pausedAt === undefined ? 0 : Math.max(0, b - Math.max(pausedAt, a)))
    for (const { gap, op, pick } of steps) {
      now += gap
      if (op === "pause") {
        c.paused(now)
        pausedAt ??= now
      }
      if (op === "resume") {
        c.resumed(now)
        if (pausedAt !== undefined) holds.push([pausedAt, now])
        pausedAt = undefined
      }
      if (op === "ping") {
        const nonce = c.ping(now)
        if (nonce !== undefined) pings.push({ at: now, nonce })
        else expect(pings).toHaveLength(MAX_UNANSWERED_PINGS)
      }
      if (op === "pong" && pings.length > 0) {
        const k = pick % pings.length
        expect(c.pong(pings[k]!.nonce)).toBe(true)
        pings.splice(0, k + 1)
      }
      const oldest = pings[0]
      expect(c.waiting).toBe(oldest !== undefined)
      expect(c.owed(now)).toBe(oldest === undefined ? 0 : Math.max(0, now - oldest.at - Math.min(MAX_HELD_MS, heldBetween(oldest.at, now))))
    }
  }), { numRuns: 2_000, seed: 20261206 })
})

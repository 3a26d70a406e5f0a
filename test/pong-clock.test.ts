/**
 * The liveness rule of every route (adapters/ws/pong-clock.ts): only a pong answers, and only
 * the time the hub reads the socket is owed. The routes' sweeps terminate a socket once
 * `owed` passes their timeout (ws-server-liveness, yjs-server-liveness over real sockets).
 */
import fc from "fast-check"
import { PongClock } from "../adapters/ws/pong-clock.js"

test("nothing is owed before a ping, or after its pong", () => {
  const c = new PongClock()
  expect(c.owed(1_000)).toBe(0)
  c.ping(1_000)
  expect(c.waiting).toBe(true)
  expect(c.owed(1_400)).toBe(400)
  c.pong()
  expect(c.waiting).toBe(false)
  expect(c.owed(9_000)).toBe(0)
})

test("the oldest unanswered ping counts: pinging again does not restart the wait", () => {
  const c = new PongClock()
  c.ping(0)
  c.ping(500)
  c.ping(900)
  expect(c.owed(1_000)).toBe(1_000)
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

test("a hold that began before the ping does not count before the ping", () => {
  const c = new PongClock()
  c.paused(100)
  c.ping(300)
  c.resumed(500)
  expect(c.owed(600)).toBe(100)
})

test("owed equals the read time since the ping, for any schedule of holds", () => {
  // Events at increasing times: ping, holds and releases; owed is checked against a tally.
  const step = fc.record({ gap: fc.integer({ min: 0, max: 100 }), op: fc.constantFrom("pause", "resume", "ping", "pong") })
  fc.assert(fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
    const c = new PongClock()
    let now = 0
    let held = false
    let since: number | undefined
    let readOwed = 0
    for (const { gap, op } of steps) {
      if (since !== undefined && !held) readOwed += gap
      now += gap
      if (op === "pause") { c.paused(now); held = true }
      if (op === "resume") { c.resumed(now); held = false }
      if (op === "ping" && since === undefined) { since = now; readOwed = 0 }
      if (op === "ping") c.ping(now)
      if (op === "pong") { c.pong(); since = undefined; readOwed = 0 }
      expect(c.owed(now)).toBe(since === undefined ? 0 : readOwed)
    }
  }))
})

/**
 * setDeadline (core/ports/runtime.ts): a deadline's timer that runs late looks once more
 * LATE_TIMER_MS later before it expires; on time (and so always on a virtual clock) it is a
 * plain timer. Driven here by a hand-run clock whose timers fire when told, as late as wanted.
 */
import { LATE_TIMER_MS, setDeadline, type Timer } from "../core/ports/runtime.js"

const handClock = () => {
  let now = 0
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = []
  return {
    runtime: {
      now: () => now,
      setTimer(ms: number, fn: () => void): Timer {
        const t = { at: now + ms, fn, cancelled: false }
        timers.push(t)
        return { cancel: () => void (t.cancelled = true) }
      },
    },
    /** Moves the clock to `to` and runs, once, every timer due by `due` (default: by `to`). */
    run(to: number, due = to) {
      now = to
      for (const t of timers.splice(0)) {
        if (t.cancelled) continue
        if (t.at <= due) t.fn()
        else timers.push(t)
      }
    },
    get pending() {
      return timers.filter((t) => !t.cancelled).length
    },
  }
}

test("on time it expires at once; late it looks once more LATE_TIMER_MS later, however late that look is", () => {
  const onTime = handClock()
  let expired = 0
  setDeadline(onTime.runtime, 1_000, () => expired++)
  onTime.run(1_000 + LATE_TIMER_MS - 1)
  expect(expired).toBe(1)

  const late = handClock()
  let lateExpired = 0
  setDeadline(late.runtime, 1_000, () => lateExpired++)
  late.run(1_000 + LATE_TIMER_MS)
  expect(lateExpired).toBe(0)
  expect(late.pending).toBe(1)
  // The second look expires even if it too runs late: only one more look.
  late.run(10_000)
  expect(lateExpired).toBe(1)
  expect(late.pending).toBe(0)
})

test("cancel stops it before the first run and between the two looks", () => {
  const c = handClock()
  let expired = 0
  setDeadline(c.runtime, 1_000, () => expired++).cancel()
  c.run(5_000)
  const d = setDeadline(c.runtime, 1_000, () => expired++)
  c.run(7_000)
  expect(c.pending).toBe(1)
  d.cancel()
  c.run(20_000)
  expect(expired).toBe(0)
})

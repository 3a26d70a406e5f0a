/**
 * A client's idle check (adapters/ws/shared.ts ClientLink): silence for `idleTimeoutMs` ends
 * the link, but a check that runs late (a busy process, a throttled tab) looks again once
 * before it judges, since what the hub sent meanwhile may still be unread. Only once per
 * silence: a hidden tab's timers are always late (Chrome wakes them once a second, or once a
 * minute), and a check that forgave every late run never timed a dead link out there.
 *
 * Timers here run as a throttled tab's do: at the first whole second at or after they are
 * due (the file's setTimeout, which shared.ts calls, is replaced for the test).
 */
import { ClientLink } from "../adapters/ws/shared.js"
import type { CloseInfo } from "../core/index.js"

const realSetTimeout = globalThis.setTimeout
afterEach(() => {
  globalThis.setTimeout = realSetTimeout
})

/** From now on every timer waits until the next whole `alignMs` after it is due (counted from now). */
const throttleTimers = (alignMs: number): void => {
  const t0 = Date.now()
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const due = Date.now() + (ms ?? 0)
    const wake = t0 + Math.ceil((due - t0) / alignMs) * alignMs
    return realSetTimeout(fn, Math.max(0, wake - Date.now()), ...args)
  }) as typeof setTimeout
}

const openLink = (idleTimeoutMs: number) => {
  let closed: CloseInfo | undefined
  const link = new ClientLink({ onMessage() {}, onClose: (info) => void (closed = info) }, { idleTimeoutMs })
  link.attach({ bufferedAmount: 0, send() {}, close() {} } as never, () => {})
  link.opened()
  return { link, closed: () => closed }
}

const waitFor = (ms: number) => new Promise((r) => realSetTimeout(r, ms))

test("with timers always late by up to a second, a silent link still times out, one late look later", async () => {
  throttleTimers(1_000)
  const { closed } = openLink(2_300)
  // Due at 2.3 s, run at 3 s (late: look again), due 3.25 s, run at 4 s (late again: judged).
  const end = Date.now() + 8_000
  while (closed() === undefined && Date.now() < end) await waitFor(100)
  expect(closed()?.code).toBe("timeout")
}, 15_000)

test("a late check looks again, and what is heard meanwhile keeps the link; a later silence still times out", async () => {
  const { link, closed } = openLink(300)
  // This process blocks past the deadline: the check runs late, and looks again 250 ms later.
  const end = Date.now() + 600
  while (Date.now() < end) { /* busy */ }
  await waitFor(50)
  expect(closed()).toBeUndefined()
  // What was waiting is read now.
  link.heard()
  await waitFor(150)
  expect(closed()).toBeUndefined()
  // Then silence: judged on time.
  const until = Date.now() + 3_000
  while (closed() === undefined && Date.now() < until) await waitFor(20)
  expect(closed()?.code).toBe("timeout")
})

test("a wall clock stepped back an hour (NTP, a resumed laptop) does not keep a dead link for the hour: silence is timed on a steady clock", async () => {
  const realNow = Date.now
  try {
    const { closed } = openLink(300)
    Date.now = () => realNow() - 3_600_000
    const end = realNow() + 3_000
    while (closed() === undefined && realNow() < end) await waitFor(50)
    expect(closed()?.code).toBe("timeout")
  } finally {
    Date.now = realNow
  }
}, 15_000)

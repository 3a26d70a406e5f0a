/**
 * What the hub-wide bound on unsent bytes (adapters/ws/unsent-budget.ts) costs when it is
 * full: deciding whom to cut runs in the event loop, between the writes that fill it. In
 * process, with fake sockets, so these are the budget's own work, not the network's.
 *
 * A scan of every holder per cut took 0.9 s for one write among 16,384 holders (attack review
 * s36); one order per write, 24 ms. Row 6a holds that; row 6b is the steady cost a fan-out
 * pays per socket while the bound is full.
 */
import { UnsentBudget } from "../adapters/ws/unsent-budget.js"
import { check, figure, now, sample, type Figure, type Plan } from "./harness.js"

const LIMIT = 256 * 2 ** 20

/** `n` fake sockets, 64 per client address, each holding LIMIT / n: the sum at the bound. */
const fullBudget = (n: number) => {
  let clock = 0
  const budget = new UnsentBudget(LIMIT, () => clock)
  const per = Math.floor(LIMIT / n)
  const sockets = Array.from({ length: n }, (_, i) => ({ i, held: 0, delivered: 0, cut: false }))
  for (const s of sockets) {
    budget.track(s, { owner: `10.0.${s.i >> 6}.1`, unsent: () => s.held, delivered: () => s.delivered, cut: () => void (s.cut = true) })
  }
  for (const s of sockets) {
    clock += 0.001 // each begins to hold after the one before
    budget.admit(s, per)
    s.held = per
    budget.settle(s)
  }
  return { budget, sockets, tick: (ms: number) => void (clock += ms) }
}

/** ms for one 12 MiB write to a socket already holding, among `n` holders: it cuts hundreds. */
const oneLargeWrite = (n: number): number => {
  const { budget, sockets } = fullBudget(n)
  const writer = sockets[n >> 1]!
  const started = now()
  const ok = budget.admit(writer, 12 * 2 ** 20)
  const ms = now() - started
  check(budget.cuts > 0 && budget.unsent <= LIMIT, `the 12 MiB write among ${n} holders cut nobody, or left the sum past the bound`)
  void ok
  return ms
}

/** µs per write of a fan-out of one 1 KiB frame to `n` holders that each read 1 KiB since: the sum stays at the bound. */
const fanOutAtBound = (n: number, rounds: number): number => {
  const { budget, sockets, tick } = fullBudget(n)
  let writes = 0
  const started = now()
  for (let r = 0; r < rounds; r++) {
    tick(100)
    for (const s of sockets) {
      s.held -= 1024
      s.delivered += 1024
    }
    for (const s of sockets) {
      if (s.cut) continue
      if (budget.admit(s, 1024)) {
        s.held += 1024
        budget.settle(s)
      }
      writes++
    }
  }
  const us = ((now() - started) * 1000) / writes
  check(budget.unsent <= LIMIT, "the fan-out left the sum past the bound")
  return us
}

export const unsentFigures = async (plan: Plan): Promise<Figure[]> => [
  figure("unsent-large-write", "6a. unsent bound full: one 12 MiB write among 16,384 holders", "ms", await sample(plan, () => oneLargeWrite(16_384)),
    { goal: { op: "<=", value: 100 }, note: "16 KiB held by each of 16,384 sockets, 64 per address, the sum at the 256 MiB bound; the write cuts about 770 of them (in process, fake sockets; a scan per cut took about 900 ms)" }),
  figure("unsent-fan-out", "6b. unsent bound full: fan-out of 1 KiB to 8,192 holders", "µs/write", await sample(plan, () => fanOutAtBound(8_192, 2)),
    { goal: { op: "<=", value: 20 }, note: "each socket read 1 KiB since the last frame, so each write fits again after a refresh; in process, fake sockets" }),
]

/**
 * The bound on a server's unsent bytes over all its sockets (adapters/ws/unsent-budget.ts):
 * who is cut when a write does not fit, and that the count stays true to what was admitted,
 * sent and released, whatever the order (a property over random runs).
 */
import fc from "fast-check"
import { UnsentBudget } from "../adapters/ws/unsent-budget.js"

const sockets = (budget: UnsentBudget, owners: Record<string, string>) => {
  const cut: Array<[string, number]> = []
  for (const [name, owner] of Object.entries(owners)) budget.track(name, owner, (held) => cut.push([name, held]))
  return cut
}

test("writes that fit are counted until the socket says it holds less; a closed socket's bytes are no longer held", () => {
  const budget = new UnsentBudget(100)
  const cut = sockets(budget, { a: "A", b: "B" })
  expect(budget.admit("a", 40)).toBe(true)
  expect(budget.admit("b", 60)).toBe(true)
  expect(budget.unsent).toBe(100)
  budget.settle("a", 10) // the kernel took 30
  expect(budget.unsent).toBe(70)
  budget.release("b")
  expect(budget.unsent).toBe(10)
  budget.settle("b", 60) // a late callback of a released socket
  expect(budget.unsent).toBe(10)
  expect(budget.admit("untracked", 1_000)).toBe(true)
  expect(budget.unsent).toBe(10)
  expect(cut).toEqual([])
})

test("a write that does not fit cuts the socket holding the most, of the address holding the most", () => {
  const budget = new UnsentBudget(15)
  const cut = sockets(budget, { a1: "A", a2: "A", b1: "B", c1: "C" })
  budget.admit("a1", 5)
  budget.admit("a2", 4)
  budget.admit("b1", 6) // the largest socket, but A holds more in all
  expect(budget.admit("c1", 2)).toBe(true)
  expect(cut).toEqual([["a1", 5]])
  expect(budget.unsent).toBe(12)
  expect(budget.cuts).toBe(1)
  expect(budget.tracks("a1")).toBe(false)
})

test("a writer that is the largest of the largest address is cut itself, and its write is refused", () => {
  const budget = new UnsentBudget(10)
  const cut = sockets(budget, { a: "A", b: "B" })
  budget.admit("a", 6)
  budget.admit("b", 3)
  expect(budget.admit("a", 2)).toBe(false)
  expect(cut).toEqual([["a", 6]])
  expect(budget.unsent).toBe(3)
})

test("a socket that holds nothing may take one message larger than the limit, once the others made room", () => {
  const budget = new UnsentBudget(10)
  const cut = sockets(budget, { a: "A", b: "B", c: "C" })
  budget.admit("b", 4)
  budget.admit("c", 3)
  expect(budget.admit("a", 50)).toBe(true)
  expect(cut).toEqual([["b", 4], ["c", 3]])
  expect(budget.unsent).toBe(50)
  // A second message to it, while the first has not left, is over: it is cut.
  expect(budget.admit("a", 1)).toBe(false)
  expect(budget.unsent).toBe(0)
})

test("a writer that holds nothing, from the address holding the most, cuts its address's largest other socket", () => {
  const budget = new UnsentBudget(10)
  const cut = sockets(budget, { a1: "A", a2: "A", b: "B" })
  budget.admit("a1", 7)
  budget.admit("b", 2)
  expect(budget.admit("a2", 3)).toBe(true)
  expect(cut).toEqual([["a1", 7]])
})

test("limits that are not a positive number of bytes are refused with the option's name", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new UnsentBudget(bad)).toThrow(/maxUnsentBytes/)
  expect(new UnsentBudget(Infinity).limit).toBe(Infinity)
})

test("property: the count is what was admitted or settled, and not released; past the limit only a lone first message", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("admit" as const), s: fc.nat(5), bytes: fc.nat(40) }),
    fc.record({ kind: fc.constant("settle" as const), s: fc.nat(5), bytes: fc.nat(40) }),
    fc.record({ kind: fc.constant("release" as const), s: fc.nat(5), bytes: fc.constant(0) }),
  )
  fc.assert(fc.property(fc.integer({ min: 1, max: 60 }), fc.array(op, { maxLength: 80 }), (limit, ops) => {
    const budget = new UnsentBudget(limit)
    const held = new Map<number, number>()
    for (let s = 0; s <= 5; s++) {
      held.set(s, 0)
      budget.track(s, `owner-${s % 3}`, () => held.delete(s))
    }
    for (const { kind, s, bytes } of ops) {
      expect(budget.unsent).toBe([...held.values()].reduce((a, b) => a + b, 0))
      if (kind === "admit") {
        const before = held.get(s)
        const ok = budget.admit(s, bytes)
        // A socket no longer counted (released, or cut) may write: nothing is counted for it.
        if (before === undefined) {
          expect(ok).toBe(true)
          continue
        }
        // Refused exactly when the write cut its own socket.
        expect(ok).toBe(held.has(s))
        if (ok) held.set(s, before + bytes)
        // Past the limit only when the writer held nothing and nobody else holds anything.
        if (ok && budget.unsent > limit) {
          expect(before).toBe(0)
          expect(budget.unsent).toBe(bytes)
        }
      } else if (kind === "settle") {
        if (held.has(s)) held.set(s, bytes)
        budget.settle(s, bytes)
      } else {
        held.delete(s)
        budget.release(s)
      }
    }
    expect(budget.unsent).toBe([...held.values()].reduce((a, b) => a + b, 0))
  }), { numRuns: 2_000 })
})

/**
 * The bound on a server's unsent bytes over all its sockets (adapters/ws/unsent-budget.ts):
 * who is cut when a write does not fit, and that the count stays true to what was admitted,
 * sent and released, whatever the order (a property over random runs).
 */
import fc from "fast-check"
import { UnsentBudget } from "../adapters/ws/unsent-budget.js"

/**
 * Sockets of the given owners on `budget`. `actual` is what each really holds (its
 * bufferedAmount), `delivered` what it has handed to the network in all (its reader reads).
 */
const sockets = (budget: UnsentBudget, owners: Record<string, string>) => {
  const actual = new Map<string, number>()
  const delivered = new Map<string, number>()
  const cut: Array<[string, number]> = []
  for (const [name, owner] of Object.entries(owners)) {
    budget.track(name, { owner, unsent: () => actual.get(name) ?? 0, delivered: () => delivered.get(name) ?? 0, cut: (held) => cut.push([name, held]) })
  }
  /** Writes `bytes` to `name` as a socket would: admitted, then what it holds after the write. */
  const write = (name: string, bytes: number): boolean => {
    const ok = budget.admit(name, bytes)
    if (ok) {
      actual.set(name, (actual.get(name) ?? 0) + bytes)
      budget.settle(name)
    }
    return ok
  }
  /** `name`'s reader reads `bytes`: they reach the network; a write's callback says what is left. */
  const read = (name: string, bytes: number, callback = true) => {
    delivered.set(name, (delivered.get(name) ?? 0) + bytes)
    actual.set(name, (actual.get(name) ?? 0) - bytes)
    if (callback) budget.settle(name)
  }
  return { cut, write, read, actual }
}

/** A budget on a clock the test moves. */
const clocked = (limit: number) => {
  let t = 0
  return { budget: new UnsentBudget(limit, () => t), at: (ms: number) => void (t = ms) }
}

test("writes that fit are counted until the socket says it holds less; a closed socket's bytes are no longer held", () => {
  const budget = new UnsentBudget(100)
  const { cut, write, read } = sockets(budget, { a: "A", b: "B" })
  expect(write("a", 40)).toBe(true)
  expect(write("b", 60)).toBe(true)
  expect(budget.unsent).toBe(100)
  read("a", 30)
  expect(budget.unsent).toBe(70)
  budget.release("b")
  expect(budget.unsent).toBe(10)
  budget.settle("b") // a late callback of a released socket
  expect(budget.unsent).toBe(10)
  expect(budget.admit("untracked", 1_000)).toBe(true)
  expect(budget.unsent).toBe(10)
  expect(cut).toEqual([])
})

test("a write that does not fit cuts a stalled socket before a larger one whose reader reads", () => {
  const { budget, at } = clocked(15)
  const { cut, write, read } = sockets(budget, { a: "A", b: "B", c: "C" })
  write("a", 3) // its reader reads nothing
  write("b", 8)
  at(3_000)
  read("b", 1, false) // a large write: no callback until all of it has left
  budget.refresh()
  at(6_000)
  expect(write("c", 6)).toBe(true)
  expect(cut).toEqual([["a", 3]])
  expect(budget.unsent).toBe(13)
  expect(budget.cuts).toBe(1)
  expect(budget.tracks("a")).toBe(false)
})

test("stalled sockets of one address are judged together: its largest goes before a larger socket of another address", () => {
  const { budget, at } = clocked(10)
  const { cut, write } = sockets(budget, { a1: "A", a2: "A", b: "B", c: "C" })
  write("a1", 3)
  write("a2", 2)
  write("b", 4)
  at(10_000)
  expect(write("c", 2)).toBe(true)
  expect(cut).toEqual([["a1", 3]])
})

test("a socket whose reader reads a trickle, just enough not to stall, is cut as slow; one that reads at a pace is not", () => {
  const { budget, at } = clocked(2_000)
  const { cut, write, read } = sockets(budget, { trickle: "A", paced: "B", c: "C" })
  write("trickle", 1_000)
  write("paced", 1_000)
  for (const t of [1_000, 3_000, 5_000]) {
    at(t)
    read("trickle", 1, false)
    read("paced", 150, false)
    budget.refresh()
  }
  at(6_000)
  // trickle: 997 bytes at 3 bytes in 6 s (over half an hour); paced: 550 at 450 in 6 s (7 s).
  expect(write("c", 500)).toBe(true)
  expect(cut).toEqual([["trickle", 997]])
  // With nobody stalled or slow left, the next newcomer is refused rather than the paced reader cut.
  expect(write("c", 1_000)).toBe(false)
  expect(cut.map(([name]) => name)).toEqual(["trickle", "c"])
})

test("with no socket stalled, a new socket's write is refused before a reader that was there is cut", () => {
  const { budget, at } = clocked(15)
  const { cut, write } = sockets(budget, { a: "A", b: "B" })
  write("a", 10) // a large first sync: nothing reaches the network for a moment
  at(1_000)
  expect(write("b", 8)).toBe(false)
  expect(cut).toEqual([["b", 0]])
  expect(budget.unsent).toBe(10)
})

test("with no socket stalled, the newest to begin holding goes first, the writer included", () => {
  const { budget, at } = clocked(15)
  const { cut, write } = sockets(budget, { a: "A", b: "B" })
  write("a", 6)
  at(1_000)
  write("b", 3)
  at(2_000)
  expect(write("b", 8)).toBe(false)
  expect(cut).toEqual([["b", 3]])
  expect(budget.unsent).toBe(6)
})

test("one client's readers that keep reading, filling the bound, lose their newest to a newcomer from another client, down to their share", () => {
  const { budget, at } = clocked(16)
  const { cut, write, read } = sockets(budget, { a1: "A", a2: "A", a3: "A", a4: "A", n: "N" })
  for (const [i, a] of ["a1", "a2", "a3", "a4"].entries()) {
    at(i * 100)
    write(a, 4)
  }
  // Each reads at a pace: neither stalled nor slow, so only the share can make room.
  for (const t of [2_000, 4_000, 6_000]) {
    at(t)
    for (const a of ["a1", "a2", "a3", "a4"]) {
      read(a, 1, false)
      write(a, 1)
    }
    budget.refresh()
  }
  expect(budget.unsent).toBe(16)
  expect(write("n", 4)).toBe(true)
  expect(cut).toEqual([["a4", 4]])
  // A's next newcomer is over A's share (half the bound) with it: refused, not n cut.
  budget.track("a5", { owner: "A", unsent: () => 0, delivered: () => 0, cut: (held) => cut.push(["a5", held]) })
  expect(budget.admit("a5", 2)).toBe(false)
  expect(cut.map(([name]) => name)).toEqual(["a4", "a5"])
})

test("a client's oldest socket is not cut for its share: newcomers on many addresses do not cut a reader loading a large document", () => {
  const { budget, at } = clocked(15)
  const { cut, write } = sockets(budget, { big: "R", b1: "B1", b2: "B2", b3: "B3" })
  write("big", 10) // one reader of a large document
  at(100)
  write("b1", 3)
  at(200)
  // b2 within its share (15 / 3 clients) and R over it by 5: R keeps its one socket.
  expect(write("b2", 3)).toBe(false)
  expect(cut).toEqual([["b2", 0]])
  at(300)
  // A write to R's own socket is rule 4's: the newest to hold goes first, here b1.
  expect(write("big", 4)).toBe(true)
  expect(cut).toEqual([["b2", 0], ["b1", 3]])
  expect(budget.unsent).toBe(14)
})

test("property: a newcomer from a new client whose write is within its share (the bound over the clients holding, plus its own) fits whenever each client's oldest socket is", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 1_000 }),
    fc.array(fc.record({ owner: fc.nat(6), bytes: fc.integer({ min: 1, max: 400 }) }), { minLength: 1, maxLength: 24 }),
    fc.double({ min: 0, max: 1, noNaN: true }),
    (limit, writes, fraction) => {
      let t = 0
      const budget = new UnsentBudget(limit, () => t)
      const held = new Map<number, number>()
      writes.forEach(({ owner }, i) => budget.track(i, { owner: `c${owner}`, unsent: () => held.get(i) ?? 0, delivered: () => 0, cut: () => held.delete(i) }))
      writes.forEach(({ bytes }, i) => {
        t++ // each socket begins to hold after the one before: the oldest is the first written
        if (budget.admit(i, bytes)) held.set(i, bytes)
      })
      const oldest = new Map<number, number>()
      writes.forEach(({ owner }, i) => {
        if (held.has(i) && !oldest.has(owner)) oldest.set(owner, held.get(i)!)
      })
      const share = limit / (oldest.size + 1)
      fc.pre([...oldest.values()].every((bytes) => bytes <= share))
      const bytes = Math.floor(share * fraction)
      budget.track("newcomer", { owner: "new", unsent: () => 0, delivered: () => 0, cut: () => undefined })
      t++
      expect(budget.admit("newcomer", bytes)).toBe(true)
      expect(budget.unsent).toBeLessThanOrEqual(limit)
    },
  ), { numRuns: 2_000 })
})

test("a client that closed a socket holding its bytes unsent has its other sockets judged stalled for a while, before a reader that reads", () => {
  const { budget, at } = clocked(40 * 1024 * 1024)
  const MiB = 1024 * 1024
  const { cut, write, read } = sockets(budget, { gone: "R", fresh: "R", later: "R", tab1: "H", tab2: "H", n: "N", m: "M" })
  // An honest client's two tabs read at a pace.
  write("tab1", 10 * MiB)
  at(100)
  write("tab2", 10 * MiB)
  // R asks for a room and closes its socket unread, then opens another and asks again.
  write("gone", 12 * MiB)
  at(1_000)
  budget.release("gone")
  write("fresh", 12 * MiB)
  at(2_000)
  read("tab1", MiB, false)
  read("tab2", MiB, false)
  // A newcomer's write does not fit: R's new socket goes, though it is not 5 s old (by the
  // share, H's second tab went: R and N within theirs).
  expect(write("n", 12 * MiB)).toBe(true)
  expect(cut.map(([name]) => name)).toEqual(["fresh"])
  // After ABANDONED_MS, R is judged as any other client again: its socket that reads is not
  // cut for a newcomer (refused, as the newest).
  for (const name of ["tab1", "tab2", "n"]) budget.release(name)
  at(62_000)
  expect(write("later", 30 * MiB)).toBe(true)
  expect(write("m", 15 * MiB)).toBe(false)
  expect(cut.map(([name]) => name)).toEqual(["fresh", "m"])
})

test("a socket torn down keeps its count until released, so a client that left its bytes unread is still told from an ordinary close", () => {
  const { budget, at } = clocked(1024 * 1024)
  let open = true
  let unsent = 0
  const cut: string[] = []
  budget.track("gone", { owner: "R", unsent: () => unsent, delivered: () => 0, cut: () => cut.push("gone"), open: () => open })
  expect(budget.admit("gone", 600 * 1024)).toBe(true)
  unsent = 600 * 1024
  budget.settle("gone")
  // Torn down: ws reports nothing unsent, and a write's callback runs with an error.
  open = false
  unsent = 0
  budget.settle("gone")
  budget.refresh()
  expect(budget.unsent).toBe(600 * 1024)
  budget.release("gone")
  expect(budget.unsent).toBe(0)
  // R's next socket is judged stalled: a newcomer's write that does not fit cuts it first.
  at(1_000)
  let held = 0
  budget.track("next", { owner: "R", unsent: () => held, delivered: () => 0, cut: () => cut.push("next") })
  expect(budget.admit("next", 600 * 1024)).toBe(true)
  held = 600 * 1024
  budget.track("n", { owner: "N", unsent: () => 0, delivered: () => 0, cut: () => cut.push("n") })
  expect(budget.admit("n", 600 * 1024)).toBe(true)
  expect(cut).toEqual(["next"])
})

test("an ordinary close, a few bytes unsent, does not mark its client", () => {
  const { budget, at } = clocked(30)
  const { cut, write } = sockets(budget, { a: "A", a2: "A", b: "B" })
  write("a", 10)
  write("a2", 10)
  at(100)
  budget.release("a")
  write("b", 10)
  at(200)
  // a2 is A's oldest holding socket and reads: the newcomer from B is refused, not a2 cut.
  budget.track("c", { owner: "C", unsent: () => 0, delivered: () => 0, cut: (held) => cut.push(["c", held]) })
  expect(budget.admit("c", 15)).toBe(false)
  expect(cut).toEqual([["c", 0]])
})

test("before it cuts, it looks at what each socket holds now: bytes that left unseen make room", () => {
  const { budget, at } = clocked(10)
  const { cut, write, read } = sockets(budget, { a: "A", b: "B", c: "C" })
  write("a", 6)
  write("b", 3)
  read("a", 6, false) // its writes left; no callback came yet
  at(10_000)
  expect(write("c", 5)).toBe(true)
  expect(cut).toEqual([])
  expect(budget.unsent).toBe(8)
})

test("refresh() dates a stall: a socket whose reader read once and then stopped is stalled from then", () => {
  const { budget, at } = clocked(10)
  const { cut, write, read } = sockets(budget, { a: "A", b: "B", c: "C" })
  write("a", 7)
  at(1_000)
  read("a", 1, false)
  budget.refresh() // the server's sweep: a read at 1 s, then nothing
  at(4_000)
  write("b", 2)
  at(6_500)
  expect(write("c", 3)).toBe(true)
  // Seen only now, a's read would look recent, and c's write would have been refused.
  expect(cut).toEqual([["a", 6]])
})

test("a socket that holds nothing may take one message larger than the limit, once stalled sockets made room", () => {
  const { budget, at } = clocked(10)
  const { cut, write } = sockets(budget, { a: "A", b: "B", c: "C" })
  write("b", 4)
  write("c", 3)
  at(6_000)
  expect(write("a", 50)).toBe(true)
  expect(cut.map(([name]) => name).sort()).toEqual(["b", "c"])
  expect(budget.unsent).toBe(50)
  // A second message to it, while the first has not left, is over: it is cut (a socket alone
  // that does not read would otherwise grow to its own bound).
  expect(write("a", 1)).toBe(false)
  expect(budget.unsent).toBe(0)
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
      budget.track(s, { owner: `owner-${s % 3}`, unsent: () => held.get(s) ?? 0, delivered: () => 0, cut: () => held.delete(s) })
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
        // A write of no bytes adds nothing and cuts nobody (it is taken as it is).
        if (bytes === 0) expect(ok).toBe(true)
        // Past the limit by a write only with a first message when nobody else holds anything.
        else if (ok && budget.unsent > limit) {
          expect(before).toBe(0)
          expect(budget.unsent).toBe(bytes)
        }
      } else if (kind === "settle") {
        if (held.has(s)) held.set(s, bytes)
        budget.settle(s)
      } else {
        held.delete(s)
        budget.release(s)
      }
    }
    expect(budget.unsent).toBe([...held.values()].reduce((a, b) => a + b, 0))
  }), { numRuns: 2_000 })
})

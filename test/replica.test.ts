/**
 * Replicas: optimistic local apply, receipts, rejections, change notifications, rebase order,
 * and convergence with the authority under random interleavings and delays.
 */
import fc from "fast-check"
import { Schema } from "effect"
import { CanonClient, CommandRejected, Doc, Hub, defineMachine, type Entry } from "../core/index.js"
import { ReplicaState, seededRandom } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

type TodoState = ReturnType<typeof Todo.initial>
const DOC = "list"

/** Lets queued microtasks (change notifications, lanes) run. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

interface World {
  readonly rt: VirtualRuntime
  readonly net: MemoryNetwork
  readonly hub: Hub
}

const world = (options: { seed?: number; latency?: () => number; hubStorage?: MemoryStorage } = {}): World => {
  const rt = new VirtualRuntime(options.seed ?? 1)
  const net = new MemoryNetwork(rt, { latency: options.latency ?? (() => 5) })
  const hub = new Hub({ machines: [Todo], storage: options.hubStorage ?? new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}

const openDoc = async (w: World, name: string, storage?: MemoryStorage) => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, ...(storage ? { storage } : {}) })
  const doc = await client.open(Todo, DOC)
  return { client, doc }
}

/** Tracks whether a promise settled, without awaiting it. */
const track = <T>(p: Promise<T>) => {
  const s: { done: boolean; value?: T; error?: unknown } = { done: false }
  p.then((v) => { s.done = true; s.value = v }, (e) => { s.done = true; s.error = e })
  return s
}

/** How a receipt settled; fails (instead of hanging) if it has not settled yet. */
const settled = async <T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> => {
  const t = track(p)
  await flush()
  if (!t.done) throw new Error("The receipt has not settled.")
  return t
}

/** Awaits `p` while advancing virtual time (slow disks only make progress inside rt.run). */
const drive = async <T>(rt: VirtualRuntime, p: Promise<T>, maxMs = 10_000): Promise<T> => {
  const t = track(p)
  for (let ms = 0; !t.done && ms < maxMs; ms += 5) await rt.run({ forMs: 5 })
  if (!t.done) throw new Error(`Not settled within ${maxMs} virtual ms.`)
  return p
}

const entry = (seq: number, clientId: string, clientSeq: number, name: string, args: unknown): Entry => ({ seq, time: 1000 + seq, clientId, clientSeq, name, args })

describe("Doc over a hub", () => {
  test("submit changes the view synchronously, before any round trip", async () => {
    const w = world()
    const { doc } = await openDoc(w, "a")
    const r = doc.submit("add", { id: "x", title: "milk" })
    expect(doc.state.items["x"]?.title).toBe("milk")
    expect(doc.state.count).toBe(1)
    expect(doc.pendingCount).toBe(1)
    expect(doc.pending).toEqual([{ clientSeq: r.clientSeq, name: "add", stored: false }]) // written in a moment (even without a storage)
    expect(doc.confirmedSeq).toBe(0)
    doc.submit("toggle", { id: "x" })
    expect(doc.state.items["x"]?.done).toBe(true)
  })

  test("on() with an event a document does not have throws a TypeError naming the events (a misspelt listener would never fire)", async () => {
    const w = world()
    const { doc } = await openDoc(w, "a")
    for (const event of ["chnage", "__proto__", "constructor", "toString"]) {
      expect(() => doc.on(event as "change", () => {})).toThrow(TypeError)
      expect(() => doc.on(event as "change", () => {})).toThrow(/no event .*change, rejected, confirmed/)
    }
    // Every event DocEvents declares is taken (the list is checked against the type; this, against the emitter's names).
    for (const event of ["change", "rejected", "confirmed", "desync", "synced", "rewound", "error", "snapshot", "presence", "closed", "updateRequired"] as const) {
      expect(() => doc.on(event, () => {})()).not.toThrow()
    }
    const seen: unknown[] = []
    const off = doc.on("change", (s) => seen.push(s.count))
    doc.submit("add", { id: "x", title: "milk" })
    await flush()
    off()
    doc.submit("add", { id: "y", title: "tea" })
    await w.rt.run({ forMs: 50 })
    expect(seen).toEqual([1])
  })

  test("the receipt resolves with the seq once the authority confirms, and 'confirmed' fires", async () => {
    const w = world()
    const { doc } = await openDoc(w, "a")
    const confirmed: unknown[] = []
    doc.on("confirmed", (e) => confirmed.push(e))
    await w.rt.run({ forMs: 50 })
    const r1 = doc.submit("add", { id: "x", title: "milk" })
    const r2 = doc.submit("note", { text: "hello" })
    const t1 = track(r1)
    await flush()
    expect(t1.done).toBe(false)
    await w.rt.run({ forMs: 100 })
    expect(await settled(r1)).toEqual({ done: true, value: { seq: 1 } })
    expect(await settled(r2)).toEqual({ done: true, value: { seq: 2 } })
    expect((await settled(r1.persisted)).error).toBeUndefined()
    expect(confirmed).toEqual([
      { clientSeq: r1.clientSeq, command: "add", seq: 1 },
      { clientSeq: r2.clientSeq, command: "note", seq: 2 },
    ])
    expect(doc.pendingCount).toBe(0)
    expect(doc.confirmedSeq).toBe(2)
    expect(doc.state).toEqual((await w.hub.doc(DOC, Todo)).state)
  })

  test("a command the authority rejects: the receipt rejects with CommandRejected and 'rejected' fires", async () => {
    const w = world()
    const a = await openDoc(w, "a")
    const b = await openDoc(w, "b")
    await w.rt.run({ forMs: 50 })
    // Both add x concurrently: locally each succeeds; the authority takes one, rejects the other.
    const ra = a.doc.submit("add", { id: "x", title: "from a" })
    await w.rt.run({ forMs: 1 })
    const rb = b.doc.submit("add", { id: "x", title: "from b" })
    expect(b.doc.state.items["x"]?.title).toBe("from b")
    const rejectedEvents: unknown[] = []
    b.doc.on("rejected", (e) => rejectedEvents.push(e))
    await w.rt.run({ forMs: 200 })
    expect((await settled(ra)).value).toEqual({ seq: 1 })
    const { error } = await settled(rb)
    expect(error).toBeInstanceOf(CommandRejected)
    const rejected = error as CommandRejected
    expect(rejected.code).toBe("rejected")
    expect(rejected.command).toBe("add")
    expect(rejected.clientSeq).toBe(rb.clientSeq)
    expect(rejected.message).toBe("Item x already exists.")
    expect(rejectedEvents).toEqual([{ clientSeq: rb.clientSeq, command: "add", rejection: { code: "rejected", message: "Item x already exists." } }])
    // The view now shows the authority's x, and nothing is pending.
    expect(b.doc.state.items["x"]?.title).toBe("from a")
    expect(b.doc.state.count).toBe(1)
    expect(b.doc.pendingCount).toBe(0)
  })

  test("a command that fails: the receipt rejects with command-failed", async () => {
    const w = world()
    const { doc } = await openDoc(w, "a")
    const r = doc.submit("boom", {})
    expect(doc.pendingCount).toBe(1)
    await w.rt.run({ forMs: 100 })
    const e = (await settled(r)).error
    expect(e).toBeInstanceOf(CommandRejected)
    expect(e).toMatchObject({ code: "command-failed", command: "boom", clientSeq: r.clientSeq })
    expect(doc.pendingCount).toBe(0)
  })

  test("invalid arguments are refused locally: clientSeq -1, invalid-args, nothing pending or sent", async () => {
    const w = world()
    const { doc } = await openDoc(w, "a")
    const before = doc.snapshot()
    const r = doc.submit("add", { id: 5 as unknown as string, title: "x" })
    expect(r.clientSeq).toBe(-1)
    const e = (await settled(r)).error
    expect(e).toBeInstanceOf(CommandRejected)
    expect(e).toMatchObject({ code: "invalid-args", command: "add", clientSeq: -1 })
    expect((e as CommandRejected).message).toContain('"add"')
    expect(doc.pendingCount).toBe(0)
    expect(doc.state).toEqual(before)
    const u = doc.submit("nope" as "add", { id: "x", title: "x" })
    expect((await settled(u)).error).toMatchObject({ code: "unknown-command", clientSeq: -1 })
    // The next real command still gets clientSeq 1 and seq 1.
    const ok = doc.submit("add", { id: "x", title: "x" })
    await w.rt.run({ forMs: 100 })
    expect(ok.clientSeq).toBe(1)
    expect((await settled(ok)).value).toEqual({ seq: 1 })
  })

  test("50 entries arriving in one message notify subscribers once", async () => {
    const w = world()
    const a = await openDoc(w, "a")
    const b = await openDoc(w, "b")
    await w.rt.run({ forMs: 50 })
    const seenByA: number[] = []
    a.doc.subscribe((s) => seenByA.push(Object.keys(s.items).length))
    let bNotified = 0
    b.doc.subscribe(() => bNotified++)
    for (let i = 0; i < 50; i++) b.doc.submit("add", { id: `i${i}`, title: `t${i}` })
    await flush()
    // 50 local submits in one tick: one notification.
    expect(bNotified).toBe(1)
    await w.rt.run({ forMs: 200 })
    expect(a.doc.confirmedSeq).toBe(50)
    expect(seenByA).toEqual([50])
    // B: one for its submits, one for the confirmation of all 50.
    expect(bNotified).toBe(2)
  })

  test("a Doc fed one entries message of 50 entries notifies once, with the final view", async () => {
    const doc = new Doc(Todo, DOC, "me", undefined, { now: () => 0, random: () => 0, setTimer: () => ({ cancel() {} }) }, { state: Todo.initial(), confirmedSeq: 0, nextClientSeq: 1, snapshotSeq: 0, outbox: [] }, {})
    const views: number[] = []
    doc.subscribe((s) => views.push(s.count))
    const entries = Array.from({ length: 50 }, (_, i) => entry(i + 1, "other", i + 1, "add", { id: `i${i}`, title: "t" }))
    doc.receive({ type: "entries", docId: DOC, entries })
    await flush()
    expect(views).toEqual([50])
    expect(doc.confirmedSeq).toBe(50)
  })

  test("rebase keeps this replica's pending commands in submit order", async () => {
    // Slow links: many of B's entries arrive at A while A's notes are still pending.
    const w = world({ latency: () => 15 })
    const a = await openDoc(w, "a")
    const b = await openDoc(w, "b")
    await w.rt.run({ forMs: 100 })
    const own = (s: TodoState, who: string) => s.log.filter((l) => l.startsWith(`${who}:`)).map((l) => l.slice(who.length + 1).split("@")[0])
    const sentA: string[] = []
    const sentB: string[] = []
    let checks = 0
    for (let i = 0; i < 9; i++) {
      a.doc.submit("note", { text: `a${i}` })
      sentA.push(`a${i}`)
      if (i % 2 === 0) {
        b.doc.submit("note", { text: `b${i}` })
        sentB.push(`b${i}`)
      }
      for (let step = 0; step < 4; step++) {
        await w.rt.run({ forMs: 2 })
        // Every own note is in the view (confirmed or pending), in submit order.
        expect(own(a.doc.state, "a")).toEqual(sentA)
        expect(own(b.doc.state, "b")).toEqual(sentB)
        checks++
      }
    }
    for (let step = 0; step < 100 && (a.doc.pendingCount > 0 || b.doc.pendingCount > 0); step++) {
      await w.rt.run({ forMs: 3 })
      expect(own(a.doc.state, "a")).toEqual(sentA)
      checks++
    }
    expect(checks).toBeGreaterThan(36)
    expect(a.doc.pendingCount).toBe(0)
    const auth = await w.hub.doc(DOC, Todo)
    expect(own(auth.state, "a")).toEqual(sentA)
    expect(own(auth.state, "b")).toEqual(sentB)
    expect(a.doc.state).toEqual(auth.state)
  })
})

describe("lazy rebase", () => {
  // Counts how often its one command is applied (on this replica: local apply and rebases).
  let applies = 0
  const Counted = defineMachine({
    name: "counted",
    version: 1,
    initial: () => ({ n: 0, others: 0 }),
    commands: {
      mine: { args: Schema.Struct({}), apply: (s) => { applies++; s.n++ } },
      theirs: { args: Schema.Struct({}), apply: (s) => { s.others++ } },
    },
  })

  test("entries messages arriving before the next read are integrated with one undo and one redo of the pending commands", async () => {
    const rt = new VirtualRuntime(1)
    const doc = new Doc(Counted, DOC, "me", undefined, rt, { state: Counted.initial(), confirmedSeq: 0, nextClientSeq: 1, snapshotSeq: 0, outbox: [] }, {})
    doc.submit("mine", {})
    doc.submit("mine", {})
    applies = 0
    for (let seq = 1; seq <= 10; seq++) doc.receive({ type: "entries", docId: DOC, entries: [entry(seq, "other", seq, "theirs", {})] })
    expect(applies).toBe(0) // nothing integrated yet
    expect(doc.state.others).toBe(10) // the read integrates all ten at once
    expect(applies).toBe(2) // each pending command re-applied once, not ten times
    expect(doc.state.n).toBe(2)
    await flush()
    expect(applies).toBe(2)
  })
})

describe("ReplicaState", () => {
  const make = (clientId = "me") => new ReplicaState<TodoState>(DOC, Todo, clientId, () => 5000, Todo.initial(), 0)
  let nextClientSeq = 0
  const pending = (name: string, args: unknown) => {
    const cmd = Todo.compiled.get(name)!
    return { clientSeq: ++nextClientSeq, name, args, encoded: args, cmd, journal: undefined, localRejection: undefined, persisted: true }
  }

  test("renumber: a command moved up keeps the number it was first made under; one moved down says none", () => {
    const rs = make()
    const [a, b] = [pending("note", { text: "a" }), pending("note", { text: "b" })]
    rs.push(a)
    rs.push(b)
    const [made, next] = [a.clientSeq, b.clientSeq]
    // sequence-reset: resume at 10, then at 20.
    expect(rs.renumber(10, false, new Map()).map((m) => [m.from, m.to])).toEqual([[made, 10], [next, 11]])
    rs.renumber(20, false, new Map())
    expect([a, b].map((p) => [p.clientSeq, (p as { madeAs?: number }).madeAs])).toEqual([[20, made], [21, next]])
    // sequence-gap: the numbers below died unstored; the store numbers new commands on from
    // the new ones, under numbers it made others under, so these say nothing.
    const fresh = make()
    const c = pending("note", { text: "c" })
    c.clientSeq = 30
    fresh.push(c)
    fresh.renumber(22, true, new Map())
    expect([c.clientSeq, (c as { madeAs?: number }).madeAs]).toEqual([22, undefined])
  })

  test("rebase: others' entries go under the pending commands, which replay in order", () => {
    const rs = make()
    const p1 = pending("note", { text: "p1" })
    const p2 = pending("note", { text: "p2" })
    const p3 = pending("note", { text: "p3" })
    rs.push(p1)
    rs.push(p2)
    rs.push(p3)
    expect(rs.view.log).toEqual(["me:p1@1", "me:p2@2", "me:p3@3"])
    const r = rs.integrate([entry(1, "other", 1, "note", { text: "o1" }), entry(2, "other", 2, "note", { text: "o2" })], undefined, false)
    expect(r.applied.map((e) => e.seq)).toEqual([1, 2])
    expect(r.confirmed).toEqual([])
    expect(rs.confirmedSeq).toBe(2)
    expect(rs.view.log).toEqual(["other:o1@1", "other:o2@2", "me:p1@3", "me:p2@4", "me:p3@5"])
    // p2 confirmed at seq 3 (the authority ordered it before p1): p1 and p3 stay pending, in order.
    const r2 = rs.integrate([entry(3, "me", p2.clientSeq, "note", { text: "p2" })], undefined, false)
    expect(r2.confirmed.map((c) => [c.command.clientSeq, c.seq])).toEqual([[p2.clientSeq, 3]])
    expect(rs.pending.map((p) => p.clientSeq)).toEqual([p1.clientSeq, p3.clientSeq])
    expect(rs.view.log).toEqual(["other:o1@1", "other:o2@2", "me:p2@3", "me:p1@4", "me:p3@5"])
  })

  test("the confirmed state under the view is exactly the log applied in order", () => {
    const rs = make()
    rs.push(pending("add", { id: "x", title: "mine" }))
    rs.push(pending("remove", { id: "y" })) // fails locally: y does not exist yet
    expect(rs.pending[1]!.localRejection?.code).toBe("rejected")
    rs.integrate([entry(1, "other", 1, "add", { id: "y", title: "theirs" })], undefined, false)
    // After rebase, the remove of y now succeeds locally.
    expect(rs.pending[1]!.localRejection).toBeUndefined()
    expect(Object.keys(rs.view.items).sort()).toEqual(["x"])
    const ref = new ReplicaState<TodoState>(DOC, Todo, "ref", () => 0, Todo.initial(), 0)
    ref.integrate([entry(1, "other", 1, "add", { id: "y", title: "theirs" })], undefined, false)
    expect(rs.confirmedHash()).toBe(ref.confirmedHash())
    // The view is back on top afterwards.
    expect(Object.keys(rs.view.items).sort()).toEqual(["x"])
  })

  test("checkpoints at one seq hash the confirmed state once, not once each (a hub may send many)", () => {
    const rs = make()
    rs.integrate([entry(1, "other", 1, "add", { id: "y", title: "x".repeat(1000) })], undefined, false)
    const hash = rs.confirmedHash()
    // Counts the reads of the state that hashing it takes.
    let reads = 0
    const get = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(rs.host), "root")!.get!
    Object.defineProperty(rs.host, "root", { get() { reads++; return get.call(this) }, configurable: true })
    for (let i = 0; i < 50; i++) expect(rs.checkpoint(1, hash)).toBeUndefined()
    expect(reads).toBeLessThanOrEqual(2)
    // A different hash at that seq is still a desync, and a new seq is hashed again.
    expect(rs.checkpoint(1, "other")).toMatchObject({ seq: 1, expected: "other", actual: hash })
    rs.integrate([entry(2, "other", 2, "remove", { id: "y" })], undefined, false)
    const before = reads
    expect(rs.checkpoint(2, "x")).toMatchObject({ seq: 2 })
    expect(reads).toBeGreaterThan(before)
  })

  test("settled clientSeqs (rejections) leave pending and the view", () => {
    const rs = make()
    const p1 = pending("add", { id: "x", title: "a" })
    const p2 = pending("add", { id: "z", title: "b" })
    rs.push(p1)
    rs.push(p2)
    rs.integrate([], new Set([p1.clientSeq]), false)
    expect(rs.pending.map((p) => p.clientSeq)).toEqual([p2.clientSeq])
    expect(Object.keys(rs.view.items)).toEqual(["z"])
  })

  test("an entry past confirmedSeq + 1 is a gap: nothing after it is applied", () => {
    const rs = make()
    const r = rs.integrate([entry(1, "o", 1, "note", { text: "1" }), entry(3, "o", 3, "note", { text: "3" })], undefined, false)
    expect(r.gap).toBe(true)
    expect(rs.confirmedSeq).toBe(1)
    // Old entries are ignored.
    const r2 = rs.integrate([entry(1, "o", 1, "note", { text: "1" }), entry(2, "o", 2, "note", { text: "2" })], undefined, false)
    expect(r2.gap).toBe(false)
    expect(r2.applied.map((e) => e.seq)).toEqual([2])
    expect(rs.view.log).toEqual(["o:1@1", "o:2@2"])
  })

  test("a checkpoint with the wrong hash is a desync; the right one is not", () => {
    const rs = make()
    rs.push(pending("note", { text: "pending on top" }))
    rs.integrate([entry(1, "o", 1, "add", { id: "x", title: "t" })], undefined, false)
    const ref = make("ref")
    ref.integrate([entry(1, "o", 1, "add", { id: "x", title: "t" })], undefined, false)
    expect(rs.checkpoint(1, ref.confirmedHash())).toBeUndefined()
    expect(rs.checkpoint(1, "0000000000000000")).toEqual({ seq: 1, expected: "0000000000000000", actual: ref.confirmedHash() })
    // A checkpoint for a future seq is checked when that seq is reached.
    expect(rs.checkpoint(2, "ffffffffffffffff")).toBeUndefined()
    const r = rs.integrate([entry(2, "o", 2, "note", { text: "n" })], undefined, false)
    expect(r.desync).toMatchObject({ seq: 2, expected: "ffffffffffffffff" })
  })
})

// ---- machines written in ordinary JavaScript style ----

interface Card {
  id: string
  done: boolean
}

/** Rebuilds arrays with filter() and looks things up by key order: ordinary app code. */
const Board = defineMachine({
  name: "board",
  version: 1,
  initial: () => ({ cards: [] as Card[], byId: {} as Record<string, number> }),
  commands: {
    add: { args: Schema.Struct({ id: Schema.String }), apply: (s, a) => {
      s.cards.push({ id: a.id, done: false })
      s.byId[a.id] = s.cards.length
    } },
    toggle: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => {
      const card = s.cards.find((c) => c.id === a.id)
      if (card === undefined) ctx.reject(`No card ${a.id}.`)
      card!.done = !card!.done
    } },
    clearDone: { args: Schema.Struct({}), apply: (s) => {
      s.cards = s.cards.filter((c) => !c.done)
    } },
    forget: { args: Schema.Struct({ id: Schema.String }), apply: (s, a, ctx) => {
      if (!(a.id in s.byId)) ctx.reject(`No key ${a.id}.`)
      delete s.byId[a.id]
    } },
    /** Drops the oldest key: depends on the key order every peer must agree on. */
    forgetOldest: { args: Schema.Struct({}), apply: (s, _a, ctx) => {
      const first = Object.keys(s.byId)[0]
      if (first === undefined) ctx.reject("Nothing to forget.")
      delete s.byId[first!]
    } },
  },
})

const boardWorld = (seed = 5) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 5 })
  const hub = new Hub({ machines: [Board], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, clientId: name })
    const doc = await client.open(Board, "board")
    return { client, doc }
  }
  return { rt, net, hub, open }
}

describe("rebase with ordinary machine code", () => {
  test("state rebuilt with filter() can still be rebased under a pending command", async () => {
    const w = boardWorld()
    const a = await w.open("a")
    const b = await w.open("b")
    await w.rt.run({ forMs: 50 })
    a.doc.submit("add", { id: "x" })
    a.doc.submit("add", { id: "y" })
    a.doc.submit("toggle", { id: "y" })
    a.doc.submit("clearDone", {})
    await w.rt.run({ forMs: 100 })
    expect(a.doc.pendingCount).toBe(0)
    // A pending edit on a card that clearDone kept, then someone else's entry arrives: rebase.
    a.doc.submit("toggle", { id: "x" })
    b.doc.submit("add", { id: "z" })
    await w.rt.run({ forMs: 200 })
    const auth = await w.hub.doc("board", Board)
    expect(a.doc.pendingCount).toBe(0)
    expect(a.doc.state).toEqual(auth.state)
    expect(b.doc.state).toEqual(auth.state)
    expect(auth.state.cards).toEqual([{ id: "x", done: true }, { id: "z", done: false }])
  })

  test("a command that depends on key order gives the same result on the replica as on the authority", async () => {
    const w = boardWorld()
    const a = await w.open("a")
    const b = await w.open("b")
    const desyncs: unknown[] = []
    a.doc.on("desync", (d) => desyncs.push(d))
    await w.rt.run({ forMs: 50 })
    a.doc.submit("add", { id: "p" })
    a.doc.submit("add", { id: "q" })
    await w.rt.run({ forMs: 100 })
    // A, offline, forgets p (pending). Meanwhile B forgets the oldest key (p) at the authority.
    a.client.disconnect()
    a.doc.submit("forget", { id: "p" })
    b.doc.submit("forgetOldest", {})
    await w.rt.run({ forMs: 100 })
    // A comes back: its pending forget(p) is undone under B's entry, then rejected.
    a.client.connect()
    await w.rt.run({ forMs: 300 }) // well before the quiet checkpoint would force a resync
    const auth = await w.hub.doc("board", Board)
    expect(a.doc.confirmedSeq).toBe(auth.headSeq)
    expect(Object.keys(auth.state.byId)).toEqual(["q"])
    expect(Object.keys(a.doc.state.byId)).toEqual(["q"])
    expect(a.doc.confirmedHash()).toBe(auth.stateHash())
    await w.rt.run({ forMs: 3000 })
    expect(desyncs).toEqual([])
  })
})

// ---- convergence ----

const ids = fc.constantFrom("a", "b", "c")
const commandArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ name: fc.constant("add"), args: fc.record({ id: ids, title: fc.constantFrom("x", "y") }) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.constant("rename"), args: fc.record({ id: ids, title: fc.constantFrom("r", "s") }) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.constant("toggle"), args: fc.record({ id: ids }) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.constant("remove"), args: fc.record({ id: ids }) }) },
  { weight: 2, arbitrary: fc.record({ name: fc.constant("note"), args: fc.record({ text: fc.constantFrom("p", "q") }) }) },
  { weight: 1, arbitrary: fc.record({ name: fc.constant("boom"), args: fc.constant({}) }) },
)
const stepArb = fc.record({ who: fc.nat(2), command: commandArb, waitMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })) })

/**
 * A hub storage that refuses to serve a busy loop: more than 5,000 reads in one virtual instant
 * throw (the hub then reports a storage error to the subscriber) instead of spinning the
 * microtask queue forever and hanging the test run.
 */
const guardedStorage = (rt: VirtualRuntime, options: ConstructorParameters<typeof MemoryStorage>[0] = {}): MemoryStorage => {
  const storage = new MemoryStorage(options)
  const range = storage.range.bind(storage)
  let at = -1
  let calls = 0
  storage.range = (o) => {
    if (rt.now() !== at) {
      at = rt.now()
      calls = 0
    }
    if (++calls > 5000) return Promise.reject(new Error("storage.range called 5,000 times in one virtual instant: a busy loop"))
    return range(o)
  }
  return storage
}

interface Scenario {
  readonly replicas: number
  readonly seed: number
  readonly slowDisks: boolean
  readonly steps: ReadonlyArray<{ readonly who: number; readonly command: { readonly name: string; readonly args: unknown } | "drop"; readonly waitMs: number }>
}

/** Runs the steps, then the network to quiescence; checks every replica against the authority. */
const converges = async ({ replicas, seed, slowDisks, steps }: Scenario): Promise<void> => {
  const rng = seededRandom(seed)
  const rt = new VirtualRuntime(seed)
  const disk = () => guardedStorage(rt, slowDisks ? { latency: { runtime: rt, ms: () => Math.floor(rng() * 15) } } : {})
  const net = new MemoryNetwork(rt, { latency: () => Math.floor(rng() * 30) })
  const hub = new Hub({ machines: [Todo], storage: disk(), runtime: rt })
  net.listen(hub)
  const docs: Array<Doc<typeof Todo>> = []
  const clients: CanonClient[] = []
  const errors: string[] = []
  for (let i = 0; i < replicas; i++) {
    const client = await drive(rt, CanonClient.open({ transport: net.transport(`c${i}`), runtime: rt, clientId: `c${i}`, storage: disk() }))
    clients.push(client)
    const doc = await drive(rt, client.open(Todo, DOC))
    doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
    docs.push(doc)
  }
  let rejected = 0
  let submitted = 0
  for (const step of steps) {
    if (step.command === "drop") {
      net.drop(`c${step.who % replicas}`) // connection reset: messages in flight are lost
    } else {
      const doc = docs[step.who % replicas]!
      const r = doc.submit(step.command.name as "add", step.command.args as { id: string; title: string })
      submitted++
      r.catch(() => { rejected++ })
    }
    if (step.waitMs > 0) await rt.run({ forMs: step.waitMs })
  }
  const ran = await rt.run({ maxEvents: 50_000 })
  expect(ran).toBeLessThan(50_000)
  expect(errors).toEqual([])
  const auth = await hub.doc(DOC, Todo)
  for (const doc of docs) {
    expect(doc.pendingCount).toBe(0)
    expect(doc.confirmedSeq).toBe(auth.headSeq)
    expect(doc.state).toEqual(auth.state)
    expect(doc.confirmedHash()).toBe(auth.stateHash())
  }
  // Every submit was settled one way or the other.
  expect(auth.headSeq + rejected).toBe(submitted)
  for (const c of clients) await drive(rt, c.close())
  await hub.close()
}

describe("convergence", () => {
  test("random interleavings of local submits and random delivery delays: every replica ends equal to the authority", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 3 }), fc.nat(), fc.array(stepArb, { minLength: 1, maxLength: 30 }), async (replicas, seed, steps) => {
        await converges({ replicas, seed, slowDisks: false, steps })
      }),
      { seed: 42, numRuns: 200 },
    )
  })

  test("the same with storage that takes time to write (hub and replicas)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 3 }), fc.nat(), fc.array(stepArb, { minLength: 1, maxLength: 30 }), async (replicas, seed, steps) => {
        await converges({ replicas, seed, slowDisks: true, steps })
      }),
      { seed: 42, numRuns: 40 },
    )
  })

  test("the same with connections reset at random moments (exactly once across reconnects)", async () => {
    const withDrops = fc.oneof({ weight: 5, arbitrary: stepArb }, { weight: 1, arbitrary: fc.record({ who: fc.nat(2), command: fc.constant("drop" as const), waitMs: fc.integer({ min: 0, max: 40 }) }) })
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 3 }), fc.nat(), fc.array(withDrops, { minLength: 1, maxLength: 30 }), async (replicas, seed, steps) => {
        await converges({ replicas, seed, slowDisks: false, steps })
      }),
      { seed: 42, numRuns: 150 },
    )
  })
})

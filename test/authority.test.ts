/**
 * The authority, driven through a Hub over the in-memory network by a raw client that sends
 * protocol messages by hand: idempotency, rejections, input validation, protocol errors,
 * group commit, and "acknowledged means durable".
 */
import { secretFor } from "./support/secrets.js"
import { Hub, type ClientMessage, type CloseInfo, type CommandRequest, type HubEvent, type Outcome, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { Todo } from "./support/machines.js"

const DOC = "list"
const NET_MS = 1

interface Setup {
  readonly rt: VirtualRuntime
  readonly net: MemoryNetwork
  readonly storage: MemoryStorage
  readonly hub: Hub
  readonly events: HubEvent[]
  /** Storage batches started, with their op counts, and when each became durable. */
  readonly batches: Array<{ ops: number; startedAt: number; durableAt: number | undefined }>
}

const setup = (options: { storageMs?: number } = {}): Setup => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => NET_MS })
  const ms = options.storageMs
  const storage = new MemoryStorage(ms === undefined ? {} : { latency: { runtime: rt, ms: () => ms } })
  const batches: Setup["batches"] = []
  const batch = storage.batch.bind(storage)
  storage.batch = (ops, opts) => {
    const rec = { ops: ops.length, startedAt: rt.now(), durableAt: undefined as number | undefined }
    batches.push(rec)
    const p = batch(ops, opts)
    void p.then(() => { rec.durableAt = rt.now() }, () => {})
    return p
  }
  // A busy loop of reads (more than 5,000 in one virtual instant) fails instead of hanging the run.
  const range = storage.range.bind(storage)
  let readsAt = -1
  let reads = 0
  storage.range = (o) => {
    if (rt.now() !== readsAt) {
      readsAt = rt.now()
      reads = 0
    }
    if (++reads > 5000) return Promise.reject(new Error("storage.range called 5,000 times in one virtual instant: a busy loop"))
    return range(o)
  }
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, onEvent: (e) => events.push(e) })
  net.listen(hub)
  return { rt, net, storage, hub, events, batches }
}

class RawClient {
  readonly received: Array<{ readonly at: number; readonly msg: ServerMessage }> = []
  closed: CloseInfo | undefined
  opened = false
  private readonly conn

  constructor(s: Setup, name: string, private readonly onMessage?: (msg: ServerMessage) => void) {
    this.conn = s.net.transport(name).connect({
      onOpen: () => { this.opened = true },
      onMessage: (msg) => {
        this.received.push({ at: s.rt.now(), msg })
        this.onMessage?.(msg)
      },
      onClose: (info) => { this.closed = info },
    })
  }

  send(m: ClientMessage): void {
    this.conn.send(m)
  }

  hello(clientId: string): void {
    this.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId, secret: secretFor(clientId), machines: [describeMachine(Todo)] })
  }

  subscribe(fromSeq = 0, ackedClientSeq = 0, docId = DOC): void {
    this.send({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq, ackedClientSeq })
  }

  submit(commands: CommandRequest[], ackedClientSeq = 0, docId = DOC): void {
    this.send({ type: "submit", docId, commands, ackedClientSeq })
  }

  of<T extends ServerMessage["type"]>(type: T): Array<Extract<ServerMessage, { type: T }>> {
    return this.received.map((r) => r.msg).filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type)
  }

  /** Every outcome received, in order. */
  outcomes(): Outcome[] {
    return this.of("results").flatMap((m) => [...m.outcomes])
  }

  outcome(clientSeq: number): Outcome[] {
    return this.outcomes().filter((o) => o.clientSeq === clientSeq)
  }

  /** Seqs of every entry received, in order (duplicates kept). */
  entrySeqs(): number[] {
    return this.of("entries").flatMap((m) => m.entries.map((e) => e.seq))
  }
}

/** A raw client that said hello and subscribed, with the document loaded. */
const connect = async (s: Setup, name: string, clientId = name, onMessage?: (msg: ServerMessage) => void): Promise<RawClient> => {
  const c = new RawClient(s, name, onMessage)
  await s.rt.run({ forMs: 5 })
  expect(c.opened).toBe(true)
  c.hello(clientId)
  c.subscribe()
  await s.rt.run({ forMs: 200 }) // loading the document may write (format marker) with storage latency
  expect(c.of("welcome")).toHaveLength(1)
  expect(c.of("synced")).toHaveLength(1)
  return c
}

const add = (clientSeq: number, id: string, title = id): CommandRequest => ({ clientSeq, name: "add", args: { id, title } })
const note = (clientSeq: number, text: string): CommandRequest => ({ clientSeq, name: "note", args: { text } })

const logOf = async (s: Setup) => new AuthorityStore(s.storage).entries(DOC, 0, 10_000)

describe("idempotency: (clientId, clientSeq) is applied once, ever", () => {
  test("a retried command gets its original seq and is applied once", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(1)).toEqual([{ clientSeq: 1, seq: 1 }])
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(1)).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 1, seq: 1 }])
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.headSeq).toBe(1)
    expect(doc.state.count).toBe(1)
    expect((await logOf(s)).map((e) => [e.seq, e.clientId, e.clientSeq])).toEqual([[1, "a", 1]])
    expect(a.entrySeqs()).toEqual([1])
  })

  test("a retry from a new connection (after a reconnect) gets the original seq", async () => {
    const s = setup()
    const a1 = await connect(s, "a1", "alice")
    a1.submit([add(1, "x"), note(2, "hi")])
    await s.rt.run({ forMs: 20 })
    expect(a1.outcomes()).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 2, seq: 2 }])
    s.net.drop("a1")
    await s.rt.run({ forMs: 20 })
    // Same client id, new connection, resubscribed from before its own commands, resends both.
    const a2 = await connect(s, "a2", "alice")
    a2.submit([add(1, "x"), note(2, "hi")])
    await s.rt.run({ forMs: 20 })
    expect(a2.outcomes()).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 2, seq: 2 }])
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.headSeq).toBe(2)
    expect(doc.state.log).toHaveLength(1)
    expect(await logOf(s)).toHaveLength(2)
  })

  test("the same command twice in one message is applied once, both answered with its seq", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x"), add(1, "x"), note(2, "n")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcomes()).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 1, seq: 1 }, { clientSeq: 2, seq: 2 }])
    expect((await s.hub.doc(DOC, Todo)).headSeq).toBe(2)
    expect(await logOf(s)).toHaveLength(2)
  })

  test("an older clientSeq carrying a different command is neither applied nor answered with the old outcome: the client learns where to resume", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([note(1, "first"), note(2, "second")])
    await s.rt.run({ forMs: 20 })
    a.submit([note(1, "IMPOSTOR"), note(2, "IMPOSTOR TOO")])
    await s.rt.run({ forMs: 20 })
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.state.log.join()).not.toContain("IMPOSTOR")
    expect(doc.headSeq).toBe(2)
    // Not a false "confirmed": the second submit got no outcomes at all, only where to resume.
    expect(a.outcome(1)).toEqual([{ clientSeq: 1, seq: 1 }])
    expect(a.outcome(2)).toEqual([{ clientSeq: 2, seq: 2 }])
    expect(a.of("error")).toEqual([expect.objectContaining({ code: "sequence-reset", seq: 3, docId: DOC })])
    // Renumbered, the client subscribes again (the hub takes nothing of it before), then sends.
    a.subscribe(2, 2)
    a.submit([note(3, "renumbered")], 2)
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(3)).toEqual([{ clientSeq: 3, seq: 3 }])
  })

  test("a clientSeq past the next one is refused with sequence-gap and changes nothing (2^52 cannot lock a client out)", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([note(1, "one")])
    await s.rt.run({ forMs: 20 })
    a.submit([note(2 ** 52, "far"), note(2 ** 52 + 1, "farther")])
    a.submit([note(3, "skips 2")])
    await s.rt.run({ forMs: 20 })
    expect(a.of("error").map((e) => [e.code, e.seq])).toEqual([["sequence-gap", 2], ["sequence-gap", 2]])
    a.submit([note(2, "two"), note(3, "three")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(2)).toEqual([{ clientSeq: 2, seq: 2 }])
    expect(a.outcome(3)).toEqual([{ clientSeq: 3, seq: 3 }])
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.state.log).toEqual(["a:one@1", "a:two@2", "a:three@3"])
  })

  test("different clients may use the same clientSeq", async () => {
    const s = setup()
    const a = await connect(s, "a")
    const b = await connect(s, "b")
    a.submit([add(1, "x")])
    b.submit([add(1, "y")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(1)).toHaveLength(1)
    expect(b.outcome(1)).toHaveLength(1)
    expect((await s.hub.doc(DOC, Todo)).state.count).toBe(2)
  })

  test("a clientSeq the client acknowledged, resent: the same command gets its outcome again, another one a sequence-reset; neither is applied", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    a.submit([], 1) // "I stored the outcome of 1"
    await s.rt.run({ forMs: 20 })
    // Its storage went back in time (a backup): the outbox still holds command 1.
    a.submit([add(1, "x")], 1)
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(1)).toEqual([{ clientSeq: 1, seq: 1 }, { clientSeq: 1, seq: 1 }])
    expect(a.of("error")).toEqual([])
    // A new command under the number: renumbered.
    a.submit([add(1, "y")], 1)
    await s.rt.run({ forMs: 20 })
    expect(a.of("error")).toEqual([expect.objectContaining({ code: "sequence-reset", seq: 2 })])
    expect((await s.hub.doc(DOC, Todo)).headSeq).toBe(1)
  })

  test("after a sequence-reset the hub takes nothing more of that connection until it subscribes again: a submit already on its way is not applied under its old number", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    // A store gone back in time: "y" under 1 (taken by "x"), and "z" under 2, sent before the
    // answer came. Taken as new, "z" was applied under 2, then again once renumbered after "y".
    a.submit([add(1, "y")], 0)
    a.submit([add(2, "z")], 0)
    await s.rt.run({ forMs: 20 })
    expect(a.of("error")).toEqual([expect.objectContaining({ code: "sequence-reset", seq: 2 })])
    expect(a.outcome(2)).toEqual([])
    expect((await s.hub.doc(DOC, Todo)).headSeq).toBe(1)
    // Renumbered ("y" 2, "z" 3) and subscribed again: taken.
    a.subscribe(1, 1)
    a.submit([add(2, "y"), add(3, "z")], 1)
    await s.rt.run({ forMs: 20 })
    expect([...a.outcome(2), ...a.outcome(3)]).toEqual([{ clientSeq: 2, seq: 2 }, { clientSeq: 3, seq: 3 }])
    expect(Object.keys((await s.hub.doc(DOC, Todo)).state.items).sort()).toEqual(["x", "y", "z"])
  })
})

describe("rejections", () => {
  test("a retried rejected command gets the same rejection, even after the state changed", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x"), add(2, "x")])
    await s.rt.run({ forMs: 20 })
    const first = a.outcome(2)
    expect(first).toEqual([{ clientSeq: 2, rejection: { code: "rejected", message: "Item x already exists." } }])
    // x is gone now: applied again, `add x` would succeed. A retry must not apply it.
    a.submit([{ clientSeq: 3, name: "remove", args: { id: "x" } }])
    await s.rt.run({ forMs: 20 })
    a.submit([add(2, "x")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(2)).toEqual([first[0], first[0]])
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.state.items).toEqual({})
    expect(doc.headSeq).toBe(2)
  })

  test("a rejected command consumes its clientSeq even when nothing after it is accepted", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([{ clientSeq: 1, name: "add", args: { id: 7, title: "bad" } }])
    await s.rt.run({ forMs: 20 })
    // The same command again: settled already, so the original answer, not an application.
    a.submit([{ clientSeq: 1, name: "add", args: { id: 7, title: "bad" } }, add(2, "y")])
    await s.rt.run({ forMs: 20 })
    const [original, retry] = a.outcome(1)
    expect(original).toMatchObject({ clientSeq: 1, rejection: { code: "invalid-args" } })
    expect(retry).toEqual(original)
    expect(a.outcome(2)).toEqual([{ clientSeq: 2, seq: 1 }])
    const doc = await s.hub.doc(DOC, Todo)
    expect(Object.keys(doc.state.items)).toEqual(["y"])
  })

  test("a rejected, failed, unknown or invalid command consumes its clientSeq; the next one is processed", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([
      { clientSeq: 1, name: "add", args: { id: 5, title: "bad" } },
      { clientSeq: 2, name: "nope", args: {} },
      { clientSeq: 3, name: "boom", args: {} },
      { clientSeq: 4, name: "toggle", args: { id: "missing" } },
      add(5, "ok"),
    ])
    await s.rt.run({ forMs: 20 })
    const codes = a.outcomes().map((o) => ("rejection" in o ? o.rejection.code : "seq" in o ? o.seq : `<=${o.seqAtMost}`))
    expect(codes).toEqual(["invalid-args", "unknown-command", "command-failed", "rejected", 1])
    // Resending clientSeq 1..4 changes nothing: they are settled.
    a.submit([
      { clientSeq: 1, name: "add", args: { id: 5, title: "bad" } },
      { clientSeq: 2, name: "nope", args: {} },
      { clientSeq: 3, name: "boom", args: {} },
      { clientSeq: 4, name: "toggle", args: { id: "missing" } },
      add(6, "next"),
    ])
    await s.rt.run({ forMs: 20 })
    const doc = await s.hub.doc(DOC, Todo)
    expect(Object.keys(doc.state.items).sort()).toEqual(["next", "ok"])
    expect(a.outcome(6)).toEqual([{ clientSeq: 6, seq: 2 }])
    for (const cs of [1, 2, 3, 4]) {
      const [original, retry] = a.outcome(cs)
      expect(retry).toEqual(original)
    }
  })

  test("invalid arguments get invalid-args with a clear message, and change nothing for anyone", async () => {
    const s = setup()
    const a = await connect(s, "a")
    const b = await connect(s, "b")
    a.submit([{ clientSeq: 1, name: "add", args: { id: 42, title: "x" } }])
    await s.rt.run({ forMs: 20 })
    const [o] = a.outcomes()
    expect(o).toBeDefined()
    if (o === undefined || !("rejection" in o)) throw new Error("expected a rejection")
    expect(o.rejection.code).toBe("invalid-args")
    expect(o.rejection.message).toContain('"add"')
    expect(o.rejection.message).toContain("id")
    expect(o.rejection.message).toMatch(/expected/i)
    expect(o.rejection.message).not.toMatch(/\n/)
    const doc = await s.hub.doc(DOC, Todo)
    expect(doc.headSeq).toBe(0)
    expect(doc.state).toEqual(Todo.initial())
    expect(a.of("entries")).toEqual([])
    expect(b.of("entries")).toEqual([])
    expect(b.of("results")).toEqual([])
  })

  test("a command that throws after writing leaves the authority's state untouched", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    const doc = await s.hub.doc(DOC, Todo)
    const before = structuredClone(doc.state)
    const hash = doc.stateHash()
    a.submit([{ clientSeq: 2, name: "boom", args: {} }])
    await s.rt.run({ forMs: 20 })
    expect(a.outcome(2)[0]).toMatchObject({ rejection: { code: "command-failed" } })
    expect(doc.state).toStrictEqual(before)
    expect(doc.stateHash()).toBe(hash)
  })
})

describe("protocol", () => {
  test("submit before subscribe gets not-subscribed, and the connection stays usable", async () => {
    const s = setup()
    const a = new RawClient(s, "a")
    await s.rt.run({ forMs: 5 })
    a.hello("a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    const errors = a.of("error")
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: "not-subscribed", docId: DOC })
    expect(errors[0]!.message.length).toBeGreaterThan(0)
    expect(a.of("results")).toEqual([])
    expect(a.closed).toBeUndefined()
    // Nothing was applied or consumed: after subscribing, clientSeq 1 is a fresh command.
    a.subscribe()
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    expect(a.outcomes()).toEqual([{ clientSeq: 1, seq: 1 }])
  })

  test("submit to another document than the subscribed one gets not-subscribed", async () => {
    const s = setup()
    const a = await connect(s, "a")
    a.submit([add(1, "x")], 0, "other-doc")
    await s.rt.run({ forMs: 20 })
    expect(a.of("error")[0]).toMatchObject({ code: "not-subscribed", docId: "other-doc" })
  })

  test.each<[string, (c: RawClient) => void]>([
    ["subscribe", (c) => c.subscribe()],
    ["submit", (c) => c.submit([add(1, "x")])],
    ["fetch-state", (c) => c.send({ type: "fetch-state", docId: DOC })],
  ])("%s before hello gets a protocol error and the connection is closed", async (_name, send) => {
    const s = setup()
    const a = new RawClient(s, "a")
    await s.rt.run({ forMs: 5 })
    send(a)
    await s.rt.run({ forMs: 20 })
    const errors = a.of("error")
    expect(errors).toHaveLength(1)
    expect(errors[0]!.code).toBe("protocol-error")
    expect(errors[0]!.message).toMatch(/hello/)
    expect(a.closed?.code).toBe("protocol-error")
    expect(s.events.some((e) => e.type === "protocol-error")).toBe(true)
    expect(a.of("results")).toEqual([])
    expect((await s.hub.doc(DOC, Todo)).headSeq).toBe(0)
  })

  test("an unknown message type gets a protocol error", async () => {
    const s = setup()
    const a = new RawClient(s, "a")
    await s.rt.run({ forMs: 5 })
    a.hello("a")
    a.send({ type: "frobnicate" } as unknown as ClientMessage)
    await s.rt.run({ forMs: 20 })
    expect(a.of("error")[0]?.code).toBe("protocol-error")
    expect(a.closed?.code).toBe("protocol-error")
  })

  test("subscribing with an unknown machine gets machine-unknown", async () => {
    const s = setup()
    const a = new RawClient(s, "a")
    await s.rt.run({ forMs: 5 })
    a.hello("a")
    a.send({ type: "subscribe", docId: DOC, machine: "no-such-machine", version: 1, fingerprint: "x", fromSeq: 0, ackedClientSeq: 0 })
    await s.rt.run({ forMs: 20 })
    expect(a.of("error")[0]).toMatchObject({ code: "machine-unknown", docId: DOC })
  })
})

describe("group commit", () => {
  test("one message with many commands is one storage batch", async () => {
    const s = setup()
    const a = await connect(s, "a")
    const before = s.batches.length
    a.submit(Array.from({ length: 30 }, (_, i) => note(i + 1, `n${i}`)))
    await s.rt.run({ forMs: 20 })
    expect(s.batches.length - before).toBe(1)
    expect(a.outcomes()).toHaveLength(30)
    expect(a.of("results")).toHaveLength(1)
  })

  test("submits arriving while a write is in flight go out together in the next batch", async () => {
    const s = setup({ storageMs: 20 })
    const a = await connect(s, "a")
    const b = await connect(s, "b")
    const before = s.batches.length
    a.submit([note(1, "first")])
    await s.rt.run({ forMs: NET_MS + 2 }) // arrived, its write is in flight
    expect(s.batches.length - before).toBe(1)
    // Many submits in one tick, from two connections.
    for (let i = 2; i <= 11; i++) a.submit([note(i, `a${i}`)])
    for (let i = 1; i <= 5; i++) b.submit([note(i, `b${i}`)])
    await s.rt.run({ forMs: 200 })
    expect(s.batches.length - before).toBe(2)
    expect(a.outcomes().map((o) => ("seq" in o ? o.seq : -1))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    expect(b.outcomes()).toHaveLength(5)
    // One results message per connection per batch; one entries message per batch.
    expect(a.of("results")).toHaveLength(2)
    expect(b.of("results")).toHaveLength(1)
    expect(b.of("entries").map((m) => m.entries.length)).toEqual([1, 15])
    expect((await s.hub.doc(DOC, Todo)).headSeq).toBe(16)
    expect(await logOf(s)).toHaveLength(16)
  })
})

describe("acknowledged means durable", () => {
  test("no results (and no entries to anyone) before the storage batch resolves", async () => {
    const STORAGE_MS = 50
    const s = setup({ storageMs: STORAGE_MS })
    const store = new AuthorityStore(s.storage)
    // When a results message arrives, read what storage durably holds at that very moment.
    const logAtAck: Array<Promise<number[]>> = []
    const a = await connect(s, "a", "a", (msg) => {
      if (msg.type === "results") logAtAck.push(store.entries(DOC, 0, 1000).then((es) => es.map((e) => e.seq)))
    })
    const b = await connect(s, "b")
    const before = s.batches.length
    const t0 = s.rt.now()
    a.submit([add(1, "x"), note(2, "y")])
    await s.rt.run({ forMs: STORAGE_MS - 5 })
    expect(s.batches.length - before).toBe(1)
    expect(s.batches[before]!.durableAt).toBeUndefined()
    expect(a.of("results")).toEqual([])
    expect(a.of("entries")).toEqual([])
    expect(b.of("entries")).toEqual([])
    await s.rt.run({ forMs: 100 })
    const write = s.batches[before]!
    expect(write.durableAt).toBeDefined()
    const results = a.received.filter((r) => r.msg.type === "results")
    expect(results).toHaveLength(1)
    expect(results[0]!.at).toBeGreaterThanOrEqual(write.durableAt!)
    expect(results[0]!.at).toBeGreaterThanOrEqual(t0 + NET_MS + STORAGE_MS)
    for (const r of b.received.filter((m) => m.msg.type === "entries")) expect(r.at).toBeGreaterThanOrEqual(write.durableAt!)
    expect(await Promise.all(logAtAck)).toEqual([[1, 2]])
  })

  test("a replica subscribing while a write is in flight is caught up once it is durable", async () => {
    const s = setup({ storageMs: 50 })
    const a = await connect(s, "a")
    a.submit([add(1, "x"), note(2, "y")])
    await s.rt.run({ forMs: 10 }) // applied in memory, not durable yet
    const b = new RawClient(s, "b")
    await s.rt.run({ forMs: 5 })
    b.hello("b")
    b.subscribe()
    await s.rt.run({ forMs: 200 })
    expect(b.of("error")).toEqual([])
    expect(b.entrySeqs()).toEqual([1, 2])
    // Synced at the durable head (before or after the write landed), then live.
    expect(b.of("synced")).toHaveLength(1)
    // And it follows live afterwards.
    a.submit([note(3, "z")])
    await s.rt.run({ forMs: 200 })
    expect(b.entrySeqs()).toEqual([1, 2, 3])
  })

  test("a write lost in a crash was never acknowledged", async () => {
    const s = setup({ storageMs: 50 })
    const a = await connect(s, "a")
    a.submit([add(1, "x")])
    await s.rt.run({ forMs: 20 })
    s.storage.crash()
    await s.rt.run({ forMs: 500 })
    expect(a.of("results")).toEqual([])
    expect(a.of("entries")).toEqual([])
    expect(await logOf(s)).toEqual([])
  })
})

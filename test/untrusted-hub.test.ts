/**
 * Untrusted peers against the hub (issue 9), over the in-memory network with real codec
 * frames: oversized and deep commands, forged clientIds, clientSeq abuse, forgotten outcomes,
 * stateless restarts, idempotency write cost, state transfer during a write, load checks,
 * the handshake deadline and the durability default. Each test names the item it covers.
 */
import { CanonClient, Doc, Hub, decodeCanonical, defineMachine, encodeCanonical, type BatchOp, type BatchOptions, type ClientMessage, type Connection, type HubEvent, type HubLimits, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { ACKED_KEPT } from "../core/authority/client-table.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import * as K from "../core/store/keys.js"
import { secretFor } from "./support/secrets.js"
import { Todo } from "./support/machines.js"

const DOC = "list"

const world = (options: { authenticate?: boolean; storage?: MemoryStorage; maxOutcomesPerClient?: number; storageMs?: number; limits?: Partial<HubLimits> } = {}) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const storage = options.storage ?? new MemoryStorage(options.storageMs === undefined ? {} : { latency: { runtime: rt, ms: () => options.storageMs! } })
  const events: HubEvent[] = []
  const start = () => {
    const hub = new Hub({
      machines: [Todo],
      storage,
      runtime: rt,
      onEvent: (e) => events.push(e),
      ...(options.maxOutcomesPerClient !== undefined ? { maxOutcomesPerClient: options.maxOutcomesPerClient } : {}),
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      ...(options.authenticate
        ? { authenticate: (hello: { credentials?: string }) => (hello.credentials ? { id: hello.credentials } : { refuse: "Sign in." }) }
        : {}),
    })
    net.listen(hub)
    return hub
  }
  return { rt, net, storage, events, start }
}

type World = ReturnType<typeof world>

/** Runs virtual time until `p` settles (at most 60 virtual seconds). */
const drive = async <T>(w: World, p: Promise<T>): Promise<T> => {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  for (let t = 0; !done && t < 60_000; t += 10) await w.rt.run({ forMs: 10 })
  if (!done) throw new Error("did not settle within 60 virtual seconds")
  return p
}

/** A raw peer speaking frames by hand. */
const raw = (w: World, name: string, clientId: string, extra: { secret?: string | null; credentials?: string } = {}) => {
  const got: ServerMessage[] = []
  let closed: string | undefined
  const conn: Connection<ClientMessage> = w.net.transport(name).connect({
    onOpen: () => {
      const secret = extra.secret === null ? {} : { secret: extra.secret ?? secretFor(clientId) }
      conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId, machines: [describeMachine(Todo)], ...secret, ...(extra.credentials ? { credentials: extra.credentials } : {}) })
      conn.send({ type: "subscribe", docId: DOC, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    },
    onMessage: (m) => got.push(m),
    onClose: (i) => { closed = i.code },
  })
  return {
    got,
    get closed() { return closed },
    submit: (commands: Array<{ clientSeq: number; name: string; args: unknown }>, ackedClientSeq = 0) => conn.send({ type: "submit", docId: DOC, commands, ackedClientSeq }),
    outcomes: () => got.flatMap((m) => (m.type === "results" ? [...m.outcomes] : [])),
    errors: () => got.filter((m): m is Extract<ServerMessage, { type: "error" }> => m.type === "error"),
    refused: () => got.find((m) => m.type === "refused") as Extract<ServerMessage, { type: "refused" }> | undefined,
    welcomed: () => got.some((m) => m.type === "welcome"),
    close: () => conn.close(),
  }
}

const client = async (w: World, name: string, options: { storage?: MemoryStorage; clientId?: string; credentials?: string } = {}) => {
  const c = await drive(w, CanonClient.open({
    transport: w.net.transport(name), runtime: w.rt, machines: [Todo],
    ...(options.storage ? { storage: options.storage } : {}),
    ...(options.clientId ? { clientId: options.clientId } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    backoff: { baseMs: 20, maxMs: 200 },
  }))
  const doc = await drive(w, c.open(Todo, DOC))
  await w.rt.run({ forMs: 50 })
  return { client: c, doc }
}

const authorityLog = (w: World) => new AuthorityStore(w.storage).entries(DOC, 0, 100_000)

describe("bounded commands: every entry fits in a frame (items 4, 5)", () => {
  test("a submit frame just under the 1 MiB frame limit is refused with command-too-large; subscribers keep being served", async () => {
    const w = world()
    w.start()
    const reader = await client(w, "reader")
    const attacker = raw(w, "attacker", "attacker-1")
    await w.rt.run({ forMs: 50 })
    // One byte of frame overhead less and the frame would still fit: 1 MiB minus what the
    // submit frame needs around the string.
    const title = "x".repeat((1 << 20) - 80)
    attacker.submit([{ clientSeq: 1, name: "add", args: { id: "big", title } }])
    await w.rt.run({ forMs: 50 })
    expect(attacker.outcomes()).toEqual([{ clientSeq: 1, rejection: expect.objectContaining({ code: "command-too-large" }) }])
    expect(await authorityLog(w)).toEqual([])
    await drive(w, reader.doc.submit("add", { id: "ok", title: "fine" }))
    const late = await client(w, "late")
    await w.rt.run({ forMs: 50 })
    expect(late.doc.synced).toBe(true)
    expect(late.doc.confirmedHash()).toBe(reader.doc.confirmedHash())
    expect(Object.keys(late.doc.state.items)).toEqual(["ok"])
  })

  test("arguments nested 511 levels deep are refused with command-too-large; the document is not broken", async () => {
    const w = world()
    w.start()
    const reader = await client(w, "reader")
    const attacker = raw(w, "attacker", "attacker-2")
    await w.rt.run({ forMs: 50 })
    let deep: unknown = "bottom"
    for (let i = 0; i < 509; i++) deep = { d: deep }
    // `note` takes { text }: the excess property passes the schema, as it did when this broke.
    attacker.submit([{ clientSeq: 1, name: "note", args: { text: "deep", extra: deep } }])
    await w.rt.run({ forMs: 50 })
    expect(attacker.outcomes()).toEqual([{ clientSeq: 1, rejection: expect.objectContaining({ code: "command-too-large" }) }])
    expect(w.events.filter((e) => e.type === "doc-broken")).toEqual([])
    await drive(w, reader.doc.submit("note", { text: "still here" }))
    expect(reader.client.status).toBe("online")
    expect((await authorityLog(w)).map((e) => e.name)).toEqual(["note"])
  })
})

describe("durable client identity (items 6, 7, 9)", () => {
  test("a second connection claiming a victim's clientId is refused, with or without a guessed secret; the victim's commands all apply once", async () => {
    const w = world()
    w.start()
    const victim = await client(w, "victim", { storage: new MemoryStorage() })
    await drive(w, victim.doc.submit("note", { text: "v1" }))
    const id = victim.client.clientId
    const noSecret = raw(w, "forger-1", id, { secret: null })
    const guessed = raw(w, "forger-2", id, { secret: "a-guess-that-is-long-enough" })
    await w.rt.run({ forMs: 50 })
    for (const f of [noSecret, guessed]) {
      expect(f.refused()?.code).toBe("unauthorized")
      expect(f.closed).toBe("unauthorized")
    }
    // What the forgers would have sent: the victim's next clientSeqs.
    guessed.submit([{ clientSeq: 2, name: "note", args: { text: "FORGED" } }])
    const r2 = await drive(w, victim.doc.submit("note", { text: "v2" }))
    const r3 = await drive(w, victim.doc.submit("note", { text: "v3" }))
    expect([r2.seq, r3.seq]).toEqual([2, 3])
    const log = await authorityLog(w)
    expect(log.map((e) => [e.clientId, e.clientSeq, (e.args as { text: string }).text])).toEqual([[id, 1, "v1"], [id, 2, "v2"], [id, 3, "v3"]])
  })

  test("the clientId -> principal binding survives a hub restart: an attacker who connects first with alice's clientId is refused, alice is not", async () => {
    const storage = new MemoryStorage()
    const w = world({ authenticate: true, storage })
    const hub1 = w.start()
    const alice = await client(w, "alice", { storage: new MemoryStorage(), credentials: "alice" })
    await drive(w, alice.doc.submit("note", { text: "a1" }))
    const aliceId = alice.client.clientId
    alice.client.disconnect()
    await hub1.close()
    w.net.stopServer()
    w.start()
    const mallory = raw(w, "mallory", aliceId, { credentials: "mallory", secret: "mallory's-own-secret-123" })
    await w.rt.run({ forMs: 50 })
    expect(mallory.refused()).toMatchObject({ code: "unauthorized", message: expect.stringContaining("belongs to another user") })
    alice.client.connect()
    const r = await drive(w, alice.doc.submit("note", { text: "a2" }))
    expect(r.seq).toBe(2)
  })

  test("a hub that gains an authenticate hook binds each device it knew as anonymous to the user signing in on it; another user with the id is still refused", async () => {
    // Auth turned on for a running deployment: every client was recorded as "anonymous", and
    // was refused for good ("belongs to another user") though its secret matched.
    const storage = new MemoryStorage()
    const open = world({ storage })
    const hub1 = open.start()
    const before = raw(open, "ann", "ann-device-1")
    await open.rt.run({ forMs: 50 })
    before.submit([{ clientSeq: 1, name: "note", args: { text: "before auth" } }])
    await open.rt.run({ forMs: 50 })
    expect(before.outcomes()).toContainEqual({ clientSeq: 1, seq: 1 })
    await hub1.close()
    const secured = world({ authenticate: true, storage })
    const hub2 = secured.start()
    // The same device (its secret), ann signed in on it.
    const device = raw(secured, "ann", "ann-device-1", { credentials: "ann" })
    await secured.rt.run({ forMs: 50 })
    expect(device.refused()).toBeUndefined()
    device.submit([{ clientSeq: 2, name: "note", args: { text: "after auth" } }], 1)
    await secured.rt.run({ forMs: 50 })
    expect(device.outcomes()).toContainEqual({ clientSeq: 2, seq: 2 })
    // Bound to ann from now on: bob is refused the id, even with the device's secret.
    const bob = raw(secured, "bob", "ann-device-1", { credentials: "bob" })
    await secured.rt.run({ forMs: 50 })
    expect(bob.refused()).toMatchObject({ code: "unauthorized", message: expect.stringContaining("belongs to another user") })
    // The hook taken away again: the hub has no users to tell apart, and the device proves itself.
    await hub2.close()
    const plain = world({ storage })
    plain.start()
    const back = raw(plain, "ann", "ann-device-1")
    await plain.rt.run({ forMs: 50 })
    expect(back.refused()).toBeUndefined()
    back.submit([{ clientSeq: 3, name: "note", args: { text: "hook gone" } }], 2)
    await plain.rt.run({ forMs: 50 })
    expect(back.outcomes()).toContainEqual({ clientSeq: 3, seq: 3 })
  })

  test("a hook's user 'anonymous' is no new device of an id recorded before the hook", async () => {
    // A hook whose guests (or one user) are "anonymous", the principal every client of a hub
    // without a hook was recorded under: with its own secret, such a user was a new
    // incarnation of any id recorded before the hook (it wrote as that client), and 64 of them
    // pushed the device of first contact out of the record (locked out when it signed in).
    const storage = new MemoryStorage()
    const open = world({ storage })
    const hub1 = open.start()
    const victim = raw(open, "victim", "victim-device")
    await open.rt.run({ forMs: 50 })
    expect(victim.refused()).toBeUndefined()
    await hub1.close()
    const secured = world({ authenticate: true, storage })
    secured.start()
    for (let i = 0; i < 3; i++) {
      const asGuest = raw(secured, `guest${i}`, "victim-device", { credentials: "anonymous", secret: `mallory's-own-secret-12${i}` })
      await secured.rt.run({ forMs: 50 })
      expect(asGuest.refused()).toMatchObject({ code: "unauthorized", message: expect.stringContaining("registered to another device") })
      asGuest.submit([{ clientSeq: 2, name: "note", args: { text: "FORGED" } }])
      await secured.rt.run({ forMs: 50 })
    }
    expect((await authorityLog(secured)).map((e) => (e.args as { text?: string }).text)).not.toContain("FORGED")
    // Another "anonymous" guest with an id of its own is welcome.
    const guest = raw(secured, "guest", "guest-device", { credentials: "anonymous" })
    await secured.rt.run({ forMs: 50 })
    expect(guest.refused()).toBeUndefined()
    // The device of first contact, signed in, gets its id.
    const owner = raw(secured, "ann", "victim-device", { credentials: "ann" })
    await secured.rt.run({ forMs: 50 })
    expect(owner.refused()).toBeUndefined()
  })

  test("new devices of one user on its clientId are bounded as new clients are", async () => {
    // Each new secret is a new incarnation: a durable record's rewrite, kept in the identity cache.
    const w = world({ authenticate: true, limits: { newClientsPerSecond: 2, newClientBurst: 5 } })
    w.start()
    let welcomed = 0
    let limited = 0
    for (let i = 0; i < 60; i++) {
      const c = raw(w, `dev${i}`, "mallory-id-000001", { credentials: "mallory", secret: `fresh-secret-number-${String(i).padStart(6, "0")}` })
      await w.rt.run({ forMs: 5 })
      if (c.welcomed()) welcomed++
      if (c.closed === "rate-limited") limited++
      c.close()
    }
    // The burst (the first device and 4 more) and what 0.3 s of refill allows: not 60.
    expect(welcomed).toBeLessThanOrEqual(7)
    expect(limited).toBeGreaterThan(50)
  })

  test("without an authenticate hook, a fixed clientId without storage is refused on its second run, never answered with old outcomes", async () => {
    const w = world()
    w.start()
    const first = await client(w, "bot-run-1", { clientId: "bot-7" })
    await drive(w, first.doc.submit("add", { id: "a", title: "first run" }))
    await drive(w, first.client.close())
    const second = await client(w, "bot-run-2", { clientId: "bot-7" })
    const r = second.doc.submit("add", { id: "b", title: "second run" })
    await w.rt.run({ forMs: 100 })
    expect(second.client.status).toBe("refused")
    expect(second.client.refusal).toMatchObject({ code: "unauthorized", message: expect.stringContaining("registered to another device") })
    let settled = false
    void r.then(() => { settled = true }, () => { settled = true })
    await w.rt.run({ forMs: 10 })
    expect(settled).toBe(false) // kept pending (and in the outbox), not falsely confirmed
    expect((await authorityLog(w)).map((e) => (e.args as { id: string }).id)).toEqual(["a"])
  })

  test("with an authenticate hook, the same user's fresh process reusing its clientId gets its commands renumbered and applied, not old outcomes", async () => {
    const w = world({ authenticate: true })
    w.start()
    const first = await client(w, "run-1", { clientId: "worker", credentials: "ops" })
    await drive(w, first.doc.submit("add", { id: "a", title: "one" }))
    await drive(w, first.doc.submit("add", { id: "b", title: "two" }))
    await drive(w, first.client.close())
    const second = await client(w, "run-2", { clientId: "worker", credentials: "ops" })
    // Same name and clientSeq 1 as the first run's first command, different arguments; and
    // clientSeq 2 with exactly the first run's command 2: neither is a retry.
    const r1 = second.doc.submit("add", { id: "c", title: "three" })
    const r2 = second.doc.submit("add", { id: "b2", title: "two" })
    const [c1, c2] = await drive(w, Promise.all([r1, r2]))
    expect([c1.seq, c2.seq]).toEqual([3, 4])
    expect([r1.clientSeq, r2.clientSeq]).toEqual([3, 4])
    const log = await authorityLog(w)
    expect(log.map((e) => [e.clientSeq, (e.args as { id: string }).id])).toEqual([[1, "a"], [2, "b"], [3, "c"], [4, "b2"]])
    expect(Object.keys(second.doc.state.items).sort()).toEqual(["a", "b", "b2", "c"])
  })
})

describe("exactly-once with bounded memory (items 8, 10)", () => {
  test("a retry whose outcome fell out of the window learns 'applied at seq <= X', never a rejection", async () => {
    const w = world({ maxOutcomesPerClient: 4 })
    w.start()
    const c = raw(w, "c", "windowed")
    await w.rt.run({ forMs: 50 })
    for (let i = 1; i <= 12; i++) c.submit([{ clientSeq: i, name: "note", args: { text: `n${i}` } }])
    await w.rt.run({ forMs: 50 })
    c.submit([{ clientSeq: 2, name: "note", args: { text: "n2" } }])
    await w.rt.run({ forMs: 50 })
    const answers = c.outcomes().filter((o) => o.clientSeq === 2)
    expect(answers).toEqual([{ clientSeq: 2, seq: 2 }, { clientSeq: 2, seqAtMost: expect.any(Number) }])
    expect((answers[1] as { seqAtMost: number }).seqAtMost).toBeGreaterThanOrEqual(2)
    expect((await authorityLog(w)).length).toBe(12)
  })

  test("the replica resolves a receipt answered 'applied at seq <= X' as confirmed (upperBound), not rejected", async () => {
    const rt = new VirtualRuntime(1)
    const doc = new Doc(Todo, DOC, "me", undefined, rt, { state: Todo.initial(), confirmedSeq: 0, nextClientSeq: 1, snapshotSeq: 0, outbox: [] }, {})
    const events: unknown[] = []
    doc.on("confirmed", (e) => events.push(e))
    const r = doc.submit("note", { text: "x" })
    await rt.run({ forMs: 1 })
    doc.receive({ type: "entries", docId: DOC, entries: [{ seq: 1, time: 1, clientId: "other", clientSeq: 1, name: "note", args: { text: "y" } }] })
    doc.receive({ type: "results", docId: DOC, outcomes: [{ clientSeq: r.clientSeq, seqAtMost: 1 }] })
    await expect(r).resolves.toEqual({ seq: 1, upperBound: true })
    expect(events).toEqual([{ clientSeq: 1, command: "note", seq: 1, upperBound: true }])
    expect(doc.pendingCount).toBe(0)
  })

  test("a one-command commit writes a few hundred bytes, whatever the number of unacknowledged outcomes", async () => {
    const w = world()
    const batches: number[] = []
    const batch = w.storage.batch.bind(w.storage)
    w.storage.batch = (ops: ReadonlyArray<BatchOp>, o?: BatchOptions) => {
      batches.push(ops.reduce((n, op) => n + op.key.length + (op.type === "put" ? op.value.length : 0), 0))
      return batch(ops, o)
    }
    w.start()
    const c = raw(w, "c", "never-acks")
    await w.rt.run({ forMs: 50 })
    const sizes: number[] = []
    let cs = 0
    for (const backlog of [1_000, 10_000]) {
      while (cs < backlog) {
        const commands = []
        for (let k = 0; k < 500 && cs < backlog; k++) commands.push({ clientSeq: ++cs, name: "note", args: { text: "n" } })
        c.submit(commands)
        await w.rt.run({ forMs: 5 })
      }
      await w.rt.run({ forMs: 50 })
      const before = batches.length
      c.submit([{ clientSeq: ++cs, name: "note", args: { text: "one" } }])
      await w.rt.run({ forMs: 50 })
      expect(batches.length).toBe(before + 1)
      sizes.push(batches[batches.length - 1]!)
    }
    // Before: the whole record was rewritten (8 KB at 1k, 84 KB at 10k unacknowledged outcomes).
    for (const s of sizes) expect(s).toBeLessThan(400)
    // Acknowledging deletes the stored outcomes, all but those of the last ACKED_KEPT commands
    // (a store restored from a backup resends them: client-table.ts).
    c.submit([], cs)
    await w.rt.run({ forMs: 50 })
    const kept = (await new AuthorityStore(w.storage).runs(DOC, "never-acks")).flatMap((r) => r.outcomes.map((_, i) => r.first + i))
    expect(kept.length).toBeGreaterThanOrEqual(ACKED_KEPT)
    // Whole runs are kept: at most one submit's worth (500) more.
    expect(kept.length).toBeLessThan(ACKED_KEPT + 500)
    expect(kept.at(-1)).toBe(cs)
  })
})

describe("the authority serves only what is durable, and says what it finds (item 13)", () => {
  test("a subscriber ahead of the hub, arriving while a batch is being written, gets the committed state, then the batch once", async () => {
    const w = world({ storageMs: 30 })
    w.start()
    const writer = raw(w, "writer", "writer-1")
    await w.rt.run({ forMs: 200 })
    writer.submit([{ clientSeq: 1, name: "note", args: { text: "a" } }])
    await w.rt.run({ forMs: 200 })
    writer.submit([{ clientSeq: 2, name: "note", args: { text: "b" } }])
    await w.rt.run({ forMs: 5 }) // the batch holding seq 2 is being written
    const got: ServerMessage[] = []
    const conn: Connection<ClientMessage> = w.net.transport("ahead").connect({
      onOpen: () => {
        conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId: "ahead-1", secret: secretFor("ahead-1"), machines: [] })
        conn.send({ type: "subscribe", docId: DOC, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 50, ackedClientSeq: 0 })
      },
      onMessage: (m) => got.push(m),
      onClose: () => {},
    })
    await w.rt.run({ forMs: 300 })
    // The state comes as a snapshot stream (begin, chunks, end), then the log after it.
    const begin = got.find((m) => m.type === "snapshot-begin") as Extract<ServerMessage, { type: "snapshot-begin" }>
    const chunks = got.filter((m): m is Extract<ServerMessage, { type: "snapshot-chunk" }> => m.type === "snapshot-chunk")
    expect(got.some((m) => m.type === "snapshot-end")).toBe(true)
    const bytes = new Uint8Array(begin.size)
    for (const c of chunks) bytes.set(c.bytes, c.offset)
    const seqs = got.flatMap((m) => (m.type === "entries" ? m.entries.map((e) => e.seq) : []))
    // Either the snapshot was taken before the batch (seq 1, then entry 2) or after it (seq 2):
    // never a state that holds an entry not yet durable, and never an entry twice.
    expect(begin.seq === 1 ? seqs : [begin.seq, ...seqs]).toEqual([2])
    // And the state is exactly the state at its seq: one note per entry up to it.
    expect((decodeCanonical(bytes) as { log: string[] }).log).toHaveLength(begin.seq)
  })

  test("a stored checkpoint that the replay does not reproduce is reported on load", async () => {
    const w = world()
    const hub = w.start()
    const c = raw(w, "c", "c-1")
    await w.rt.run({ forMs: 50 })
    c.submit([{ clientSeq: 1, name: "note", args: { text: "x" } }])
    await w.rt.run({ forMs: 50 })
    await hub.close()
    const head = await new AuthorityStore(w.storage).head(DOC)
    expect(head?.seq).toBe(1)
    // A head whose checkpoint at seq 1 holds another hash than the replay gives.
    await w.storage.batch([{ type: "put", key: K.authHead(DOC), value: encodeCanonical([head!.machine, head!.version, head!.seq, head!.lastTime, 1, "0000000000000000"]) }])
    const again = new Hub({ machines: [Todo], storage: w.storage, runtime: w.rt, onEvent: (e) => w.events.push(e) })
    await again.doc(DOC, Todo)
    expect(w.events).toContainEqual(expect.objectContaining({ type: "doc-report", code: "checkpoint-mismatch", docId: DOC }))
  })

  test("log entries the machine refuses on replay (its logic changed without a version) are reported once on load", async () => {
    const w = world()
    const hub = w.start()
    const c = raw(w, "c", "c-1")
    await w.rt.run({ forMs: 50 })
    c.submit([1, 2, 3].map((n) => ({ clientSeq: n, name: "note", args: { text: `t${n}` } })))
    await w.rt.run({ forMs: 50 })
    await hub.close()
    // The same name, version and fingerprint, but "note" now refuses what it took.
    const Stricter = defineMachine({ ...Todo, commands: { ...Todo.commands, note: { args: Todo.commands.note.args, apply: (_s: unknown, _a: unknown, ctx: { reject(r: string): never }) => ctx.reject("Notes are closed.") } } })
    const again = new Hub({ machines: [Stricter], storage: w.storage, runtime: w.rt, onEvent: (e) => w.events.push(e) })
    await again.doc(DOC, Stricter)
    const reports = w.events.filter((e) => e.type === "doc-report" && e.code === "replay-refused")
    expect(reports).toEqual([expect.objectContaining({ docId: DOC, message: expect.stringContaining("3 logged entries were refused") })])
    expect((reports[0] as { message: string }).message).toMatch(/first at seq 1 \(rejected: Notes are closed\.\)/)
  })

  test("a document written by a newer version of its machine is not loaded by an older one", async () => {
    const w = world()
    const Todo2 = defineMachine({ ...Todo, version: 2 })
    const newer = new Hub({ machines: [Todo2], storage: w.storage, runtime: w.rt })
    const doc = await newer.doc(DOC, Todo2)
    doc.submit({ send() {}, close() {}, bufferedAmount: 0 }, "c", { type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "note", args: { text: "v2" } }], ackedClientSeq: 0 })
    await w.rt.run({ forMs: 10 })
    await newer.close()
    const older = new Hub({ machines: [Todo], storage: w.storage, runtime: w.rt })
    await expect(older.doc(DOC, Todo)).rejects.toMatchObject({ code: "machine-mismatch", message: expect.stringContaining("v2; this hub runs v1") })
  })
})

describe("resources and durability (items 14, 16)", () => {
  test("a connection that never says hello is closed with handshake-timeout after 10 s", async () => {
    const w = world()
    w.start()
    let closed: string | undefined
    w.net.transport("silent").connect({ onMessage: () => {}, onClose: (i) => { closed = i.code } })
    await w.rt.run({ forMs: 9_900 })
    expect(closed).toBeUndefined()
    await w.rt.run({ forMs: 200 })
    expect(closed).toBe("handshake-timeout")
    expect(w.events).toContainEqual(expect.objectContaining({ type: "limit", code: "handshake-timeout" }))
  })

  test("commits are fsynced by default; sync: false is the opt-out", async () => {
    for (const [option, expected] of [[undefined, true], [false, false]] as const) {
      const rt = new VirtualRuntime(2)
      const storage = new MemoryStorage()
      const seen: Array<boolean | undefined> = []
      const batch = storage.batch.bind(storage)
      storage.batch = (ops, o) => {
        seen.push(o?.sync)
        return batch(ops, o)
      }
      const hub = new Hub({ machines: [Todo], storage, runtime: rt, ...(option === undefined ? {} : { sync: option }) })
      const doc = await hub.doc(DOC, Todo)
      doc.submit({ send() {}, close() {}, bufferedAmount: 0 }, "c", { type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "note", args: { text: "x" } }], ackedClientSeq: 0 })
      await rt.run({ forMs: 10 })
      expect(seen.at(-1)).toBe(expected)
      await hub.close()
    }
  })
})

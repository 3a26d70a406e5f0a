/**
 * A broken or hostile hub against a CanonClient. Whatever it sends, nothing throws out of the
 * transport's onMessage (over a real socket that is an uncaught exception: the app's process
 * dies), a state the replica cannot read changes nothing, and the replica stays usable.
 * The last test runs a real client process against a raw WebSocket "hub".
 */
import { spawnSync } from "node:child_process"
import fc from "fast-check"
import * as Schema from "effect/Schema"
import { CanonClient, defineMachine, encodeCanonical, type ServerMessage } from "../core/index.js"
import { hashBytes } from "../core/internal.js"
import { CodecSession, encodeClientMessage } from "../core/protocol/codec.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { scriptedTransport } from "./support/scripted-hub.js"
import { yText } from "../adapters/yjs/index.js"
import { Todo } from "./support/machines.js"
import { ROOT } from "./crash/harness.js"
import { v2Bomb } from "./support/yjs-v2-bomb.js"
import { automergeText } from "../adapters/automerge/index.js"
import { LIST_1M } from "./support/automerge-load-bombs.js"

const DOC = "list"
const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ title: "" }),
  commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: { title: string }, a: { title: string }) => void (s.title = a.title) } },
  crdt: { body: yText() },
})

const AmNote = defineMachine({
  name: "am-note",
  version: 1,
  initial: () => ({ title: "" }),
  commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s: { title: string }, a: { title: string }) => void (s.title = a.title) } },
  crdt: { body: automergeText() },
})

const setup = async <M extends typeof Todo | typeof Note | typeof AmNote>(machine: M, protocol = 1, storage = new MemoryStorage()) => {
  const hub = scriptedTransport()
  const client = await CanonClient.open({ transport: hub.transport, runtime: new VirtualRuntime(1), storage, clientId: "c1", machines: [machine] })
  await flush()
  hub.deliver({ type: "welcome", protocol, clientId: "c1" })
  const doc = await client.open(machine, DOC)
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  await flush()
  return { hub, client, doc, errors }
}

const snapshotStream = (bytes: Uint8Array, seq: number, snapshotId = seq): ServerMessage[] => [
  { type: "snapshot-begin", docId: DOC, snapshotId, seq, hash: hashBytes(bytes), size: bytes.length },
  { type: "snapshot-chunk", docId: DOC, snapshotId, offset: 0, bytes },
  { type: "snapshot-end", docId: DOC, snapshotId },
]

describe("a state the replica cannot read is refused where it arrives", () => {
  test("a state frame (a hub from before snapshot streams) of bytes that are not a canonical value", async () => {
    const { hub, doc, errors } = await setup(Todo)
    expect(() => hub.deliver({ type: "state", docId: DOC, seq: 3, hash: "x", state: Uint8Array.of(0xff, 0xff, 0xff) })).not.toThrow()
    expect(doc.confirmedSeq).toBe(0)
    expect(errors).toEqual([expect.stringMatching(/^snapshot-invalid: A snapshot of "list" was discarded: its state cannot be read/)])
    expect(hub.sent.filter((m) => m.type === "fetch-state")).toHaveLength(1)
    expect(hub.closes).toEqual([])
  })

  test("a snapshot stream whose bytes hash right but do not decode", async () => {
    const { hub, doc, errors } = await setup(Todo)
    for (const m of snapshotStream(Uint8Array.of(0xff, 0xfe, 0xfd, 0x00), 5)) expect(() => hub.deliver(m)).not.toThrow()
    expect(doc.confirmedSeq).toBe(0)
    expect(errors).toHaveLength(1)
  })

  test("a hub that keeps sending an unreadable state is asked again at most 3 times per connection", async () => {
    const { hub, errors } = await setup(Todo)
    for (let i = 0; i < 10; i++) for (const m of snapshotStream(Uint8Array.of(0xff, i), 5 + i)) hub.deliver(m)
    expect(hub.sent.filter((m) => m.type === "fetch-state")).toHaveLength(3)
    expect(errors).toHaveLength(10)
  })

  test("a CRDT field that does not load changes nothing: the confirmed state stays, pending commands stay on top", async () => {
    const { hub, doc, errors } = await setup(Note)
    void doc.submit("rename", { title: "mine" })
    doc.crdt.body.insert(0, "local text")
    await flush()
    const bad = encodeCanonical({ title: "hub's", $crdt: { body: Uint8Array.of(1, 2, 3, 4, 5) } })
    for (const m of snapshotStream(bad, 7)) expect(() => hub.deliver(m)).not.toThrow()
    await flush()
    expect(doc.confirmedSeq).toBe(0)
    expect(doc.state).toEqual({ title: "mine" })
    expect(doc.crdt.body.toString()).toBe("local text")
    expect(errors).toEqual([expect.stringMatching(/^snapshot-invalid: .*cannot be read/)])
    // The replica still works: a good snapshot after it installs, with the pending command on top.
    const good = encodeCanonical({ title: "hub's" })
    for (const m of snapshotStream(good, 8)) hub.deliver(m)
    await flush()
    expect(doc.confirmedSeq).toBe(8)
    expect(doc.state).toEqual({ title: "mine" })
  })

  test("a CRDT field whose Yjs V2 state claims more structs than a field may hold is refused before decoding: nothing changes, nothing is stored", async () => {
    const storage = new MemoryStorage()
    const { hub, client, doc, errors } = await setup(Note, 1, storage)
    for (const m of snapshotStream(encodeCanonical({ title: "hub's" }), 3)) hub.deliver(m)
    await doc.whenStored()
    doc.crdt.body.insert(0, "local text")
    // 2^22 + 1 structs in 24 bytes (Yjs took 1 s and 136 MB a million; 10^8 killed the process).
    const bomb = encodeCanonical({ title: "bomb", $crdt: { body: encodeCanonical(["y1", v2Bomb((1 << 22) + 1), []]) } })
    expect(bomb.length).toBeLessThan(100)
    const t0 = performance.now()
    for (const m of snapshotStream(bomb, 7)) expect(() => hub.deliver(m)).not.toThrow()
    // A bound against Yjs decoding the 2^22 structs (seconds and hundreds of MB), not a speed target.
    expect(performance.now() - t0).toBeLessThan(2_000)
    await doc.whenStored()
    expect(doc.confirmedSeq).toBe(3)
    expect(doc.state).toEqual({ title: "hub's" })
    expect(doc.crdt.body.toString()).toBe("local text")
    expect(errors).toEqual([expect.stringMatching(/^snapshot-invalid: .*cannot be read .*more than 4194304 structs/)])
    await client.close()
    const again = await setup(Note, 1, storage)
    expect(again.doc.confirmedSeq).toBe(3)
    expect(again.doc.state).toEqual({ title: "hub's" })
    await again.client.close()
  })

  test("a CRDT field whose Automerge state measures past a field's bounds is refused before Automerge decodes it: nothing changes, nothing is stored", async () => {
    const storage = new MemoryStorage()
    const { hub, client, doc, errors } = await setup(AmNote, 1, storage)
    for (const m of snapshotStream(encodeCanonical({ title: "hub's" }), 3)) hub.deliver(m)
    await doc.whenStored()
    doc.crdt.body.splice(0, 0, "local text")
    // 1,054 bytes of 1,000,000 list elements inserted and deleted: A.load took 4-5 s and 233 MB.
    const bomb = encodeCanonical({ title: "bomb", $crdt: { body: encodeCanonical(["a1", LIST_1M, []]) } })
    expect(bomb.length).toBeLessThan(1200)
    for (const m of snapshotStream(bomb, 7)) expect(() => hub.deliver(m)).not.toThrow()
    await doc.whenStored()
    expect(doc.confirmedSeq).toBe(3)
    expect(doc.state).toEqual({ title: "hub's" })
    expect(doc.crdt.body.text).toBe("local text")
    expect(errors).toEqual([expect.stringMatching(/^snapshot-invalid: .*cannot be read .*The Automerge state is not loaded: the columns decode to more than 1048576 entries/)])
    await client.close()
    const again = await setup(AmNote, 1, storage)
    expect(again.doc.confirmedSeq).toBe(3)
    expect(again.doc.state).toEqual({ title: "hub's" })
    await again.client.close()
  })

  test("an announced size is not allocated before the bytes come", async () => {
    const { hub } = await setup(Todo)
    const before = process.memoryUsage().arrayBuffers
    hub.deliver({ type: "snapshot-begin", docId: DOC, snapshotId: 1, seq: 9, hash: "h", size: 512 * 1024 * 1024 })
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
  })
})

// ---- numbers the hub sends ----

describe("a clientSeq from the hub that no outbox can be numbered from changes nothing", () => {
  test.each([
    ["sequence-reset", Number.MAX_SAFE_INTEGER],
    ["sequence-reset", 2 ** 52],
    ["sequence-gap", 0],
  ])("%s at %d: every command stays, under its number, stored and sendable", async (code, at) => {
    const storage = new MemoryStorage()
    const { hub, client, doc, errors } = await setup(Todo, 1, storage)
    for (let i = 0; i < 4; i++) void doc.submit("add", { id: `t${i}`, title: `c${i}` }).catch(() => {})
    await doc.whenStored()
    hub.deliver({ type: "error", docId: DOC, code, message: "renumber", seq: at })
    await doc.whenStored()
    expect(doc.pending.map((p) => p.clientSeq)).toEqual([1, 2, 3, 4])
    expect(errors).toEqual([expect.stringMatching(/^protocol-error: The hub asked to number the commands of "list" from \d+; 4 pending command\(s\) can only be numbered from 1 to 4503599627370496\. Ignored\.$/)])
    await client.close()
    const again = await setup(Todo, 1, storage)
    expect(again.doc.pending.map((p) => p.clientSeq)).toEqual([1, 2, 3, 4])
    for (const m of again.hub.sent) expect(() => encodeClientMessage(m, { version: 1 })).not.toThrow()
    await again.client.close()
  })

  test("a reset the outbox can take still renumbers it", async () => {
    const { hub, client, doc, errors } = await setup(Todo)
    for (let i = 0; i < 2; i++) void doc.submit("add", { id: `t${i}`, title: `c${i}` }).catch(() => {})
    await doc.whenStored()
    hub.deliver({ type: "error", docId: DOC, code: "sequence-reset", message: "renumber", seq: 7 })
    await doc.whenStored()
    expect(doc.pending.map((p) => p.clientSeq)).toEqual([7, 8])
    expect(errors).toEqual([])
    await client.close()
  })
})

// ---- any sequence of messages ----

const bytes = fc.uint8Array({ maxLength: 48 })
const plain = fc.jsonValue({ maxDepth: 4 })
const seq = fc.nat({ max: 40 })
const entry = fc.record({
  seq,
  time: fc.nat(),
  clientId: fc.constantFrom("c1", "c2", "__proto__"),
  clientSeq: fc.nat({ max: 10 }),
  name: fc.constantFrom("add", "toggle", "nope", "constructor", "$batch"),
  args: fc.oneof(plain, fc.record({ id: fc.string(), title: fc.string() }), bytes),
})
const message: fc.Arbitrary<ServerMessage[]> = fc.oneof(
  fc.record({ type: fc.constant("state" as const), docId: fc.constant(DOC), seq, hash: fc.string(), state: fc.oneof(bytes, plain.map((v) => encodeCanonical(v))) }).map((m) => [m]),
  fc.tuple(fc.oneof(bytes, plain.map((v) => encodeCanonical(v)), fc.record({ items: fc.dictionary(fc.string(), plain) }).map((v) => encodeCanonical(v))), seq).map(([b, s]) => snapshotStream(b, s)),
  fc.record({ type: fc.constant("entries" as const), docId: fc.constant(DOC), entries: fc.array(entry, { maxLength: 4 }), checkpoint: fc.option(fc.record({ seq, hash: fc.string() }), { nil: undefined }) }).map((m) => [m]),
  // Protocol 2's compact form: arguments are schema-encoded bytes, own entries may come elided.
  fc.record({ type: fc.constant("entries" as const), docId: fc.constant(DOC), entries: fc.array(entry.map((e) => ({ ...e, args: e.args instanceof Uint8Array ? e.args : encodeCanonical(e.args) })), { maxLength: 4 }), compact: fc.constant(true as const), elide: fc.array(seq, { maxLength: 3 }).map((s) => new Set(s)) }).map((m) => [m]),
  fc.record({ type: fc.constant("results" as const), docId: fc.constant(DOC), outcomes: fc.array(fc.oneof(fc.record({ clientSeq: fc.nat({ max: 6 }), seq }), fc.record({ clientSeq: fc.nat({ max: 6 }), seqAtMost: seq }), fc.record({ clientSeq: fc.nat({ max: 6 }), rejection: fc.record({ code: fc.constantFrom("rejected", "invalid-args"), message: fc.string() }) })), { maxLength: 3 }) }).map((m) => [m as ServerMessage]),
  fc.record({ type: fc.constant("checkpoint" as const), docId: fc.constant(DOC), seq, hash: fc.string() }).map((m) => [m]),
  fc.record({ type: fc.constant("synced" as const), docId: fc.constant(DOC), seq }).map((m) => [m]),
  fc.record({ type: fc.constant("presence" as const), docId: fc.constant(DOC), clientId: fc.string(), state: plain }).map((m) => [m as ServerMessage]),
  // Numbers at the ends too: 0, and where doubles stop counting (2^53).
  fc.record({ type: fc.constant("error" as const), docId: fc.constant(DOC), code: fc.constantFrom("sequence-gap", "sequence-reset", "update-required", "x"), message: fc.string(), seq: fc.option(fc.oneof(seq, fc.constantFrom(2 ** 52 - 1, 2 ** 53 - 2, Number.MAX_SAFE_INTEGER)), { nil: undefined }) }).map((m) => [m as ServerMessage]),
)

test("no sequence of hub messages throws out of onMessage, and the replica stays usable", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(1, 2), fc.array(message, { maxLength: 12 }), fc.array(fc.nat({ max: 3 }), { maxLength: 4 }), async (protocol, script, submits) => {
      const { hub, client, doc } = await setup(Todo, protocol)
      for (const [i, n] of submits.entries()) for (let k = 0; k < n; k++) void doc.submit("add", { id: `x${i}.${k}`, title: "t" })
      for (const batch of script) {
        for (const m of batch) expect(() => hub.deliver(m)).not.toThrow()
        await flush()
      }
      expect(() => doc.state).not.toThrow()
      expect(() => void doc.submit("add", { id: "last", title: "t" })).not.toThrow()
      await flush()
      // Each message is refused where it arrives: none needs the client's last resort (closing the connection).
      expect(hub.closes).toEqual([])
      // Whatever numbers the hub sent, every command keeps a number of its own that a submit can carry...
      const numbers = doc.pending.map((p) => p.clientSeq)
      expect(new Set(numbers).size).toBe(numbers.length)
      for (const n of numbers) expect(n >= 1 && Number.isSafeInteger(n)).toBe(true)
      // ...and all the client sent can be framed (a message that cannot is sent again at every reconnect).
      const session = new CodecSession()
      for (const m of hub.sent) expect(() => encodeClientMessage(m, { version: protocol, session })).not.toThrow()
      await client.close()
    }),
    { numRuns: 200 },
  )
}, 120_000)

test("a real client process survives a hub that sends an unreadable state over a WebSocket", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "test/support/garbage-state-hub.ts"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 })
  expect({ status: r.status, out: r.stdout.trim(), err: r.stderr.split("\n").filter((l) => /Error/.test(l)).slice(0, 3) }).toEqual({ status: 0, out: "survived: snapshot-invalid", err: [] })
}, 70_000)

test("a snapshot event says received == size only once the state is installed: never for bytes all in but not verified", async () => {
  const { hub, doc } = await setup(Todo)
  const events: Array<{ seq: number; received: number; size: number }> = []
  doc.on("snapshot", (e) => events.push({ ...e }))
  const state = encodeCanonical({ items: { a: { title: "A", done: false, order: 1 } }, count: 1, log: [] })
  const [begin, chunk, end] = snapshotStream(state, 3)
  hub.deliver(begin!)
  hub.deliver(chunk!)
  await flush()
  // Every byte is in; nothing is verified or installed yet.
  expect(events.some((e) => e.received === e.size)).toBe(false)
  // A corrupt stream of the same size ends without an install.
  const bad = state.slice()
  bad[bad.length - 1]! ^= 1
  hub.deliver({ type: "snapshot-begin", docId: DOC, snapshotId: 4, seq: 4, hash: hashBytes(state), size: state.length })
  hub.deliver({ type: "snapshot-chunk", docId: DOC, snapshotId: 4, offset: 0, bytes: bad })
  hub.deliver({ type: "snapshot-end", docId: DOC, snapshotId: 4 })
  await flush()
  expect(events.some((e) => e.received === e.size)).toBe(false)
  // The good one, ended: installed, and said so once.
  hub.deliver(begin!)
  hub.deliver(chunk!)
  hub.deliver(end!)
  await flush()
  expect(events.filter((e) => e.received === e.size)).toEqual([{ seq: 3, received: state.length, size: state.length }])
  expect(doc.confirmedSeq).toBe(3)
})

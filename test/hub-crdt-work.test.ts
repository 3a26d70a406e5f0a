/**
 * CRDT field updates pay for their work where the submit enters. A few bytes of CRDT update
 * can stand for seconds of hub work (an Automerge change deleting 100,000 characters is 153
 * bytes; validating and merging it took 2.8 s), and the command rate counted it as one
 * command: a client could hold the hub by sending such changes at the rate of ordinary
 * commands. Each engine's `weigh` reads the work from the bytes; the hub takes it from the
 * client's work bucket (`workPerSecond`, `workBurst`).
 */
import { CanonClient, Hub, defineMachine, type HubEvent, type HubLimits } from "../core/index.js"
import type { ConnectionAcceptor } from "../core/ports/transport.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { yText } from "../adapters/yjs/index.js"
import * as Y from "yjs"
import * as Schema from "effect/Schema"

const Notes = defineMachine({
  name: "notes", version: 1, initial: () => ({ n: 0 }),
  commands: { bump: { args: Schema.Struct({}), apply: (s: { n: number }) => void s.n++ } },
  crdt: { body: automergeText(), title: yText() },
})
/** µs of CRDT work a second, and at once. */
const RATE = 50_000
const BURST = 50_000
const CHARS = 7_500

/** Updates of the `body` field as a client's field makes them: insert CHARS characters, delete them, and again. */
const heavyUpdates = (n: number): unknown[] => {
  const field = Notes.crdt!.body!.engine.create()
  const updates: unknown[] = []
  field.onLocalChange((u) => updates.push(u))
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) field.handle.splice(0, 0, "x".repeat(CHARS))
    else field.handle.splice(0, CHARS, "")
  }
  field.destroy()
  return updates
}

const world = (acceptor: (hub: Hub) => ConnectionAcceptor = (hub) => hub, limits: Partial<HubLimits> = {}) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), limits: { workPerSecond: RATE, workBurst: BURST, ...limits } })
  net.listen(acceptor(hub))
  const received: ServerMessage[] = []
  let closed: string | undefined
  const conn = net.transport("c").connect({ onOpen: () => {}, onMessage: (m) => void received.push(m as ServerMessage), onClose: (i) => void (closed = i.code) })
  const send = (m: ClientMessage) => conn.send(m)
  const start = async (wait = true) => {
    await rt.run({ forMs: 5 })
    send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "writer00000000", machines: [], secret: newClientSecret(rt) })
    send({ type: "subscribe", docId: "d", machine: Notes.name, version: Notes.version, fingerprint: Notes.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    if (wait) await rt.run({ forMs: 20 })
  }
  let clientSeq = 0
  const submitAll = (updates: unknown[]) =>
    updates.forEach((args) => send({ type: "submit", docId: "d", commands: [{ clientSeq: ++clientSeq, name: "$crdt.body", args }], ackedClientSeq: 0 }))
  const bump = (n: number) => send({ type: "submit", docId: "d", commands: Array.from({ length: n }, () => ({ clientSeq: ++clientSeq, name: "bump", args: {} })), ackedClientSeq: 0 })
  const outcomes = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : []))
  return { rt, hub, events, start, submitAll, bump, outcomes, received, closed: () => closed }
}

test("weigh reads the work from the bytes: an Automerge change of 153 bytes deleting 100,000 characters weighs seconds, a Yjs update its bytes", () => {
  const field = Notes.crdt!.body!.engine.create()
  const updates: unknown[] = []
  field.onLocalChange((u) => updates.push(u))
  field.handle.splice(0, 0, "x".repeat(100_000))
  field.handle.splice(0, 100_000, "")
  const [insert, del] = updates as Uint8Array[][]
  const bytes = (u: Uint8Array[]) => u.reduce((n, c) => n + c.length, 0)
  expect(bytes(del!)).toBeLessThan(300)
  const weigh = Notes.crdt!.body!.engine.weigh
  expect(weigh(del)).toBeGreaterThanOrEqual(100_000 * 20)
  expect(weigh(insert)).toBeGreaterThanOrEqual(100_000 * 20)
  // What validate refuses unread weighs little: not a list, too many bytes.
  expect(weigh("no")).toBe(0)
  expect(weigh([new Uint8Array(300 << 10)])).toBeLessThan(100_000)

  const doc = new Y.Doc()
  doc.getText("t").insert(0, "y".repeat(20_000))
  const y = Y.encodeStateAsUpdate(doc)
  expect(Notes.crdt!.title!.engine.weigh(y)).toBeGreaterThanOrEqual(y.length)
  field.destroy()
})

test.each([
  ["after their subscribe was handled", true],
  ["sent in one burst with the hello and the subscribe", false],
])("a paused transport: heavy CRDT updates are held until their work is paid for, and all are merged (%s)", async (_, wait) => {
  const w = world()
  await w.start(wait)
  const updates = heavyUpdates(4)
  const owed = updates.reduce((n: number, u) => n + Notes.crdt!.body!.engine.weigh(u), 0)
  expect(owed).toBeGreaterThan(4 * CHARS * 20)
  const t0 = w.rt.now()
  w.submitAll(updates)
  for (let i = 0; i < 600 && w.outcomes().length < updates.length; i++) await w.rt.run({ forMs: 100 })
  const took = w.rt.now() - t0
  expect(w.outcomes().map((o) => ("rejection" in o ? o.rejection : "ok"))).toEqual(updates.map(() => "ok"))
  // The last update was read only once the bucket had paid for the ones before it.
  const owedBeforeLast = owed - Notes.crdt!.body!.engine.weigh(updates[3])
  expect(took).toBeGreaterThanOrEqual(((owedBeforeLast - BURST) / RATE) * 1000)
  expect(w.events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(true)
  expect(w.closed()).toBeUndefined()
  await w.hub.close()
})

test("a transport that cannot pause: one heavy update goes through, a stream of them closes the connection rate-limited", async () => {
  const w = world((hub) => ({
    accept: (conn, info) => hub.accept({ send: (m) => conn.send(m), close: (c, r) => conn.close(c, r), get bufferedAmount() { return conn.bufferedAmount } }, info),
  }))
  await w.start()
  const updates = heavyUpdates(4)
  w.submitAll(updates)
  for (let i = 0; i < 50 && w.closed() === undefined; i++) await w.rt.run({ forMs: 10 })
  expect(w.closed()).toBe("rate-limited")
  expect(w.received.some((m) => m.type === "error" && m.code === "rate-limited")).toBe(true)
  expect(w.outcomes().length).toBeGreaterThanOrEqual(1)
  expect(w.outcomes().length).toBeLessThan(updates.length)
  await w.hub.close()
})

test("a CanonClient on protocol 2 (compact arguments) pays the same: its heavy edits are held, and all reach the hub", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), limits: { workPerSecond: RATE, workBurst: BURST } })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("c"), runtime: rt, machines: [Notes], protocol: { min: 1, max: 2 } })
  const doc = await client.open(Notes, "d")
  for (let i = 0; i < 100 && !doc.synced; i++) await rt.run({ forMs: 10 })
  expect(client.protocol).toBe(2)
  const t0 = rt.now()
  for (let i = 0; i < 4; i++) {
    if (i % 2 === 0) doc.crdt.body.splice(0, 0, "x".repeat(CHARS))
    else doc.crdt.body.splice(0, CHARS, "")
    for (let k = 0; k < 10 && doc.pendingCount === 0; k++) await Promise.resolve() // the change becomes the field's merge command
    expect(doc.pendingCount).toBe(1)
    for (let j = 0; j < 600 && doc.pendingCount > 0; j++) await rt.run({ forMs: 100 })
    expect(doc.pendingCount).toBe(0)
  }
  // Each edit is read once the ones before it are paid for: four of some 150,000 µs each,
  // past a burst of 50,000 at 50,000 a second.
  expect(rt.now() - t0).toBeGreaterThanOrEqual(7_000)
  expect(events.some((e) => e.type === "limit" && e.code === "rate-held")).toBe(true)
  await client.close()
  await hub.close()
})

test("a shorter hold does not cut a longer one short: a command-rate debt read while CRDT work holds the connection", async () => {
  // A transport whose pause still delivers what it had buffered (as a paused socket does).
  const resumes: number[] = []
  const w = world((hub) => ({
    accept: (conn, info) =>
      hub.accept({ send: (m) => conn.send(m), close: (c, r) => conn.close(c, r), get bufferedAmount() { return conn.bufferedAmount }, pause: () => {}, resume: () => void resumes.push(w.rt.now()) }, info),
  }), { commandsPerSecond: 10, commandBurst: 5 })
  await w.start()
  const [update] = heavyUpdates(1)
  const t0 = w.rt.now()
  w.submitAll([update])
  w.bump(6) // one past the burst: a 100 ms debt of commands, read while the CRDT debt holds
  const crdtHold = ((Notes.crdt!.body!.engine.weigh(update) - BURST) / RATE) * 1000
  expect(crdtHold).toBeGreaterThan(1_000)
  const after = () => resumes.filter((t) => t >= t0) // (the hello's proof paused and resumed it before)
  for (let i = 0; i < 100 && after().length === 0; i++) await w.rt.run({ forMs: 100 })
  expect(after()[0]! - t0).toBeGreaterThanOrEqual(crdtHold - 10)
  await w.hub.close()
})

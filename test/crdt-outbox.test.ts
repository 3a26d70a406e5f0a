/**
 * The CRDT outbox (core/crdt/outbox.ts): local changes coalesced while a merge is in flight
 * must never add up to a command too large to send. Each change below fits in a command on
 * its own; several of them typed (pasted) during one round trip used to be merged into one
 * update over the 256 KiB command limit, refused locally (command-too-large, a receipt nobody
 * holds, so the app was not told), and so lost: they stayed in the typist's field only, and
 * nobody else ever saw them.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Pad = defineMachine({
  name: "pad",
  version: 1,
  initial: () => ({}),
  crdt: { body: yText(), notes: automergeText() },
  commands: { noop: { args: Schema.Struct({}), apply: () => undefined } },
})

const world = () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 40, encode: true })
  const hub = new Hub({ machines: [Pad], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}


const PASTE = 90 << 10
/** 90 KiB of text, different per paste. */
const paste = (i: number) => `<${i}>`.padEnd(PASTE, String.fromCharCode(97 + i))

const clients: CanonClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

const open = async (w: ReturnType<typeof world>, name: string): Promise<Doc<typeof Pad>> => {
  const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name })
  clients.push(client)
  return client.open(Pad, "p1")
}

test("Yjs: three 90 KiB pastes during one round trip all reach the hub and every replica", async () => {
  const w = world()
  const a = await open(w, "a")
  await settleWithTurns(w.rt, 200)
  const refused: string[] = []
  a.on("rejected", (e) => refused.push(`${e.command}: ${e.rejection.code}`))
  const t = a.crdt.body
  // A keystroke goes out alone; the pastes wait behind it (coalesced): 270 KiB together.
  t.insert(0, "x")
  for (let i = 0; i < 3; i++) {
    await w.rt.run({ forMs: 2 })
    t.insert(t.length, paste(i))
  }
  await settleWithTurns(w.rt, 2000)
  expect(refused).toEqual([])
  expect(a.pendingCount).toBe(0)
  const b = await open(w, "b")
  await settleWithTurns(w.rt, 1000)
  expect(b.crdt.body.length).toBe(1 + 3 * PASTE)
  expect(b.crdt.body.toString()).toBe(t.toString())
  const authority = await w.hub.doc("p1", Pad)
  expect(b.confirmedHash()).toBe(authority.stateHash())
})

test("Automerge: three 90 KiB splices during one round trip all reach the hub and every replica", async () => {
  const w = world()
  const a = await open(w, "a")
  await settleWithTurns(w.rt, 200)
  const refused: string[] = []
  a.on("rejected", (e) => refused.push(`${e.command}: ${e.rejection.code}`))
  a.crdt.notes.splice(0, 0, "x")
  for (let i = 0; i < 3; i++) {
    await w.rt.run({ forMs: 2 })
    a.crdt.notes.splice(a.crdt.notes.text.length, 0, paste(i))
  }
  await settleWithTurns(w.rt, 2000)
  expect(refused).toEqual([])
  expect(a.pendingCount).toBe(0)
  const b = await open(w, "b")
  await settleWithTurns(w.rt, 1000)
  expect(b.crdt.notes.text.length).toBe(1 + 3 * PASTE)
  expect(b.crdt.notes.text).toBe(a.crdt.notes.text)
})

describe("under an app's smaller command limit (16 KiB), changes coalesced during a round trip stay under it", () => {
  const LIMIT = 16 << 10
  const SMALL = 6 << 10
  const small = (i: number) => `<${i}>`.padEnd(SMALL, String.fromCharCode(97 + i))
  const openLimited = async (w: ReturnType<typeof world>, name: string): Promise<Doc<typeof Pad>> => {
    const client = await CanonClient.open({ transport: w.net.transport(name), runtime: w.rt, clientId: name, maxCommandBytes: LIMIT })
    clients.push(client)
    return client.open(Pad, "p1")
  }

  test("Yjs: three 6 KiB pastes behind a keystroke all reach the hub", async () => {
    const w = world()
    const a = await openLimited(w, "a")
    await settleWithTurns(w.rt, 200)
    const refused: string[] = []
    a.on("rejected", (e) => refused.push(`${e.command}: ${e.rejection.code}`))
    const t = a.crdt.body
    t.insert(0, "x")
    for (let i = 0; i < 3; i++) {
      await w.rt.run({ forMs: 2 })
      t.insert(t.length, small(i))
    }
    await settleWithTurns(w.rt, 2000)
    expect(refused).toEqual([])
    expect(a.pendingCount).toBe(0)
    const b = await openLimited(w, "b")
    await settleWithTurns(w.rt, 1000)
    expect(b.crdt.body.toString()).toBe(t.toString())
    expect(b.crdt.body.length).toBe(1 + 3 * SMALL)
  })

  test("Automerge: three 6 KiB splices behind a keystroke all reach the hub", async () => {
    const w = world()
    const a = await openLimited(w, "a")
    await settleWithTurns(w.rt, 200)
    const refused: string[] = []
    a.on("rejected", (e) => refused.push(`${e.command}: ${e.rejection.code}`))
    a.crdt.notes.splice(0, 0, "x")
    for (let i = 0; i < 3; i++) {
      await w.rt.run({ forMs: 2 })
      a.crdt.notes.splice(a.crdt.notes.text.length, 0, small(i))
    }
    await settleWithTurns(w.rt, 2000)
    expect(refused).toEqual([])
    expect(a.pendingCount).toBe(0)
    const b = await openLimited(w, "b")
    await settleWithTurns(w.rt, 1000)
    expect(b.crdt.notes.text).toBe(a.crdt.notes.text)
    expect(b.crdt.notes.text.length).toBe(1 + 3 * SMALL)
  })
})

test("a single change over the command limit cannot be sent: the app hears of it as an error event, not silence", async () => {
  const w = world()
  const client = await CanonClient.open({ transport: w.net.transport("a"), runtime: w.rt, clientId: "a", maxCommandBytes: 4 << 10 })
  clients.push(client)
  const a = await client.open(Pad, "p1")
  await settleWithTurns(w.rt, 200)
  const errors: Array<{ code: string; message: string }> = []
  a.on("error", (e) => errors.push(e))
  a.crdt.body.insert(0, "y".repeat(10 << 10))
  await settleWithTurns(w.rt, 500)
  expect(errors).toEqual([{ code: "command-too-large", message: expect.stringMatching(/^A change to field "body" of "p1" cannot be sent, so only this replica has it: .*at most 4096/) }])
})

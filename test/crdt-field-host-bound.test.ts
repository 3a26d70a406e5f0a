/**
 * The CRDT fields of the documents a hub holds loaded share a bound (`maxHostFieldWeight`:
 * Automerge ops and changes, Yjs structs; core/authority/held-weight.ts). Each field was
 * bounded on its own (2^20 ops) and every bound across fields counted stored bytes: a field
 * of a run of one value (262,080 list pushes of null in a 141-byte change) stores in a few
 * hundred bytes and held 350 MB on the hub, so a review filled 2 documents of 3 fields to
 * 1.9 GB of hub memory with 2,411 bytes of state each. Now a merge that would take the loaded
 * fields past the bound is not judged: the client is told `hub-full` and sends it again later
 * (a rejection would have it dropped for good), and an unloaded document gives its share back.
 */
import * as Schema from "effect/Schema"
import * as Y from "yjs"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { automergeDoc } from "../adapters/automerge/index.js"
import { yArray, yText } from "../adapters/yjs/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { WirePeer } from "./support/hub-wire.js"
import { newClientSecret } from "../core/ports/runtime.js"

const Board = defineMachine({
  name: "board",
  version: 1,
  initial: () => ({}),
  crdt: { list: automergeDoc({ l: [] as unknown[] }), text: yText(), arr: yArray() },
  commands: { touch: { args: Schema.Struct({}), apply: () => {} } },
})

/** Automerge field updates as a client makes them: `count` changes, each pushing `n` nulls (a run: a few hundred bytes). */
const pushes = (count: number, n: number): unknown[] => {
  const field = (Board.crdt!.list.engine as unknown as { create(): { handle: { change(f: (x: { l: null[] }) => void): void }; onLocalChange(f: (u: unknown) => void): void; destroy(): void } }).create()
  const out: unknown[] = []
  field.onLocalChange((u) => out.push(u))
  for (let k = 0; k < count; k++) field.handle.change((x) => void x.l.push(...new Array<null>(n).fill(null)))
  field.destroy()
  return out
}

/** Yjs field updates: `count` inserts of `n` characters, each its own item (one struct each). */
const typing = (count: number, clientID: number): Uint8Array[] => {
  const y = new Y.Doc()
  y.clientID = clientID
  const out: Uint8Array[] = []
  y.on("update", (u: Uint8Array) => out.push(u))
  // Each insert at the start: a struct of its own (appends by one writer would merge into one).
  for (let i = 0; i < count; i++) y.getText("t").insert(0, "x")
  y.destroy()
  return out
}

const world = async (maxHostFieldWeight: number) => {
  const rt = new VirtualRuntime(1)
  const hub = new Hub({ machines: [Board], storage: new MemoryStorage(), runtime: rt, maxHostFieldWeight, idleDocuments: { count: 0 }, limits: { commandsPerSecond: 1e9, messagesPerSecond: 1e9, workPerSecond: 0 } as never })
  const p = new WirePeer("peer000000000001")
  p.listener = hub.accept(p.conn, { remoteAddress: "test:p" })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: p.clientId, machines: [], secret: newClientSecret(rt) })
  await rt.run({ forMs: 5 })
  const seqs = new Map<string, number>()
  /** Submits one merge to `docId`'s field: its outcome, or the error it was answered with (nothing judged: the number stays free). */
  const merge = (docId: string, field: "list" | "text" | "arr", update: unknown): Promise<unknown> => command(docId, `$crdt.${field}`, update)
  /** Submits one command to `docId` under the next number. */
  const command = async (docId: string, name: string, args: unknown): Promise<unknown> => {
    const clientSeq = (seqs.get(docId) ?? 0) + 1
    const from = p.received.length
    p.send({ type: "submit", docId, ackedClientSeq: 0, commands: [{ clientSeq, name, args }] })
    await rt.run({ forMs: 50 })
    for (const m of p.received.slice(from)) {
      if (m.type === "error" && m.docId === docId) return { code: m.code, message: m.message }
      if (m.type === "results" && m.docId === docId) for (const o of m.outcomes) if (o.clientSeq === clientSeq) {
        seqs.set(docId, clientSeq)
        return o
      }
    }
    throw new Error(`no answer for ${docId} #${clientSeq}`)
  }
  const subscribe = async (docId: string) => {
    p.send({ type: "subscribe", docId, machine: Board.name, version: Board.version, fingerprint: Board.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 10 })
  }
  const unsubscribe = async (docId: string) => {
    p.send({ type: "unsubscribe", docId })
    await rt.run({ forMs: 2_000 })
  }
  return { rt, hub, merge, command, subscribe, unsubscribe, received: () => p.received, next: (docId: string) => (seqs.get(docId) ?? 0) + 1, skip: (docId: string) => seqs.set(docId, (seqs.get(docId) ?? 0) + 1), reset: (docId: string, last: number) => seqs.set(docId, last) }
}

/** Not judged (no rejection, which would drop the edit for good): the client sends it again later. */
const hostRefusal = (max: number) => ({
  code: "hub-full",
  message: expect.stringMatching(new RegExp(`^The hub holds \\d+ ops and structs in the CRDT fields of its loaded documents and takes at most ${max}: this client sends its edits again later`)),
})

test("Automerge fields of two documents share the hub's bound: a run stored in a few hundred bytes counts every op, and an unloaded document gives its share back", async () => {
  const w = await world(8_000)
  const updates = pushes(2, 2_000)
  await w.subscribe("a")
  for (const u of updates) expect(await w.merge("a", "list", u)).toMatchObject({ seq: expect.any(Number) })
  const a = await w.hub.doc("a", Board)
  // 4,000 ops and their changes, in a state of a few hundred bytes.
  expect(a.stateSize).toBeLessThan(2_000)
  await w.subscribe("b")
  const b = pushes(1, 2_000)
  expect(await w.merge("b", "list", b[0])).toMatchObject(hostRefusal(8_000))
  expect(((await w.hub.doc("b", Board)) as unknown as { crdt: { field(n: string): { handle: { doc: { l?: unknown[] } } } } }).crdt.field("list").handle.doc.l ?? []).toHaveLength(0)
  // "a" unloaded (nobody follows it; nothing is kept idle here): "b" takes it now.
  await w.unsubscribe("a")
  expect(await w.merge("b", "list", pushes(1, 2_000)[0])).toMatchObject({ seq: expect.any(Number) })
  await w.hub.close()
})

test("what a struct or an op holds counts: a Yjs run of 5,000 empty objects (one struct) and an Automerge string of 200 KB (one op) are refused under a bound of 3,000", async () => {
  const w = await world(3_000)
  await w.subscribe("a")
  const field = (Board.crdt!.arr.engine as unknown as { create(): { handle: Y.Array<unknown>; onLocalChange(f: (u: unknown) => void): void; destroy(): void } }).create()
  const out: unknown[] = []
  field.onLocalChange((u) => out.push(u))
  field.handle.push(Array.from({ length: 5_000 }, () => ({})))
  field.destroy()
  expect(await w.merge("a", "arr" as never, out[0])).toMatchObject({ rejection: { code: "command-too-large", message: expect.stringMatching(/^crdt-too-large: The update can add \d+ ops and structs/) } })
  const list = (Board.crdt!.list.engine as unknown as { create(): { handle: { change(f: (x: { l: unknown[] }) => void): void }; onLocalChange(f: (u: unknown) => void): void; destroy(): void } }).create()
  const changes: unknown[] = []
  list.onLocalChange((u) => changes.push(u))
  list.handle.change((x) => void x.l.push("z".repeat(200_000)))
  list.destroy()
  expect(await w.merge("a", "list", changes[0])).toMatchObject({ rejection: { code: "command-too-large", message: expect.stringMatching(/^crdt-too-large: The update can add \d+ ops and structs/) } })
  await w.hub.close()
})

test("Yjs fields count their structs against the same bound", async () => {
  const w = await world(300)
  await w.subscribe("a")
  const updates = typing(250, 7)
  let taken = 0
  for (const u of updates) {
    const o = await w.merge("a", "text", u)
    if (typeof o === "object" && o !== null && "code" in o) {
      expect(o).toMatchObject(hostRefusal(300))
      break
    }
    taken++
  }
  expect(taken).toBeGreaterThan(100)
  await w.subscribe("b")
  // 60 structs in one update: what "a" left is less than that.
  expect(await w.merge("b", "text", Y.mergeUpdates(typing(60, 8)))).toMatchObject(hostRefusal(300))
  // Unloaded, "a" gives its share back.
  await w.unsubscribe("a")
  expect(await w.merge("b", "text", Y.mergeUpdates(typing(60, 8)))).toMatchObject({ seq: expect.any(Number) })
  await w.hub.close()
})

test("an update that could never fit, more than the whole bound, is refused (it would be sent again for good)", async () => {
  const w = await world(300)
  await w.subscribe("a")
  expect(await w.merge("a", "text", Y.mergeUpdates(typing(200, 9)))).toEqual({
    clientSeq: 1,
    rejection: { code: "command-too-large", message: expect.stringMatching(/^crdt-too-large: The update can add \d+ ops and structs, more than the CRDT fields of this hub's documents may hold together \(300, maxHostFieldWeight\); split it\.$/) },
  })
  await w.hub.close()
})

test("what holds no content (deleted items, deletions) is weighed too (with a reserve past the bound): 400 deleted items, taken as weightless before, are refused under a bound of 500", async () => {
  const w = await world(500)
  await w.subscribe("a")
  const y = new Y.Doc()
  y.clientID = 11
  const updates: Uint8Array[] = []
  y.on("update", (u: Uint8Array) => updates.push(u))
  y.transact(() => {
    for (let i = 0; i < 400; i++) y.getText("t").insert(0, "x")
    y.getText("t").delete(0, 400)
  })
  expect(await w.merge("a", "text", updates[0])).toMatchObject({ rejection: { code: "command-too-large", message: expect.stringMatching(/^crdt-too-large: The update can add \d+ ops and structs/) } })
  await w.hub.close()
})

test("after hub-full, nothing more of the connection is judged or answered until it sends that number again", async () => {
  const w = await world(300)
  await w.subscribe("a")
  for (const u of typing(140, 12)) expect(await w.merge("a", "text", u)).toMatchObject({ seq: expect.any(Number) })
  const refused = Y.mergeUpdates(typing(100, 13))
  expect(await w.merge("a", "text", refused)).toMatchObject(hostRefusal(300))
  // Its next number, sent before its backoff is up: neither judged nor answered (a sequence-gap had it resend everything at once).
  const refusedSeq = w.next("a")
  w.skip("a")
  await expect(w.command("a", "touch", {})).rejects.toThrow(/no answer/)
  // The refused number again, as its backoff sends it (here a plain command in its place): judged and answered.
  w.reset("a", refusedSeq - 1)
  expect(await w.command("a", "touch", {})).toEqual({ clientSeq: refusedSeq, seq: expect.any(Number) })
  await w.hub.close()
})

test("a document whose fields do not fit beside the loaded ones is not served now (hub-full, retried), and is once they go", async () => {
  const w = await world(300)
  await w.subscribe("a")
  for (const u of typing(200, 14)) await w.merge("a", "text", u)
  await w.unsubscribe("a")
  await w.subscribe("b")
  for (const u of typing(200, 15)) await w.merge("b", "text", u)
  const from = w.received().length
  await w.subscribe("a")
  expect(w.received().slice(from)).toContainEqual(expect.objectContaining({ type: "error", code: "hub-full", docId: "a", message: expect.stringMatching(/^The hub holds \d+ ops and structs in the CRDT fields of its loaded documents and takes at most 300; "a" \(\d+\) is served once others are unloaded\.$/) }))
  await w.unsubscribe("b")
  const again = w.received().length
  await w.subscribe("a")
  expect(w.received().slice(again).some((m) => m.type === "error")).toBe(false)
  await w.hub.close()
})

test("a client's edit past the bound is not lost: told hub-full, it keeps it and sends it again until there is room", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  // Idle documents kept as by default (30 s): the refusal lets them go at once.
  const hub = new Hub({ machines: [Board], storage: new MemoryStorage(), runtime: rt, maxHostFieldWeight: 500 })
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const filler = await CanonClient.open({ transport: net.transport("filler"), runtime: rt, clientId: "filler", storage: new MemoryStorage() })
  const big = await filler.open(Board, "big")
  await run(50)
  for (let i = 0; i < 300; i++) {
    big.crdt.text.insert(0, "x")
    await run(5)
  }
  await run(2_000)
  expect(big.pendingCount).toBe(0)
  const writer = await CanonClient.open({ transport: net.transport("writer"), runtime: rt, clientId: "writer", storage: new MemoryStorage() })
  const small = await writer.open(Board, "small")
  const told: string[] = []
  small.on("rejected", (e) => told.push(e.rejection.code))
  small.on("error", (e) => told.push(e.code))
  await run(50)
  for (let i = 0; i < 150; i++) small.crdt.text.insert(0, "y")
  await run(3_000)
  // Not judged: nothing rejected, the edit waits in the outbox.
  expect(told).toContain("hub-full")
  expect(told).not.toContain("command-too-large")
  expect(small.pendingCount).toBeGreaterThan(0)
  // The big document's reader leaves: kept idle, it is let go at the next refusal, and the
  // resend after that lands, well before the kept document's 30 s are up.
  await filler.close()
  await run(20_000)
  expect(small.pendingCount).toBe(0)
  const hubSmall = await hub.doc("small", Board)
  expect((hubSmall as unknown as { crdt: { field(n: string): { handle: Y.Text } } }).crdt.field("text").handle.toString()).toBe("y".repeat(150))
  await writer.close()
  await hub.close()
}, 30_000)

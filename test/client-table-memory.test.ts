/**
 * A document's client states are bounded in memory together (core/authority/client-table.ts
 * `shed`, doc-authority.ts `maxClientStateBytes`). Each clientId a document ever saw kept its
 * state in memory while the document was loaded, with up to 4 MiB of outcomes each
 * (`maxOutcomeBytesPerClient`), so clientIds made up one after another grew one document
 * without bound. States are stored with every commit, so past the bound the least recently
 * used leave memory after a commit and are read back on their next use: nothing is forgotten,
 * every retry is answered as before (a bound that forgot outcomes instead made an honest
 * client's rejected command read as applied, two reviews of session 30).
 */
import fc from "fast-check"
import { Hub, type ClientMessage, type Connection, type ServerMessage } from "../core/index.js"
import { CLIENT_STATE_BYTES, ClientTable, outcomeBytes, type Classified } from "../core/authority/client-table.js"
import { AuthorityStore } from "../core/internal.js"
import type { StoredOutcome } from "../core/store/records.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { secretFor } from "./support/secrets.js"
import { Todo } from "./support/machines.js"

const head = { machine: "todo", version: 1, seq: 0, lastTime: 0, checkpoint: undefined }

/** A table on a store, committing as a document does: drain, write, then shed. */
const tableOn = (memoryBytes: number) => {
  const store = new AuthorityStore(new MemoryStorage())
  const table = new ClientTable("d", store, { window: 100_000, clientBytes: 1 << 20, memoryBytes })
  const commit = async () => {
    await store.commit("d", { head, entries: [], ...table.drain() })
    table.shed()
  }
  return { store, table, commit }
}

const rejection = (i: number) => ({ code: "rejected" as const, message: `No item ${i} here: ${"why ".repeat(40)}` })

test("clientIds made up one after another keep a document's client states under maxClientStateBytes, and each is answered as before when read back", async () => {
  const max = 256 << 10
  const { table, commit } = tableOn(max)
  let seq = 0
  let most = 0
  const kept = new Map<string, StoredOutcome[]>()
  for (let c = 0; c < 2_000; c++) {
    const clientId = `made-up-${c}`
    await table.load([clientId])
    const outcomes: StoredOutcome[] = []
    for (let cs = 1; cs <= 10; cs++) outcomes.push(cs % 2 === 0 ? { hash: cs, rejection: rejection(c) } : { hash: cs, seq: ++seq })
    outcomes.forEach((o, i) => table.record(clientId, 1, i + 1, o))
    kept.set(clientId, outcomes)
    await commit()
    most = Math.max(most, table.memoryBytes)
  }
  // One client's states beside the bound at most (2,000 clients held about 1.3 MB before).
  const one = CLIENT_STATE_BYTES + kept.get("made-up-0")!.reduce((n, o) => n + outcomeBytes(o), 0)
  expect(most).toBeLessThanOrEqual(max + one)
  expect(table.loadedClients).toBeLessThan(400)
  // Every client, the first ones long gone from memory, is answered as it was.
  for (const c of [0, 1, 999, 1_999]) {
    const clientId = `made-up-${c}`
    await table.load([clientId])
    kept.get(clientId)!.forEach((o, i) => {
      const expected: Classified = { kind: "duplicate", outcome: "seq" in o ? { clientSeq: i + 1, seq: o.seq } : { clientSeq: i + 1, rejection: o.rejection } }
      expect(table.classify(clientId, 1, i + 1, o.hash, seq)).toEqual(expected)
    })
    expect(table.classify(clientId, 1, 11, 11, seq)).toEqual({ kind: "new" })
  }
})

test("a state with changes not yet stored is never let go: it stays until its commit", async () => {
  const { table, store } = tableOn(1)
  await table.load(["a", "b"])
  table.record("a", 1, 1, { hash: 1, seq: 1 })
  table.shed()
  // "b" has nothing to store and goes; "a" waits for its commit.
  expect(table.loadedClients).toBe(1)
  expect(table.classify("a", 1, 1, 1, 1)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, seq: 1 } })
  await store.commit("d", { head, entries: [], ...table.drain() })
  table.shed()
  expect(table.loadedClients).toBe(0)
  await table.load(["a"])
  expect(table.classify("a", 1, 1, 1, 1)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, seq: 1 } })
})

test("a client answered one command at a time is read back in a few rows, not one per outcome: its runs are merged when read and written merged", async () => {
  const { table, store, commit } = tableOn(1)
  let seq = 0
  for (let cs = 1; cs <= 1_100; cs++) {
    await table.load(["one-at-a-time"])
    table.record("one-at-a-time", 1, cs, cs % 7 === 0 ? { hash: cs, rejection: rejection(cs) } : { hash: cs, seq: ++seq })
    table.ack("one-at-a-time", 1, cs - 1)
    await commit()
  }
  // Each commit read it back (the bound is 1 byte) and merged what it read from 16 runs on.
  expect((await store.runs("d", "one-at-a-time")).length).toBeLessThanOrEqual(1_100 / 256 + 16)
  await table.load(["one-at-a-time"])
  for (const cs of [1, 100, 1_099, 1_100]) {
    const expected = cs % 7 === 0 ? { clientSeq: cs, rejection: rejection(cs) } : { clientSeq: cs, seq: cs - Math.floor(cs / 7) }
    expect(table.classify("one-at-a-time", 1, cs, cs, seq)).toEqual({ kind: "duplicate", outcome: expected })
  }
})

test("a merged run dropped before its commit leaves none of the runs it replaced in storage", async () => {
  const store = new AuthorityStore(new MemoryStorage())
  const write = new ClientTable("d", store, { window: 100_000, clientBytes: 1 << 20 })
  for (let cs = 1; cs <= 20; cs++) {
    await write.load(["c"])
    write.record("c", 1, cs, { hash: cs, seq: cs })
    await store.commit("d", { head, entries: [], ...write.drain() })
  }
  expect((await store.runs("d", "c")).map((r) => r.first)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
  // Read back by a table whose client bytes hold one run: the 20 are merged into one (to be
  // written under key 1), then pushed out by the next outcome (another incarnation's: a run of
  // its own), before any commit.
  const read = new ClientTable("d", store, { window: 100_000, clientBytes: 100 })
  await read.load(["c"])
  read.record("c", 2, 21, { hash: 21, seq: 21 })
  await store.commit("d", { head, entries: [], ...read.drain() })
  expect((await store.runs("d", "c")).map((r) => r.first)).toEqual([21])
})

test("fuzzed: with states let go after every commit, every answer equals the table that keeps them all", async () => {
  const step = fc.record({
    client: fc.integer({ min: 0, max: 1 }),
    op: fc.constantFrom("record-seq", "record-rejection", "ack", "retry"),
    n: fc.integer({ min: 1, max: 30 }),
  })
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 60, maxLength: 120 }), fc.integer({ min: 1, max: 8_000 }), async (steps, memoryBytes) => {
      const shedding = tableOn(memoryBytes)
      const keeping = tableOn(Infinity)
      const last = new Map<string, number>()
      let seq = 0
      for (const s of steps) {
        const clientId = `c${s.client}`
        const answers = await Promise.all([shedding, keeping].map(async ({ table, commit }) => {
          await table.load([clientId])
          const top = last.get(clientId) ?? 0
          let out: unknown
          if (s.op === "record-seq" || s.op === "record-rejection") {
            for (let k = 1; k <= s.n; k++) table.record(clientId, 1, top + k, s.op === "record-seq" ? { hash: top + k, seq: seq + k } : { hash: top + k, rejection: rejection(top + k) })
          } else if (s.op === "ack") table.ack(clientId, 1, Math.min(top, s.n * 3))
          else out = [1, Math.max(1, top - s.n), top, top + 1].map((cs) => table.classify(clientId, 1, cs, cs, seq))
          await commit()
          return out
        }))
        expect(answers[0]).toEqual(answers[1])
        if (s.op === "record-seq" || s.op === "record-rejection") {
          last.set(clientId, (last.get(clientId) ?? 0) + s.n)
          if (s.op === "record-seq") seq += s.n
        }
        expect(shedding.table.memoryBytes).toBeLessThanOrEqual(Math.max(memoryBytes, keeping.table.memoryBytes))
      }
    }),
    { numRuns: Number(process.env.CLIENT_TABLE_MEMORY_RUNS ?? 25) },
  )
})

/** A peer speaking frames by hand under `clientId`: one unknown command, never acknowledged. */
const once = (net: MemoryNetwork, clientId: string, got: ServerMessage[]) => {
  const conn: Connection<ClientMessage> = net.transport(clientId).connect({
    onOpen: () => {
      conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId, machines: [describeMachine(Todo)], secret: secretFor(clientId) })
      conn.send({ type: "subscribe", docId: "list", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
      conn.send({ type: "submit", docId: "list", commands: [{ clientSeq: 1, name: "x".repeat(200), args: null }], ackedClientSeq: 0 })
    },
    onMessage: (m) => got.push(m),
    onClose: () => {},
  })
  return conn
}

test("through a hub: after 300 clients under made-up ids, the first (let go from memory) is still answered as it was", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, maxClientStateBytes: 16 << 10 })
  net.listen(hub)
  const first: ServerMessage[] = []
  const firstConn = once(net, "made-up-0", first)
  await rt.run({ forMs: 50 })
  for (let c = 1; c < 300; c++) {
    const conn = once(net, `made-up-${c}`, [])
    await rt.run({ forMs: 20 })
    conn.close()
  }
  await rt.run({ forMs: 50 })
  // What the document holds (its state and its client states) stays near the bound: 300 states
  // with a kept sentence each were 352 KB.
  const doc = await (hub as unknown as { docs: Map<string, Promise<{ heldBytes: number }>> }).docs.get("list")!
  expect(doc.heldBytes).toBeLessThan(24 << 10)
  const answers = (m: ServerMessage[]) => m.flatMap((x) => (x.type === "results" ? x.outcomes : []))
  expect(answers(first)).toEqual([{ clientSeq: 1, rejection: expect.objectContaining({ code: "unknown-command" }) }])
  firstConn.send({ type: "submit", docId: "list", commands: [{ clientSeq: 1, name: "x".repeat(200), args: null }], ackedClientSeq: 0 })
  await rt.run({ forMs: 50 })
  expect(answers(first)[1]).toEqual(answers(first)[0])
})

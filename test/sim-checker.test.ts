/**
 * The simulator's checker on hand-made worlds: each invariant it claims to hold is one it
 * reports when broken (the mutant tests show the same against a mutated engine).
 */
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import type { Entry } from "../core/index.js"
import { checkWorld, ledgerKey, type DocView, type Ledger, type Submitted, type WorldView } from "./sim/checker.js"
import { diffGlobals, restoreGlobals, snapshotGlobals } from "./sim/globals.js"
import { argsKey, type HostileClients, type RawCommand, type RawConn } from "./sim/hostile.js"
import { TodoPlus } from "./sim/machines.js"
import { SimProcess } from "./sim/process.js"

const DOC = "todo-0"
const proc = (alive: boolean) => {
  const p = new SimProcess("r0", new VirtualRuntime(1), new MemoryStorage())
  p.alive = alive
  return p
}
const entry = (seq: number, clientId: string, clientSeq: number, name: string, args: unknown): Entry => ({ seq, time: seq, clientId, clientSeq, name, args })

const world = (entries: Entry[], ledger: Partial<Ledger>, extra: Partial<WorldView> = {}): WorldView => {
  const doc: DocView = {
    docId: DOC, machine: TodoPlus, replayable: true,
    authority: { seq: entries.length, hash: "h", state: TodoPlus.initial() },
    entries, reload: { seq: entries.length, hash: "h" }, joiner: { seq: entries.length, hash: "h" }, replicas: [],
  }
  return {
    docs: [doc],
    ledger: { submitted: new Map(), confirmed: new Map(), rejected: new Map(), resent: new Map(), errors: [], desyncs: [], ...ledger },
    hostile: undefined,
    replicaIds: new Set(["c1"]),
    incarnations: [],
    ...extra,
  }
}

const submitted = (clientSeq: number, name: string, args: unknown, more: Partial<Submitted> = {}): [string, Submitted] => [
  ledgerKey(DOC, "c1", clientSeq),
  { docId: DOC, clientId: "c1", clientSeq, name, replica: "r0", proc: proc(false), argsKey: argsKey(args), persisted: true, settled: true, ...more },
]

test("a consistent world passes", () => {
  const w = world([entry(1, "c1", 1, "note", { text: "a" })], {
    submitted: new Map([submitted(1, "note", { text: "a" })]),
    confirmed: new Map([[ledgerKey(DOC, "c1", 1), 1]]),
  })
  expect(checkWorld(w)).toEqual([])
})

test("a confirmed command whose entry has other arguments is reported", () => {
  const w = world([entry(1, "c1", 1, "note", { text: "forged" })], {
    submitted: new Map([submitted(1, "note", { text: "a" })]),
    confirmed: new Map([[ledgerKey(DOC, "c1", 1), 1]]),
  })
  const failures = checkWorld(w)
  expect(failures.some((f) => f.startsWith("acknowledged:") && f.includes("note"))).toBe(true)
  expect(failures.some((f) => f.startsWith("identity:"))).toBe(true)
})

test("an entry under a replica's id that it never submitted is reported", () => {
  const w = world([entry(1, "c1", 7, "note", { text: "x" })], {})
  expect(checkWorld(w)).toEqual([expect.stringMatching(/^identity: todo-0\|c1:7 \(note\) is in the log but its client never submitted it/)])
})

test("a command applied twice, lost, or never settled is reported", () => {
  const twice = world([entry(1, "c1", 1, "note", { text: "a" }), entry(2, "c1", 1, "note", { text: "a" })], {
    submitted: new Map([submitted(1, "note", { text: "a" })]),
    confirmed: new Map([[ledgerKey(DOC, "c1", 1), 1]]),
  })
  expect(checkWorld(twice).some((f) => f.startsWith("exactly-once:"))).toBe(true)
  const lost = world([], {
    submitted: new Map([submitted(1, "note", { text: "a" })]),
    confirmed: new Map([[ledgerKey(DOC, "c1", 1), 1]]),
  })
  expect(checkWorld(lost).some((f) => f.startsWith("acknowledged:") && f.includes("nothing"))).toBe(true)
  const stuck = world([], { submitted: new Map([submitted(1, "note", { text: "a" }, { proc: proc(true), settled: false, persisted: false })]) })
  expect(checkWorld(stuck)).toEqual([expect.stringMatching(/^outbox: .* still running, and never settled/)])
})

test("a stored command the app heard nothing of is reported; one told resent is settled, unless it is in the log", () => {
  const unheard = world([], { submitted: new Map([submitted(1, "note", { text: "a" })]) })
  expect(checkWorld(unheard)).toEqual([expect.stringMatching(/^outbox: .* reached the outbox but was neither confirmed nor rejected/)])
  const resent = new Map([[ledgerKey(DOC, "c1", 1), "crdt-missing-deps"]])
  expect(checkWorld(world([], { submitted: new Map([submitted(1, "note", { text: "a" })]), resent }))).toEqual([])
  const logged = world([entry(1, "c1", 1, "note", { text: "a" })], { submitted: new Map([submitted(1, "note", { text: "a" })]), confirmed: new Map([[ledgerKey(DOC, "c1", 1), 1]]), resent })
  expect(checkWorld(logged)).toEqual([
    expect.stringMatching(/^exactly-once: .* both confirmed and told resent/),
    expect.stringMatching(/^outbox: .* in the log at seq 1 but the app was told it was resent/),
  ])
})

test("a deterministic document that desynced, and a failed write nobody heard of, are reported", () => {
  const p = proc(true)
  p.failedWrites = 2
  const w = world([], { desyncs: [{ replica: "r1", docId: DOC, seq: 4 }] }, { incarnations: [{ replica: "r1", proc: p }] })
  const failures = checkWorld(w)
  expect(failures).toContain("determinism: r1 desynced on todo-0 at seq 4 (the machine is deterministic: the engine let state differ)")
  expect(failures).toContain("storage: r1 had 2 failed writes and the app was never told")
})

test("a hostile command that had to be refused but entered the log is reported; a clear refusal is not", () => {
  const conn: RawConn = {
    id: 0, clientId: "raw-0", forged: false, victim: undefined, conn: undefined, open: true, closed: undefined, refused: undefined, welcomed: true,
    errors: [], resets: new Map(), last: new Map(), queue: [], spoiled: false,
  }
  const cmd = (clientSeq: number, attack: string, outcome: string, args: unknown): RawCommand => ({
    conn, docId: DOC, clientSeq, name: "note", argsKey: argsKey(args), attack, expect: "refuse", codes: undefined, original: undefined,
    sentAt: 0, outcome, localRefusal: undefined, errorsBefore: 0,
  })
  const hostile = { conns: [conn], commands: [cmd(2, "gap", "seq:1", { text: "gap" }), cmd(3, "huge-seq", "command-too-large", { text: "huge" })] } as unknown as HostileClients
  const w = world([entry(1, "raw-0", 2, "note", { text: "gap" })], {}, { hostile })
  const failures = checkWorld(w)
  expect(failures.filter((f) => f.startsWith("bad input:"))).toEqual([expect.stringContaining("raw gap (raw-0:2 on todo-0) was accepted")])
  expect(failures.some((f) => f.includes("huge-seq"))).toBe(false)
})

test("a hostile command left unanswered on an open connection is reported, unless the hub had fenced that document with a sequence-reset", () => {
  const silent = (resets: Map<string, number>) => {
    const conn: RawConn = {
      id: 0, clientId: "raw-0", forged: false, victim: undefined, conn: undefined, open: true, closed: undefined, refused: undefined, welcomed: true,
      errors: resets.size > 0 ? ["sequence-reset"] : [], resets, last: new Map(), queue: [], spoiled: false,
    }
    const cmd: RawCommand = {
      conn, docId: DOC, clientSeq: 4, name: "note", argsKey: argsKey({ text: "x" }), attack: "legit", expect: "legit", codes: undefined, original: undefined,
      sentAt: 100, outcome: undefined, localRefusal: undefined, errorsBefore: conn.errors.length,
    }
    const hostile = { conns: [conn], commands: [cmd] } as unknown as HostileClients
    return checkWorld(world([], {}, { hostile })).filter((f) => f.startsWith("bad input:"))
  }
  expect(silent(new Map())).toEqual([expect.stringContaining("raw legit (raw-0:4 on todo-0) got no answer in the whole run")])
  // Told before it sent: the hub takes nothing of that document here until it subscribes again.
  expect(silent(new Map([[DOC, 90]]))).toEqual([])
  // Told after it sent, or about another document: the command was still owed an answer.
  expect(silent(new Map([[DOC, 110]]))).toHaveLength(1)
  expect(silent(new Map([["todo-1", 90]]))).toHaveLength(1)
})

test("a change to Object.prototype is seen and undone", () => {
  const before = snapshotGlobals()
  ;(Object.prototype as Record<string, unknown>).polluted = true
  ;(Object.prototype.toString as unknown as Record<string, unknown>).done = 1
  expect(diffGlobals(before)).toEqual(["Object.prototype: property polluted was added", "Object.prototype.toString: property done was added"])
  restoreGlobals(before)
  expect(diffGlobals(before)).toEqual([])
  expect(({} as Record<string, unknown>).polluted).toBeUndefined()
})

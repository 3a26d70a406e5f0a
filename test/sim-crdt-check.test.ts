/**
 * The simulator's text checker (test/sim/crdt-check.ts) on hand-made ledgers: what it
 * accepts, and each way it fails. The simulator drives it for real in test/sim.test.ts.
 */
import { checkText, type TextView } from "./sim/crdt-check.js"
import type { Carrier, TextEdit, TextLedger } from "./sim/crdt-text.js"
import { ledgerKey, type Ledger, type Submitted } from "./sim/checker.js"
import { SimProcess } from "./sim/process.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"

const proc = new SimProcess("r0", new VirtualRuntime(1), new MemoryStorage())

interface World {
  readonly ledger: Ledger
  readonly edits: TextLedger
  /** A merge command by `replica` carrying `edits`; confirmed, rejected or neither. */
  command(replica: string, clientSeq: number, edits: TextEdit[], outcome: "confirmed" | "rejected" | "lost" | "stored" | "resent", code?: string): Carrier
  insert(replica: string, marker: string): TextEdit
  remove(replica: string, ...markers: string[]): TextEdit
  view(...texts: string[]): TextView
}

const world = (): World => {
  const ledger: Ledger = { submitted: new Map(), confirmed: new Map(), rejected: new Map(), resent: new Map(), errors: [], desyncs: [] }
  const edits: TextLedger = { edits: [], inserts: new Map() }
  let seq = 0
  return {
    ledger,
    edits,
    command(replica, clientSeq, carried, outcome, code = "invalid-args") {
      const key = ledgerKey("text", `c-${replica}`, clientSeq)
      const entry: Submitted = { docId: "text", clientId: `c-${replica}`, clientSeq, name: "$crdt.text", replica, proc, argsKey: "x", persisted: outcome !== "lost", settled: outcome !== "lost" && outcome !== "stored" }
      ledger.submitted.set(key, entry)
      if (outcome === "confirmed") ledger.confirmed.set(key, ++seq)
      if (outcome === "rejected") ledger.rejected.set(key, code)
      if (outcome === "resent") ledger.resent.set(key, code)
      const carrier = { key, entry }
      for (const e of carried) e.carrier = carrier
      return carrier
    },
    insert(replica, marker) {
      const e: TextEdit = { kind: "insert", replica, markers: [marker], at: 0, carrier: undefined }
      edits.edits.push(e)
      edits.inserts.set(marker, e)
      return e
    },
    remove(replica, ...markers) {
      const e: TextEdit = { kind: "delete", replica, markers, at: 0, carrier: undefined }
      edits.edits.push(e)
      return e
    },
    view(...texts) {
      return { docId: "text", field: "text", texts: texts.map((text, i) => ({ who: i === 0 ? "the hub" : `r${i - 1}`, text })), edits, ledger }
    },
  }
}

test("acknowledged inserts present, an acknowledged delete's markers gone, unacknowledged ones either way: no failure", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩"), w.insert("r0", "⟨r0:2⟩")], "confirmed")
  w.command("r1", 1, [w.insert("r1", "⟨r1:1⟩")], "confirmed")
  w.command("r1", 2, [w.remove("r1", "⟨r0:2⟩")], "confirmed")
  // Lost with its process before it was stored: may be missing.
  w.command("r0", 2, [w.insert("r0", "⟨r0:3⟩")], "lost")
  // Typed, never submitted (the process died while it was coalescing).
  w.insert("r1", "⟨r1:2⟩")
  expect(checkText(w.view("⟨r1:1⟩⟨r0:1⟩", "⟨r1:1⟩⟨r0:1⟩", "⟨r1:1⟩⟨r0:1⟩"))).toEqual([])
})

test("texts that differ between peers", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩"), w.insert("r0", "⟨r0:2⟩")], "confirmed")
  expect(checkText(w.view("⟨r0:1⟩⟨r0:2⟩", "⟨r0:2⟩⟨r0:1⟩"))).toEqual([
    "crdt: text: r0's text differs from the hub's: ⟨r0:2⟩⟨r0:1⟩ vs ⟨r0:1⟩⟨r0:2⟩",
  ])
})

test("an acknowledged insert missing with no acknowledged delete of it (one that was rejected does not count)", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩")], "confirmed")
  w.command("r1", 1, [w.remove("r1", "⟨r0:1⟩")], "rejected")
  expect(checkText(w.view(""))).toEqual([
    "crdt: text: r0's acknowledged insert ⟨r0:1⟩ (text|c-r0:1 confirmed at seq 1) is missing and no acknowledged delete removed it",
  ])
})

test("a marker an acknowledged delete removed is back", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩")], "confirmed")
  w.command("r1", 1, [w.remove("r1", "⟨r0:1⟩")], "confirmed")
  expect(checkText(w.view("⟨r0:1⟩"))).toEqual([
    "crdt: text: ⟨r0:1⟩ is still in the text though r1's delete removed it (text|c-r1:1 confirmed at seq 2)",
  ])
})

test("characters no insert wrote, a marker nobody inserted, a marker twice, an unacknowledged marker present", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩")], "confirmed")
  w.command("r0", 2, [w.insert("r0", "⟨r0:2⟩")], "lost")
  expect(checkText(w.view("⟨r0:1⟩x⟨r9:9⟩⟨r0:1⟩⟨r0:2⟩⟨r0"))).toEqual([
    "crdt: text: the text has characters no insert wrote at 6: \"x\"",
    "crdt: text: the text has characters no insert wrote at 25: \"⟨r0\"",
    "crdt: text: ⟨r0:1⟩ is in the text 2 times",
    "crdt: text: ⟨r9:9⟩ is in the text but no replica inserted it",
    "crdt: text: ⟨r0:2⟩ is in the text but its insert was never acknowledged (text|c-r0:2 never settled)",
  ])
})

test("an insert stored in the outbox but rejected or never settled is a loss; one whose number a later incarnation reused was lost unstored", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩")], "rejected")
  w.command("r0", 2, [w.insert("r0", "⟨r0:2⟩")], "stored")
  const unstored = w.insert("r0", "⟨r0:3⟩")
  w.command("r0", 3, [unstored], "lost")
  // The next incarnation numbers a new command 3: ⟨r0:3⟩'s command is not the one confirmed.
  w.command("r0", 3, [w.insert("r0", "⟨r0:4⟩")], "confirmed")
  expect(checkText(w.view("⟨r0:4⟩"))).toEqual([
    "crdt: text: r0's insert ⟨r0:1⟩ was stored in its outbox but never acknowledged (text|c-r0:1 rejected (invalid-args))",
    "crdt: text: r0's insert ⟨r0:2⟩ was stored in its outbox but never acknowledged (text|c-r0:2 never settled (stored))",
  ])
  expect(checkText(w.view("⟨r0:4⟩⟨r0:3⟩"))).toContain("crdt: text: ⟨r0:3⟩ is in the text but its insert was never acknowledged (text|c-r0:3 lost unstored, its number reused)")
})

test("an insert the hub refused for what it carries may be missing; one told resent must be followed to its new command, but in an Automerge field", () => {
  const w = world()
  w.command("r0", 1, [w.insert("r0", "⟨r0:1⟩")], "rejected", "command-too-large")
  w.command("r0", 2, [w.insert("r0", "⟨r0:2⟩")], "resent")
  w.command("r0", 3, [w.insert("r0", "⟨r0:3⟩")], "confirmed")
  // The Yjs field: the typists move what a resent command carried to the one sending it again.
  expect(checkText(w.view("⟨r0:3⟩"))).toEqual([
    "crdt: text: r0's insert ⟨r0:2⟩ was stored in its outbox but never acknowledged (text|c-r0:2 resent (invalid-args), its carrier after not followed)",
  ])
  expect(checkText(w.view("⟨r0:2⟩⟨r0:3⟩"))).toEqual([
    "crdt: text: ⟨r0:2⟩ is in the text but its insert was never acknowledged (text|c-r0:2 resent (invalid-args), its carrier after not followed)",
  ])
  // An Automerge field: a remake carries it, not followed; either way.
  expect(checkText({ ...w.view("⟨r0:3⟩"), field: "am" })).toEqual([])
  expect(checkText({ ...w.view("⟨r0:2⟩⟨r0:3⟩"), field: "am" })).toEqual([])
  // The refused paste must not be in the text.
  expect(checkText({ ...w.view("⟨r0:1⟩⟨r0:3⟩"), field: "am" })).toEqual([expect.stringContaining("⟨r0:1⟩ is in the text but its insert was never acknowledged")])
})

test("a text that cannot be read is a failure", () => {
  const w = world()
  expect(checkText({ ...w.view(""), texts: [{ who: "the hub", text: { error: "no such field" } }] })).toEqual(["crdt: text: the text of the hub cannot be read: no such field"])
})

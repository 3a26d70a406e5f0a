/**
 * Tombstones in a document full to its bound (the hub's maxDocumentBytes). Sim seeds 406, 413
 * and 422 (--replicas 5 --crdt-pastes 0.1 --crdt-automerge 0.6 --presence-churn 2): the
 * document "text" was filled to within a few dozen bytes of its bound (the bound counts a merge
 * at three times its bytes; the measure that would have found room was paced). A writer's paste
 * was refused for it ("Document "text" is full"), then its tombstone of deleted items (21 bytes,
 * charged 63), then its GC range (15 bytes, charged 45). A refused GC range ends the chain
 * (core/crdt/replica.ts `refused`), so every later change of that Y.Doc was refused
 * `crdt-missing-deps` for good: what the writer typed after the paste was lost for what it
 * needed, not for what it carried, and the hub's field kept a hole in its clocks.
 *
 * Now a document with CRDT fields keeps the last 64th of its bound for tombstones
 * (core/authority/size-bound.ts): other writes stop short of it, a tombstone (deleted items and
 * GC ranges only, CrdtField `fills`) may use it, and nothing passes the bound. Fails before:
 * the writer's change typed after the paste is refused `crdt-missing-deps` (invalid-args).
 */
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { SizeBound, tombstoneReserve } from "../core/authority/size-bound.js"
import type { CrdtFields } from "../core/crdt/fields.js"
import { fieldsOfRoot } from "../core/crdt/roots.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { tombstoneOf } from "../adapters/yjs/tombstone.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Note = defineMachine({
  name: "note",
  version: 1,
  initial: () => ({ pads: {} as Record<string, string> }),
  crdt: { body: yText() },
  commands: { pad: { args: Schema.Struct({ id: Schema.String, s: Schema.String }), apply: (st, { id, s }) => { st.pads[id] = s } } },
})
const DOC = "d"

test("the reserve: other writes stop short of it, a tombstone may use it and pass the bound by no more than as much again", () => {
  expect(tombstoneReserve(64 << 10)).toBe(1024)
  expect(tombstoneReserve(Infinity)).toBe(0)
  const b = new SizeBound(100_000, 98_000, true, tombstoneReserve(100_000))
  expect(tombstoneReserve(100_000)).toBe(1562)
  expect(b.fits(438)).toBe(true)
  expect(b.fits(439)).toBe(false)
  expect(b.fits(439, true)).toBe(true)
  b.accept(1_900, true)
  expect([b.fits(1), b.fits(100, true), b.fits(1662, true), b.fits(1663, true), b.fits(0)]).toEqual([false, true, true, false, true])
})

test("a Yjs field tells what holds no content (tombstones: deleted items, GC ranges; deletions) from what does (an item)", () => {
  const engine = Note.crdt!.body!.engine
  const hub = engine.create()
  const writer = new Y.Doc()
  writer.clientID = 7
  const updates: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => updates.push(u))
  const text = writer.getText("t")
  text.insert(0, "head tail")
  text.insert(4, "P".repeat(50))
  text.delete(0, 1)
  const [first, paste, del] = updates as [Uint8Array, Uint8Array, Uint8Array]
  const fills = (u: unknown) => {
    const r = hub.validate(u, { clientId: "w", trusted: false })
    if (!r.ok) throw new Error(r.rejection.message)
    return hub.fills!(r.update)
  }
  expect(fills(first)).toBe(false)
  const tr = hub.validate(first, { clientId: "w", trusted: false })
  if (tr.ok) hub.apply([tr.update])
  const deleted = tombstoneOf(writer, paste) as Uint8Array
  const gc = tombstoneOf(writer, deleted) as Uint8Array
  expect([fills(paste), fills(deleted), fills(gc)]).toEqual([false, true, true])
  const pr = hub.validate(paste, { clientId: "w", trusted: false })
  if (pr.ok) hub.apply([pr.update])
  // A deletion holds no content either (crdt-delete-document-full.test.ts).
  expect(fills(del)).toBe(true)
  hub.destroy()
})

test("a writer's paste refused in a full document, and what it typed after: both told as the document being full, none as missing what it needs; the hub's clocks have no hole", async () => {
  const rt = new VirtualRuntime(7)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: 64 << 10 })
  net.listen(hub)
  const run = (ms: number) => settleWithTurns(rt, ms)
  const client = await CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage: new MemoryStorage() })
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt, clientId: "r", storage: new MemoryStorage() })
  const w = await client.open(Note, DOC)
  const r = await reader.open(Note, DOC)
  const told: string[] = []
  w.on("rejected", (e) => told.push(`#${e.clientSeq} ${e.rejection.code}: ${e.rejection.message.split(":")[0]}`))
  await run(50)
  w.crdt.body.insert(0, "head tail")
  await run(300)
  // The reader fills the document with pads, halving their length at each refusal, until even
  // an empty one is refused three times in a row (measures included): full to the byte for
  // what is not a tombstone.
  const pad = async (id: string, n: number) => {
    const p = r.submit("pad", { id, s: "p".repeat(n) }).then(() => true, () => false)
    await run(100)
    return p
  }
  for (let n = 8192, i = 0, refusedEmpty = 0; refusedEmpty < 3; i++) {
    if (await pad(`p${i}`, n)) refusedEmpty = 0
    else if (n > 0) n = Math.floor(n / 2)
    else refusedEmpty++
  }
  // Offline, each change is its own command: the paste, then a word typed right after it.
  net.partition("w")
  net.drop("w")
  await run(50)
  const body = w.crdt.body
  const writerClient = body.doc!.clientID
  body.insert(4, "P".repeat(200))
  await run(20)
  body.insert(204, "X")
  await run(20)
  const end = Y.getState(body.doc!.store, writerClient)
  net.heal("w")
  await run(8000)
  expect({ pending: w.pendingCount, writer: w.crdt.body.toString(), reader: r.crdt.body.toString() }).toEqual({ pending: 0, writer: "head tail", reader: "head tail" })
  // Each change was refused for what it carries (the document is full), the app told so; before,
  // the change typed after the paste was refused for needing it (invalid-args, crdt-missing-deps).
  expect(told.filter((t) => !/^#\d+ command-too-large: Document "d" is full$/.test(t))).toEqual([])
  expect(told.length).toBeGreaterThanOrEqual(2)
  // The hub's field holds every clock of the writer's Y.Doc (as tombstones): its chain has no hole.
  const fields = fieldsOfRoot((await hub.doc(DOC, Note)).state) as CrdtFields
  expect(Y.getState((fields.field("body").handle as Y.Text).doc!.store, writerClient)).toBe(end)
  await client.close()
  await reader.close()
  await hub.close()
})

/**
 * A replica compares a hub's checkpoint at its own seq with the hash of its confirmed state,
 * computed once per seq (replica-state.ts `#hashed`), so that checkpoint frames (20 bytes each,
 * as many as a hostile hub likes) do not each cost the whole state. Two ways this did not
 * hold, found by an attack review:
 * - with CRDT fields the hash was never kept: each frame encoded and hashed the whole plain
 *   state again (50 frames at an 8 MB state: 854 ms, against 0 ms without a field);
 * - with the hash kept, each frame still undid and redid the whole outbox around it (100
 *   frames re-ran the app's apply 25,000 times).
 * Now the hash is kept with CRDT fields too, for as long as no field changes (CrdtFields
 * `changes`) and nothing unconfirmed is in them, and looked up before anything is undone.
 */
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { defineMachine, encodeCanonical } from "../core/index.js"
import { hashBytes } from "../core/internal.js"
import { CrdtFields } from "../core/crdt/fields.js"
import { yMap } from "../adapters/yjs/index.js"
import { Todo } from "./support/machines.js"
import { flush, scriptedHub } from "./support/scripted-hub.js"

const DOC = "card"

const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: { title: string }, a: { title: string }) => void (s.title = a.title) }
const Card = defineMachine({ name: "card", version: 1, initial: () => ({ title: "" }), commands: { rename }, crdt: { labels: yMap<unknown>() } })

const connect = async (machine: typeof Card | typeof Todo) => {
  const { client, deliver } = await scriptedHub([machine])
  await flush()
  return { client, send: deliver }
}

/** Counts hashes of a state with CRDT fields (hashState asks the fields for theirs each time). */
const countFieldHashes = () => {
  const original = CrdtFields.prototype.hashes
  let n = 0
  CrdtFields.prototype.hashes = function (this: CrdtFields) {
    n++
    return original.call(this)
  }
  return { get n() { return n }, restore: () => void (CrdtFields.prototype.hashes = original) }
}

test("with a CRDT field, checkpoints at the replica's seq hash its state once", async () => {
  const { client, send } = await connect(Card)
  const doc = await client.open(Card, DOC)
  await flush()
  const state = encodeCanonical({ title: "x".repeat(1 << 20), $crdt: { labels: encodeCanonical(["y1", Y.encodeStateAsUpdateV2(new Y.Doc()), []]) } })
  const hash = hashBytes(state)
  send({ type: "snapshot-begin", docId: DOC, snapshotId: 3, seq: 3, hash, size: state.length })
  send({ type: "snapshot-chunk", docId: DOC, snapshotId: 3, offset: 0, bytes: state })
  send({ type: "snapshot-end", docId: DOC, snapshotId: 3 })
  await doc.whenStored()
  expect(doc.confirmedSeq).toBe(3)
  const desyncs: number[] = []
  doc.on("desync", (d) => desyncs.push(d.seq))
  const hashes = countFieldHashes()
  try {
    for (let i = 0; i < 50; i++) send({ type: "checkpoint", docId: DOC, seq: 3, hash: "not-this-state" })
    expect(hashes.n).toBe(1)
    // The next entry changes the state: hashed again at its seq, once.
    send({ type: "entries", docId: DOC, entries: [{ seq: 4, time: 0, clientId: "c2", clientSeq: 1, name: "rename", args: { title: "t" } }] })
    await flush()
    expect(doc.confirmedSeq).toBe(4)
    for (let i = 0; i < 50; i++) send({ type: "checkpoint", docId: DOC, seq: 4, hash: "not-this-state" })
    expect(hashes.n).toBe(2)
  } finally {
    hashes.restore()
  }
  // Every frame compared (desync told for each checkpoint that differs, as before).
  expect(desyncs.length).toBeGreaterThan(0)
  await client.close()
})

test("a checkpoint at the replica's seq does not undo and redo the outbox when the hash is known", async () => {
  const { client, send } = await connect(Todo)
  const doc = await client.open(Todo, DOC)
  await flush()
  for (let i = 0; i < 250; i++) void doc.submit("add", { id: `i${i}`, title: "t" })
  await doc.whenStored()
  expect(doc.pendingCount).toBe(250)
  let applies = 0
  const add = Todo.compiled.get("add")! as unknown as { apply: (...a: unknown[]) => unknown }
  const original = add.apply
  add.apply = (...a: unknown[]) => (applies++, original(...a))
  try {
    for (let i = 0; i < 100; i++) send({ type: "checkpoint", docId: DOC, seq: 0, hash: "h" })
  } finally {
    add.apply = original
  }
  // Once to hash the confirmed state: the outbox redone once (250), not per frame (25,000).
  expect(applies).toBeLessThanOrEqual(250)
  await client.close()
})

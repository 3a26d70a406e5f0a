/**
 * A hub (hostile, or a man in the middle on ws://) ordering another client's Yjs update that
 * cannot integrate: its structs continue clocks the replica never saw, or it deletes ranges
 * of a client it does not know. The replica merged it as trusted: Yjs held it in
 * `store.pendingStructs` / `pendingDs` for as long as the field lived (in no hash, so no
 * checkpoint reloaded the field), re-merging all of it at every later update, and the app was
 * not told. Now such a merge is refused like other refused hub merges (an `error` event, the
 * field keeps what it had). This replica's own merges may still wait there (behind a change
 * the hub refused, until its tombstone: test/crdt-gc-tombstone-hub.test.ts and the
 * crdt-refused tests). Found by an attack review. Fails before: pending grows with every
 * entry, no error.
 */
import * as Y from "yjs"
import { defineMachine, type Entry } from "../core/index.js"
import { flush, scriptedHub } from "./support/scripted-hub.js"
import { yMap, yText } from "../adapters/yjs/index.js"
import { holdsPending } from "../adapters/yjs/integrable.js"

const DOC = "note"

const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText(), meta: yMap() }, commands: {} })

const open = async () => {
  const { client, deliver: hubSends } = await scriptedHub([Note])
  const doc = await client.open(Note, DOC)
  await flush()
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  let seq = 0
  const deliver = async (field: string, update: Uint8Array, clientId = "c2") => {
    seq++
    const entry: Entry = { seq, time: 0, clientId, clientSeq: seq, name: `$crdt.${field}`, args: update }
    hubSends({ type: "entries", docId: DOC, entries: [entry] })
    await flush()
  }
  return { client, doc, errors, deliver }
}

type PendingStore = { pendingStructs: { update: Uint8Array } | null; pendingDs: Uint8Array | null }
const pendingBytes = (ydoc: Y.Doc): number => {
  const s = ydoc.store as unknown as PendingStore
  return (s.pendingStructs?.update.length ?? 0) + (s.pendingDs?.length ?? 0)
}

/** Updates of a writer, each alone: the second and later need the first. */
const writerUpdates = (clientID: number, n: number, write: (d: Y.Doc, i: number) => void): Uint8Array[] => {
  const d = new Y.Doc()
  d.clientID = clientID
  const out: Uint8Array[] = []
  d.on("update", (u: Uint8Array) => out.push(u))
  for (let i = 0; i < n; i++) write(d, i)
  return out
}

test("a text update whose earlier clocks the replica lacks is refused, not held pending", async () => {
  const { client, doc, errors, deliver } = await open()
  const body = doc.crdt.body as Y.Text
  // The first update never comes: each later one continues clocks the replica does not have.
  const updates = writerUpdates(4242, 30, (d, i) => d.getText("t").insert(i, "abcdefghij".repeat(10)))
  for (const u of updates.slice(1)) {
    await deliver("body", u)
    expect(holdsPending(body.doc!)).toBe(false)
    expect(pendingBytes(body.doc!)).toBe(0)
  }
  expect(doc.confirmedSeq).toBe(29)
  expect(body.toString()).toBe("")
  expect(errors.length).toBeGreaterThan(0)
  expect(errors[0]).toMatch(/^crdt-missing-deps: A merge into field "body" of "note" that the hub ordered was refused/)
  // The replica still takes what integrates.
  const ok = writerUpdates(777, 1, (d) => d.getText("t").insert(0, "fine"))[0]!
  await deliver("body", ok)
  expect(body.toString()).toBe("fine")
  await client.close()
})

test("deletions of ranges the replica does not have are refused, not held (pendingDs)", async () => {
  const { client, doc, errors, deliver } = await open()
  const meta = doc.crdt.meta as Y.Map<unknown>
  // A writer sets keys and deletes them; only its deletions come: each names ranges of a client
  // the replica has never seen (Yjs keeps them in pendingDs and re-applies them at every merge).
  const d = new Y.Doc()
  d.clientID = 9999
  for (let i = 0; i < 200; i++) d.getMap("m").set(`k${i}`, i)
  for (let round = 0; round < 20; round++) {
    const ds = new Y.Doc()
    ds.clientID = 5000 + round
    Y.applyUpdate(ds, Y.encodeStateAsUpdate(d))
    const before = Y.encodeStateVector(ds)
    ds.transact(() => {
      for (let i = round * 10; i < round * 10 + 10; i++) ds.getMap("m").delete(`k${i}`)
    })
    await deliver("meta", Y.encodeStateAsUpdate(ds, before))
    expect(holdsPending(meta.doc!)).toBe(false)
    expect(pendingBytes(meta.doc!)).toBe(0)
  }
  expect(errors.length).toBeGreaterThan(0)
  expect(errors[0]).toMatch(/^crdt-missing-deps: A merge into field "meta" of "note" that the hub ordered was refused/)
  await client.close()
})

test("an update with Skip structs (Y.mergeUpdates of non-adjacent updates) from another client is refused", async () => {
  const { client, doc, errors, deliver } = await open()
  const body = doc.crdt.body as Y.Text
  const updates = writerUpdates(31337, 3, (d, i) => d.getText("t").insert(0, `x${i}`))
  await deliver("body", Y.mergeUpdates([updates[0]!, updates[2]!]))
  expect(holdsPending(body.doc!)).toBe(false)
  expect(body.toString()).toBe("")
  expect(errors).toEqual([expect.stringMatching(/^crdt-missing-deps: A merge into field "body" of "note" that the hub ordered was refused/)])
  await client.close()
})

test("an entry under this replica's own clientId is not taken as its own merge", async () => {
  const { client, doc, errors, deliver } = await open()
  const body = doc.crdt.body as Y.Text
  const updates = writerUpdates(4242, 5, (d, i) => d.getText("t").insert(i, "x"))
  for (const u of updates.slice(1)) await deliver("body", u, "c1")
  expect(holdsPending(body.doc!)).toBe(false)
  expect(errors.length).toBeGreaterThan(0)
  await client.close()
})

test("updates that integrate merge as before (control)", async () => {
  const { client, doc, errors, deliver } = await open()
  const body = doc.crdt.body as Y.Text
  const updates = writerUpdates(4242, 5, (d, i) => d.getText("t").insert(i, String(i)))
  for (const u of updates) await deliver("body", u)
  expect(body.toString()).toBe("01234")
  expect(errors).toEqual([])
  expect(holdsPending(body.doc!)).toBe(false)
  await client.close()
})

/**
 * A hub (hostile, or a man in the middle on ws://) ordering another client's Automerge change
 * whose dependencies the replica does not have. The replica merged it as trusted, so nothing
 * looked at its deps: `A.applyChanges` queued it silently, for as long as the field lived
 * (the field hash is the heads, which a queued change is not part of, so no checkpoint
 * reloaded the field). Now such a merge is refused like other refused hub merges (an `error`
 * event, the field keeps what it had). Found by an attack review. Fails before: the queue
 * grows with every entry, no error.
 */
import * as A from "@automerge/automerge"
import { defineMachine, type Entry } from "../core/index.js"
import { flush, scriptedHub } from "./support/scripted-hub.js"
import { automergeText, type AutomergeTextHandle } from "../adapters/automerge/index.js"

const DOC = "note"

const body = automergeText()
const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body }, commands: {} })

const open = async () => {
  const { client, deliver: hubSends } = await scriptedHub([Note])
  const doc = await client.open(Note, DOC)
  await flush()
  const errors: string[] = []
  doc.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  let seq = 0
  const deliver = async (update: Uint8Array[]) => {
    seq++
    const entry: Entry = { seq, time: 0, clientId: "c2", clientSeq: seq, name: "$crdt.body", args: update }
    hubSends({ type: "entries", docId: DOC, entries: [entry] })
    await flush()
  }
  return { client, doc, errors, deliver }
}

/** Another writer's changes, one per edit, from the field's own initial content. */
const writerChanges = (n: number): Uint8Array[][] => {
  const f = body.engine.create()
  const out: Uint8Array[][] = []
  f.onLocalChange((u) => out.push(u as Uint8Array[]))
  for (let i = 0; i < n; i++) (f.handle as AutomergeTextHandle).splice(i * 20, 0, "abcdefghij".repeat(2))
  f.destroy()
  return out
}

test("changes whose dependencies the replica lacks are refused, not queued", async () => {
  const { client, doc, errors, deliver } = await open()
  const changes = writerChanges(30)
  // The first never comes: each later one depends on it.
  for (const c of changes.slice(1)) {
    await deliver(c)
    expect(A.getMissingDeps(doc.crdt.body.doc, [])).toEqual([])
  }
  expect(doc.confirmedSeq).toBe(29)
  expect(doc.crdt.body.text).toBe("")
  expect(errors.length).toBeGreaterThan(0)
  expect(errors[0]).toMatch(/^crdt-missing-deps: A merge into field "body" of "note" that the hub ordered was refused/)
  await client.close()
})

test("changes that merge are taken as before (control)", async () => {
  const { client, doc, errors, deliver } = await open()
  const changes = writerChanges(5)
  for (const c of changes.slice(0, 3)) await deliver(c)
  // Several in one update, the later ones needing the earlier: one merge.
  await deliver(changes.slice(3).flat())
  expect(doc.crdt.body.text).toBe("abcdefghij".repeat(10))
  expect(errors).toEqual([])
  expect(A.getMissingDeps(doc.crdt.body.doc, [])).toEqual([])
  await client.close()
})

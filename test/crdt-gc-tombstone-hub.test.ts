/**
 * Seed 66 (npm run sim -- --seed 66 --replicas 5) through a Hub and CanonClients: a writer's
 * change is refused for what it carries, and so is its tombstone of deleted items; the replica
 * tombstones the tombstone as GC ranges (core/crdt/replica.ts `refused`), which the hub takes.
 * In seed 66 both refusals were the hub's maxDocumentBytes ("Document "text" is full": #66 and
 * its tombstone #76), and the GC ranges (#83) were taken after a measure found room. Here the
 * hub's field holds fewer structs (`maxStructs`, lowered on the hub only), the case the README
 * names ("the field is full of structs"): a change of three items and its tombstone of three
 * deleted items are too many, its GC range (one struct) is not.
 *
 * What the writer typed next to the refused change must still land (README: "Only what the
 * hub refused is lost"; the app hears `rejected` for what was lost): today the edit typed
 * between a live character and the refused one is refused as malformed (crdt-invalid,
 * integrable.ts OriginCheck), and the edit typed right after that one, between two GC ranges,
 * is confirmed and yet gone from every replica (Yjs integrates it as a GC struct).
 * Fixed as above (core/crdt/replica.ts passes the pending, queued and unsent changes of the field). Found by a helper's investigation of seed 66.
 *
 * And a chain of refused tombstones ends: the form that keeps what pending changes need,
 * refused too (a field of at most 6 structs), was tombstoned again into the same bytes and
 * sent again for ever (about 4,000 outcomes in 8 s; a review found it). The replica counts how
 * deep each tombstone is (`#tombstoneLevel`): the form after that one is GC ranges only, whose
 * refusal ends the chain; the edits next to the refused change are then lost, as before the
 * fix, the app is told, and the peers agree.
 */
import { offlineWriter } from "./support/yjs-offline-writer.js"

/**
 * A writer types "head tail", goes offline, makes a change of six items ("1".."6": too many
 * structs for the hub, and so is its tombstone of six deleted items), then Y between "h" and
 * the refused "1", then Z between Y and "1", and comes back; a reader follows.
 */
async function offlineEdits(maxStructs: number) {
  const { w, r, told, outcomes, run, comeBack, close } = await offlineWriter(maxStructs)
  // Offline, each change is its own command.
  w.crdt.body.doc!.transact(() => {
    w.crdt.body.insert(9, "6")
    w.crdt.body.insert(6, "4")
    w.crdt.body.insert(1, "1")
    w.crdt.body.insert(4, "3")
    w.crdt.body.insert(10, "5")
    w.crdt.body.insert(7, "2")
  })
  await run(20)
  expect(w.crdt.body.toString()).toBe("h1ea3d 2t4a5il6")
  w.crdt.body.insert(1, "Y")
  await run(20)
  w.crdt.body.insert(2, "Z")
  await run(20)
  expect(w.crdt.body.toString()).toBe("hYZ1ea3d 2t4a5il6")
  await comeBack()
  return { w, r, told, outcomes, run, close }
}

test("seed 66: edits typed next to a change whose tombstone went as GC ranges are neither refused nor lost while confirmed", async () => {
  const { w, r, told, outcomes, close } = await offlineEdits(9)
  expect(w.pendingCount).toBe(0)
  // Only "1".."6" was refused for what it carries (one rejection, #2; its tombstone #5 is told
  // too); Y and Z land where they were typed. Before: Y's command was refused as malformed
  // (crdt-invalid), and Z's confirmed while Z was on no replica.
  expect({ reader: r.crdt.body.toString(), writer: w.crdt.body.toString(), told, outcomes: outcomes.join(", ") }).toEqual({
    reader: "hYZead tail",
    writer: "hYZead tail",
    told: ["#2 rejected crdt-too-large", "#5 rejected crdt-too-large"],
    outcomes: expect.stringContaining("#2 rejected, #3 resent, #4 resent, #5 rejected"),
  })
  await close()
})

test("a tombstone that keeps what pending changes need, refused too, goes next as GC ranges only: no endless resubmits, and the peers agree", async () => {
  const { w, r, told, outcomes, run, close } = await offlineEdits(6)
  const n1 = outcomes.length
  await run(8000)
  // No endless round of submit/refuse: nothing new happens in a further 8 s.
  expect({ grew: outcomes.length - n1, pending: w.pendingCount }).toEqual({ grew: 0, pending: 0 })
  // The writer and the reader agree, and every refusal the writer was told is one.
  expect(w.crdt.body.toString()).toBe(r.crdt.body.toString())
  expect(told.every((t) => / rejected crdt-/.test(t))).toBe(true)
  await close()
})

/**
 * Review (attack on 40d475c): a document chunk is now applied with
 * `A.loadIncremental(box.doc, bytes)` on the raw update, not with the changes the check
 * decoded. An update that is a document chunk D (one fresh change of the sender's own actor)
 * followed by a change chunk Y whose dependency nobody has passes `check` (`A.load` of the
 * bytes holds Y aside, `getAllChanges` returns only D's change) and admission (D's change is
 * fine), then `loadIncremental` puts Y into the live document as a held change, the engine's
 * last line of defence (`getMissingDeps`) throws, and the authority treats it as a library
 * failure: `update-failed` report, the document rebuilt from storage, the update re-applied
 * alone (throws again), rebuilt from storage once more. Two full reloads and re-applies of
 * the stored log per ~250-byte update, at will: the update should be refused by the checks
 * (or D taken without Y, as before this change), with no library throw and no storage reads.
 *
 * Same expectation as test/crdt-doc-authority.test.ts asserts for hostile Yjs updates
 * ("Refused by the check: no library throw, no reload from storage").
 */
import * as A from "@automerge/automerge"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { bytes } from "./support/hostile-frames.js"
import { countingStorage } from "./support/counting-storage.js"

test("a document chunk with a trailing change chunk of unknown dependencies is refused by the checks: no library throw, no reload from storage", async () => {
  const { storage: counting, reads: readsSoFar } = countingStorage()
  const events: string[] = []
  const h = new CrdtDocHost({
    engines: [automergeDocEngine()], storage: counting, sync: false, compactAfterBytes: 1 << 30,
    onEvent: (e) => events.push(e.type === "doc-report" ? `${e.type}:${e.code}` : e.type),
  })
  const doc = await h.open<AutomergeBox>("automerge", "held")
  let alice = A.init<Record<string, unknown>>({ actor: "aa".repeat(16) })
  for (let i = 0; i < 5; i++) {
    alice = A.change(alice, (d) => { d[`k${i}`] = i })
    await doc.submit([A.getLastLocalChange(alice)!])
  }
  const heads = A.getHeads(doc.doc.doc)

  // Y depends on a change of mallory's that nobody but mallory has.
  let m = A.change(A.init<Record<string, unknown>>({ actor: "bb".repeat(16) }), (d) => { d.secret = 1 })
  m = A.change(m, (d) => { d.y = 2 })
  const Y = A.getLastLocalChange(m)!
  const D = A.save(A.change(A.init<Record<string, unknown>>({ actor: "cc".repeat(16) }), (d) => { d.d = 1 }))

  const readsBefore = readsSoFar()
  const out = await doc.submit([bytes(D, Y)], undefined, "mallory")
  expect({ events, reads: readsSoFar() - readsBefore, codes: out.rejected.map((r) => r.code) }).toEqual({ events: [], reads: 0, codes: expect.not.arrayContaining(["update-failed"]) })
  // Nothing held in the live document; alice's state intact.
  expect(A.getMissingDeps(doc.doc.doc, [])).toEqual([])
  expect(A.getHeads(doc.doc.doc)).toEqual(expect.arrayContaining(heads))
  await h.close()
})

/**
 * A command the hub renumbered (a sequence-reset) carries, from protocol 3 on, the number it
 * was made under (`madeAs`), and the hub keeps it with the command's outcome. A store restored
 * from a backup taken before the renumbering resends the command under that number, where the
 * hub holds another command: it was applied a second time (the simulator's rollback world
 * counted it as a known limit). The hub now finds it by the number it was made under and its
 * hash, and answers its outcome (core/authority/client-table.ts `madeUnder`).
 */
import { ClientTable } from "../core/authority/client-table.js"
import { AuthorityStore } from "../core/internal.js"
import { checkOutbox, encodeOutbox, encodeRun, runChecker } from "../core/store/records.js"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { MemoryStorage } from "../adapters/memory/index.js"

const table = async () => {
  const t = new ClientTable("d", new AuthorityStore(new MemoryStorage()), 1000)
  await t.load(["c"])
  return t
}

test("a resend under the number a renumbered command was made under is answered with its outcome", async () => {
  const t = await table()
  t.record("c", 1, 1, { hash: 11, seq: 1 })
  t.record("c", 1, 2, { hash: 12, seq: 2 }) // made after a backup that holds "z" under 2
  t.record("c", 1, 3, { hash: 99, seq: 3, madeAs: 2 }) // "z", made under 2, renumbered to 3
  t.ack("c", 1, 3)
  expect(t.classify("c", 1, 2, 99, 3)).toEqual({ kind: "duplicate", outcome: { clientSeq: 2, seq: 3 } })
  // Renumbered twice: a backup taken between the two sends it under the middle number, saying 2.
  expect(t.classify("c", 1, 1, 99, 3, 2)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, seq: 3 } })
  // Another command under 2, or "z" from another incarnation, is not "z".
  expect(t.classify("c", 1, 2, 98, 3)).toEqual({ kind: "conflict", resumeAt: 4 })
  expect(t.classify("c", 2, 2, 99, 3)).toEqual({ kind: "conflict", resumeAt: 4 })
  // A rejected renumbered command is answered with its rejection, not decided again.
  t.record("c", 1, 4, { hash: 77, rejection: { code: "rejected", message: "no" }, madeAs: 1 })
  expect(t.classify("c", 1, 1, 77, 4)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, rejection: { code: "rejected", message: "no" } } })
})

test("a renumbered command applied under the number it was made under is answered, and its outcome recorded under the new number", async () => {
  const t = await table()
  t.record("c", 1, 1, { hash: 11, seq: 1 })
  t.record("c", 1, 2, { hash: 12, seq: 5 })
  // Its answer lost, the store restored, an earlier command refused: the client renumbered it to 3.
  const where = t.classify("c", 1, 3, 12, 5, 2)
  expect(where).toEqual({ kind: "duplicate", outcome: { clientSeq: 3, seq: 5 }, record: { hash: 12, seq: 5, madeAs: 2 } })
  t.record("c", 1, 3, (where as { record: { hash: number; seq: number } }).record)
  // The numbering goes on with no gap, and a retry of 3 gets the same answer.
  expect(t.classify("c", 1, 4, 13, 5)).toEqual({ kind: "new" })
  expect(t.classify("c", 1, 3, 12, 5, 2)).toEqual({ kind: "duplicate", outcome: { clientSeq: 3, seq: 5 } })
  // A new command that merely says a number it was made under is new.
  expect(t.classify("c", 1, 4, 14, 5, 2)).toEqual({ kind: "new" })
})

test("the index keeps one entry per command: outcomes of it dropped from the window leave the latest found, and nothing once all are gone", async () => {
  const t = new ClientTable("d", new AuthorityStore(new MemoryStorage()), 100)
  await t.load(["c"])
  // A client saying "made under 1" on 250 commands of one content, none acknowledged: the
  // window (100) pushes the oldest out, one at a time.
  for (let i = 1; i <= 250; i++) {
    t.record("c", 1, i, { hash: 7, seq: i, madeAs: 1 })
    t.drain()
  }
  expect(t.classify("c", 1, 1, 7, 250)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, seqAtMost: expect.any(Number) } })
  t.ack("c", 1, 250)
  // Acknowledged: a resend under 1 is a store gone back in time; the latest kept outcome answers it.
  expect(t.classify("c", 1, 1, 7, 250)).toEqual({ kind: "duplicate", outcome: { clientSeq: 1, seq: 250 } })
  expect(t.classify("c", 1, 1, 8, 250)).toEqual({ kind: "conflict", resumeAt: 251 })
  // 1,000 more (ACKED_KEPT) push every one of them out of what is kept.
  for (let i = 251; i <= 1_300; i++) t.record("c", 1, i, { hash: 9, seq: i })
  t.ack("c", 1, 1_300)
  expect(t.classify("c", 1, 1, 7, 1_300)).toEqual({ kind: "conflict", resumeAt: 1_301 })
})

test("madeAs is kept with the outcome on disk, and a record without it reads as before", () => {
  const run = { first: 7, incarnation: 3, outcomes: [{ hash: 1, seq: 9, madeAs: 2 }, { hash: 2, rejection: { code: "rejected" as const, message: "m" }, madeAs: 4 }, { hash: 3, seq: 10 }] }
  expect(runChecker(7)(decodeCanonical(encodeRun(run)))).toEqual(run)
  // A reader before madeAs reads the first elements of an outcome; one without it reads here.
  expect(runChecker(7)([3, [[1, 9], [2, -1, "rejected", "m"]]])).toEqual({ first: 7, incarnation: 3, outcomes: [{ hash: 1, seq: 9 }, { hash: 2, rejection: { code: "rejected", message: "m" } }] })
  expect(() => runChecker(7)([3, [[1, 9, "2"]]])).toThrow(/outcome/)
  // The replica's outbox record: [name, args] or [name, args, madeAs].
  expect(checkOutbox(decodeCanonical(encodeOutbox("note", { text: "z" }, 2)))).toEqual({ name: "note", args: { text: "z" }, madeAs: 2 })
  expect(checkOutbox(decodeCanonical(encodeOutbox("note", { text: "z" })))).toEqual({ name: "note", args: { text: "z" } })
  expect(encodeOutbox("note", 1)).toEqual(encodeCanonical(["note", 1]))
  // A damaged record's madeAs (not a number a submit can carry) is refused, not sent as another.
  for (const bad of ["2", 0, -1, 1.5, 2 ** 60]) expect(() => checkOutbox(["note", 1, bad])).toThrow(/outbox record/)
  expect(() => checkOutbox(["note", 1, 2, 3])).toThrow(/outbox record/)
})

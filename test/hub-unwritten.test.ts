/**
 * A document nobody has written yet is loaded with the machine of its first subscriber, but
 * that does not settle it (hub.ts `claimUnwritten`): a subscriber with another machine that
 * may write it takes it from followers that may not, so a reader cannot lock a document's
 * writers out before it is created. A follower that may write keeps it, and a written
 * document's machine is settled for good.
 */
import { hubWorld } from "./support/hub-wire.js"
import { Todo, Counter } from "./support/machines.js"
import type { WirePeer } from "./support/hub-wire.js"

/** Peers 0 and 1 ("reader", "reader-2") may only read; the others may write. */
const world = () => hubWorld({
  machines: [Todo, Counter],
  authorize: async (p, _docId, access) => access === "read" || !p.id.startsWith("reader"),
  authenticate: async (hello) => ({ id: hello.clientId === "peer000000000000" ? "reader" : hello.clientId === "peer000000000001" ? "reader-2" : `writer-${hello.clientId}` }),
})

const subscribeAs = (p: WirePeer, docId: string, m: typeof Todo | typeof Counter) =>
  p.send({ type: "subscribe", docId, machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq: 0, ackedClientSeq: 0 })

test("a read-only subscriber cannot pin its machine on an unwritten document and lock its writers out", async () => {
  const w = world()
  const attacker = await w.peer()
  const otherReader = await w.peer()
  const honest = await w.peer()
  subscribeAs(attacker, "team-board", Counter)
  subscribeAs(otherReader, "team-board", Counter)
  await w.run(50)
  const before = w.storage.size
  subscribeAs(honest, "team-board", Todo)
  await w.run(50)
  // Nothing was written by any of it.
  expect(w.storage.size).toBe(before)
  expect(honest.of("error", "team-board").map((e) => e.code)).toEqual([])
  expect(honest.of("synced", "team-board").length).toBeGreaterThan(0)
  // The readers of the other machine are told, and follow it no more.
  expect(attacker.of("error", "team-board").map((e) => e.code)).toEqual(["machine-mismatch"])
  expect(otherReader.of("error", "team-board").map((e) => e.code)).toEqual(["machine-mismatch"])
  // The writer creates it as its machine.
  honest.send({ type: "submit", docId: "team-board", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "add", args: { id: "a", title: "A" } }] })
  await w.run(50)
  expect((await w.hub.doc("team-board", Todo)).headSeq).toBe(1)
  // Settled: the reader with the other machine is refused, and nothing changes for the writer.
  subscribeAs(attacker, "team-board", Counter)
  await w.run(50)
  expect(attacker.of("error", "team-board").map((e) => e.code)).toEqual(["machine-mismatch", "machine-mismatch"])
  expect(honest.of("error", "team-board")).toEqual([])
})

test("a follower that may write keeps an unwritten document's machine; a written one is settled", async () => {
  const w = world()
  await w.peer()
  await w.peer()
  const first = await w.peer()
  const second = await w.peer()
  subscribeAs(first, "shared", Counter)
  await w.run(50)
  subscribeAs(second, "shared", Todo)
  await w.run(50)
  expect(second.of("error", "shared").map((e) => e.code)).toEqual(["machine-mismatch"])
  expect(first.of("error", "shared")).toEqual([])
  first.send({ type: "submit", docId: "shared", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "incr", args: { by: 1 } }] })
  await w.run(50)
  // Written: even with its first follower gone, another machine never takes it.
  first.send({ type: "unsubscribe", docId: "shared" })
  await w.run(50)
  subscribeAs(second, "shared", Todo)
  await w.run(50)
  expect(second.of("error", "shared").map((e) => e.code)).toEqual(["machine-mismatch", "machine-mismatch"])
  expect((await w.hub.doc("shared", Counter)).headSeq).toBe(1)
})

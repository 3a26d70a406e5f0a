/**
 * A downcast that throws on some arguments its own version's schema accepts (an app's
 * helper that parses, as its upcasts may too). The hub contains a throwing upcast
 * (`acceptCommand` rejects the command with `command-failed`), but not a throwing downcast:
 *
 * - Live fan-out to a follower at an older version (followers.ts `fanOut` ->
 *   doc-authority.ts `entriesForVersion` -> serve.ts `convertEntry`, whose `h.convert` is
 *   outside its try) throws out of `commitBatch` after the batch is durable: the document
 *   is broken and every connection following it is closed. The older follower, once back,
 *   fails its catch-up on the same entry for good (reported as `storage-failed`, retried
 *   forever) instead of being told `update-required`.
 * - A retry in another form (a command number reused with other arguments: any client can
 *   send it) runs `alternateForms` inside the batch's try: its `h.convert` throws, the whole
 *   batch (other clients' commands too) is rolled back and the document broken. Repeatable
 *   at will: every follower of the document is disconnected each time.
 *
 * The right behaviour: a downcast that throws is "this reader cannot be shown it" (the
 * barrier: `update-required`), and no form to compare for a retry (`sequence-reset`).
 */
import * as Schema from "effect/Schema"
import { defineMachine } from "../core/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { alternateForms } from "../core/schema/serve.js"
import { ColorV2, V1 } from "./support/color-machines.js"
import { hubWorld, type WirePeer } from "./support/hub-wire.js"

const DOC = "c"

const subscribeAt = (p: WirePeer, m: typeof V1 | typeof ColorV2, fromSeq = 0) =>
  p.send({ type: "subscribe", docId: DOC, machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq, ackedClientSeq: 0 })

test("a command whose downcast throws: the v1 follower is told update-required, the document is not broken", async () => {
  const broken: string[] = []
  const w = hubWorld({ machines: [ColorV2], onEvent: (e) => { if (e.type === "doc-broken") broken.push(String(e.error)) } })
  const writer = await w.peer()
  const old = await w.peer()
  subscribeAt(writer, ColorV2)
  subscribeAt(old, V1)
  await w.run(50)
  writer.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "setColor", args: { hex: "#102030" } }], ackedClientSeq: 0 })
  await w.run(50)
  writer.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 2, name: "setColor", args: { hex: "teal" } }], ackedClientSeq: 0 })
  await w.run(200)
  expect(broken).toEqual([])
  expect(writer.closed).toBeUndefined()
  expect(old.closed).toBeUndefined()
  // The writer's command is acknowledged; the v1 reader saw seq 1 and is told it cannot be shown seq 2.
  const outcomes = writer.of("results", DOC).flatMap((m) => m.outcomes)
  expect(outcomes).toContainEqual({ clientSeq: 2, seq: 2 })
  expect(old.of("entries", DOC).flatMap((m) => m.entries).map((e) => e.seq)).toEqual([1])
  expect(old.of("error", DOC).map((e) => [e.code, e.seq])).toContainEqual(["update-required", 2])
})

test("a v1 reader subscribing after such an entry is told update-required (not storage-failed forever)", async () => {
  const w = hubWorld({ machines: [ColorV2] })
  const writer = await w.peer()
  subscribeAt(writer, ColorV2)
  await w.run(50)
  writer.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "setColor", args: { hex: "teal" } }], ackedClientSeq: 0 })
  await w.run(100)
  const old = await w.peer()
  subscribeAt(old, V1)
  await w.run(2000)
  const errors = old.of("error", DOC).map((e) => e.code)
  expect(errors).toEqual(["update-required"])
})

test("a reused command number whose downcast throws is refused as a sequence reset; nobody else is disconnected", async () => {
  const broken: string[] = []
  const w = hubWorld({ machines: [ColorV2], onEvent: (e) => { if (e.type === "doc-broken") broken.push(String(e.error)) } })
  const bystander = await w.peer()
  const attacker = await w.peer()
  subscribeAt(bystander, ColorV2)
  subscribeAt(attacker, ColorV2)
  await w.run(50)
  attacker.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "setColor", args: { hex: "#000000" } }], ackedClientSeq: 0 })
  await w.run(50)
  // The same number again, other arguments (whose downcast throws), with a bystander's command in the same batch.
  attacker.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "setColor", args: { hex: "x" } }], ackedClientSeq: 0 })
  bystander.send({ type: "submit", docId: DOC, commands: [{ clientSeq: 1, name: "setColor", args: { hex: "#ffffff" } }], ackedClientSeq: 0 })
  await w.run(200)
  expect(broken).toEqual([])
  expect(bystander.closed).toBeUndefined()
  expect(bystander.of("results", DOC).flatMap((m) => m.outcomes)).toContainEqual({ clientSeq: 1, seq: 2 })
  expect(attacker.of("error", DOC).map((e) => e.code)).toContain("sequence-reset")
})

// A downcast that returns something that is not a command ([null], a number): the next step
// read its `name` outside any guard, so a conversion over two versions threw a TypeError out
// of alternateForms (inside a batch) and the fan-out, where one that throws is contained.
test("a downcast whose output is not a command is 'cannot be shown', over any number of versions", () => {
  const Set1 = defineMachine({ name: "nulls", version: 1, initial: () => ({ n: 0 }), commands: { set: { args: Schema.Struct({ n: Schema.Number }), apply: (s: { n: number }, a) => { s.n = a.n } } } })
  const same = { set: { args: Schema.Struct({ n: Schema.Number }), apply: (s: { n: number }, a: { n: number }) => { s.n = a.n } } }
  const Set2 = evolve(Set1, { version: 2, migrateState: (s: { n: number }) => s, commands: same, upcast: { set: (a) => ({ name: "set" as const, args: a }) }, downcast: { set: (a) => ({ name: "set" as const, args: a }) } })
  for (const bad of [[null], null as never, 7, [{ args: {} }], ["set"]]) {
    const Set3 = evolve(Set2, { version: 3, migrateState: (s: { n: number }) => s, commands: same, upcast: { set: (a) => ({ name: "set" as const, args: a }) }, downcast: { set: () => bad as never } })
    const h = historyOf(Set3)!
    expect(h.convert([{ name: "set", args: { n: 1 } }], 3, 1)).toBeUndefined()
    expect(h.convert([{ name: "set", args: { n: 1 } }], 3, 2)).toBeUndefined()
    expect(alternateForms(Set3, 3, { name: "set", args: { n: 1 } })).toEqual([])
  }
})

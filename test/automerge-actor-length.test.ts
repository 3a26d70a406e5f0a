/**
 * A peer's Automerge actor ids are at most MAX_ACTOR_BYTES (64; Automerge makes 16), checked
 * where the change enters, before decoding (adapters/automerge/validate.ts `measureChunk`).
 * Every op's id names its actor and the hub's index keeps each id as a string: a review's
 * change of 10,000 ops under a 16 KB actor (26.5 KB) took 1.2 GB of the hub's memory, and one
 * of 1 MB crashed it, whatever the bounds on ops. Stored changes are judged by no such limit.
 */
import * as A from "@automerge/automerge"
import * as Schema from "effect/Schema"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/index.js"
import { automergeDoc } from "../adapters/automerge/index.js"
import { MAX_ACTOR_BYTES, measureChunk } from "../adapters/automerge/validate.js"
import { defineMachine } from "../core/index.js"

/** A document chunk and its changes, written by `actor` (hex), inserting `n` characters. */
const written = (actor: string, n: number) => {
  let doc = A.from<{ text: string }>({ text: "" }, { actor })
  doc = A.change(doc, (d) => A.splice(d, ["text"], 0, 0, "x".repeat(n)))
  const out = { changes: A.getAllChanges(doc), chunk: A.save(doc) }
  A.free(doc)
  return out
}

const host = (storage = new MemoryStorage()) => new CrdtDocHost({ engines: [automergeDocEngine()], storage, sync: false, compactAfterBytes: 1 << 30 })

test("measureChunk refuses an actor past maxActorBytes, in a change and in a document chunk, and without the limit reads it", () => {
  const long = written("ab".repeat(MAX_ACTOR_BYTES + 1), 10)
  const fine = written("cd".repeat(MAX_ACTOR_BYTES), 10)
  const limits = { maxOps: 1_000, maxInflatedBytes: 1 << 20, maxActorBytes: MAX_ACTOR_BYTES }
  for (const bytes of [long.changes[0]!, long.chunk]) {
    expect(measureChunk(bytes, limits)).toEqual({ ok: false, tooLarge: false, message: `an actor id of ${MAX_ACTOR_BYTES + 1} bytes (at most ${MAX_ACTOR_BYTES})` })
    expect(measureChunk(bytes, { maxOps: 1_000, maxInflatedBytes: 1 << 20 })).toMatchObject({ ok: true })
  }
  for (const bytes of [fine.changes[0]!, fine.chunk]) expect(measureChunk(bytes, limits)).toMatchObject({ ok: true })
})

test("the /automerge engine refuses a peer's change under a long actor where it enters, and a stored one still loads", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<AutomergeBox>("automerge", "actors")
  const long = written("ab".repeat(4_096), 1_000)
  const out = await doc.submit(long.changes)
  expect(out.rejected[0]).toEqual({ code: "update-malformed", index: 0, message: expect.stringContaining(`an actor id of 4096 bytes (at most ${MAX_ACTOR_BYTES})`) })
  expect(A.getHeads(doc.doc.doc)).toEqual([])
  expect((await doc.submit(written("cd".repeat(16), 10).changes)).rejected).toEqual([])
  await h.close()
  // Written by an earlier hub that took it (stored updates are trusted): it loads as it was.
  const earlier = written("ef".repeat(100), 5)
  const s2 = new MemoryStorage()
  const h2 = host(s2)
  const d2 = await h2.open<AutomergeBox>("automerge", "old")
  // Put into storage through the trusted way in: restore (what a reload does with stored updates).
  await d2.engine.restore(d2.doc, [earlier.chunk])
  expect((d2.doc.doc as { text: string }).text).toBe("xxxxx")
  await h2.close()
})

test("a CRDT field refuses a peer's change under a long actor, and takes an ordered one (trusted)", () => {
  const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: automergeDoc({ n: 0 }) }, commands: { touch: { args: Schema.Struct({}), apply: () => {} } } })
  const engine = Note.crdt!.body.engine
  const field = engine.create() as unknown as { handle: { doc: A.Doc<{ n: number }> } } & ReturnType<typeof engine.create>
  const mine = A.change(A.clone(field.handle.doc, { actor: "ab".repeat(200) }), (d) => void (d.n = 1))
  const update = [A.getLastLocalChange(mine)!]
  A.free(mine)
  const refused = field.validate(update, { clientId: "c1", trusted: false })
  expect(refused).toMatchObject({ ok: false, rejection: { code: "invalid-args", message: expect.stringContaining("an actor id of 200 bytes") } })
  expect(field.validate(update, { clientId: "c1", trusted: true })).toMatchObject({ ok: true })
  field.destroy()
})

/**
 * Seed 66 (npm run sim -- --seed 66 --replicas 5), engine level: a writer's change is refused
 * for the document's bytes (maxDocumentBytes), and so is its tombstone of deleted items (the
 * document is still full, a moment later). The replica then tombstones the tombstone as GC
 * ranges (core/crdt/replica.ts `refused`, adapters/yjs/tombstone.ts `tombstoneOf`: "a tombstone
 * of deleted items the hub refuses too ... is tombstoned again as GC ranges"), which the hub
 * takes. What the writer typed next to the refused change is then lost:
 * - an edit between a live character and the GC range is refused as malformed (integrable.ts
 *   OriginCheck: "one of them was collected ..., the other is in a list"), though an honest
 *   Y.Doc wrote it (seed 66: r2's #84, ⟨r2:65⟩⟨r2:66⟩);
 * - an edit between two GC ranges is accepted and confirmed, and Yjs integrates it as a GC
 *   struct on the hub and every replica: acknowledged, and gone (seed 66: ⟨r2:68+55070⟩,
 *   confirmed at seq 311).
 * This test does what the hub and the replica do, step by step, with the Yjs field engine.
 * Now a refused tombstone's last form keeps as deleted items the ones the writer's changes still to land are placed against (tombstoneOf's `dependents`), and GCs the rest. Found by a helper's investigation of the seed.
 */
import * as Y from "yjs"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { tombstoneOf } from "../adapters/yjs/tombstone.js"

test("seed 66: what the writer typed next to a change whose tombstone went as GC ranges lands", () => {
  const engine = yjsEngine<Y.Text>("text")
  const hub = engine.create()
  const writer = new Y.Doc({ gc: true })
  writer.clientID = 1179461118
  const text = writer.getText("t")
  const updates: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => updates.push(u))

  text.insert(0, "ab") // confirmed
  text.insert(1, "X") // refused: the document is full (seed 66: #66, ⟨r2:60⟩)
  text.insert(1, "Y") // between a and X (seed 66: #69, ⟨r2:66⟩ typed before ⟨r2:60⟩)
  text.insert(2, "Z") // between Y and X (seed 66: #71, ⟨r2:68+55070⟩)
  expect(text.toString()).toBe("aYZXb")
  const [base, refused, y, z] = updates as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]

  const told: string[] = []
  const submit = (u: Uint8Array): boolean => {
    const r = hub.validate(u, { clientId: "w", trusted: false })
    if (!r.ok) {
      told.push(r.rejection.message.slice(0, 60))
      return false
    }
    hub.apply([r.update])
    return true
  }
  expect(submit(base)).toBe(true)
  // `refused` and its tombstone of deleted items are refused by the hub's size bound (not the
  // engine's), so the replica makes the tombstone's tombstone (its last form). The writer's
  // changes still to land are handed along (a third argument today's tombstoneOf ignores: the
  // proposed fix keeps a deleted item where one of them is placed, GC ranges elsewhere).
  const deletedItems = tombstoneOf(writer, refused)!
  const lastForm = (tombstoneOf as (doc: Y.Doc, u: unknown, dependents: unknown[]) => Uint8Array | undefined)(writer, deletedItems, [y, z])!
  expect(submit(lastForm)).toBe(true)
  // The writer's later changes go again, as they were (replica.ts `refused`); one the hub refuses
  // is tombstoned in turn (as deleted items, then as GC ranges), as the replica does.
  const confirmed: string[] = []
  for (const [name, u] of [["Y", y], ["Z", z]] as const) {
    if (submit(u)) {
      confirmed.push(name)
      continue
    }
    const t = tombstoneOf(writer, u)!
    if (!submit(t)) submit(tombstoneOf(writer, t)!)
  }
  // Only X was refused for what it carries: Y and Z are confirmed and land where they were
  // typed. Today Y is refused as malformed (and so is its tombstone of deleted items), and Z
  // is confirmed but collected (a GC struct between two GC ranges): "ab".
  expect({ text: (hub.handle as Y.Text).toString(), confirmed, told }).toEqual({ text: "aYZb", confirmed: ["Y", "Z"], told: [] })
})

/**
 * The property behind test/yjs-server-relay-integrated.test.ts: whatever honest writers and a
 * forger (updates repeating an honest writer's IDs with other content, plus something new of
 * its own) send to the hub's Yjs document engine, what the hub stores and relays for them
 * (apply's bytes: core/crdt-docs/engine.ts `Applied`) leads every reader to the hub's document:
 * a reader that applies any run of the relayed updates first and the hub's whole document after
 * (one still syncing when they came), and one that applies them all from the start.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

type Step =
  | { readonly kind: "edit"; readonly who: number; readonly at: number; readonly text: string; readonly del: number }
  | { readonly kind: "forge"; readonly victim: number; readonly text: string; readonly own: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("edit" as const), who: fc.nat(1), at: fc.nat(1_000), text: fc.string({ minLength: 1, maxLength: 12 }), del: fc.nat(4) }),
  fc.record({ kind: fc.constant("forge" as const), victim: fc.nat(1), text: fc.string({ minLength: 1, maxLength: 40 }), own: fc.nat(1_000) }),
)

const textOf = (d: Y.Doc) => d.getText("t").toString()
const mapOf = (d: Y.Doc) => JSON.stringify(d.getMap("m").toJSON())

test("what the hub relays for any mix of honest and forged updates leads every reader to the hub's document", async () => {
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.nat(30), async (steps, from) => {
    const engine = yjsDocEngine()
    const hub = engine.empty()
    const writers = [new Y.Doc(), new Y.Doc()]
    const sent: Uint8Array[] = []
    for (const w of writers) w.on("update", (u: Uint8Array) => void sent.push(u))
    const relayed: Uint8Array[] = []
    const submit = async (u: Uint8Array) => {
      if (!engine.check(u).ok || !(await engine.prepare!(u)).ok) return
      const [r] = await engine.apply(hub, [u])
      // As the authority stores and relays it (core/crdt-docs/authority.ts commit).
      if (r instanceof Uint8Array) relayed.push(r)
      else if (r === true) relayed.push(u)
    }
    const forger = new Y.Doc()
    for (const s of steps) {
      if (s.kind === "edit") {
        const t = writers[s.who]!.getText("t")
        const at = s.at % (t.length + 1)
        t.insert(at, s.text)
        if (s.del > 0 && t.length > at + s.text.length) t.delete(at + s.text.length, Math.min(s.del, t.length - at - s.text.length))
        for (const u of sent.splice(0)) await submit(u)
        continue
      }
      // The victim's IDs, known to the hub, with the forger's text: only as long as the victim wrote.
      const victim = writers[s.victim]!
      const known = Y.getState(victim.store, victim.clientID)
      if (known === 0) continue
      const fake = new Y.Doc()
      fake.clientID = victim.clientID
      fake.getText("t").insert(0, s.text.slice(0, known).padEnd(Math.min(known, 1), "x"))
      forger.getMap("m").set(`k${s.own}`, s.own)
      await submit(Y.mergeUpdates([Y.encodeStateAsUpdate(fake), Y.encodeStateAsUpdate(forger)]))
    }
    const whole = Y.encodeStateAsUpdate(hub)
    // A reader that joined when update `from` came: the relays since, then the hub's answer.
    const late = new Y.Doc()
    for (const u of relayed.slice(from % (relayed.length + 1))) Y.applyUpdate(late, u)
    Y.applyUpdate(late, whole)
    // One that followed from the start.
    const early = new Y.Doc()
    for (const u of relayed) Y.applyUpdate(early, u)
    for (const reader of [late, early]) expect([textOf(reader), mapOf(reader)]).toEqual([textOf(hub), mapOf(hub)])
    engine.dispose?.(hub)
  }), { numRuns: 150, seed: 20261207 })
})

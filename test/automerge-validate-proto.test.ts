/**
 * Automerge: a map key `__proto__` was taken where changes enter (adapters/automerge/validate.ts,
 * `Overlay.judge`: a map op needs a string key, any string). Automerge materializes a map key
 * by assignment, so a peer's map under `__proto__` becomes the PROTOTYPE of the object every
 * replica reads (`handle.doc`, `A.toJS`, `A.view`, after `A.load` too): `handle.doc.isAdmin`
 * is true though no replica's document has such a key (Object.keys and JSON.stringify don't
 * show it). Both paths: CRDT fields (the hub's validate, then every replica's merge) and whole
 * documents served to automerge-repo peers (the hub's engine, then every peer).
 */
import * as A from "@automerge/automerge"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { automergeDoc } from "../adapters/automerge/index.js"
import { automergeDocEngine } from "../adapters/automerge-server/engine.js"
import { OpIndex, Overlay } from "../adapters/automerge/validate.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { WirePeer } from "./support/hub-wire.js"
import { settleWithTurns } from "./support/virtual-time.js"

const Profile = defineMachine({
  name: "profile",
  version: 1,
  initial: () => ({}),
  crdt: { prefs: automergeDoc({ theme: "light" } as Record<string, unknown>) },
  commands: {},
})

/** One change on top of `doc` that sets `key` at the root (and inside "inner") to a map { isAdmin: true }. */
const protoChange = (doc: A.Doc<unknown>, actor: string, key = "__proto__"): Uint8Array => {
  const h = A.getBackend(A.clone(doc, { actor }))
  const p = h.putObject("_root", key, {})
  h.put(p, "isAdmin", true)
  const inner = h.putObject("_root", "inner", {})
  const q = h.putObject(inner, key, {})
  h.put(q, "isAdmin", true)
  h.commit("", 0)
  return h.getLastLocalChange()!
}

test("a peer's map key __proto__ in a CRDT field is refused; no replica's value inherits from it", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 3 })
  const hub = new Hub({ machines: [Profile], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("honest"), runtime: rt, clientId: "honest" })
  const honest = await client.open(Profile, "p1")
  const mallory = new WirePeer("mallory000000001")
  mallory.listener = hub.accept(mallory.conn, { remoteAddress: "test:mallory" })
  mallory.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: mallory.clientId, machines: [], secret: newClientSecret(rt) })
  await settleWithTurns(rt, 50)
  mallory.send({ type: "subscribe", docId: "p1", machine: Profile.name, version: Profile.version, fingerprint: Profile.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await settleWithTurns(rt, 200)

  const change = protoChange(honest.crdt.prefs.doc, "ab".repeat(16))
  mallory.send({ type: "submit", docId: "p1", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "$crdt.prefs", args: [change] }] })
  await settleWithTurns(rt, 500)

  const doc = honest.crdt.prefs.doc as Record<string, unknown> & { inner?: Record<string, unknown> }
  // What the app reads: no inherited values, the ordinary prototype.
  expect(doc.isAdmin).toBeUndefined()
  expect(doc.inner?.isAdmin).toBeUndefined()
  expect(Object.getPrototypeOf(doc)).toBe(Object.prototype)
  expect((A.toJS(doc) as { isAdmin?: unknown }).isAdmin).toBeUndefined()
  // The hub refused it with a typed rejection.
  const outcomes = JSON.stringify(mallory.of("results", "p1"))
  expect(outcomes).toMatch(/crdt-invalid/)
  await hub.close()
})

test("the hub's whole-document engine refuses a map key __proto__; constructor stays an ordinary key", async () => {
  const engine = automergeDocEngine()
  const box = engine.empty()
  const seed = A.change(A.init<Record<string, unknown>>({ actor: "01".repeat(16) }), (d) => { d.title = "t" })
  expect(await engine.apply(box, [A.getLastLocalChange(seed)!])).toEqual([true])
  const bad = protoChange(seed, "ab".repeat(16))
  const checked = await engine.check(bad)
  const result = checked.ok ? (await engine.apply(box, [bad]))[0] : checked
  expect(result).toMatchObject({ code: "update-malformed" })
  // Whatever the engine did, every peer that loads the document must not inherit the value.
  const loaded = A.load(engine.encode(box)) as Record<string, unknown>
  expect(loaded.isAdmin).toBeUndefined()

  // `constructor` is an own property (as JSON.parse makes it): allowed.
  const fine = protoChange(seed, "cd".repeat(16), "constructor")
  expect(new Overlay(OpIndex.of(seed)).check(A.decodeChange(fine))).toBeUndefined()
})

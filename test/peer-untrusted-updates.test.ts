/**
 * A peer is as untrusted as any client of the hub. The peer sessions (adapters/peer:
 * YSyncSession, AutomergeReplica) applied what a peer sent with `Y.applyUpdate` and
 * `A.receiveSyncMessage` directly, past the checks the hub's routes share
 * (adapters/yjs/integrable.ts, adapters/automerge/validate.ts and admit.ts), so every attack
 * those checks stop reached a replica through a peer link:
 *
 * - Yjs: one update of 5,000 nested maps (55 KB) made `toJSON()` of the document overflow the
 *   stack for good; a map key `__proto__` became the prototype of what `toJSON()` returns; a
 *   deep chain sent before its first piece was held by Yjs and integrated unchecked later.
 * - Automerge: a change of nested maps past 128 levels was applied (from ~7,800 levels in one
 *   16 KB change Automerge's WebAssembly aborts, for every document of the page or process:
 *   the tests stay far below that and check the refusal); `__proto__` likewise; nothing
 *   bounded a document chunk's deflated parts.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { memoryLinkPair } from "../core/crdt-docs/peer-link.js"
import { AutomergeReplica, YSyncSession } from "../adapters/peer/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { attach } from "./support/replicas.js"

/** A Y.Doc the attacker builds: `levels` nested maps under key "x" of map "m". */
const nestedYUpdate = (levels: number, base?: Y.Doc): { update: Uint8Array; doc: Y.Doc } => {
  const doc = new Y.Doc()
  if (base !== undefined) Y.applyUpdate(doc, Y.encodeStateAsUpdate(base))
  const before = Y.encodeStateVector(doc)
  doc.transact(() => {
    let m = doc.getMap<unknown>("m")
    for (let i = 0; i < levels; i++) {
      const c = new Y.Map<unknown>()
      m.set("x", c)
      m = c
    }
  })
  return { update: Y.encodeStateAsUpdate(doc, before), doc }
}

const ySession = () => {
  const [mine, theirs] = memoryLinkPair()
  const doc = new Y.Doc()
  const errors: string[] = []
  const session = new YSyncSession(doc, mine, { onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  return { doc, session, errors, send: (update: Uint8Array) => theirs.send(encodeUpdate(update)) }
}

test("Yjs: a peer's update of 5,000 nested maps is refused; the document stays readable", async () => {
  const { doc, errors, send } = ySession()
  doc.getMap("m").set("kept", 1)
  const { update } = nestedYUpdate(5000)
  expect(update.length).toBeLessThan(64_000)
  send(update)
  expect(await until(() => errors.length > 0, 2_000)).toBe(true)
  expect(errors[0]).toMatch(/^update-malformed: Shared types nest deeper than 128/)
  expect(() => doc.toJSON()).not.toThrow()
  expect(doc.getMap("m").toJSON()).toEqual({ kept: 1 })
  // 128 levels are fine.
  send(nestedYUpdate(127).update)
  expect(await until(() => doc.getMap("m").has("x"), 2_000)).toBe(true)
})

test("Yjs: a deep chain sent before the piece it continues is never held and integrated unchecked", async () => {
  const { doc, session, errors, send } = ySession()
  const first = nestedYUpdate(100)
  const second = nestedYUpdate(100, first.doc)
  // Continue the chain in the second doc: find the innermost map and nest 100 more under it.
  let inner = second.doc.getMap<unknown>("m")
  for (let v = inner.get("x"); v instanceof Y.Map; v = inner.get("x")) inner = v as Y.Map<unknown>
  const before = Y.encodeStateVector(first.doc)
  second.doc.transact(() => {
    let m = inner
    for (let i = 0; i < 100; i++) {
      const c = new Y.Map<unknown>()
      m.set("x", c)
      m = c
    }
  })
  const rest = Y.encodeStateAsUpdate(second.doc, before)
  send(rest) // depends on `first`, which has not arrived
  send(first.update)
  await until(() => errors.length > 0 || session.resyncs > 0, 2_000)
  await until(() => errors.length > 0, 300)
  const store = doc.store as unknown as { pendingStructs: unknown }
  expect(store.pendingStructs).toBeNull()
  // The first 100 levels may be in; the chain past 128 is not.
  let depth = 0
  for (let v: unknown = doc.getMap("m").get("x"); v instanceof Y.Map; v = v.get("x")) depth++
  expect(depth).toBeLessThanOrEqual(128)
  expect(() => doc.toJSON()).not.toThrow()
})

test("Yjs: a peer's map key __proto__ is refused (it would become the prototype of toJSON()'s object)", async () => {
  const { doc, errors, send } = ySession()
  const evil = new Y.Doc()
  evil.getMap("m").set("__proto__", { isAdmin: true })
  send(Y.encodeStateAsUpdate(evil))
  expect(await until(() => errors.length > 0, 2_000)).toBe(true)
  expect(errors[0]).toMatch(/__proto__/)
  const json = doc.getMap("m").toJSON() as { isAdmin?: unknown }
  expect(json.isAdmin).toBeUndefined()
  expect(Object.getPrototypeOf(json)).toBe(Object.prototype)
})

/** One change, on `doc`'s history, putting `levels` nested maps under key "x" (Automerge's own API). */
const nestedChange = (doc: A.Doc<unknown>, levels: number, key = "x"): Uint8Array => {
  const h = A.getBackend(A.clone(doc, { actor: "ab".repeat(16) }))
  let obj = "_root"
  for (let i = 0; i < levels; i++) obj = h.putObject(obj, key, {})
  h.commit("", 0)
  return h.getLastLocalChange()!
}

/** A sync message from an attacker carrying `changes` (whatever its SyncState would say). */
const syncMessage = (changes: Uint8Array[]): Uint8Array =>
  A.encodeSyncMessage({ heads: changes.map((c) => A.decodeChange(c).hash), need: [], have: [], changes })

const amReplica = (options: ConstructorParameters<typeof AutomergeReplica>[1] = {}) => {
  const [mine, theirs] = memoryLinkPair()
  const replica = new AutomergeReplica(A.from<Record<string, unknown>>({ kept: 1 }), { ...options, onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  const errors: string[] = []
  attach(replica, mine)
  // The memory link delivers on a later turn; then the replica handles it.
  const send = async (bytes: Uint8Array) => {
    theirs.send(bytes)
    await sleep(20)
    await replica.idle()
  }
  return { replica, errors, send }
}

test("Automerge: a peer's change nesting maps past 128 levels is refused; the document is untouched", async () => {
  const { replica, errors, send } = amReplica()
  await send(syncMessage([nestedChange(replica.doc, 300)]))
  expect(errors[0]).toMatch(/^update-malformed: .*nest deeper than 128/)
  expect(replica.doc).toEqual({ kept: 1 })
  expect(() => structuredClone(replica.doc)).not.toThrow()
  // 100 levels are fine.
  await send(syncMessage([nestedChange(replica.doc, 100, "y")]))
  expect(Object.keys(replica.doc).sort()).toEqual(["kept", "y"])
})

test("Automerge: a peer's map key __proto__ is refused", async () => {
  const { replica, errors, send } = amReplica()
  const h = A.getBackend(A.clone(replica.doc, { actor: "cd".repeat(16) }))
  h.put("_root", "__proto__", "evil")
  h.commit("", 0)
  await send(syncMessage([h.getLastLocalChange()!]))
  expect(errors[0]).toMatch(/__proto__/)
  expect(Object.getPrototypeOf(replica.doc)).toBe(Object.prototype)
})

test("Automerge: a change whose dependency has not arrived is held by the replica, not Automerge, asked for, and checked once it is here", async () => {
  const [mine, theirs] = memoryLinkPair()
  const errors: string[] = []
  const replica = new AutomergeReplica(A.from<Record<string, unknown>>({ kept: 1 }), { onError: (e) => errors.push(e.code) })
  const asked: string[][] = []
  theirs.subscribe({ message: (bytes) => asked.push(A.decodeSyncMessage(bytes).need) })
  attach(replica, mine)
  const send = async (bytes: Uint8Array) => {
    theirs.send(bytes)
    await sleep(20)
    await replica.idle()
  }
  let other = A.clone(replica.doc, { actor: "ef".repeat(16) })
  other = A.change(other, (d) => { d.a = 1 })
  const first = A.getLastLocalChange(other)!
  other = A.change(other, (d) => { d.b = 2 })
  await send(syncMessage([A.getLastLocalChange(other)!]))
  expect(replica.doc).toEqual({ kept: 1 })
  // Automerge holds nothing it would apply unchecked later; the replica asks for the dependency.
  expect(A.getMissingDeps(replica.doc, [])).toEqual([])
  expect(asked.at(-1)).toContain(A.decodeChange(first).hash)
  await send(syncMessage([first]))
  expect(errors).toEqual([])
  expect(replica.doc).toEqual({ kept: 1, a: 1, b: 2 })
})

test("Automerge: held changes are bounded in bytes; past the bound they are dropped and the rounds start over", async () => {
  const { replica, send } = amReplica({ maxHeldBytes: 2_000 })
  let other = A.clone(replica.doc, { actor: "ab".repeat(16) })
  other = A.change(other, (d) => { d.root = 0 })
  // Orphans: each a 1 KB change whose chain starts with a change never sent.
  for (let i = 0; i < 5; i++) {
    other = A.change(other, (d) => { d[`k${i}`] = "x".repeat(1000) })
    await send(syncMessage([A.getLastLocalChange(other)!]))
    expect(replica.heldBytes).toBeLessThanOrEqual(2_000)
  }
  expect(replica.resyncs).toBeGreaterThan(0)
  expect(replica.doc).toEqual({ kept: 1 })
  expect(A.getMissingDeps(replica.doc, [])).toEqual([])
})

test("Automerge: first contact from an empty replica (a deflated document chunk) syncs; its inflated bytes are bounded", async () => {
  let source = A.from<{ text: string }>({ text: "" })
  for (let i = 0; i < 100; i++) source = A.change(source, (d) => { A.splice(d, ["text"], 0, 0, "hello world ".repeat(20)) })
  const sync = async (options: ConstructorParameters<typeof AutomergeReplica>[1]) => {
    const [la, lb] = memoryLinkPair()
    const errors: string[] = []
    const from = new AutomergeReplica(A.clone(source))
    const to = new AutomergeReplica(A.init<{ text: string }>(), { ...options, onError: (e) => errors.push(e.code) })
    attach(from, la)
    attach(to, lb)
    await until(() => to.doc.text?.length === 24_000 || errors.length > 0, 5_000)
    return { to, errors }
  }
  const ok = await sync({})
  expect(ok.errors).toEqual([])
  expect(ok.to.doc.text.length).toBe(24_000)
  const bounded = await sync({ maxInflatedBytes: 1_000 })
  expect(bounded.errors[0]).toBe("update-too-large")
  expect(bounded.to.doc.text).toBeUndefined()
})

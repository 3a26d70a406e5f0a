/**
 * Review (attack on 40d475c): the hub's Automerge engine applies a document chunk with
 * `A.loadIncremental(box.doc, bytes)` on the raw update bytes, while `check` (and so
 * `admitChanges`' checks and `writers()`) only saw what `A.load(bytes)` + `getAllChanges`
 * returned for the bytes on their own.
 *
 * `measureChunk` accepts several concatenated chunks (type: the first one's). Attack: a
 * document chunk D carrying one harmless change of the attacker's own actor, followed by a
 * change chunk X that depends on a change only the hub's document has. Loaded alone (the
 * check), X's dependency is missing, so Automerge queues it and `getAllChanges` does not
 * return it: nothing checks X, and `writers()` does not list X's actor. `loadIncremental`
 * into the hub's document finds the dependency and applies X.
 *
 * X here writes as an actor another principal (alice) owns, with her next seq: forged
 * authorship and a front-run of alice's clock (her own next change is then refused as an
 * equivocation, so she stays diverged for good), and X's ops were never checked.
 *
 * The third test goes through the automerge-repo endpoint (a sync message's changes are raw
 * byte strings: D + X survives decodeSyncMessage). That route was open before this change
 * too, by another door: the endpoint handed `receiveSyncMessage` the full message after
 * submit, and Automerge applied X itself. Today's endpoint strips the changes (closing that
 * door) but the engine's `loadIncremental` reopens it; a fix in the engine closes both (and
 * restoring the full message in the endpoint would reopen the old one).
 *
 * Expected: the update is refused or applied without X (the hub applies only what its checks
 * saw, as before this change, when only the decoded changes went to `applyChanges`);
 * alice's document has nothing of mallory's under her actor, and her next change is taken.
 */
import * as A from "@automerge/automerge"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { automergeDocEngine, type AutomergeBox } from "../adapters/automerge-server/engine.js"
import { automergeRoute } from "../adapters/automerge-server/index.js"
import { encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/protocol.js"
import { WebSocket } from "ws"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"
import { bytes } from "./support/hostile-frames.js"

const ALICE = "aa".repeat(16)
const MALLORY = "bb".repeat(16)

test("a change chunk appended to a document chunk is not applied unchecked under another principal's actor", async () => {
  const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, compactAfterBytes: 1 << 30 })
  const doc = await h.open<AutomergeBox>("automerge", "smuggle")

  // Alice writes first: her actor is hers.
  let alice = A.change(A.init<Record<string, unknown>>({ actor: ALICE }), (d) => { d.text = "alice" })
  expect(await doc.submit([A.getLastLocalChange(alice)!], undefined, "alice")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.ownerOf(ALICE)).toBe("alice")

  // Submitted alone, X is refused as not-owner (the ownership that the smuggling bypasses).
  const forged = A.change(A.clone(doc.doc.doc as A.Doc<Record<string, unknown>>, { actor: ALICE }), (d) => { d.text = "FORGED by mallory" })
  const X = A.getLastLocalChange(forged)!
  const alone = await doc.submit([X], undefined, "mallory")
  expect(alone.rejected.map((r) => r.code)).toEqual(["not-owner"])

  // The same X behind a document chunk of mallory's own.
  const D = A.save(A.change(A.init<Record<string, unknown>>({ actor: MALLORY }), (d) => { d.m = 1 }))
  const out = await doc.submit([bytes(D, X)], undefined, "mallory")

  const state = doc.doc.doc as Record<string, unknown>
  const aliceSeqs = A.getAllChanges(doc.doc.doc).map((c) => A.decodeChange(c)).filter((c) => c.actor === ALICE).length
  // What the hub holds under alice's actor is alice's alone.
  expect({ out, text: state.text, aliceChanges: aliceSeqs }).toEqual({ out: expect.anything(), text: "alice", aliceChanges: 1 })

  // Alice's own next change (seq 2) is taken.
  alice = A.change(alice, (d) => { d.text = "alice 2" })
  const next = await doc.submit([A.getLastLocalChange(alice)!], undefined, "alice")
  expect(next).toMatchObject({ stored: 1, rejected: [] })
  await h.close()
})

/** One change on top of `doc` that sets root key `__proto__` to a map { isAdmin: true } (refused by the ops checks when sent alone). */
const protoChange = (doc: A.Doc<unknown>, actor: string): Uint8Array => {
  const h = A.getBackend(A.clone(doc, { actor }))
  const p = h.putObject("_root", "__proto__", {})
  h.put(p, "isAdmin", true)
  h.commit("", 0)
  return h.getLastLocalChange()!
}

test("a change chunk appended to a document chunk does not skip the ops checks (a __proto__ map key)", async () => {
  const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, compactAfterBytes: 1 << 30 })
  const doc = await h.open<AutomergeBox>("automerge", "smuggle-ops")
  const alice = A.change(A.init<Record<string, unknown>>({ actor: ALICE }), (d) => { d.text = "alice" })
  expect(await doc.submit([A.getLastLocalChange(alice)!], undefined, "alice")).toMatchObject({ stored: 1, rejected: [] })

  // Alone, X is refused by the ops checks.
  const X = protoChange(doc.doc.doc, "cc".repeat(16))
  const alone = await doc.submit([X], undefined, "mallory")
  expect(alone.rejected.map((r) => r.code)).toEqual(["update-malformed"])

  // X behind a document chunk of mallory's own (X depends on alice's change, which only the hub has).
  const D = A.save(A.change(A.init<Record<string, unknown>>({ actor: MALLORY }), (d) => { d.m = 1 }))
  await doc.submit([bytes(D, X)], undefined, "mallory")

  // What every peer served this document reads: no inherited isAdmin.
  expect((A.toJS(doc.doc.doc) as Record<string, unknown>).isAdmin).toBeUndefined()
  expect((doc.doc.doc as Record<string, unknown>).isAdmin).toBeUndefined()
  await h.close()
})

test("through the automerge-repo endpoint: mallory's sync message carrying D + X does not write as alice's actor", async () => {
  const { hub, url, stop } = await crdtRoutesHub([automergeDocEngine()], (host) => [automergeRoute(host)])
  const sockets: WebSocket[] = []
  const peer = async (token: string, peerId: string) => {
    const ws = new WebSocket(`${url("/automerge")}?token=${token}`)
    sockets.push(ws)
    const got: Array<ReturnType<typeof decodeRepoMessage>> = []
    ws.on("message", (d) => got.push(decodeRepoMessage(new Uint8Array(d as Buffer))))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    ws.send(encodeRepoMessage({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
    await until(() => got.some((m) => m?.type === "peer"), 5_000)
    const sync = (changes: Uint8Array[], heads: string[]) =>
      ws.send(encodeRepoMessage({ type: "sync", senderId: peerId, targetId: "canon-hub", documentId: DOC as never, data: A.encodeSyncMessage({ heads, need: [], have: [], changes }) }))
    return { sync }
  }
  const DOC = "4NMNnkMhL8jXrdJ9jamS58PAVdXu" // an automerge-repo document id
  try {
    const a = await peer("alice", "peer-alice")
    const alice = A.change(A.init<Record<string, unknown>>({ actor: ALICE }), (d) => { d.text = "alice" })
    const first = A.getLastLocalChange(alice)!
    a.sync([first], A.getHeads(alice))
    const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", DOC)
    expect(await until(() => doc.seq === 1, 5_000)).toBe(true)
    expect(doc.ownerOf(ALICE)).toBe("alice")

    const m = await peer("mallory", "peer-mallory")
    const X = A.getLastLocalChange(A.change(A.clone(alice, { actor: ALICE }), (d) => { d.text = "FORGED by mallory" }))!
    const D = A.save(A.change(A.init<Record<string, unknown>>({ actor: MALLORY }), (d) => { d.m = 1 }))
    m.sync([bytes(D, X)], [])
    await sleep(1_000)
    expect((doc.doc.doc as Record<string, unknown>).text).toBe("alice")
    expect(A.getAllChanges(doc.doc.doc).map((c) => A.decodeChange(c)).filter((c) => c.actor === ALICE).length).toBe(1)
  } finally {
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 30_000)

test("change chunks back to back (as a stock Repo's sync sends quick edits) are taken, each checked: a __proto__ change or another's actor behind an honest change is refused, and a document chunk behind a change too", async () => {
  const h = new CrdtDocHost({ engines: [automergeDocEngine()], storage: new MemoryStorage(), sync: false, compactAfterBytes: 1 << 30 })
  const doc = await h.open<AutomergeBox>("automerge", "back-to-back")
  let alice = A.change(A.init<Record<string, unknown>>({ actor: ALICE }), (d) => { d.text = "alice" })
  expect(await doc.submit([A.getLastLocalChange(alice)!], undefined, "alice")).toMatchObject({ stored: 1, rejected: [] })
  // Honest: alice's next two changes in one element.
  alice = A.change(alice, (d) => { d.text = "alice 2" })
  const c2 = A.getLastLocalChange(alice)!
  alice = A.change(alice, (d) => { d.n = 3 })
  const c3 = A.getLastLocalChange(alice)!
  expect(await doc.submit([bytes(c2, c3)], undefined, "alice")).toMatchObject({ stored: 1, rejected: [] })
  expect(doc.doc.doc).toMatchObject({ text: "alice 2", n: 3 })

  // Mallory: an honest change of his own, then a __proto__ change; then one as alice's actor.
  let mallory = A.change(A.clone(doc.doc.doc as A.Doc<Record<string, unknown>>, { actor: MALLORY }), (d) => { d.m = 1 })
  const own = A.getLastLocalChange(mallory)!
  const proto = protoChange(mallory, "cc".repeat(16))
  const asAlice = A.getLastLocalChange(A.change(A.clone(doc.doc.doc as A.Doc<Record<string, unknown>>, { actor: ALICE }), (d) => { d.text = "FORGED" }))!
  const D = A.save(A.change(A.init<Record<string, unknown>>({ actor: "dd".repeat(16) }), (d) => { d.x = 1 }))
  const codes = async (u: Uint8Array) => (await doc.submit([u], undefined, "mallory")).rejected.map((r) => r.code)
  expect(await codes(bytes(own, proto))).toEqual(["update-malformed"])
  expect(await codes(bytes(own, asAlice))).toEqual(["not-owner"])
  expect(await codes(bytes(own, D))).toEqual(["update-malformed"])
  // All or nothing per update: none of mallory's got in, and what peers read is clean.
  const state = doc.doc.doc as Record<string, unknown>
  expect({ m: state.m, text: state.text, isAdmin: (A.toJS(doc.doc.doc) as Record<string, unknown>).isAdmin }).toEqual({ m: undefined, text: "alice 2", isAdmin: undefined })
  mallory = A.change(mallory, (d) => { d.m = 2 })
  expect(await codes(bytes(own, A.getLastLocalChange(mallory)!))).toEqual([])
  await h.close()
})

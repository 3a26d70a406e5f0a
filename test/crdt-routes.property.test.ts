/**
 * Every route by which a peer's CRDT bytes reach a document refuses what the shared checks
 * refuse. The class this keeps out: a route written on its own (the peer sessions were) that
 * hands a peer's bytes to Yjs or Automerge directly, past adapters/yjs/integrable.ts and
 * adapters/automerge/validate.ts + admit.ts.
 *
 * 1. A property over the routes: the same random tree of nested maps (depths around the bound,
 *    keys including prototype names) goes through each route from a fresh document; each
 *    takes it exactly when the validators would (depth within the bound, no `__proto__`).
 * 2. A census of the calls that hand bytes to the libraries (`Y.applyUpdate`,
 *    `A.applyChanges`, `A.receiveSyncMessage`, `A.load`, ...): a new one fails here until it
 *    is added to the list below with what guards it, and to the routes of (1) if a peer's
 *    bytes reach it.
 */
import fc from "fast-check"
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { readFileSync, readdirSync, statSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { MAX_TYPE_DEPTH, MAX_UPDATE_STRUCTS } from "../adapters/yjs/integrable.js"
import { MAX_OBJECT_DEPTH } from "../adapters/automerge/validate.js"
import { yjsEngine } from "../adapters/yjs/index.js"
import { automergeDoc } from "../adapters/automerge/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"
import { automergeDocEngine } from "../adapters/automerge-server/index.js"
import { AutomergeReplica, YSyncSession } from "../adapters/peer/index.js"
import { memoryLinkPair } from "../core/crdt-docs/peer-link.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { automergeChangeOf, tree, yjsUpdateOf, type Tree } from "./support/nested-trees.js"
import { bytes as concat } from "./support/hostile-frames.js"
import { attach } from "./support/replicas.js"

const turn = () => new Promise((r) => setTimeout(r, 0))

// ---- Yjs: the update a peer makes of a tree, under map "m" ----

const yUpdate = (t: Tree): Uint8Array => yjsUpdateOf(t, 4242)

/** Each Yjs route, from a fresh document: whether it took the update. */
const yRoutes: Record<string, (update: Uint8Array) => Promise<boolean>> = {
  "CRDT field (yMap)": async (update) => yjsEngine<Y.Map<unknown>>("map").create().validate(update, { clientId: "peer", trusted: false }).ok,
  "hub whole document": async (update) => {
    const engine = yjsDocEngine()
    if (!(await engine.check(update)).ok) return false
    return (await engine.apply(engine.empty(), [update]))[0] instanceof Uint8Array
  },
  "peer session": async (update) => {
    const [mine, theirs] = memoryLinkPair()
    const doc = new Y.Doc()
    new YSyncSession(doc, mine, { onError: () => {} })
    theirs.send(encodeUpdate(update))
    await turn()
    // Taken: anything of it is in the document (its state vector names a client).
    return Y.encodeStateVector(doc).length > 1
  },
}

test("Yjs: every route takes a tree exactly when it nests within the bound without a __proto__ key", async () => {
  await fc.assert(fc.asyncProperty(tree(MAX_TYPE_DEPTH), async ({ tree: t, depth, proto }) => {
    const update = yUpdate(t)
    for (const [route, take] of Object.entries(yRoutes)) {
      expect({ route, taken: await take(update) }).toEqual({ route, taken: !(depth > MAX_TYPE_DEPTH || proto) })
    }
  }), { numRuns: 15 })
})

test("Yjs: every route refuses an update of more structs than MAX_UPDATE_STRUCTS (2-byte GC structs: counted, never decoded)", async () => {
  const n = MAX_UPDATE_STRUCTS + 1
  const bytes = [1, ...varuint(n), ...varuint(4242), 0]
  for (let i = 0; i < n; i++) bytes.push(0, 1)
  bytes.push(0)
  const flood = new Uint8Array(bytes)
  for (const [route, take] of Object.entries(yRoutes)) expect({ route, taken: await take(flood) }).toEqual({ route, taken: false })
})

function varuint(n: number): number[] {
  const out: number[] = []
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n & 0x7f) | 0x80)
  out.push(n)
  return out
}

// ---- Automerge: one change a peer makes of a tree, on a base every route starts from ----

const amChange = automergeChangeOf

/** Each Automerge route: its base document, and whether it took a change made on that base. */
const amRoutes: Record<string, () => { base: A.Doc<unknown>; take: (change: Uint8Array) => Promise<boolean> }> = {
  "CRDT field (automergeDoc)": () => {
    const field = automergeDoc({}).engine.create()
    return { base: field.handle.doc as A.Doc<unknown>, take: async (c) => field.validate([c], { clientId: "peer", trusted: false }).ok }
  },
  "hub whole document": () => {
    const engine = automergeDocEngine()
    const box = engine.empty()
    const seed = A.change(A.init<Record<string, unknown>>({ actor: "01".repeat(16) }), (d) => { d.seed = 1 })
    const seeded = engine.apply(box, [A.getLastLocalChange(seed)!])
    return {
      base: seed,
      take: async (c) => {
        await seeded
        return (await engine.check(c)).ok && (await engine.apply(box, [c]))[0] === true
      },
    }
  },
  "peer replica": () => {
    const base = A.from<Record<string, unknown>>({ seed: 1 }, { actor: "02".repeat(16) })
    const replica = new AutomergeReplica(A.clone(base), { onError: () => {} })
    const [mine, theirs] = memoryLinkPair()
    attach(replica, mine)
    return {
      base,
      take: async (c) => {
        theirs.send(A.encodeSyncMessage({ heads: [A.decodeChange(c).hash], need: [], have: [], changes: [c] }))
        await turn()
        await replica.idle()
        return A.getHeads(replica.doc).includes(A.decodeChange(c).hash)
      },
    }
  },
}

test("Automerge: every route takes a tree exactly when it nests within the bound without a __proto__ key", async () => {
  await fc.assert(fc.asyncProperty(tree(MAX_OBJECT_DEPTH), async ({ tree: t, depth, proto }) => {
    for (const [route, make] of Object.entries(amRoutes)) {
      const { base, take } = make()
      const taken = await take(amChange(base, t))
      expect({ route, taken }).toEqual({ route, taken: !(depth > MAX_OBJECT_DEPTH || proto) })
    }
  }), { numRuns: 15 })
})

test("Automerge: no route applies a chunk carried after a document chunk (held back when the bytes are loaded alone, applied where the document has its dependency)", async () => {
  // D: a harmless document of the sender's own; X: a change on the route's base, whose dependency D lacks.
  const smuggle = (base: A.Doc<unknown>) => {
    const d = A.save(A.change(A.init<Record<string, unknown>>({ actor: "0d".repeat(16) }), (x) => { x.own = 1 }))
    const x = A.getLastLocalChange(A.change(A.clone(base as A.Doc<Record<string, unknown>>, { actor: "0e".repeat(16) }), (y) => { y.smuggled = true }))!
    return { bytes: concat(d, x), hash: A.decodeChange(x).hash }
  }
  for (const [route, make] of Object.entries(amRoutes)) {
    const { base, take } = make()
    const { bytes } = smuggle(base)
    let taken: boolean
    try {
      taken = await take(bytes)
    } catch {
      taken = false // the peer route's harness decodes its input as one change
    }
    expect({ route, taken }).toEqual({ route, taken: false })
  }
  // The hub's whole document and the peer replica, looked at directly: X is nowhere.
  const engine = automergeDocEngine()
  const box = engine.empty()
  const seed = A.change(A.init<Record<string, unknown>>({ actor: "01".repeat(16) }), (d) => { d.seed = 1 })
  await engine.apply(box, [A.getLastLocalChange(seed)!])
  const hub = smuggle(seed)
  const verdict = await engine.check(hub.bytes)
  if (verdict.ok) await engine.apply(box, [hub.bytes])
  expect(A.getBackend(box.doc).getChangeByHash(hub.hash)).toBeNull()
  const replicaBase = A.from<Record<string, unknown>>({ seed: 1 }, { actor: "02".repeat(16) })
  const replica = new AutomergeReplica(A.clone(replicaBase), { onError: () => {} })
  const [mine, theirs] = memoryLinkPair()
  attach(replica, mine)
  const peer = smuggle(replicaBase)
  theirs.send(A.encodeSyncMessage({ heads: [peer.hash], need: [], have: [], changes: [peer.bytes] }))
  await turn()
  await replica.idle()
  expect(A.getBackend(replica.doc).getChangeByHash(peer.hash)).toBeNull()
})

// ---- The census ----

/** Where bytes are handed to Yjs or Automerge, and what guards each call. */
const HANDOFFS: Record<string, { readonly calls: number; readonly guard: string }> = {
  "adapters/yjs/engine.ts": { calls: 3, guard: "field updates: validate() (integrable.ts); the hub's field snapshot (left alone: a hostile hub); merging validated updates" },
  "adapters/yjs-server/engine.ts": { calls: 3, guard: "the hub's own stored base and the updates stored after it (restore: accepted by this hub); updates after check() and notIntegrable" },
  "adapters/peer/yjs-sync.ts": { calls: 1, guard: "peer updates after unsupportedStructs and notIntegrable (route: peer session)" },
  "adapters/automerge/engine.ts": { calls: 1, guard: "field changes after validate() (measureChunk, Overlay)" },
  "adapters/automerge/validate.ts": { calls: 1, guard: "saveReloads: this process's own save()" },
  "adapters/automerge/remake.ts": { calls: 1, guard: "the undo change this process just made itself, merged into its own copy of the field" },
  "adapters/automerge/admit.ts": { calls: 2, guard: "changesOf, changesOfAsync: a document chunk after measureChunk" },
  "adapters/automerge-server/engine.ts": { calls: 5, guard: "the hub's own stored base and the changes stored after it (restore: accepted by this hub; chunk by chunk, so one that does not parse throws); single changes and document chunks after admitChanges" },
  "adapters/automerge-server/endpoint.ts": { calls: 1, guard: "a sync message whose changes the document took through the engine (submit) first; one known change stands in for them" },
  "adapters/peer/automerge-sync.ts": { calls: 1, guard: "a sync message re-encoded with admitted changes only (route: peer replica)" },
}

const HANDOFF = /\b(?:Y\.(?:applyUpdate|applyUpdateV2|mergeUpdates|mergeUpdatesV2)|A\.(?:applyChanges|receiveSyncMessage|load|loadIncremental|merge))\(/g

test("census: every call handing bytes to Yjs or Automerge is listed with its guard", () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..")
  const found: Record<string, number> = {}
  const visit = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) visit(path)
      else if (name.endsWith(".ts")) {
        // Comments are not calls.
        const code = readFileSync(path, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "")
        const n = code.match(HANDOFF)?.length ?? 0
        if (n > 0) found[relative(root, path)] = n
      }
    }
  }
  for (const top of ["core", "adapters", "apps"]) visit(join(root, top))
  const listed = Object.fromEntries(Object.entries(HANDOFFS).map(([file, h]) => [file, h.calls]))
  expect(found).toEqual(listed)
})

/**
 * Yjs places an item between its origin (the character left of it when written) and its right
 * origin (the one right of it). A peer can name any two characters; when they could not have
 * been neighbours for a writer (the same character, the right origin before the origin, two
 * lists, or a character either was written next to lying between them), Yjs puts the item
 * somewhere that depends on what else has arrived: the hub's live text read "aQbcdefghij"
 * while a reload of its own state, and every peer, read "abcdefghijQ". notIntegrable
 * (adapters/yjs/integrable.ts) now refuses such items on every route that uses it.
 *
 * The property: random documents written by honest replicas editing concurrently (text,
 * array, map, a nested array; every update of theirs must be accepted), with hostile updates
 * between their rounds (items of fresh or reused clients, whose origin, right origin and
 * parent are picked among the ids the document has and the update's own: equal, adjacent,
 * skipping, reversed, in other lists and map keys). Whatever the hub's document engine
 * (check, prepare, apply) and a CRDT field (validate, apply) accept, their live document is
 * the same document (each list's characters in order, deleted or not) as a reload of their
 * encoded state (V1 and V2), as a peer applying the accepted updates in the same order, in
 * another order, and merged. Honest replicas' updates merged into one (a relayed step2, whose
 * items' neighbours come in the same update) are taken whole; and against an oracle computed
 * character by character (what an item's neighbours depend on), an item between two
 * characters of an honest document is taken exactly when it could have been written there.
 */
import fc from "fast-check"
import * as Y from "yjs"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { notIntegrable } from "../adapters/yjs/integrable.js"
import { crdtReason } from "../core/crdt/engine.js"
import { rawUpdate, type RawId, type RawItem } from "./support/yjs-raw.js"
import { memoryLinkPair } from "../core/crdt-docs/peer-link.js"
import { YSyncSession } from "../adapters/peer/index.js"
import { encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"

type AnyType = Y.AbstractType<unknown>

/** A document as its lists hold it: every character's id in order, deleted ones marked; nested types and map keys inside. */
const dump = (doc: Y.Doc): unknown => {
  const typeDump = (type: AnyType): unknown => {
    const chars = (from: Y.Item | null, leftwards: boolean): unknown[] => {
      const out: unknown[] = []
      for (let it = from; it !== null; it = (leftwards ? it.left : it.right) as Y.Item | null) {
        const run: unknown[] = []
        for (let k = 0; k < it.length; k++) run.push(`${it.id.client}:${it.id.clock + k}${it.deleted ? "x" : ""}`)
        if (it.content instanceof Y.ContentType) run.push(typeDump(it.content.type as AnyType))
        out.push(...(leftwards ? run.reverse() : run))
      }
      return leftwards ? out.reverse() : out
    }
    const keys = [...type._map.keys()].sort()
    return { list: chars(type._start, false), map: keys.map((k) => [k, chars(type._map.get(k)!, true)]) }
  }
  const out: Array<[string, unknown]> = []
  for (const name of [...doc.share.keys()].sort()) {
    const type = doc.share.get(name)! as AnyType
    if (type._start !== null || type._map.size > 0) out.push([name, typeDump(type)])
  }
  return out
}

/** Every character the document holds, by list, in order (a map key's values form a list). */
const lists = (doc: Y.Doc): RawId[][] => {
  const out: RawId[][] = []
  const walk = (type: AnyType) => {
    const list: RawId[] = []
    for (let it = type._start; it !== null; it = it.right as Y.Item | null) {
      for (let k = 0; k < it.length; k++) list.push([it.id.client, it.id.clock + k])
      if (it.content instanceof Y.ContentType) walk(it.content.type as AnyType)
    }
    out.push(list)
    for (const last of type._map.values()) {
      const chain: RawId[] = []
      for (let it: Y.Item | null = last; it !== null; it = it.left as Y.Item | null) {
        chain.unshift([it.id.client, it.id.clock])
        if (it.content instanceof Y.ContentType) walk(it.content.type as AnyType)
      }
      out.push(chain)
    }
  }
  for (const type of doc.share.values()) walk(type as AnyType)
  return out.filter((l) => l.length > 0)
}

/** The shared types nested in the document (ids of their items). */
const typeIds = (doc: Y.Doc): RawId[] => {
  const out: RawId[] = []
  for (const structs of doc.store.clients.values()) {
    for (const s of structs) if (s instanceof Y.Item && s.content instanceof Y.ContentType) out.push([s.id.client, s.id.clock])
  }
  return out
}

/** Every id the document holds. */
const allIds = (doc: Y.Doc): RawId[] =>
  [...doc.store.clients].flatMap(([client, structs]) => {
    const last = structs[structs.length - 1]!
    return Array.from({ length: last.id.clock + last.length }, (_, clock) => [client, clock] as const)
  })

// ---- Honest replicas ----

type HonestOp =
  | { readonly kind: "text"; readonly at: number; readonly s: string }
  | { readonly kind: "delete"; readonly at: number; readonly n: number }
  | { readonly kind: "format"; readonly at: number; readonly n: number }
  | { readonly kind: "array"; readonly at: number; readonly v: number }
  | { readonly kind: "arrayDelete"; readonly at: number }
  | { readonly kind: "map"; readonly key: string; readonly v: number }
  | { readonly kind: "nested"; readonly at: number; readonly v: number }

/** An honest edit; `spread` bounds text positions (small: replicas keep writing at the same few places). */
const honestOp = (textOnly: boolean, spread = 30): fc.Arbitrary<HonestOp> =>
  textOnly
    ? fc.oneof(
        fc.record({ kind: fc.constant("text" as const), at: fc.nat(spread), s: fc.constantFrom("a", "bc", "def") }),
        fc.record({ kind: fc.constant("delete" as const), at: fc.nat(spread), n: fc.integer({ min: 1, max: 3 }) }),
        fc.record({ kind: fc.constant("format" as const), at: fc.nat(spread), n: fc.integer({ min: 1, max: 3 }) }),
      )
    : fc.oneof(
        fc.record({ kind: fc.constant("text" as const), at: fc.nat(spread), s: fc.constantFrom("a", "bc", "def") }),
        fc.record({ kind: fc.constant("delete" as const), at: fc.nat(spread), n: fc.integer({ min: 1, max: 3 }) }),
        fc.record({ kind: fc.constant("array" as const), at: fc.nat(10), v: fc.nat(99) }),
        fc.record({ kind: fc.constant("arrayDelete" as const), at: fc.nat(10) }),
        fc.record({ kind: fc.constant("map" as const), key: fc.constantFrom("a", "b", "c"), v: fc.nat(99) }),
        fc.record({ kind: fc.constant("nested" as const), at: fc.nat(10), v: fc.nat(99) }),
      )

const applyHonest = (doc: Y.Doc, o: HonestOp): void => {
  const text = doc.getText("t")
  const at = (n: number, len: number) => Math.min(n, len)
  switch (o.kind) {
    case "text": return text.insert(at(o.at, text.length), o.s)
    case "delete": { const from = at(o.at, text.length); return text.delete(from, Math.min(o.n, text.length - from)) }
    case "format": { const from = at(o.at, text.length); return text.format(from, Math.min(o.n, text.length - from), { bold: true }) }
    case "array": { const a = doc.getArray<number>("a"); return a.insert(at(o.at, a.length), [o.v]) }
    case "arrayDelete": { const a = doc.getArray<number>("a"); return void (a.length > 0 && a.delete(at(o.at, a.length - 1), 1)) }
    case "map": return void doc.getMap<number>("m").set(o.key, o.v)
    case "nested": {
      const m = doc.getMap<unknown>("m")
      let n = m.get("n")
      if (!(n instanceof Y.Array)) m.set("n", (n = new Y.Array<number>()))
      const arr = n as Y.Array<number>
      return arr.insert(at(o.at, arr.length), [o.v])
    }
  }
}

// ---- Hostile items ----

/** How an item's right origin relates to its origin: picked freely, the same, the next character, a few further on, or before it. */
type Shape = "free" | "same" | "next" | "skip" | "before"
interface HostileItem {
  readonly shape: Shape
  readonly origin: number | null
  readonly right: number | null
  readonly parent: number
  readonly key: string | null
  readonly text: string
  readonly value: boolean
}
interface HostileUpdate {
  readonly reuse: number | null
  readonly items: ReadonlyArray<HostileItem>
}

const ref = fc.option(fc.nat(), { nil: null, freq: 5 })
const hostileItem: fc.Arbitrary<HostileItem> = fc.record({
  shape: fc.constantFrom<Shape>("free", "free", "same", "next", "next", "skip", "before"),
  origin: ref,
  right: ref,
  parent: fc.nat(),
  key: fc.option(fc.constantFrom("a", "b", "k"), { nil: null }),
  text: fc.constantFrom("Q", "RS", "TUV"),
  value: fc.boolean(),
})
const hostileUpdate: fc.Arbitrary<HostileUpdate> = fc.record({
  reuse: fc.option(fc.nat(), { nil: null }),
  items: fc.array(hostileItem, { minLength: 1, maxLength: 3 }),
})

/** A V1 update of one hostile client's items, from what `doc` holds. `roots` are the root types items may name as parent. */
const hostileBytes = (doc: Y.Doc, h: HostileUpdate, clients: number[], fresh: () => number, roots: ReadonlyArray<string>): Uint8Array => {
  const client = h.reuse !== null && clients.length > 0 ? clients[h.reuse % clients.length]! : fresh()
  if (!clients.includes(client)) clients.push(client)
  const clock0 = Y.getState(doc.store, client)
  const ids = allIds(doc)
  const ls = lists(doc)
  const where = new Map<string, [RawId[], number]>()
  for (const l of ls) l.forEach((id, i) => where.set(`${id[0]}:${id[1]}`, [l, i]))
  const types = typeIds(doc)
  const items: RawItem[] = []
  const own: RawId[] = []
  let clock = clock0
  for (const it of h.items) {
    // The update's own earlier characters are candidates too.
    const pool = [...ids, ...own]
    const pick = (n: number | null): RawId | undefined => (n === null || pool.length === 0 ? undefined : pool[n % pool.length])
    const origin = pick(it.origin)
    let right = pick(it.right)
    if (origin !== undefined && it.shape !== "free") {
      const at = where.get(`${origin[0]}:${origin[1]}`)
      if (it.shape === "same") right = origin
      else if (at !== undefined) {
        const [l, i] = at
        const j = it.shape === "next" ? i + 1 : it.shape === "skip" ? i + 2 + ((it.right ?? 0) % 3) : i - 1 - ((it.right ?? 0) % 2)
        right = l[j]
      }
    }
    const parentChoice = it.parent % (roots.length + types.length)
    const value = it.value ? it.parent % 100 : undefined
    items.push({
      origin, right,
      root: parentChoice < roots.length ? roots[parentChoice] : undefined,
      parent: parentChoice < roots.length ? undefined : types[parentChoice - roots.length],
      key: it.key ?? undefined,
      text: it.text,
      value,
    })
    const length = value === undefined ? it.text.length : 1
    for (let k = 0; k < length; k++) own.push([client, clock + k])
    clock += length
  }
  return rawUpdate([{ client, clock: clock0, items }])
}

// ---- The checks ----

/** `live` is the same document as each of the others. */
const sameEverywhere = (live: Y.Doc, accepted: ReadonlyArray<Uint8Array>, reloaded: Y.Doc, order: ReadonlyArray<number>): void => {
  const want = dump(live)
  const fresh = (fill: (d: Y.Doc) => void) => {
    const d = new Y.Doc()
    fill(d)
    const store = d.store as unknown as { pendingStructs: unknown; pendingDs: unknown }
    expect({ pendingStructs: store.pendingStructs, pendingDs: store.pendingDs }).toEqual({ pendingStructs: null, pendingDs: null })
    const got = dump(d)
    d.destroy()
    return got
  }
  expect(dump(reloaded)).toEqual(want)
  expect(fresh((d) => Y.applyUpdate(d, Y.encodeStateAsUpdate(live)))).toEqual(want)
  expect(fresh((d) => Y.applyUpdateV2(d, Y.encodeStateAsUpdateV2(live)))).toEqual(want)
  expect(fresh((d) => { for (const u of accepted) Y.applyUpdate(d, u) })).toEqual(want)
  // Another order: at each step, one of the updates whose dependencies are there, by `order`.
  // (Yjs would hold one that comes early, but its retry of what it holds misses some orders.)
  expect(fresh((d) => {
    const left = [...accepted]
    for (let k = 0; left.length > 0; k++) {
      const ready = left.filter((u) => dependenciesIn(d, u))
      expect(ready.length).toBeGreaterThan(0)
      const u = ready[order[k % order.length]! % ready.length]!
      left.splice(left.indexOf(u), 1)
      Y.applyUpdate(d, u)
    }
  })).toEqual(want)
  if (accepted.length > 0) expect(fresh((d) => Y.applyUpdate(d, Y.mergeUpdates([...accepted])))).toEqual(want)
}

/** Whether `doc` has everything `update` refers to (or the update brings it itself). */
const dependenciesIn = (doc: Y.Doc, update: Uint8Array): boolean => {
  const { structs, ds } = Y.decodeUpdate(update) as unknown as {
    structs: Array<{ id: Y.ID; length: number; origin?: Y.ID | null; rightOrigin?: Y.ID | null; parent?: unknown }>
    ds: { clients: Map<number, Array<{ clock: number; len: number }>> }
  }
  const have = new Map<number, number>()
  const haveOf = (client: number) => have.get(client) ?? Y.getState(doc.store, client)
  for (const s of structs) {
    if (s.id.clock > haveOf(s.id.client)) return false
    have.set(s.id.client, Math.max(haveOf(s.id.client), s.id.clock + s.length))
  }
  const refs = structs.flatMap((s) => [s.origin, s.rightOrigin, s.parent instanceof Y.ID ? s.parent : null])
  if (refs.some((r) => r != null && r.clock >= haveOf(r.client))) return false
  for (const [client, ranges] of ds.clients) if (ranges.some((r) => r.clock + r.len > haveOf(client))) return false
  return true
}

interface Round {
  readonly ops: ReadonlyArray<ReadonlyArray<HonestOp>>
  readonly hostile: ReadonlyArray<HostileUpdate>
  /** Whether the replicas sync after the round (else they go on editing apart). */
  readonly sync: boolean
}
const rounds = (textOnly: boolean) =>
  fc.array(
    fc.record({
      ops: fc.array(fc.array(honestOp(textOnly), { maxLength: 3 }), { minLength: 3, maxLength: 3 }),
      hostile: fc.array(hostileUpdate, { maxLength: 4 }),
      sync: fc.boolean(),
    }),
    { minLength: 1, maxLength: 5 },
  )

/**
 * Runs the rounds against `submit` (true when accepted): in each, three honest replicas edit
 * concurrently and their updates are submitted (all must be accepted), then the hostile ones,
 * then every replica syncs from the accepted updates, or they go on editing apart. Returns the accepted updates in order,
 * and how many hostile ones were accepted and refused.
 */
const play = async (
  rs: ReadonlyArray<Round>,
  submit: (u: Uint8Array) => Promise<boolean> | boolean,
  live: () => Y.Doc,
  roots: ReadonlyArray<string>,
  textOnly: boolean,
): Promise<{ accepted: Uint8Array[]; taken: number; refused: number; honest: Uint8Array[] }> => {
  const writers = [11, 22, 33].map((id) => {
    const d = new Y.Doc()
    d.clientID = id
    return d
  })
  const accepted: Uint8Array[] = []
  const honest: Uint8Array[] = []
  const clients: number[] = []
  let next = 1_000
  const fresh = () => (next += 7919) % 2_000_000 + (next % 3 === 0 ? 1 : 40)
  let taken = 0
  let refused = 0
  for (const r of rs) {
    const made: Uint8Array[] = []
    writers.forEach((w, i) => {
      const mine: Uint8Array[] = []
      const h = (u: Uint8Array, origin: unknown) => { if (origin !== "sync") mine.push(u) }
      w.on("update", h)
      for (const o of r.ops[i]!) applyHonest(w, o)
      w.off("update", h)
      made.push(...mine)
    })
    for (const u of made) {
      // The control: honest concurrent edits are all taken.
      expect(await submit(u)).toBe(true)
      accepted.push(u)
      honest.push(u)
    }
    for (const h of r.hostile) {
      const u = hostileBytes(live(), h, clients, fresh, roots)
      if (await submit(u)) {
        accepted.push(u)
        taken++
      } else refused++
    }
    // Every replica gets what the hub took (its peers' edits and the hostile items it accepted), or goes on apart.
    if (r.sync) {
      const state = Y.encodeStateAsUpdate(live())
      for (const w of writers) Y.applyUpdate(w, state, "sync")
    }
  }
  void textOnly
  for (const w of writers) w.destroy()
  return { accepted, taken, refused, honest }
}

const totals = { hubTaken: 0, hubRefused: 0, fieldTaken: 0, fieldRefused: 0 }

test("the hub's document engine: every Yjs update it accepts gives the same document live, reloaded and on every peer, whatever its items' origins (property)", async () => {
  await fc.assert(fc.asyncProperty(rounds(false), fc.array(fc.nat(50), { minLength: 1, maxLength: 10 }), async (rs, order) => {
    const engine = yjsDocEngine()
    const doc = engine.empty()
    const submit = async (u: Uint8Array): Promise<boolean> => {
      const checked = engine.check(u)
      if (!checked.ok) return false
      const prepared = await engine.prepare!(u)
      if (!prepared.ok) return false
      const [out] = await engine.apply(doc, [u])
      if (typeof out === "boolean" || out instanceof Uint8Array) return true
      // Refused as such, never as a failure to merge.
      expect(["update-malformed", "update-missing-deps"]).toContain((out as { code: string }).code)
      return false
    }
    const { accepted, taken, refused } = await play(rs, submit, () => doc, ["t", "a", "m"], false)
    totals.hubTaken += taken
    totals.hubRefused += refused
    const reloaded = engine.load(engine.encode(doc))
    sameEverywhere(doc, accepted, reloaded, order)
    // The same replicas without hostile peers: their updates merged into one (a step2 relaying
    // edits a hub lacks, a fresh replica's first sync) a fresh hub takes whole.
    const clean = engine.empty()
    const cleanSubmit = async (u: Uint8Array) => { const [r] = await engine.apply(clean, [u]); return typeof r === "boolean" || r instanceof Uint8Array }
    const honest = (await play(rs.map((r) => ({ ...r, hostile: [] })), cleanSubmit, () => clean, [], false)).accepted
    if (honest.length > 0) {
      const other = engine.empty()
      const merged = Y.mergeUpdates(honest)
      expect(engine.check(merged).ok).toBe(true)
      expect((await engine.prepare!(merged)).ok).toBe(true)
      expect((await engine.apply(other, [merged]))[0]).toBeInstanceOf(Uint8Array)
      expect(dump(other)).toEqual(dump(clean))
      engine.dispose!(other)
    }
    engine.dispose!(clean)
    engine.dispose!(reloaded)
    engine.dispose!(doc)
  }), { numRuns: 100, seed: 20250611 })
  // The runs exercise both sides (else the property says little).
  expect(totals.hubTaken).toBeGreaterThan(50)
  expect(totals.hubRefused).toBeGreaterThan(50)
})

test("a CRDT field: every Yjs update validate accepts gives the same field live, reloaded and on every peer (property)", async () => {
  const engine = yjsEngine<Y.Text>("text")
  await fc.assert(fc.asyncProperty(rounds(true), fc.array(fc.nat(50), { minLength: 1, maxLength: 10 }), async (rs, order) => {
    const field = engine.create()
    const submit = (u: Uint8Array): boolean => {
      const v = field.validate(u, { clientId: "peer", trusted: false })
      if (!v.ok) {
        expect(["crdt-invalid", "crdt-missing-deps"]).toContain(crdtReason(v.rejection))
        return false
      }
      field.apply([v.update])
      return true
    }
    const live = field.handle.doc!
    const { accepted, taken, refused } = await play(rs, submit, () => live, ["t"], true)
    totals.fieldTaken += taken
    totals.fieldRefused += refused
    const reloaded = engine.load(field.encode())
    sameEverywhere(live, accepted, reloaded.handle.doc!, order)
    reloaded.destroy()
    field.destroy()
  }), { numRuns: 100, seed: 20250612 })
  expect(totals.fieldTaken).toBeGreaterThan(30)
  expect(totals.fieldRefused).toBeGreaterThan(30)
})

test("honest replicas editing apart and syncing in pairs: their merged updates (a relayed step2) are taken whole, by the hub and by a field (property)", async () => {
  const engine = yjsDocEngine()
  const fields = yjsEngine<Y.Text>("text")
  const step = fc.record({ writer: fc.nat(3), ops: fc.array(honestOp(false, 4), { minLength: 1, maxLength: 4 }), pair: fc.option(fc.tuple(fc.nat(3), fc.nat(3)), { nil: null }) })
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.boolean(), async (steps, textOnly) => {
    const writers = [5, 17, 29, 41].map((id) => {
      const d = new Y.Doc()
      d.clientID = id
      return d
    })
    for (const st of steps) {
      for (const o of st.ops) if (!textOnly || o.kind === "text" || o.kind === "delete") applyHonest(writers[st.writer]!, o)
      if (st.pair !== null) {
        const [a, b] = [writers[st.pair[0]]!, writers[st.pair[1]]!]
        Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)))
        Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
      }
    }
    const merged = Y.mergeUpdates(writers.map((w) => Y.encodeStateAsUpdate(w)))
    const doc = engine.empty()
    expect(engine.check(merged).ok).toBe(true)
    expect((await engine.prepare!(merged)).ok).toBe(true)
    // Taken (or nothing new), never refused.
    const [taken] = await engine.apply(doc, [merged])
    expect(taken === false || taken instanceof Uint8Array).toBe(true)
    const want = new Y.Doc()
    Y.applyUpdate(want, merged)
    expect(dump(doc)).toEqual(dump(want))
    if (textOnly) {
      const field = fields.create()
      const v = field.validate(merged, { clientId: "relay", trusted: false })
      if (!v.ok) throw new Error(v.rejection.message)
      field.apply([v.update])
      expect(dump(field.handle.doc!)).toEqual(dump(want))
      field.destroy()
    }
    want.destroy()
    engine.dispose!(doc)
    for (const w of writers) w.destroy()
  }), { numRuns: 100, seed: 20250613 })
})

test("an item between two characters of an honest document is taken exactly when it could have been written there: checked against the document and in one update with it (property)", () => {
  // The oracle: X (a fresh client) may go between o and r when o is before r in one list and
  // nothing between them is a dependency of o or r (the clock prefixes, origins and right
  // origins they reach). Character by character, from the whole document.
  const step = fc.record({ writer: fc.nat(3), ops: fc.array(honestOp(true, 4), { minLength: 1, maxLength: 3 }), pair: fc.option(fc.tuple(fc.nat(3), fc.nat(3)), { nil: null }) })
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 30 }), (steps, picks) => {
    const writers = [5, 17, 29, 41].map((id) => {
      const d = new Y.Doc()
      d.clientID = id
      return d
    })
    for (const st of steps) {
      for (const o of st.ops) applyHonest(writers[st.writer]!, o)
      if (st.pair !== null) {
        const [a, b] = [writers[st.pair[0]]!, writers[st.pair[1]]!]
        Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)))
        Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
      }
    }
    const base = Y.mergeUpdates(writers.map((w) => Y.encodeStateAsUpdate(w)))
    const doc = new Y.Doc()
    Y.applyUpdate(doc, base)
    // The text's characters in order, and each one's dependencies.
    const chars: Array<{ id: RawId; deps: RawId[] }> = []
    for (let it = doc.getText("t")._start; it !== null; it = it.right as Y.Item | null) {
      for (let k = 0; k < it.length; k++) {
        const deps: RawId[] = []
        if (it.id.clock + k > 0) deps.push([it.id.client, it.id.clock + k - 1])
        if (k === 0 && it.origin !== null) deps.push([it.origin.client, it.origin.clock])
        if (it.rightOrigin !== null) deps.push([it.rightOrigin.client, it.rightOrigin.clock])
        chars.push({ id: [it.id.client, it.id.clock + k], deps })
      }
    }
    if (chars.length === 0) return
    const at = new Map(chars.map((c, i) => [`${c.id[0]}:${c.id[1]}`, i]))
    const closure = (start: RawId[]): Map<number, number> => {
      const sv = new Map<number, number>()
      const todo = [...start]
      for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
        const have = sv.get(id[0]) ?? 0
        if (id[1] < have) continue
        sv.set(id[0], id[1] + 1)
        for (let k = have; k <= id[1]; k++) {
          const i = at.get(`${id[0]}:${k}`)
          if (i !== undefined) todo.push(...chars[i]!.deps)
        }
      }
      return sv
    }
    const stateOf = (c: number) => Y.getState(doc.store, c)
    for (const [a, b] of picks) {
      // -1: none (the start or the end of the text).
      const oi = (a % (chars.length + 1)) - 1
      const ri = (b % (chars.length + 1)) - 1
      const o = oi < 0 ? undefined : chars[oi]!.id
      const r = ri < 0 ? undefined : chars[ri]!.id
      const from = oi < 0 ? -1 : oi
      const to = ri < 0 ? chars.length : ri
      const sv = closure([...(o ? [o] : []), ...(r ? [r] : [])])
      const expected = from < to && chars.slice(from + 1, to).every((c) => c.id[1] >= (sv.get(c.id[0]) ?? 0))
      const x = rawUpdate([{ client: 99, clock: 0, items: [{ origin: o, right: r, root: "t", text: "X" }] }])
      const onDoc = notIntegrable(x, Y.decodeUpdate(x) as never, stateOf, doc)
      const relay = Y.mergeUpdates([base, x])
      const inOne = notIntegrable(relay, Y.decodeUpdate(relay) as never, () => 0, new Y.Doc())
      expect({ o, r, onDoc: onDoc === undefined, inOne: inOne === undefined }).toEqual({ o, r, onDoc: expected, inOne: expected })
    }
    doc.destroy()
    for (const w of writers) w.destroy()
  }), { numRuns: 150, seed: 20250614 })
})

test("the reviewer's case: an item whose origin and right origin name the same character is refused on the hub, by a field and by a peer session", async () => {
  const base = rawUpdate([{ client: 1, clock: 0, items: [{ root: "t", text: "abcdefghij" }] }])
  const hostile = rawUpdate([{ client: 100, clock: 0, items: [{ origin: [1, 0], right: [1, 0], text: "Q" }] }])
  const engine = yjsDocEngine()
  const doc = engine.empty()
  expect((await engine.apply(doc, [base]))[0]).toBeInstanceOf(Uint8Array)
  const [out] = await engine.apply(doc, [hostile])
  expect(out).toMatchObject({ code: "update-malformed", message: expect.stringContaining("they are the same character") })
  expect(doc.getText("t").toString()).toBe("abcdefghij")
  const field = yjsEngine<Y.Text>("text").create()
  const first = field.validate(base, { clientId: "a", trusted: false })
  if (!first.ok) throw new Error(first.rejection.message)
  field.apply([first.update])
  const v = field.validate(hostile, { clientId: "a", trusted: false })
  expect(v.ok).toBe(false)
  if (!v.ok) expect(v.rejection.message).toMatch(/^crdt-invalid: .*they are the same character/)
  // A replica's session with a peer (adapters/peer/yjs-sync.ts).
  const [mine, theirs] = memoryLinkPair()
  const replica = new Y.Doc()
  const errors: string[] = []
  const session = new YSyncSession(replica, mine, { onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  theirs.send(encodeUpdate(base))
  expect(await until(() => replica.getText("t").length === 10, 2_000)).toBe(true)
  theirs.send(encodeUpdate(hostile))
  expect(await until(() => errors.length > 0, 2_000)).toBe(true)
  expect(errors[0]).toMatch(/^update-malformed: .*they are the same character/)
  expect(replica.getText("t").toString()).toBe("abcdefghij")
  session.destroy()
})

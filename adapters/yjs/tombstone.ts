/**
 * What takes a refused Yjs update's place, so the edits its writer made after it still merge.
 *
 * A Yjs client's clocks form one chain: every later update of the same clientID starts where
 * the refused one ended, and its items may sit next to or inside what the refused one wrote.
 * A hub that refused the update (the document is full, say) has a hole in that chain, and
 * refuses everything after it as `crdt-missing-deps`. The tombstone fills the hole: the same
 * clocks, each item as a deleted one (Yjs's ContentDeleted: a length, no content) at the very
 * place the refused item was, so what was typed next to or inside it lands where the writer
 * put it, and nothing of the refused content is shown or stored. Where a deleted item would
 * not stand for "nothing happened", the clocks are a GC struct instead, Yjs's own "these
 * clocks are gone", and what was placed next to one is gone too: a map entry (its arrival
 * deletes the value before it, which must stay; so a later set of the same key on top of it
 * is lost with it), and every struct of an update that created a shared type (its items name
 * it as their parent) or formats text (a later change's marker would lose its partner).
 */
import * as Y from "yjs"
import { isBytes } from "../../core/canonical.js"

type Id = { readonly client: number; readonly clock: number }
type Decoded = {
  structs: Array<(Y.Item | Y.GC | Y.Skip) & { id: Id; length: number }>
  ds: { clients: Map<number, Array<{ clock: number; len: number }>> }
}

const decode = (update: unknown): Decoded | undefined => {
  if (!isBytes(update)) return undefined
  try {
    return Y.decodeUpdate(update) as unknown as Decoded
  } catch {
    return undefined
  }
}

/**
 * Whether a decoded update holds nothing but the place of clocks: deleted items and GC ranges,
 * deleting nothing (what `tombstoneOf` makes; the hub lets it use a full document's reserve).
 */
export const onlyPlaces = (d: { readonly structs: ReadonlyArray<object>; readonly ds: { readonly clients: ReadonlyMap<number, unknown> } }): boolean =>
  d.ds.clients.size === 0 && d.structs.length > 0 && d.structs.every((s) => s instanceof Y.GC || (s instanceof Y.Item && s.content instanceof Y.ContentDeleted))

/**
 * Whether a decoded update only deletes: a delete set, no structs. It writes no content and
 * frees what it deletes, so it too may use a full document's reserve: the refusal of a full
 * document tells its writers to delete something first.
 */
export const onlyDeletes = (d: { readonly structs: ReadonlyArray<object>; readonly ds: { readonly clients: ReadonlyMap<number, unknown> } }): boolean =>
  d.structs.length === 0 && d.ds.clients.size > 0

/**
 * Whether the refused struct `s` (which `doc` holds) keeps its place as a deleted item: a list
 * item does. A map entry does not: its arrival deletes the value before it, which must stay.
 */
const keepsPlace = (doc: Y.Doc, s: { id: Id; length: number }): boolean => {
  let it: unknown
  try {
    it = Y.getItem(doc.store, Y.createID(s.id.client, s.id.clock))
  } catch {
    return false
  }
  return it instanceof Y.Item && it.parentSub === null
}

/**
 * The tombstone of `update` (a V1 update `doc` holds: a pending local change the hub
 * refused), or undefined when it writes nothing that is not already gone (a delete-only
 * update, or GC ranges only: the last form of a tombstone) or cannot be read.
 *
 * An update of deleted items that deletes nothing (a tombstone the hub refused too: the field
 * is full of structs, say, or an edit next to GC ranges) is tombstoned as GC ranges, which
 * have no place to be refused for, but for the items `dependents` (the writer's changes still
 * to land) are placed against or inside: those stay deleted items, or what the writer typed
 * next to them would be collected with them or refused (sim seed 66). So do, transitively, the
 * items a kept one is placed against (`keptItems`): a kept item next to a GC range of its own
 * form made the form malformed, or collected it (and what was typed next to it) on arrival.
 * Never as GC first: an item the writer typed
 * right after a GC range is collected with it (lost while confirmed), and one between a GC
 * range and a live character is refused as malformed, and with it the writer's later changes.
 */
export const tombstoneOf = (doc: Y.Doc, update: unknown, dependents: ReadonlyArray<unknown> = []): Uint8Array | undefined => {
  const decoded = decode(update)
  if (decoded === undefined) return undefined
  const structs = decoded.structs
  if (structs.some((s) => s instanceof Y.Skip)) return undefined
  if (!structs.some((s) => s instanceof Y.Item)) return undefined
  // Deleted items only, deleting nothing: a tombstone (of deleted items) the hub refused too.
  const tombstoned = onlyPlaces(decoded)
  // All GC, too, when items name a shared type the update created as their parent, and when it
  // formats: Yjs formatting is a pair of markers, and a later change (an un-bold inside the
  // refused bold) would leave one of its own with no partner, formatting text nobody did.
  const allGc = !tombstoned && structs.some((s) => s instanceof Y.Item && (s.content instanceof Y.ContentType || s.content instanceof Y.ContentFormat))
  // A refused tombstone's last form: GC ranges, but a deleted item keeps its place where a
  // change of the writer still to land is placed next to or inside it (Yjs would collect that
  // change with a GC neighbour, or the hub refuse it as malformed), and so does what a kept
  // item is placed against, for the same reason.
  // (The caller passes none when this form was refused too: GC ranges only, so a chain ends.)
  const kept = tombstoned ? keptItems(structs, placedAgainst(dependents)) : undefined
  const keep = (s: { id: Id; length: number }) => kept !== undefined && kept.has(s)
  const byClient = new Map<number, Array<Y.Item | Y.GC>>()
  for (const s of structs as Array<(Y.Item | Y.GC) & { id: Id; length: number }>) {
    let list = byClient.get(s.id.client)
    if (list === undefined) byClient.set(s.id.client, (list = []))
    const last = list[list.length - 1]
    if (tombstoned) {
      const asItem = s instanceof Y.Item && keep(s)
      const prev = last instanceof Y.GC && !asItem && last.id.clock + last.length === s.id.clock ? last : undefined
      if (prev !== undefined) list[list.length - 1] = new Y.GC(prev.id, prev.length + s.length)
      else list.push(asItem ? s : new Y.GC(Y.createID(s.id.client, s.id.clock), s.length))
      continue
    }
    if (allGc && last !== undefined) {
      // An update's structs of one client are consecutive: one GC for all of them.
      list[list.length - 1] = new Y.GC(last.id, s.id.clock + s.length - last.id.clock)
      continue
    }
    const asItem = !allGc && s instanceof Y.Item && keepsPlace(doc, s)
    if (asItem) s.content = new Y.ContentDeleted(s.length)
    list.push(asItem ? s : new Y.GC(Y.createID(s.id.client, s.id.clock), s.length))
  }
  const encoder = new Y.UpdateEncoderV1()
  encoder.writeLen(byClient.size)
  for (const [client, list] of byClient) {
    encoder.writeLen(list.length)
    encoder.writeClient(client)
    encoder.writeLen(list[0]!.id.clock)
    for (const s of list) s.write(encoder, 0)
  }
  // No delete set: a ContentDeleted item arrives deleted, and the refused update's own deletions are refused with it.
  encoder.writeLen(0)
  return encoder.toUint8Array()
}

/**
 * The items of a refused tombstone (`structs`) its last form keeps as deleted items: those
 * holding an ID of `placed` (what the writer's changes still to land are placed against), and,
 * transitively, those holding what a kept item is placed against. A kept item next to a GC
 * range of the same form would make the form malformed (the hub's OriginCheck: an item between
 * a live character and a collected one, or continuing a collected one, goes nowhere every
 * replica agrees on), refused, and with it the writer's changes next to it. Its neighbours all
 * kept or in the document, each kept item stands where its writer put it, as in the tombstone
 * of all of them. Level 2 passes no `placed`: GC ranges only, so a chain of refusals still ends.
 */
const keptItems = (structs: ReadonlyArray<{ id: Id; length: number }>, placed: ReadonlyArray<Id>): Set<object> => {
  const kept = new Set<object>()
  if (placed.length === 0) return kept
  // Each client's structs, in clock order: an update's structs of one client are consecutive
  // and ascending, with no gap (a Skip was refused before), as Yjs's own lists are.
  const byClient = new Map<number, Array<{ id: Id; length: number }>>()
  for (const s of structs) {
    let list = byClient.get(s.id.client)
    if (list === undefined) byClient.set(s.id.client, (list = []))
    list.push(s)
  }
  const holding = (id: Id): { id: Id; length: number } | undefined => {
    const list = byClient.get(id.client)
    const last = list?.[list.length - 1]
    if (last === undefined || id.clock < list![0]!.id.clock || id.clock >= last.id.clock + last.length) return undefined
    return list![Y.findIndexSS(list as never, id.clock)]
  }
  const todo = [...placed]
  for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
    const s = holding(id)
    if (!(s instanceof Y.Item) || kept.has(s)) continue
    kept.add(s)
    for (const next of [s.origin, s.rightOrigin, s.parent]) if (next instanceof Y.ID) todo.push(next)
  }
  return kept
}

/** The IDs the items of `updates` are placed against (origins, right origins, parents). */
const placedAgainst = (updates: ReadonlyArray<unknown>): Id[] => {
  const out: Id[] = []
  for (const u of updates) {
    const d = decode(u)
    if (d === undefined) continue
    for (const s of d.structs) {
      if (!(s instanceof Y.Item)) continue
      for (const id of [s.origin, s.rightOrigin, s.parent]) if (id instanceof Y.ID) out.push(id)
    }
  }
  return out
}

/** Where each Yjs client of a list of refused updates begins, folded as the list grows (by the list). */
const starts = new WeakMap<object, { folded: number; readonly from: Map<number, number> }>()

const startsOf = (refused: unknown): Map<number, number> => {
  const list = Array.isArray(refused) ? refused : [refused]
  let known = typeof refused === "object" && refused !== null ? starts.get(refused) : undefined
  if (known === undefined) {
    known = { folded: 0, from: new Map() }
    if (typeof refused === "object" && refused !== null) starts.set(refused, known)
  }
  const from = known.from
  for (; known.folded < list.length; known.folded++) {
    const r = decode(list[known.folded])
    if (r !== undefined) for (const s of r.structs) if (!(s instanceof Y.Skip)) from.set(s.id.client, Math.min(from.get(s.id.client) ?? Infinity, s.id.clock))
  }
  return from
}

/**
 * Whether `update` needs what `refused` wrote: it writes a clock of one of `refused`'s Yjs
 * clients at or past where `refused` began (the chain), or places an item next to or inside,
 * or deletes, something from there on. Only `refused`'s clocks are read, so its tombstone
 * (the same clocks, no content) answers the same, and decodes in a fraction of the time.
 * `refused` may be a list (a tombstone and the changes refused for needing it): then `update`
 * needs any of them. A writer that reopened its document offline types under a new Yjs
 * client, so the chain behind a refused change crosses clients: an edit typed inside the
 * refused paste needs it, and the next edit of that client needs only that edit. The list is
 * folded once, however often it is asked.
 */
export const dependsOn = (update: unknown, refused: unknown): boolean => {
  const u = decode(update)
  if (u === undefined) return false
  const from = startsOf(refused)
  if (from.size === 0) return false
  const past = (id: unknown): boolean => {
    if (typeof id !== "object" || id === null) return false
    const { client, clock } = id as Id
    return clock >= (from.get(client) ?? Infinity)
  }
  for (const s of u.structs) {
    if (s instanceof Y.Skip) continue
    if (s.id.clock + s.length > (from.get(s.id.client) ?? Infinity)) return true
    if (s instanceof Y.Item && (past(s.origin) || past(s.rightOrigin) || past(s.parent))) return true
  }
  for (const [client, ranges] of u.ds.clients) {
    const f = from.get(client)
    if (f !== undefined && ranges.some((x) => x.clock + x.len > f)) return true
  }
  return false
}

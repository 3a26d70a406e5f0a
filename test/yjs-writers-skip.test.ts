/**
 * Attacks on writer ownership through Yjs Skip structs (core/crdt-docs/authority.ts,
 * adapters/yjs-server/engine.ts `writers`). A Skip carries no data and Yjs never integrates
 * it, yet `writers` counts it as writing under its clientID; an update whose other structs
 * add data binds every Skip's clientID to the submitting principal.
 */
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

const host = (storage = new MemoryStorage()) => new CrdtDocHost({ engines: [yjsDocEngine()], storage, sync: false, compactAfterBytes: 1 << 30 })

/** A V1 update: one GC struct (1 clock) for `own` at `ownClock`, then a Skip block per victim clientID. */
const skipUpdate = (own: number, ownClock: number, victims: number[], skipClock = 0): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1 + victims.length)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, own)
  encoding.writeVarUint(e, ownClock)
  encoding.writeUint8(e, 0) // GC
  encoding.writeVarUint(e, 1)
  for (const v of victims) {
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, v)
    encoding.writeVarUint(e, skipClock)
    encoding.writeUint8(e, 10) // Skip
    encoding.writeVarUint(e, 1)
  }
  encoding.writeVarUint(e, 0) // empty delete set
  return encoding.toUint8Array(e)
}

test("a Skip struct (no data) does not claim another user's not-yet-written clientID; the victim's first edit lands", async () => {
  const h = host()
  const doc = await h.open<Y.Doc>("yjs", "skip1")
  const VICTIM = 4242 // e.g. read from the victim's awareness state before it first types
  const out = await doc.submit([skipUpdate(9001, 0, [VICTIM])], undefined, "mallory")
  expect(out.rejected).toEqual([])
  // Nothing of the victim's client is in the document...
  expect(doc.doc.store.clients.has(VICTIM)).toBe(false)
  // ...so nobody should own it.
  const ownerAfterSkip = doc.ownerOf(String(VICTIM))
  // The victim (a fresh Y.Doc with that clientID) types: refused not-owner on the current code.
  const v = new Y.Doc()
  v.clientID = VICTIM
  const ups: Uint8Array[] = []
  v.on("update", (u: Uint8Array) => ups.push(u))
  v.getText("t").insert(0, "hello")
  const mine = await doc.submit(ups, undefined, "victim")
  expect({ ownerAfterSkip, rejected: mine.rejected.map((r) => r.code), stored: mine.stored }).toEqual({ ownerAfterSkip: undefined, rejected: [], stored: 1 })
  await h.close()
})

test("one update cannot bind an unbounded number of writer identities (owner records / memory amplification via Skips)", async () => {
  const storage = new MemoryStorage()
  const h = host(storage)
  const doc = await h.open<Y.Doc>("yjs", "skip2")
  const N = 50_000
  const victims = Array.from({ length: N }, (_, i) => 10_000_000 + i)
  const u = skipUpdate(9002, 0, victims)
  const out = await doc.submit([u], undefined, "mallory")
  let owned = 0
  for (const v of victims) if (doc.ownerOf(String(v)) !== undefined) owned++
  // A ~300 KB update that stores one GC clock binds every Skip's clientID, durably (one record each).
  expect(u.length).toBeLessThan(1 << 20) // under the 1 MiB update limit
  expect(doc.doc.store.clients.size).toBe(1) // the document holds only mallory's one GC clock
  expect({ stored: out.stored, owned }).toEqual({ stored: 1, owned: 0 })
  await h.close()
}, 60_000)

/**
 * A command's depth bound (doc-authority.ts `bound`: MAX_ARGS_DEPTH) is checked on what a
 * client sends and on what the hub logs (an upcast), but a reader at an older version is
 * shown a downcast, which the app's migration may nest deeper. Any client can send arguments
 * just under the bound; a downcast that wraps them (here in 16 levels, as a migration to a
 * tree-shaped older form may) gave the older reader an entry it could not store: "Writing
 * document failed: Value nests deeper than 512 levels", at every catch-up, forever. What
 * cannot be shown within the bounds is the older reader's barrier (`update-required`), as an
 * entry over the size bound already was.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { entriesForVersion } from "../core/schema/serve.js"
import { MAX_ARGS_DEPTH, depthExceeds } from "../core/limits.js"
import { settle } from "./support/virtual-time.js"

type S = { last: unknown; count: number }
const WRAPS = 16
const wrap = (v: unknown): unknown => {
  for (let i = 0; i < WRAPS; i++) v = { child: v }
  return v
}
const V1Only = defineMachine({
  name: "tree",
  version: 1,
  initial: (): S => ({ last: null, count: 0 }),
  commands: { put: { args: Schema.Struct({ v: Schema.Unknown }), apply: (s: S, a) => { s.count++; s.last = a.v } } },
})
const V2 = evolve(V1Only, {
  version: 2,
  migrateState: (s: S): S => ({ ...s }),
  commands: { putTagged: { args: Schema.Struct({ v: Schema.Unknown, tag: Schema.String }), apply: (s: S, a) => { s.count++; s.last = a.v } } },
  upcast: { put: (a) => ({ name: "putTagged" as const, args: { v: a.v, tag: "" } }) },
  downcast: { putTagged: (a) => ({ name: "put" as const, args: { v: wrap(a.v) } }) },
})
const V1 = historyOf(V2)!.at(1)
const DOC = "d"

/** Arrays nested `depth` deep around a number. */
const nested = (depth: number): unknown => {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

for (const protocol of [1, 2]) {
  test(`protocol ${protocol}: a v2 command just under the depth bound whose downcast nests past it is the v1 reader's barrier, not a write failing forever`, async () => {
    const rt = new VirtualRuntime(3)
    const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
    const hub = new Hub({ machines: [V2], storage: new MemoryStorage(), runtime: rt })
    net.listen(hub)
    const range = { min: protocol, max: protocol }
    const writer = await CanonClient.open({ transport: net.transport("writer"), runtime: rt, clientId: "writer", storage: new MemoryStorage(), protocol: range })
    const reader = await CanonClient.open({ transport: net.transport("reader"), runtime: rt, clientId: "reader", storage: new MemoryStorage(), protocol: range })
    const wd = await writer.open(V2, DOC)
    const rd = await reader.open(V1, DOC)
    const errors: string[] = []
    const barriers: number[] = []
    rd.on("error", (e) => errors.push(e.code))
    rd.on("updateRequired", (e) => barriers.push(e.seq))

    const fine = { v: "shallow", tag: "a" }
    const deep = { v: nested(MAX_ARGS_DEPTH - 1), tag: "b" }
    expect(depthExceeds(deep, MAX_ARGS_DEPTH)).toBe(false)
    const receipts = [wd.submit("putTagged", fine), wd.submit("putTagged", deep), wd.submit("putTagged", fine)]
    await settle(rt, 10_000)
    expect((await Promise.all(receipts)).map((c) => c.seq)).toEqual([1, 2, 3])

    // The writer's commands are logged; the v1 reader has seq 1 and is told it cannot be shown seq 2.
    expect(errors.filter((c) => c !== "update-required")).toEqual([])
    expect(wd.confirmedSeq).toBe(3)
    expect(rd.confirmedSeq).toBe(1)
    expect(rd.state.count).toBe(1)
    expect(barriers).toEqual([2])

    // A v1 reader that joins later is told the same, and a v2 reader follows the whole document.
    const late = await CanonClient.open({ transport: net.transport("late"), runtime: rt, clientId: "late", storage: new MemoryStorage(), protocol: range })
    const ld = await late.open(V1, DOC)
    const lateErrors: string[] = []
    ld.on("error", (e) => lateErrors.push(e.code))
    const fresh = await CanonClient.open({ transport: net.transport("fresh"), runtime: rt, clientId: "fresh", storage: new MemoryStorage(), protocol: range })
    const fd = await fresh.open(V2, DOC)
    await settle(rt, 10_000)
    expect(lateErrors.filter((c) => c !== "update-required")).toEqual([])
    expect(ld.confirmedSeq).toBe(1)
    expect(fd.confirmedSeq).toBe(3)
    expect(fd.confirmedHash()).toBe((await hub.doc(DOC, V2)).stateHash())
    await Promise.all([writer.close(), reader.close(), late.close(), fresh.close()])
    await hub.close()
  })
}

// The class, as a property: whatever a migration makes of a command within the bounds, what
// a reader is shown (serve.ts `entriesForVersion`) is within them too, or is its barrier.
const ShapedV1 = defineMachine({
  name: "shaped",
  version: 1,
  initial: (): S => ({ last: null, count: 0 }),
  commands: { put: { args: Schema.Struct({ v: Schema.Unknown }), apply: (s: S, a) => { s.count++; s.last = a.v } } },
})
const wrapIn = (v: unknown, wraps: number): unknown => {
  for (let i = 0; i < wraps; i++) v = i % 2 === 0 ? { child: v } : [v]
  return v
}
const ShapedV2 = evolve(ShapedV1, {
  version: 2,
  migrateState: (s: S): S => ({ ...s }),
  commands: { putShaped: { args: Schema.Struct({ v: Schema.Unknown, wraps: Schema.Number, split: Schema.Boolean }), apply: (s: S, a) => { s.count++; s.last = a.v } } },
  upcast: { put: (a) => ({ name: "putShaped" as const, args: { v: a.v, wraps: 0, split: false } }) },
  // Nests the value `wraps` levels deeper; `split` makes two commands (a `$batch`, two levels more).
  downcast: {
    putShaped: (a) => {
      const one = { name: "put" as const, args: { v: wrapIn(a.v, a.wraps) } }
      return a.split ? [one, { name: "put" as const, args: { v: null } }] : one
    },
  },
})

test("property: an entry shown to an older reader is within a command's depth bound, or is its barrier", () => {
  const h = historyOf(ShapedV2)!
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_ARGS_DEPTH }), fc.integer({ min: 0, max: 24 }), fc.boolean(), (depth, wraps, split) => {
      const args = { v: nested(depth), wraps, split }
      fc.pre(!depthExceeds(args, MAX_ARGS_DEPTH))
      const entry = { seq: 7, time: 0, clientId: "c", clientSeq: 1, name: "putShaped", args }
      const shown = entriesForVersion(h, [entry], 1, () => 2)
      if (shown.barrier === undefined) {
        expect(shown.entries).toHaveLength(1)
        expect(depthExceeds(shown.entries[0]!.args, MAX_ARGS_DEPTH)).toBe(false)
      } else {
        expect(shown).toEqual({ entries: [], barrier: 7 })
        // Only what had to be cut is: a form well within the bound is shown.
        expect(depth + wraps + (split ? 2 : 0) + 2).toBeGreaterThan(MAX_ARGS_DEPTH)
      }
    }),
    { numRuns: 300 },
  )
})

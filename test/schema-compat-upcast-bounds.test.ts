/**
 * An app newer than its hub (compat mode) upcasts the entries it is sent. Another client's
 * valid v1 command just under a command's depth bound, upcast into a v2 form that nests
 * deeper, was a *barrier* (core/schema/serve.ts): compat.ts dropped it with every entry after
 * it in the message, the app saw a gap, followed again, got the same cut, and never
 * confirmed past it (its own commands stuck; 2,017 subscribes in 500 ms of an idle document,
 * each re-reading the log from the barrier). An upcast never makes a barrier now: one that
 * fails in any way is shown as nothing, as one that throws was (README "Machine versions").
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { entriesForVersion } from "../core/schema/serve.js"
import { MAX_ARGS_DEPTH, depthExceeds } from "../core/limits.js"
import { settle } from "./support/virtual-time.js"

type S = { last: unknown; count: number }
const wrap = (v: unknown): unknown => {
  for (let i = 0; i < 16; i++) v = { child: v }
  return v
}
const V1 = defineMachine({
  name: "tree",
  version: 1,
  initial: (): S => ({ last: null, count: 0 }),
  commands: { put: { args: Schema.Struct({ v: Schema.Unknown }), apply: (s: S, a) => { s.count++; s.last = a.v } } },
})
// v2 keeps the value in a tree-shaped wrapper: its upcast nests 16 levels deeper.
const V2 = evolve(V1, {
  version: 2,
  migrateState: (s: S): S => ({ ...s }),
  commands: {
    putW: { args: Schema.Struct({ v: Schema.Unknown }), apply: (s: S, a) => { s.count++; s.last = a.v } },
  },
  upcast: { put: (a) => ({ name: "putW" as const, args: { v: wrap(a.v) } }) },
  downcast: { putW: (a) => ({ name: "put" as const, args: { v: a.v } }) },
})
const nested = (depth: number): unknown => {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = [v]
  return v
}
const deep = { v: nested(MAX_ARGS_DEPTH - 2) }

/** A hub running v1 that counts subscribes, and a v1 writer. */
const world = async (hubOptions: { readonly catchUpPage?: number } = {}) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [V1], storage: new MemoryStorage(), runtime: rt, snapshots: { tailBytes: Infinity }, ...hubOptions })
  let subscribes = 0
  net.listen({
    accept: (conn) => {
      const handler = hub.accept(conn)
      return { ...handler, onMessage: (m) => { if (m.type === "subscribe") subscribes++; handler.onMessage(m) } }
    },
  } as typeof hub)
  const w = await CanonClient.open({ transport: net.transport("w"), runtime: rt, storage: new MemoryStorage() })
  const wd = await w.open(V1, "d")
  return { rt, net, hub, w, wd, subscribes: () => subscribes }
}

test("the conversion: a too-deep upcast is an empty $batch, never a barrier; a too-deep downcast still is one", () => {
  expect(depthExceeds(deep, MAX_ARGS_DEPTH)).toBe(false)
  const e = { seq: 1, time: 0, clientId: "w", clientSeq: 1, name: "put", args: deep }
  const up = entriesForVersion(historyOf(V2)!, [e], 2, () => 1)
  expect(up).toEqual({ entries: [{ ...e, name: "$batch", args: [] }], barrier: undefined })
  const down = entriesForVersion(historyOf(V2)!, [{ ...e, name: "putW", args: { v: wrap(deep.v) } }], 1, () => 2)
  expect(down.barrier).toBe(1)
})

for (const protocol of [1, 2]) {
  test(`protocol ${protocol}: a compat-mode app follows past a v1 entry whose upcast is too deep, and its own command is applied`, async () => {
    const w = await world()
    const receipts = [w.wd.submit("put", { v: "a" }), w.wd.submit("put", deep), w.wd.submit("put", { v: "b" })]
    await settle(w.rt, 5000)
    expect((await Promise.all(receipts)).map((r) => r.seq)).toEqual([1, 2, 3])
    const app = await CanonClient.open({ transport: w.net.transport("app"), runtime: w.rt, storage: new MemoryStorage(), protocol: { min: protocol, max: protocol } })
    const ad = await app.open(V2, "d")
    await settle(w.rt, 10_000)
    const before = w.subscribes()
    for (let i = 0; i < 20; i++) w.wd.submit("put", { v: i })
    const own = ad.submit("putW", { v: "mine" })
    await settle(w.rt, 10_000)
    expect((await own).seq).toBe(24)
    expect(ad.confirmedSeq).toBe((await w.hub.doc("d", V1)).headSeq)
    expect(ad.pendingCount).toBe(0)
    expect(w.subscribes() - before).toBe(0)
    await Promise.all([w.w.close(), app.close()])
    await w.hub.close()
  })
}

test("an idle compat-mode app does not follow again in a loop (a log longer than a catch-up page)", async () => {
  const w = await world({ catchUpPage: 8 })
  w.wd.submit("put", deep)
  for (let i = 0; i < 40; i++) w.wd.submit("put", { v: i })
  await settle(w.rt, 5_000)
  const app = await CanonClient.open({ transport: w.net.transport("app"), runtime: w.rt, storage: new MemoryStorage() })
  const ad = await app.open(V2, "d")
  await settle(w.rt, 1_000)
  const at = w.subscribes()
  await settle(w.rt, 500)
  expect(w.subscribes() - at).toBe(0)
  expect(ad.confirmedSeq).toBe(41)
  await Promise.all([w.w.close(), app.close()])
  await w.hub.close()
})

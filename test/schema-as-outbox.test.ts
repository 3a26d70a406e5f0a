/**
 * An updated app opens a store whose outbox holds a v1 command its v2 upcast throws on
 * (valid at v1; on a v2 hub `acceptCommand` would reject it with `command-failed`).
 * replica-upgrade.ts rewrites the outbox record as `$as {v: 1, ...}` and stores it; the Doc
 * constructor (doc.ts, `cmd?.decode(o.args)` over the outbox) decodes `$as` with
 * versions.ts `withBuiltins`, whose decode runs `h.convert(...)!` outside any try: the upcast
 * throws out of `client.open`, untyped, and on every later open too (the store is already
 * rewritten). The document can never be opened by the updated app.
 *
 * The right behaviour: it opens; the command is kept (a local no-op), sent, and its rejection
 * reaches the app.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"

type S1 = { rgb: number[] }
type S2 = { hex: string }
const toHex = (rgb: ReadonlyArray<number>): string => {
  if (rgb.length !== 3) throw new Error(`Not a colour: ${rgb.length} components`)
  return "#" + rgb.map((n) => n.toString(16).padStart(2, "0")).join("")
}
const ColorV1 = defineMachine({
  name: "color",
  version: 1,
  initial: (): S1 => ({ rgb: [0, 0, 0] }),
  commands: { setRgb: { args: Schema.Struct({ rgb: Schema.Array(Schema.Number) }), apply: (s: S1, a) => { s.rgb = [...a.rgb] } } },
})
const ColorV2 = evolve(ColorV1, {
  version: 2,
  migrateState: (s: S1): S2 => ({ hex: s.rgb.length === 3 ? toHex(s.rgb) : "#000000" }),
  commands: { setColor: { args: Schema.Struct({ hex: Schema.String }), apply: (s: S2, a) => { s.hex = a.hex } } },
  upcast: { setRgb: (a) => ({ name: "setColor", args: { hex: toHex(a.rgb) } }) },
})
const V1 = historyOf(ColorV2)!.at(1)
const DOC = "c"

const settle = async (rt: VirtualRuntime, ms = 3000) => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

test("an upgraded outbox holding a command the upcast throws on: the app opens the document, the command is rejected by the hub", async () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [ColorV2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const store = new MemoryStorage()
  const c1 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store, autoConnect: false })
  const d1 = await c1.open(V1, DOC)
  d1.submit("setRgb", { rgb: [1, 2, 3] })
  d1.submit("setRgb", { rgb: [1, 2] })
  await d1.whenStored()
  await c1.close()

  const c2 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store })
  const d2 = await c2.open(ColorV2, DOC)
  expect(d2.pendingCount).toBe(2)
  const rejected: string[] = []
  d2.on("rejected", (e) => rejected.push(e.rejection.code))
  await settle(rt)
  expect(d2.pendingCount).toBe(0)
  expect(rejected).toEqual(["command-failed"])
  const hubDoc = await hub.doc(DOC, ColorV2)
  expect(hubDoc.state).toEqual({ hex: "#010203" })
  expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
  await c2.close()
  await hub.close()
})

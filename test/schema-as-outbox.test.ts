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
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { ColorV2, V1 } from "./support/color-machines.js"
import { TodoV1, TodoV2, TodoV3 } from "./support/versioned-machines.js"
import { historyOf } from "../core/schema/registry.js"
import { settle } from "./support/virtual-time.js"

const DOC = "c"


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
  // Named as the app wrote them (v1's setRgb), never by the $as wrapper the upgrade stored them in.
  expect(d2.pending.map((p) => p.name)).toEqual(["setRgb", "setRgb"])
  const rejected: string[] = []
  const told: string[] = []
  d2.on("rejected", (e) => { rejected.push(e.rejection.code); told.push(`rejected ${e.command}`) })
  d2.on("confirmed", (e) => told.push(`confirmed ${e.command}`))
  await settle(rt)
  expect(d2.pendingCount).toBe(0)
  expect(rejected).toEqual(["command-failed"])
  expect(told.sort()).toEqual(["confirmed setRgb", "rejected setRgb"])
  const hubDoc = await hub.doc(DOC, ColorV2)
  expect(hubDoc.state).toEqual({ hex: "#010203" })
  expect(d2.confirmedHash()).toBe(hubDoc.stateHash())
  await c2.close()
  await hub.close()
})

test("a $as of a version newer than the hub's, held in compat mode, is named by its command in the schema-too-new error", async () => {
  // Found by a review of 55b2f22: doc.pending and every event named it "add", the error "$as".
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [TodoV1], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const store = new MemoryStorage()
  // Written offline by the app at v2 (no downcast to v1: priority 3), then the app is updated to v3.
  const c1 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store, autoConnect: false })
  const d1 = await c1.open(TodoV2, DOC)
  d1.submit("setPriority", { id: "x", priority: 3 })
  await d1.whenStored()
  await c1.close()
  const c2 = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: store })
  const d2 = await c2.open(TodoV3, DOC)
  const errors: string[] = []
  d2.on("error", (e) => errors.push(`${e.code}: ${e.message}`))
  await settle(rt, 500)
  expect(d2.pending.map((p) => p.name)).toEqual(["setPriority"])
  const tooNew = errors.filter((e) => e.startsWith("schema-too-new"))
  expect(tooNew.length).toBeGreaterThan(0)
  expect(tooNew.every((e) => e.includes('"setPriority"') && !e.includes("$as"))).toBe(true)
  await c2.close()
  await hub.close()
})

test("a $as record a damaged store holds in another shape is held and told in compat mode, never dropped or thrown", () => {
  // Found by a review: one without a name was taken for nothing held (stuck: undefined), so it
  // and the commands behind it were neither sent nor told; a null one threw out of submits,
  // which ended every connection.
  const behind = { clientSeq: 2, name: "add", args: { id: "n", title: "t" }, encoded: { id: "n", title: "t" } }
  for (const [encoded, named] of [[{ v: 2, args: { id: "x" } }, "$as"], [null, "$as"], [{ v: "2", name: "add", args: {} }, "add"], [7, "$as"]] as const) {
    const session = historyOf(TodoV3)!.compat(1, TodoV3)
    const told: string[] = []
    const damaged = { clientSeq: 1, name: "$as", args: undefined, encoded }
    const messages = session.submits(DOC, [damaged, behind], 0, 3, (m) => told.push(m))
    expect([messages.length, session.blocked, told.length]).toEqual([0, true, 1])
    expect(told[0]).toContain(`"${named}" cannot be sent`)
  }
})

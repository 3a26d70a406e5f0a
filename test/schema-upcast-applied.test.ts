/**
 * What the hub applies for a command it upcasts is what it logs. An app's upcast returns plain
 * values that no schema has read: `{ name: "add", args: a }` hands on every key of the older
 * arguments, also those the newer schema dropped. The log holds the newer schema's encoding
 * (which leaves such keys out), and replicas and the hub's own replay decode the log; so
 * before the fix the hub applied the raw output (serve.ts `acceptCommand`, and the `$as`
 * built-in of versions.ts), an older client chose keys that only the hub's live state held,
 * every newest replica saw a desync and took that state by snapshot, and a restart that
 * replayed the log changed it again.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { acceptCommand, replayEntry } from "../core/schema/serve.js"
import { AuthorityStore } from "../core/store/authority-store.js"
import { JournaledState } from "../core/journal.js"
import { hashState } from "../core/hash.js"
import { settle } from "./support/virtual-time.js"

type S = { items: Record<string, Record<string, unknown>> }
const V1Only = defineMachine({
  name: "cards",
  version: 1,
  initial: (): S => ({ items: {} }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String, color: Schema.String }),
      apply: (s: S, a) => { s.items[a.id] = { ...a } },
    },
  },
})
// v2 drops `color`; its upcasts hand the v1 arguments on (the extra key type-checks).
const V2 = evolve(V1Only, {
  version: 2,
  migrateState: (s: S): S => ({ items: JSON.parse(JSON.stringify(s.items)) }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (s: S, a) => { s.items[a.id] = { ...a } },
    },
  },
  upcast: { add: (a) => ({ name: "add" as const, args: a }) },
  // So that the v1 client follows on and its receipt settles.
  downcast: { add: (a) => ({ name: "add" as const, args: { ...a, color: "" } }) },
})
const V1 = historyOf(V2)!.at(1)
const SENT = { id: "x", title: "X", color: "chosen by the v1 client" }

test("an upcast command applies as its logged form decodes: one command and a $as alike", () => {
  for (const [name, args] of [["add", SENT], ["$as", { v: 1, name: "add", args: SENT }]] as const) {
    const a = acceptCommand(V2, name === "$as" ? 2 : 1, name, args)
    if (!a.ok) throw new Error(a.rejection.message)
    expect(a.log).toEqual({ name: "add", args: { id: "x", title: "X" } })
    // `$as` decodes to a list of commands to apply, as `$batch` does.
    const applied = Array.isArray(a.args) ? (a.args as Array<{ args: unknown }>).map((c) => c.args) : [a.args]
    expect(applied).toEqual([{ id: "x", title: "X" }])
  }
})

test("a v1 client's upcast command: the hub's live state is its log replayed, and a v2 replica sees no desync", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [V2], storage, runtime: rt, checkpointEvery: 1 })
  net.listen(hub)
  const old = await CanonClient.open({ transport: net.transport("old"), runtime: rt, clientId: "old", storage: new MemoryStorage() })
  const od = await old.open(V1, "d")
  const reader = await CanonClient.open({ transport: net.transport("reader"), runtime: rt, clientId: "reader", storage: new MemoryStorage() })
  const rd = await reader.open(V2, "d")
  const desyncs: unknown[] = []
  rd.on("desync", (d) => desyncs.push(d))
  const receipt = od.submit("add", SENT)
  await settle(rt, 5000)
  await receipt

  const live = await hub.doc("d", V2)
  const host = new JournaledState<unknown>(V1.initial())
  let epoch = 2
  for (const e of await new AuthorityStore(storage).entries("d", 0, 100)) epoch = replayEntry(host, "d", historyOf(V2)!, epoch, e)
  expect(live.state).toEqual({ items: { x: { id: "x", title: "X" } } })
  expect(live.stateHash()).toBe(hashState(host.root))
  expect(rd.state).toEqual({ items: { x: { id: "x", title: "X" } } })
  expect(desyncs).toEqual([])
  await old.close()
  await reader.close()
  await hub.close()
})

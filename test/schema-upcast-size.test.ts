/**
 * The size and depth bounds of a command (doc-authority.ts `bound`: "an entry must always
 * fit in a frame ... or every subscriber's catch-up would fail on it forever") are checked on
 * the arguments as sent, not on what is logged. For a session at an older version the hub
 * logs the upcast form (serve.ts `acceptCommand`: `asOne(encodeCmds(machine, list))`), which
 * may be many times larger: a bulk command of v1 upcast to one command per item (what an
 * upcast to several exists for). An old (or any) client sends one v1 command under the limit,
 * the hub logs an entry over the frame size, and the document cannot be served any more.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { settle } from "./support/virtual-time.js"

type Item = { title: string; priority: number; tags: string[] }
type S = { items: Record<string, Item> }

const V1Only = defineMachine({
  name: "bulk",
  version: 1,
  initial: (): S => ({ items: {} }),
  commands: {
    addMany: {
      args: Schema.Struct({ ids: Schema.Array(Schema.String) }),
      apply: (s: S, a) => { for (const id of a.ids) s.items[id] = { title: "", priority: 0, tags: [] } },
    },
  },
})
// v2 drops the bulk command: each item is its own `add` (one command per item, applied as one batch).
const V2 = evolve(V1Only, {
  version: 2,
  migrateState: (s: S): S => ({ items: JSON.parse(JSON.stringify(s.items)) }),
  commands: {
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String, priority: Schema.Number, tags: Schema.Array(Schema.String) }),
      apply: (s: S, a) => { s.items[a.id] = { title: a.title, priority: a.priority, tags: [...a.tags] } },
    },
  },
  upcast: { addMany: (a) => a.ids.map((id) => ({ name: "add" as const, args: { id, title: "", priority: 0, tags: [] } })) },
})
const V1 = historyOf(V2)!.at(1)
const DOC = "d"


// Before the fix the reader's connection is closed over and over ("The hub could not send a
// message on this connection") and it never gets seq 1.
test("a v1 command under the size limit whose upcast is over the frame size is refused, and the document stays servable", async () => {
  const rt = new VirtualRuntime(9)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [V2], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const old = await CanonClient.open({ transport: net.transport("old"), runtime: rt, clientId: "old", storage: new MemoryStorage() })
  const od = await old.open(V1, DOC)
  // ~200 KB as sent (under the 256 KiB limit); ~1.5 MB once upcast.
  const ids = Array.from({ length: 33_000 }, (_, i) => i.toString(36).padStart(5, "0"))
  const receipt = od.submit("addMany", { ids })
  let outcome = "pending"
  receipt.then(() => { outcome = "applied" }, (e: { code?: string }) => { outcome = e.code ?? "rejected" })
  await settle(rt)
  expect(outcome).toBe("command-too-large")

  // A reader that joins later follows the document.
  const reader = await CanonClient.open({ transport: net.transport("reader"), runtime: rt, clientId: "reader", storage: new MemoryStorage() })
  const rd = await reader.open(V2, DOC)
  rd.submit("add", { id: "x", title: "X", priority: 1, tags: [] })
  await settle(rt, 10_000)
  const hubDoc = await hub.doc(DOC, V2)
  expect(rd.pendingCount).toBe(0)
  expect(rd.confirmedSeq).toBe(hubDoc.headSeq)
  expect(rd.confirmedHash()).toBe(hubDoc.stateHash())
  await old.close()
  await reader.close()
  await hub.close()
})

/**
 * The client x hub version matrix: client {n-1, n, n+1} x hub {n-1, n, n+1} x {downcast
 * declared, not declared}, each cell with a pending outbox on the client, over the memory
 * network through the real codec (protocol 2). Each cell asserts its outcome, then upgrades
 * every peer to the newest version of the two and checks that nothing acknowledged or
 * pending was lost and each command was applied once (the client's toggle would undo itself
 * if applied twice).
 */
import { CanonClient, Hub, type Machine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { historyOf } from "../core/schema/versions.js"
import { hashState } from "../core/hash.js"
import { TodoV1, TodoV2, TodoV2NoDown, TodoV3, TodoV3NoDown } from "./support/versioned-machines.js"

const DOC = "list"
type Variant = "down" | "no-down"
const hubMachine: Record<Variant, Record<number, Machine<any, any>>> = {
  down: { 1: TodoV1, 2: TodoV2, 3: TodoV3 },
  "no-down": { 1: TodoV1, 2: TodoV2NoDown, 3: TodoV3NoDown },
}
const clientMachine: Record<Variant, Record<number, Machine<any, any>>> = {
  down: { 1: historyOf(TodoV2)!.at(1), 2: TodoV2, 3: TodoV3 },
  "no-down": { 1: historyOf(TodoV2NoDown)!.at(1), 2: TodoV2NoDown, 3: TodoV3NoDown },
}

/** What a writer at version v adds: at v2 and v3 something an older reader may not be shown. */
const writerCommands = (v: number): Array<[string, unknown]> =>
  v === 1 ? [["add", { id: "w1", title: "W" }]]
    : v === 2 ? [["add", { id: "w1", title: "W", priority: 5 }]]
      : [["add", { id: "w1", title: "W", priority: 5 }], ["archive", { id: "w1" }]]
const clientCommands = (v: number): Array<[string, unknown]> =>
  v === 1 ? [["add", { id: "c1", title: "C" }], ["toggle", { id: "c1" }]] : [["add", { id: "c1", title: "C", priority: 1 }], ["toggle", { id: "c1" }]]

const settle = async (rt: VirtualRuntime, ms = 3000) => {
  for (let t = 0; t < ms; t += 50) await rt.run({ forMs: 50 })
}

/** The expected outcome of each cell (the README table). */
const expected = (c: number, h: number, variant: Variant): string => {
  if (c === h) return "sync"
  if (c > h) {
    // Compat mode: the client speaks the hub's version; its commands go down if they can.
    const canSend = variant === "down" || (c === 3 && h === 2)
    return canSend ? "served through downcasts" : "schema-too-new: waits, outbox kept"
  }
  return variant === "down" ? "follows through downcasts" : "update-required, outbox kept and applied"
}

const cells: Array<[number, number, Variant]> = []
for (const variant of ["down", "no-down"] as Variant[]) for (const c of [1, 2, 3]) for (const h of [1, 2, 3]) cells.push([c, h, variant])

describe("schema version matrix (memory network, real codec)", () => {
  test.each(cells)("client v%i, hub v%i, %s", async (c, h, variant) => {
    const rt = new VirtualRuntime(c * 10 + h)
    const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
    const hubStore = new MemoryStorage()
    const refusals: string[] = []
    const startHub = (v: number) => {
      const hub = new Hub({ machines: [hubMachine[variant][v]!], storage: hubStore, runtime: rt, onEvent: (e) => { if (e.type === "refused") refusals.push(e.code) } })
      net.listen(hub)
      return hub
    }
    let hub = startHub(h)
    // A writer at the hub's version makes the document.
    const writer = await CanonClient.open({ transport: net.transport("writer"), runtime: rt, clientId: "writer", storage: new MemoryStorage() })
    const wdoc = await writer.open(clientMachine[variant][h]!, DOC)
    for (const [name, args] of writerCommands(h)) wdoc.submit(name as never, args as never)
    await settle(rt)
    expect(wdoc.pendingCount).toBe(0)

    // The client under test, with commands pending before it connects.
    const store = new MemoryStorage()
    let client = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store, autoConnect: false })
    let doc = await client.open(clientMachine[variant][c]!, DOC)
    for (const [name, args] of clientCommands(c)) doc.submit(name as never, args as never)
    await doc.whenStored()
    client.connect()
    await settle(rt, 5000)

    const outcome = expected(c, h, variant)
    const hubDoc = await hub.doc(DOC, hubMachine[variant][h]!)
    if (outcome === "sync") {
      expect(doc.pendingCount).toBe(0)
      expect(doc.confirmedHash()).toBe(hubDoc.stateHash())
      expect(doc.updateRequired).toBeUndefined()
    } else if (outcome === "follows through downcasts") {
      expect(doc.pendingCount).toBe(0)
      expect(doc.updateRequired).toBeUndefined()
      expect(Object.keys(doc.state.items).sort()).toEqual(["c1", "w1"])
      expect(hubDoc.state.items.c1.done).toBe(true)
    } else if (outcome === "update-required, outbox kept and applied") {
      // The first entry it cannot be shown: v2's add (priority) for a v1 client; v3's archive for a v2 one.
      expect(doc.updateRequired?.seq).toBe(c === 2 ? 2 : 1)
      if (c === 2) expect(doc.state.items.w1).toBeDefined()
      // Read-only: new commands are refused; what was pending is kept (and was applied by the hub).
      await expect(doc.submit("toggle" as never, { id: "c1" } as never)).rejects.toMatchObject({ code: "update-required" })
      expect(doc.pendingCount).toBe(2)
      expect(doc.state.items.c1).toBeDefined()
      expect(hubDoc.state.items.c1.done).toBe(true)
    } else if (outcome === "served through downcasts") {
      expect(client.status).toBe("online")
      expect(doc.pendingCount).toBe(0)
      expect(doc.schemaTooNew).toBe(false)
      expect(Object.keys(doc.state.items).sort()).toEqual(["c1", "w1"])
      expect(doc.state.items.w1.priority).toBe(h === 1 ? 0 : 5) // the hub's entries, upcast here
      expect(hubDoc.state.items.c1.done).toBe(true)
    } else {
      // Online at the hub's version, reading; the commands wait (no downcast), nothing lost.
      expect(client.status).toBe("online")
      expect(doc.schemaTooNew).toBe(true)
      expect(doc.pendingCount).toBe(2)
      expect(doc.state.items.w1).toBeDefined()
      expect(doc.state.items.c1).toBeDefined()
      // One refusal per version stepped down, not a retry loop.
      expect(refusals.filter((r) => r === "schema-too-new").length).toBe(c - h)
      expect(hubDoc.state.items.c1).toBeUndefined()
    }

    // Everyone upgrades to the newest of the two: nothing is lost, each command applied once.
    const top = Math.max(c, h)
    if (h < top) {
      await hub.close()
      net.stopServer()
      hub = startHub(top)
    }
    if (c < top) {
      await client.close()
      client = await CanonClient.open({ transport: net.transport("client"), runtime: rt, clientId: "client", storage: store })
      doc = await client.open(clientMachine[variant][top]!, DOC)
    }
    await settle(rt, 40_000)
    const finalDoc = await hub.doc(DOC, hubMachine[variant][top]!)
    expect(client.status).toBe("online")
    expect(doc.pendingCount).toBe(0)
    expect(doc.updateRequired).toBeUndefined()
    expect(finalDoc.state.items.c1.done).toBe(true)
    expect(finalDoc.state.items.w1).toBeDefined()
    expect(doc.confirmedHash()).toBe(finalDoc.stateHash())
    expect(hashState(doc.state)).toBe(finalDoc.stateHash())
    await client.close()
    await writer.close()
    await hub.close()
  })
})

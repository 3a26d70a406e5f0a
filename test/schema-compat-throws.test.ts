/**
 * Compat mode (an app newer than its hub) runs the app's migrations on the client: upcasts on
 * every entry the older hub sends (doc.ts `receive` -> `entriesForVersion` -> serve.ts
 * `convertEntry`, whose `h.convert` is outside its try), downcasts on its own outbox
 * (versions.ts `downcastOutbox`, whose `h.convert` is outside its try too). The hub contains
 * a throwing upcast (`acceptCommand`: `command-failed`); the client does not:
 *
 * - An entry written by another (v1) client that the v2 upcast throws on is thrown into the
 *   connection's message handler: client.ts closes the connection as a protocol error, the
 *   client reconnects, is sent the same entry, and so on for good: that app never follows
 *   the document again, and every other document on its connection is cut each time.
 * - Its own command whose downcast throws escapes the outbox write's completion.
 *
 * The right behaviour: an entry the app cannot upcast is refused where it arrives like any
 * entry it cannot read, and a command it cannot downcast waits like one without a downcast
 * (`schemaTooNew`); neither breaks the connection.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { ColorV1, ColorV2, V1 } from "./support/color-machines.js"
import { settle } from "./support/virtual-time.js"

const DOC = "c"
const OTHER = "other"


const world = async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [ColorV1], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  return { rt, net, hub }
}

test("compat mode: an entry of another client that the app's upcast throws on does not cut the connection for good", async () => {
  const { rt, net, hub } = await world()
  const v1 = await CanonClient.open({ transport: net.transport("v1"), runtime: rt, clientId: "v1", storage: new MemoryStorage() })
  const v1doc = await v1.open(V1, DOC)
  v1doc.submit("setRgb", { rgb: [1, 2, 3] })
  v1doc.submit("setRgb", { rgb: [1, 2] }) // valid v1; the v2 app's upcast throws on it
  v1doc.submit("setRgb", { rgb: [4, 5, 6] })
  await settle(rt)
  expect(v1doc.pendingCount).toBe(0)

  const closes: string[] = []
  const v2 = await CanonClient.open({ transport: net.transport("v2"), runtime: rt, clientId: "v2", storage: new MemoryStorage() })
  v2.onStatus((s, info) => { if (s === "offline") closes.push(info?.code ?? "") })
  const doc = await v2.open(ColorV2, DOC)
  const other = await v2.open(ColorV2, OTHER)
  await settle(rt, 20_000)
  // No reconnect loop: the connection that stepped down to v1 stays up.
  // (one close is the hub's schema-too-new refusal before the app steps down to v1)
  expect(closes.filter((c) => c === "protocol-error")).toEqual([])
  expect(v2.status).toBe("online")
  expect(other.synced).toBe(true)
  // The app follows the document up to the entry it cannot show, and knows why it stops.
  expect(doc.confirmedSeq).toBeGreaterThanOrEqual(1)
  await v1.close()
  await v2.close()
  await hub.close()
})

test("compat mode: the app's own command whose downcast throws waits in the outbox (schemaTooNew); nothing escapes", async () => {
  const { rt, net, hub } = await world()
  const uncaught: unknown[] = []
  const onErr = (e: unknown) => uncaught.push(e)
  process.on("uncaughtException", onErr)
  process.on("unhandledRejection", onErr)
  try {
    const v2 = await CanonClient.open({ transport: net.transport("v2"), runtime: rt, clientId: "v2", storage: new MemoryStorage() })
    const doc = await v2.open(ColorV2, DOC)
    await settle(rt)
    expect(v2.status).toBe("online")
    doc.submit("setColor", { hex: "#0a0b0c" })
    doc.submit("setColor", { hex: "teal" }) // no downcast for this one: parseHex throws
    await settle(rt)
    expect(uncaught).toEqual([])
    expect(v2.status).toBe("online")
    const hubDoc = await hub.doc(DOC, ColorV1)
    expect(hubDoc.state).toEqual({ rgb: [10, 11, 12] })
    expect(doc.schemaTooNew).toBe(true)
    expect(doc.pendingCount).toBe(1)
    await v2.close()
  } finally {
    process.off("uncaughtException", onErr)
    process.off("unhandledRejection", onErr)
  }
  await hub.close()
})

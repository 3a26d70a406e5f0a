/**
 * The ephemeral relay of whole CRDT documents (CrdtDocAuthority.relay): on a tick per
 * document, the latest payload per key, never back to its sender; relayNow goes at once and
 * replaces what its key had due; a sender that leaves has nothing relayed after it; a closed
 * document leaves no tick armed. Both routes relay through it (Yjs awareness per clientID,
 * Automerge ephemeral messages per sender).
 */
import { VirtualRuntime, MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost, RELAY_TICK_MS, type CrdtSubscriber } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"

const listener = () => {
  const got: Array<{ payload: string; key: unknown }> = []
  const sub: CrdtSubscriber = { onUpdates: () => {}, onEphemeral: (p, _from, key) => got.push({ payload: new TextDecoder().decode(p), key }) }
  return { sub, got }
}
const bytes = (s: string) => new TextEncoder().encode(s)

test("relayed on the tick, the latest per key, not to the sender; relayNow at once; nothing after close", async () => {
  const runtime = new VirtualRuntime(1)
  const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage: new MemoryStorage(), sync: false, runtime })
  const doc = await host.open("yjs", "r")
  const a = listener()
  const b = listener()
  doc.subscribe(a.sub)
  doc.subscribe(b.sub)
  for (let i = 0; i < 100; i++) doc.relay(bytes(`a${i}`), a.sub, 7)
  doc.relay(bytes("a-other"), a.sub, 8)
  doc.relay(bytes("b0"), b.sub)
  expect(b.got).toEqual([])
  await runtime.run({ forMs: RELAY_TICK_MS })
  expect(b.got).toEqual([{ payload: "a99", key: 7 }, { payload: "a-other", key: 8 }])
  expect(a.got).toEqual([{ payload: "b0", key: b.sub }])
  // A removal goes at once and its key's due state is dropped (not sent after it).
  doc.relay(bytes("a-late"), a.sub, 7)
  doc.relayNow(bytes("a-gone"), a.sub, 7)
  expect(b.got.at(-1)).toEqual({ payload: "a-gone", key: 7 })
  // A sender that left: what it had due goes nowhere.
  doc.relay(bytes("b1"), b.sub)
  doc.unsubscribe(b.sub)
  await runtime.run({ forMs: RELAY_TICK_MS * 2 })
  expect(b.got.map((g) => g.payload)).toEqual(["a99", "a-other", "a-gone"])
  expect(a.got.map((g) => g.payload)).toEqual(["b0"])
  // Closed: the armed tick is cancelled.
  doc.relay(bytes("a-again"), a.sub, 9)
  expect(runtime.armed).toBeGreaterThan(0)
  await host.close()
  expect(runtime.armed).toBe(0)
  await runtime.run({ forMs: RELAY_TICK_MS * 2 })
  expect(b.got).toHaveLength(3)
})

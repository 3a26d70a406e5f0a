/**
 * A client's presence budget is the client's, not one per document (core/authority/followers.ts,
 * `presenceBudget`): the relays of its presence changes, across every document it follows,
 * come out of one budget, as the states it asks for do (`chargeState`). An attack review found
 * each document kept a budget of its own per client, so a client following 60 documents
 * (a connection may follow 100) had them relay 60 times what one document allows.
 *
 * Peers here are raw and read at once (support/hub-wire.ts), on virtual time.
 */
import { WirePeer, hubWorld, wireSize } from "./support/hub-wire.js"
import { PRESENCE_CLIENT_BURST_BYTES, PRESENCE_CLIENT_BYTES_PER_SECOND } from "../core/authority/followers.js"

const DOCS = 60
const SECONDS = 4

test("a client changing its presence on many documents is relayed within one budget, not one per document", async () => {
  const w = hubWorld({})
  const setter = await w.peer()
  const reader = await w.peer()
  const docs = Array.from({ length: DOCS }, (_, i) => `room${i}`)
  for (const d of docs) {
    w.subscribe(setter, d)
    w.subscribe(reader, d)
  }
  await w.run(500)
  const from = reader.received.length
  // A 4 KiB presence changed on every document every tick: far past one budget.
  for (let t = 0, n = 0; t < SECONDS * 1000; t += 50) {
    for (const d of docs) setter.send({ type: "presence-set", docId: d, state: { n: n++, pad: "p".repeat(3900) } })
    await w.run(50)
  }
  const relayed = reader.received.slice(from).filter((m) => m.type === "presence" && m.clientId === setter.clientId)
  const bytes = relayed.reduce((s, m) => s + wireSize(m), 0)
  const allowed = PRESENCE_CLIENT_BURST_BYTES + PRESENCE_CLIENT_BYTES_PER_SECOND * SECONDS
  console.log(`${relayed.length} relays, ${bytes} bytes in ${SECONDS} s over ${DOCS} documents (one budget allows ${allowed})`)
  // A relay is charged as it goes, so the budget may be overdrawn by the relays of one tick.
  expect(bytes).toBeLessThanOrEqual(allowed + DOCS * 4096)
  // Still relayed: the budget paces the client, it does not silence it.
  expect(bytes).toBeGreaterThan(PRESENCE_CLIENT_BYTES_PER_SECOND * (SECONDS - 1))
  // Every document ends showing the setter's last presence.
  await w.run(30_000)
  const last = new Map<string, unknown>()
  for (const m of reader.received) if (m.type === "presence" && m.clientId === setter.clientId) last.set(m.docId, m.state)
  for (const d of docs) expect((last.get(d) as { n: number } | undefined)?.n).toBeGreaterThanOrEqual(DOCS * (SECONDS * 20 - 1))
  await w.hub.close()
}, 60_000)

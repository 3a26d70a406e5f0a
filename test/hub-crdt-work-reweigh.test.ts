/**
 * Review of the held rest of a submit (hub.ts chargeCrdtWork): every time a hold ends, the
 * rest of a split submit is weighed again whole (CrdtWorkGauge.weigh over all its remaining
 * merges), although only the merges up to the next overdraw go through. A submit of N merges
 * that each overdraw the refill of one hold is weighed about N²/2 times: 1,000 re-deletes of
 * 6 characters (350 µs each, 0.35 s of charged work) cost about 500,000 calls of the engine's
 * weigh, seconds of the hub's time that no bucket is charged for.
 */
import { Hub, defineMachine } from "../core/index.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { insertAndRedeletes } from "./support/automerge-redeletes.js"

const Notes = defineMachine({ name: "notes", version: 1, initial: () => ({}), commands: {}, crdt: { body: automergeText() } })
const N = 500

test("a split submit's merges are each weighed about once, not once per hold", async () => {
  const engine = Notes.crdt!.body!.engine as { weigh: (u: unknown) => number }
  const weigh = engine.weigh
  let calls = 0
  engine.weigh = (u) => (calls++, weigh(u))
  try {
    const rt = new VirtualRuntime(7)
    const net = new MemoryNetwork(rt, { latency: () => 1 })
    const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: rt, limits: { workPerSecond: 250_000, workBurst: 1_000, maxCommandsPerSubmit: N } })
    net.listen(hub)
    const received: ServerMessage[] = []
    const conn = net.transport("c").connect({ onOpen: () => {}, onMessage: (m) => void received.push(m as ServerMessage), onClose: () => {} })
    const outcomes = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : []))
    await rt.run({ forMs: 5 })
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "attacker000000", machines: [], secret: newClientSecret(rt) })
    conn.send({ type: "subscribe", docId: "d", machine: Notes.name, version: Notes.version, fingerprint: Notes.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 20 })
    const { insert, redeletes } = insertAndRedeletes(Notes.crdt!.body!.engine, 6, N)
    conn.send({ type: "submit", docId: "d", commands: [{ clientSeq: 1, name: "$crdt.body", args: insert }], ackedClientSeq: 0 })
    await rt.run({ forMs: 1_000 })
    calls = 0
    conn.send({ type: "submit", docId: "d", commands: redeletes.map((args, i) => ({ clientSeq: i + 2, name: "$crdt.body", args })), ackedClientSeq: 0 } satisfies ClientMessage)
    for (let i = 0; i < 2_000 && outcomes().length < N + 1; i++) await rt.run({ forMs: 10 })
    expect(outcomes().filter((o) => "seq" in o)).toHaveLength(N + 1) // all merged, slowed
    // On 4b03332: 124,253 calls for 500 (weighed again whole at each hold; 498,503 for 1,000).
    expect(calls).toBeLessThanOrEqual(3 * N)
    await hub.close()
  } finally {
    engine.weigh = weigh
  }
}, 120_000)

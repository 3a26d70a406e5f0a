/**
 * The same entry gives every reader the hub's state, whichever protocol it reads in. -0 in an
 * argument whose schema is a number literal or a numeric enum passes the schema (it compares
 * with ===), and the hub logs and applies it as -0 (the canonical form tells it from 0), as
 * protocol 1 readers read it. The compact args codec of protocol 2 wrote it as the literal (or
 * the member's index) and decoded +0: every protocol 2 reader then held another state, saw a
 * desync at the next checkpoint and fetched the whole state, again at every such command, so
 * one writer (an attacker, or an app's Math.round(-0.3)) could make every reader download the
 * document once a second. The codec now matches literals and members by SameValue, so -0
 * travels whole (test/args-codec.test.ts has the property).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"

enum Level { Low, Mid, High }

const Prio = defineMachine({
  name: "prio",
  version: 1,
  initial: () => ({ level: 1 as number, lit: 1 as number }),
  commands: {
    level: { args: Schema.Struct({ level: Schema.Enum(Level) }), apply: (s, a) => { s.level = a.level } },
    lit: { args: Schema.Struct({ lit: Schema.Literals([0, 1, 2]) }), apply: (s, a) => { s.lit = a.lit } },
  },
})

const world = async () => {
  const rt = new VirtualRuntime(3)
  // Real frames through the codec, as on a WebSocket.
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const hub = new Hub({ machines: [Prio], storage: new MemoryStorage(), runtime: rt, quietCheckpointMs: 100 })
  net.listen(hub)
  const attacker = await CanonClient.open({ transport: net.transport("attacker"), runtime: rt, protocol: { min: 1, max: 1 } })
  const v1 = await CanonClient.open({ transport: net.transport("v1-reader"), runtime: rt, protocol: { min: 1, max: 1 } })
  const v2 = await CanonClient.open({ transport: net.transport("v2-reader"), runtime: rt })
  const a = await attacker.open(Prio, "p")
  const r1 = await v1.open(Prio, "p")
  const r2 = await v2.open(Prio, "p")
  await rt.run({ forMs: 200 })
  return { rt, hub, a, r1, r2, close: async () => { await attacker.close(); await v1.close(); await v2.close(); await hub.close() } }
}

test("an enum argument of -0 gives a protocol 2 reader the same state as the hub and a protocol 1 reader", async () => {
  const { rt, hub, a, r1, r2, close } = await world()
  const desyncs: unknown[] = []
  r2.on("desync", (d) => desyncs.push(d))
  void a.submit("level", { level: -0 as Level }).catch(() => {})
  await rt.run({ forMs: 500 })
  const authority = await hub.doc("p", Prio)
  const hubLevel = authority.state.level
  // The hub and the protocol 1 reader hold -0 ...
  expect(Object.is(hubLevel, -0)).toBe(true)
  expect(Object.is(r1.state.level, -0)).toBe(true)
  // ... and so should the protocol 2 reader, without a desync.
  expect({ isMinusZero: Object.is(r2.state.level, -0), desyncs: desyncs.length }).toEqual({ isMinusZero: true, desyncs: 0 })
  expect(r2.confirmedHash()).toBe(authority.stateHash())
  await close()
})

test("a literal argument of -0 likewise", async () => {
  const { rt, hub, a, r1, r2, close } = await world()
  const desyncs: unknown[] = []
  r2.on("desync", (d) => desyncs.push(d))
  void a.submit("lit", { lit: -0 as 0 }).catch(() => {})
  await rt.run({ forMs: 500 })
  const authority = await hub.doc("p", Prio)
  expect(Object.is(authority.state.lit, -0)).toBe(true)
  expect(Object.is(r1.state.lit, -0)).toBe(true)
  expect({ isMinusZero: Object.is(r2.state.lit, -0), desyncs: desyncs.length }).toEqual({ isMinusZero: true, desyncs: 0 })
  await close()
})

test("one writer can make every protocol 2 reader desync (and fetch the whole state) once per such command", async () => {
  const { rt, a, r2, close } = await world()
  const desyncs: unknown[] = []
  r2.on("desync", (d) => desyncs.push(d))
  for (let i = 0; i < 5; i++) {
    void a.submit("level", { level: (i % 2 === 0 ? -0 : 0) as Level }).catch(() => {})
    await rt.run({ forMs: 2_000 })
  }
  // Each -0 that follows a 0 was a new divergence (3 of the 5 here, before).
  expect(desyncs.length).toBe(0)
  await close()
})

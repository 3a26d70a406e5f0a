/**
 * Every document load a client's subscribe makes is paid from its loads bucket where the load
 * happens (hub.ts `acquire`), whatever made it needed: a first use, an unload, or a claim of an
 * unwritten document by a subscriber with another machine (`claimUnwritten` unloads it and
 * loads it again). Charging only when the document was not in memory as the message was read
 * let a client alternate subscribe(D, todo) / subscribe(D, counter) on an unwritten D and make
 * the hub load D for every message, uncharged (attack review r15, finding 5: 13,036 loads in
 * 8.6 s against 50/s plus a burst of 200).
 * Virtual time, a memory network that can pause, a storage whose reads take time.
 */
import { Hub, type ClientMessage, type HubEvent, type ServerMessage } from "../core/index.js"
import type { Connection } from "../core/ports/transport.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { newClientSecret } from "../core/ports/runtime.js"
import type { HubLimits } from "../core/authority/limits.js"
import { Counter, Todo } from "./support/machines.js"
import { hubWorld } from "./support/hub-wire.js"

type M = typeof Todo | typeof Counter
const subscribe = (docId: string, m: M): ClientMessage =>
  ({ type: "subscribe", docId, machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq: 0, ackedClientSeq: 0 })

/** A hub serving two machines on a memory network whose storage reads take 1 ms; counts the documents it loads from storage. */
const world = (limits: Partial<HubLimits>) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const events: HubEvent[] = []
  const storage = new MemoryStorage({ latency: { runtime: rt, ms: () => 2, readMs: () => 1 } })
  // A load reads the document's head first: count those reads.
  let loads = 0
  const get = storage.get.bind(storage)
  storage.get = (key: Uint8Array) => {
    if (key[0] === 0x61 && key[1] === 0x6d) loads++
    return get(key)
  }
  const hub = new Hub({ machines: [Todo, Counter], storage, runtime: rt, limits, onEvent: (e) => events.push(e) })
  net.listen(hub)
  const peer = async (name: string) => {
    const received: ServerMessage[] = []
    let closed: string | undefined
    const conn: Connection<ClientMessage> = net.transport(name).connect({ onMessage: (m) => received.push(m), onClose: (c) => (closed = c.code) })
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: name.padEnd(16, "0"), machines: [], secret: newClientSecret(rt) })
    for (let t = 0; t < 1000 && !received.some((m) => m.type === "welcome"); t += 5) await rt.run({ forMs: 5 })
    if (!received.some((m) => m.type === "welcome")) throw new Error(`${name} was not welcomed`)
    return { conn, received, closed: () => closed, synced: () => received.filter((m) => m.type === "synced").length }
  }
  return { rt, hub, events, peer, loads: () => loads }
}

test("claim ping-pong on an unwritten document: every reload is paid, the client is held to its load rate", async () => {
  const { rt, events, peer, loads } = world({ loadsPerSecond: 20, loadBurst: 40 })
  const pinger = await peer("pinger")
  const before = loads()
  const seconds = 3
  let n = 0
  for (let t = 0; t < seconds * 1000; t += 50) {
    // 20 alternating subscribes every 50 ms on four fresh documents: 400 a second, within the message rate.
    for (let j = 0; j < 20; j++, n++) pinger.conn.send(subscribe(`pp-${n % 4}`, n % 8 < 4 ? Todo : Counter))
    await rt.run({ forMs: 50 })
  }
  const loaded = loads() - before
  // Each alternate subscribe did claim and reload (the attack works as described)...
  expect(pinger.synced()).toBeGreaterThan(40)
  expect(loaded).toBeGreaterThanOrEqual(pinger.synced() - 4)
  // ...and no more loads than the burst plus the rate (plus the one in flight as the hold began).
  expect(loaded).toBeLessThanOrEqual(40 + 20 * seconds + 2)
  expect(pinger.closed()).toBeUndefined()
  expect(events.some((e) => e.type === "limit" && e.code === "rate-held" && /loads/.test(e.message))).toBe(true)
})

test("a claim's reload is paid by the claimer on a transport that cannot pause: past its loads it is closed rate-limited", async () => {
  const { run, peer } = hubWorld({ machines: [Todo, Counter], limits: { loadsPerSecond: 10, loadBurst: 20 } })
  const p = await peer()
  for (let i = 0; i < 60 && p.closed === undefined; i++) {
    p.send(subscribe("one-doc", i % 2 === 0 ? Todo : Counter))
    await run(5)
  }
  expect(p.closed).toBe("rate-limited")
  expect(p.of("error").some((e) => e.code === "rate-limited" && /Document loads past 10 per second/.test(e.message))).toBe(true)
  // The burst of 20 loads and what refilled meanwhile (10 a second), not one per subscribe.
  expect(p.of("synced").length).toBeLessThanOrEqual(20 + 2)
})

test("documents in memory cost nothing: following a loaded document again and again takes no load token", async () => {
  const { rt, peer, loads } = world({ loadsPerSecond: 1, loadBurst: 2 })
  const p = await peer("reader")
  for (let i = 0; i < 50; i++) {
    p.conn.send(subscribe("kept", Todo))
    p.conn.send({ type: "unsubscribe", docId: "kept" })
    await rt.run({ forMs: 10 })
  }
  expect(p.synced()).toBe(50)
  expect(p.closed()).toBeUndefined()
  expect(loads()).toBeLessThanOrEqual(2)
})

/**
 * What a CRDT merge really cost is charged when its estimate missed it. Yjs places an item by
 * scanning the items between its origins in the document: after N items that all follow "X",
 * an item after "X" from a larger clientID walks all N, and the update's bytes do not show it
 * (an attack review measured 100 such items, 803 bytes weighing 1 ms, taking 2.4 s after
 * 60,000 siblings). The hub measures each merge on its runtime's clock and charges what the
 * estimate missed to the client's CRDT work bucket, so its next merge waits for it.
 *
 * The hub's clock here is virtual time plus the real time that passed: a virtual clock alone
 * stands still while the hub works. The six updates arrive together, as one socket read
 * brings them: each waits until the merges before it are done and charged.
 */
import * as Y from "yjs"
import { Hub, defineMachine } from "../core/index.js"
import type { Runtime } from "../core/ports/runtime.js"
import type { ClientMessage, ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"

const Notes = defineMachine({ name: "notes", version: 1, initial: () => ({}), commands: {}, crdt: { title: yText() } })
const engine = Notes.crdt!.title!.engine
const N = 20_000
const K = 150
const M = 6
// What a merge is charged past its estimate is at most the burst: 0.1 s here, ten seconds of the rate.
const RATE = 10_000
const BURST = 100_000

test("Yjs items that scan a crowded origin: what their estimate missed is charged, and the next ones wait for it", async () => {
  const rt = new VirtualRuntime(9)
  const started = performance.now()
  const clock: Runtime = { now: () => rt.now() + Math.round(performance.now() - started), setTimer: (ms, fn) => rt.setTimer(ms, fn), random: () => rt.random() }
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: clock, limits: { workPerSecond: RATE, workBurst: BURST } })
  // A socket whose peer's frames arrive together, as one read delivers them: what the hub has
  // not paused for is handled at once, the rest when it resumes.
  const received: ServerMessage[] = []
  const queue: ClientMessage[] = []
  let paused = false
  const listener = hub.accept({
    send: (m) => void received.push(m),
    close: () => {},
    bufferedAmount: 0,
    pause: () => void (paused = true),
    resume: () => {
      paused = false
      while (!paused && queue.length > 0) listener.onMessage(queue.shift()!)
    },
  }, { remoteAddress: "test" })
  const conn = { send: (m: ClientMessage) => (paused ? queue.push(m) : listener.onMessage(m)) }
  conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "crowder0000000", machines: [], secret: newClientSecret(rt) })
  conn.send({ type: "subscribe", docId: "d", machine: Notes.name, version: Notes.version, fingerprint: Notes.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 20 })
  let seq = 0
  const submit = (u: Uint8Array) => conn.send({ type: "submit", docId: "d", commands: [{ clientSeq: ++seq, name: "$crdt.title", args: u }], ackedClientSeq: 0 })
  const merged = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : [])).filter((o) => "seq" in o).length

  // N items right after "X", each with origin X, from client 1.
  const a = new Y.Doc()
  a.clientID = 1
  const text = a.getText("t")
  text.insert(0, "X")
  const base = Y.encodeStateAsUpdate(a)
  submit(base)
  for (let done = 0; done < N; done += 5_000) {
    const sv = Y.encodeStateVector(a)
    for (let i = 0; i < 5_000; i++) text.insert(1, "a")
    submit(Y.encodeStateAsUpdate(a, sv))
  }
  const setup = seq
  for (let i = 0; i < 1_000 && merged() < setup; i++) await rt.run({ forMs: 100 })
  expect(merged()).toBe(setup)
  await rt.run({ forMs: 30_000 }) // paid for, and the bucket full again

  // M updates of K items after X, each from a larger clientID: cheap by their bytes.
  const crowd: Uint8Array[] = []
  for (let m = 0; m < M; m++) {
    const b = new Y.Doc()
    b.clientID = 1_000 + m
    Y.applyUpdate(b, base)
    const before = Y.encodeStateVector(b)
    for (let i = 0; i < K; i++) b.getText("t").insert(1, "b")
    crowd.push(Y.encodeStateAsUpdate(b, before))
  }
  const estimate = crowd.reduce((n, u) => n + engine.weigh(u), 0)
  expect(estimate).toBeLessThan(BURST) // all of them, by their bytes, fit in the burst
  const t0 = performance.now()
  for (const u of crowd) submit(u)
  await rt.run({ forMs: 500 })
  const took = performance.now() - t0
  const crowdMerged = merged() - setup
  // The first merges cost far more than estimated; what they cost holds the rest back.
  expect(crowdMerged).toBeGreaterThanOrEqual(1)
  expect(crowdMerged).toBeLessThan(M)
  expect(took).toBeGreaterThan(0)
  await hub.close()
}, 120_000)

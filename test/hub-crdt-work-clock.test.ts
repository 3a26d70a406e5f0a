/**
 * Review of the measured CRDT work charge (4b03332: DocAuthority reports each merge's time on
 * `runtime.now()`, the hub charges what the estimate missed). The runtime's clock is the wall
 * clock (systemRuntime: Date.now()), which steps: an NTP correction, a suspended laptop or VM
 * resumed, a live migration. A step inside one merge is charged to the client that sent it as
 * work, without bound: a one-hour step holds that client's next merge (and every reconnect of
 * it, the debt is the client's) for four hours at the default 250,000 µs a second.
 *
 * Here the step is made by the field itself (its apply moves the clock an hour on), on a
 * clock that is otherwise virtual.
 */
import { Hub, defineMachine, type HubEvent } from "../core/index.js"
import type { Runtime } from "../core/ports/runtime.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import type { HubLimits } from "../core/authority/limits.js"
import { newClientSecret } from "../core/ports/runtime.js"
import type { CrdtEngine, CrdtField, CrdtFieldDecl } from "../core/crdt/engine.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { automergeText } from "../adapters/automerge/index.js"

const HOUR = 3_600_000

const world = async (limits: Partial<HubLimits>, step: number) => {
  const rt = new VirtualRuntime(11)
  let offset = 0
  let stepDuringNextMerge = false
  const clock: Runtime = { now: () => rt.now() + offset, setTimer: (ms, fn) => rt.setTimer(ms, fn), random: () => rt.random() }
  const base = automergeText()
  const stepping = <H>(f: CrdtField<H>): CrdtField<H> => {
    const apply = f.apply.bind(f)
    ;(f as { apply: CrdtField<H>["apply"] }).apply = (batch) => {
      apply(batch)
      if (stepDuringNextMerge) {
        stepDuringNextMerge = false
        offset += step // the host slept, or NTP stepped the clock, while this merge ran
      }
    }
    return f
  }
  const engine: CrdtEngine<any> = { ...base.engine, create: () => stepping(base.engine.create()), load: (b) => stepping(base.engine.load(b)) }
  const Notes = defineMachine({ name: "notes", version: 1, initial: () => ({}), commands: {}, crdt: { body: { ...base, engine } as CrdtFieldDecl<any> } })

  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Notes], storage: new MemoryStorage(), runtime: clock, limits, onEvent: (e) => void events.push(e) })
  net.listen(hub)
  const received: ServerMessage[] = []
  const secret = newClientSecret(rt)
  const connect = async () => {
    const conn = net.transport("c").connect({ onOpen: () => {}, onMessage: (m) => void received.push(m as ServerMessage), onClose: () => {} })
    await rt.run({ forMs: 5 })
    conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "writer00000000", machines: [], secret })
    conn.send({ type: "subscribe", docId: "d", machine: Notes.name, version: Notes.version, fingerprint: Notes.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 20 })
    return conn
  }
  let conn = await connect()
  const merged = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : [])).filter((o) => "seq" in o).length

  const field = base.engine.create()
  const updates: unknown[] = []
  field.onLocalChange((u) => updates.push(u))
  field.handle.splice(0, 0, "hello")
  field.handle.splice(5, 0, " world")
  field.destroy()
  let seq = 0
  const submit = (args: unknown) => conn.send({ type: "submit", docId: "d", commands: [{ clientSeq: ++seq, name: "$crdt.body", args }], ackedClientSeq: 0 })
  const reconnect = async () => {
    conn.close()
    await rt.run({ forMs: 10 })
    conn = await connect()
  }

  stepDuringNextMerge = true
  submit(updates[0])
  for (let i = 0; i < 100 && merged() < 1; i++) await rt.run({ forMs: 10 })
  expect(merged()).toBe(1)
  expect(offset).toBe(step)
  return { rt, hub, events, received, updates, submit, merged, reconnect }
}

test("a wall clock step during a merge is not charged to its sender as hours of CRDT work", async () => {
  const { rt, hub, updates, submit, merged } = await world({}, HOUR)
  // A small edit right after: it weighs a few hundred µs, and the bucket (2 s of burst) was full.
  submit(updates[1])
  for (let i = 0; i < 600 && merged() < 2; i++) await rt.run({ forMs: 100 })
  // On 4b03332 the hour is charged as 3.6e9 µs of work: the edit is held for some 14,400 s.
  expect(merged()).toBe(2)
  await hub.close()
}, 60_000)

/**
 * With the charge off (`workPerSecond: 0`), merges are not weighed, so no estimate is
 * recorded and each merge's whole measured time is still borrowed from the client's CRDT
 * bucket, which at rate 0 never refills. Once the client's merges have taken the burst (2 s
 * of merge time over the hub's life, or one clock step), its debt is for ever: each new
 * connection is held at its hello for `Infinity` ms (on Node, setTimeout warns and fires in
 * 1 ms; on the virtual runtime, and any runtime keeping the timer, it is never read again).
 */
test("with the CRDT work charge off, a client's merge time does not hold its next connection for ever", async () => {
  const { rt, hub, events, received, updates, submit, merged, reconnect } = await world({ workPerSecond: 0 }, 3_000)
  await reconnect()
  expect(received.filter((m) => m.type === "welcome")).toHaveLength(2)
  submit(updates[1])
  for (let i = 0; i < 100 && merged() < 2; i++) await rt.run({ forMs: 100 })
  // On 4b03332: the second connection is held for Infinity ms and never read.
  expect(events.filter((e) => e.type === "limit" && e.code === "rate-held").map((e) => (e as { message: string }).message)).toEqual([])
  expect(merged()).toBe(2)
  await hub.close()
}, 60_000)

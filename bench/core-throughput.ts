/**
 * Core figure 1: how many trivial commands (Counter `incr {by: 1}`) each part of the engine
 * gets through per second. Each function measures one run and returns its rate; every run
 * starts from fresh objects and checks the end state, so a broken path cannot look fast.
 * Building inputs (entries, messages) happens outside the timed regions.
 */
import { CanonClient, Hub, type ClientTransport, type Entry, type Submit } from "../core/index.js"
import { ReplicaState } from "../core/internal.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CollectingConnection } from "./collecting-connection.js"
import { check, closeOnVirtualTime, now } from "./harness.js"
import { Counter } from "./machines.js"

const DOC = "bench-doc"
const T0 = 1_700_000_000_000

/** Lets queued microtasks (outbox flush, change notification, commit) run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** `count` confirmed `incr` entries from another client, from `seq` on. */
const counterEntries = (seq: number, count: number): Entry[] => {
  const out: Entry[] = []
  for (let i = 0; i < count; i++) {
    out.push({ seq: seq + i, time: T0 + seq + i, clientId: "other-client", clientSeq: seq + i, name: "incr", args: { by: 1 } })
  }
  return out
}

/** 1a. A replica integrating `batches` batches of `size` confirmed entries. */
export const entriesAppliedPerSecond = (batches: number, size: number): number => {
  const rs = new ReplicaState(DOC, Counter, "this-client", () => T0, Counter.initial(), 0)
  let ms = 0
  for (let b = 0; b < batches; b++) {
    const entries = counterEntries(rs.confirmedSeq + 1, size)
    const t0 = now()
    const r = rs.integrate(entries, undefined, false)
    ms += now() - t0
    check(r.applied.length === size && !r.gap && r.desync === undefined && r.snapshot === undefined, "integrate applied the whole batch")
  }
  check(rs.view.value === batches * size && rs.confirmedSeq === batches * size, "counter equals the entries applied")
  return (batches * size) / (ms / 1000)
}

const offline: ClientTransport = {
  connect: () => {
    throw new Error("the local-submit benchmark runs offline")
  },
}

/** 1b. `bursts` synchronous bursts of `size` submits on an offline client without storage. */
export const localSubmitsPerSecond = async (bursts: number, size: number): Promise<number> => {
  const client = await CanonClient.open({ transport: offline, runtime: new VirtualRuntime(1), autoConnect: false, clientId: "this-client" })
  const doc = await client.open(Counter, DOC)
  let ms = 0
  for (let b = 0; b < bursts; b++) {
    const t0 = now()
    for (let i = 0; i < size; i++) doc.submit("incr", { by: 1 })
    await turn()
    ms += now() - t0
  }
  check(doc.state.value === bursts * size && doc.pendingCount === bursts * size, "every submit is applied and pending")
  await client.close()
  return (bursts * size) / (ms / 1000)
}


/** 1c. The authority ordering and committing `batches` submit messages of `size` commands. */
export const authorityCommitsPerSecond = async (batches: number, size: number): Promise<number> => {
  const clientId = "this-client"
  const runtime = new VirtualRuntime(1)
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime })
  const doc = await hub.doc(DOC, Counter)
  const conn = new CollectingConnection()
  doc.subscribe(conn, clientId, 0, 0)
  await turn()
  // As a real client does: each message acknowledges the outcomes of the previous one.
  const messages: Submit[] = []
  for (let b = 0; b < batches; b++) {
    const commands = []
    for (let i = 1; i <= size; i++) commands.push({ clientSeq: b * size + i, name: "incr", args: { by: 1 } })
    messages.push({ type: "submit", docId: DOC, commands, ackedClientSeq: b * size })
  }
  let ms = 0
  for (const msg of messages) {
    const t0 = now()
    const done = conn.nextResults()
    doc.submit(conn, clientId, msg)
    await done
    ms += now() - t0
  }
  const total = batches * size
  check(conn.errors.length === 0, `no error (${conn.errors.join("; ")})`)
  check(doc.headSeq === total && doc.state.value === total && conn.accepted === total && conn.fannedOut === total, "every command committed, acknowledged and fanned out")
  await closeOnVirtualTime(hub, runtime)
  return total / (ms / 1000)
}

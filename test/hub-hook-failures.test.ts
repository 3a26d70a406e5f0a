/**
 * What a peer hears when something inside the hub fails: an `authenticate` or `authorize` hook
 * that throws, or the hub's disk. The connection closes (the client comes back after its
 * backoff), the peer is told what to do, and the error's own text, which can name a database
 * host, a path or a credential, goes only to the operator's `onEvent`. Before, the peer was
 * sent "Internal error: <the hook's message>" and the close reason carried the disk's error.
 * The same for a document's load, a client's records and a catch-up that fail on the disk.
 * And `authorize` allows with `true` only, as the CRDT routes' do: any truthy value allowed.
 */
import { Hub, type HubEvent, type KVStore, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const SECRET_TEXT = "postgres://admin:hunter2@10.0.0.7/auth"
const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => key.length >= prefix.length && prefix.every((b, i) => key[i] === b)

/** A hub with `options`, and a raw peer that says hello and, once welcomed, subscribes. */
async function attempt(options: Partial<ConstructorParameters<typeof Hub>[0]>) {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), ...options })
  net.listen(hub)
  const heard: Array<ServerMessage | { closed: string; reason: string }> = []
  const conn = net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 4 }, clientId: "client-0001", secret: "a-secret-of-enough-characters", machines: [], credentials: "token" }),
    onMessage: (m) => {
      heard.push(m)
      if (m.type === "welcome") conn.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    },
    onClose: (i) => heard.push({ closed: i.code, reason: i.reason }),
  })
  await rt.run({ forMs: 100 })
  return { heard, events, told: JSON.stringify(heard), reported: JSON.stringify(events) }
}

test("an authenticate hook that throws: the peer is told an internal error without the hook's text; the operator gets it", async () => {
  const r = await attempt({ authenticate: () => { throw new Error(`connect ${SECRET_TEXT} ECONNREFUSED`) } })
  expect(r.heard).toContainEqual(expect.objectContaining({ type: "error", code: "protocol-error", message: expect.stringMatching(/^Internal error on the hub/) }))
  expect(r.heard).toContainEqual(expect.objectContaining({ closed: "protocol-error" }))
  expect(r.told).not.toContain("hunter2")
  expect(r.reported).toContain(SECRET_TEXT)
})

test("an authorize hook that throws at a subscribe: the same", async () => {
  const r = await attempt({ authenticate: () => ({ id: "ann" }), authorize: () => { throw new Error(SECRET_TEXT) } })
  expect(r.heard.some((m) => "type" in m && m.type === "welcome")).toBe(true)
  expect(r.heard).toContainEqual(expect.objectContaining({ closed: "protocol-error" }))
  expect(r.told).not.toContain("hunter2")
  expect(r.events).toContainEqual({ type: "protocol-error", message: `Internal error: ${SECRET_TEXT}` })
})

test("authorize allows with true only: a truthy value that is not true denies", async () => {
  for (const answer of ["no", { allowed: false }, 1]) {
    const r = await attempt({ authenticate: () => ({ id: "ann" }), authorize: (() => answer) as never })
    expect([answer, r.heard.find((m) => "type" in m && m.type === "error")]).toEqual([answer, expect.objectContaining({ code: "unauthorized", docId: "d" })])
    expect(r.heard.some((m) => "type" in m && (m.type === "snapshot-begin" || m.type === "synced"))).toBe(false)
  }
  const allowed = await attempt({ authenticate: () => ({ id: "ann" }), authorize: () => true })
  expect(allowed.heard.some((m) => "type" in m && m.type === "synced")).toBe(true)
})

test("the hub's disk failing while it records a client: closed storage-failed, the disk's text only in onEvent", async () => {
  const identityPrefix = new Uint8Array([0x69])
  let failNext = true
  const storage = new MemoryStorage({ failWrite: (ops) => ops.some((op) => startsWith(op.key, identityPrefix)) && failNext && !(failNext = false) })
  const r = await attempt({ storage })
  const closed = r.heard.find((m): m is { closed: string; reason: string } => "closed" in m)
  expect(closed).toEqual({ closed: "storage-failed", reason: "The hub's storage failed; reconnect and try again." })
  expect(r.events.filter((e) => e.type === "storage-failed")).toHaveLength(1)
  expect(r.events.some((e) => e.type === "protocol-error")).toBe(false)
})

// From a review: three more paths sent the storage's own text (a document's load, a client's
// records, a catch-up).
test("a document load that fails on the hub's storage: the peer is not sent the storage's error text", async () => {
  const rt = new VirtualRuntime(1)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const inner = new MemoryStorage()
  let failing = false
  // A store of the app's own (say over Postgres) whose driver error names its connection string.
  const storage: KVStore = {
    get: (k) => (failing ? Promise.reject(new Error(`connect ECONNREFUSED ${SECRET_TEXT}`)) : inner.get(k)),
    batch: (ops, o) => inner.batch(ops, o),
    range: (o) => (failing ? Promise.reject(new Error(`connect ECONNREFUSED ${SECRET_TEXT}`)) : inner.range(o)),
    close: () => inner.close(),
  }
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, onEvent: (e) => events.push(e) })
  net.listen(hub)
  const heard: Array<ServerMessage | { closed: string; reason: string }> = []
  const conn = net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 4 }, clientId: "client-0001", secret: "a-secret-of-enough-characters", machines: [] }),
    onMessage: (m) => {
      heard.push(m)
      if (m.type === "welcome") {
        failing = true
        conn.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
      }
    },
    onClose: (i) => heard.push({ closed: i.code, reason: i.reason }),
  })
  await rt.run({ forMs: 200 })
  expect(heard.some((m) => "type" in m && m.type === "welcome")).toBe(true)
  expect(events.map((e) => ("error" in e ? String((e.error as Error)?.message ?? e.error) : JSON.stringify(e))).join(" ")).toContain("hunter2")
  expect(JSON.stringify(heard)).not.toContain("hunter2")
  await hub.close()
})

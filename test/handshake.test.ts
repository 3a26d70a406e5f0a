/**
 * Handshake and negotiation: protocol ranges, machine schema codes, auth, and what a refused
 * client does (keeps its data, does not hot-loop).
 */
import { secretFor } from "./support/secrets.js"
import { Schema } from "effect"
import { CanonClient, Hub, defineMachine, type Machine, type ClientMessage, type Connection, type Hello, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const setup = (hubOptions: Partial<ConstructorParameters<typeof Hub>[0]> = {}) => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, ...hubOptions })
  net.listen(hub)
  return { rt, net, hub }
}

/** Opens a raw connection, sends a hello, collects what the hub says until it closes. */
const rawHello = async (env: ReturnType<typeof setup>, hello: Partial<Hello>) => {
  const got: ServerMessage[] = []
  let closed: string | undefined
  const conn: Connection<ClientMessage> = env.net.transport("raw").connect({
    onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "c1", secret: secretFor("c1"), machines: [], ...hello }),
    onMessage: (m) => got.push(m),
    onClose: (i) => { closed = i.code },
  })
  await env.rt.run({ forMs: 100 })
  return { got, closed, conn }
}

const info = (m: Machine<any, any>) => ({ name: m.name, version: m.version, fingerprint: m.fingerprint })

test("a peer offering protocol 1..5 gets the highest both speak, 3", async () => {
  const env = setup()
  const { got, closed } = await rawHello(env, { protocol: { min: 1, max: 5 } })
  expect(got[0]).toEqual({ type: "welcome", protocol: 4, clientId: "c1" })
  expect(closed).toBeUndefined()
})

test("a peer offering only 1 gets 1 (a v2 hub serves v1 clients)", async () => {
  const env = setup()
  const { got, closed } = await rawHello(env, { protocol: { min: 1, max: 1 } })
  expect(got[0]).toEqual({ type: "welcome", protocol: 1, clientId: "c1" })
  expect(closed).toBeUndefined()
})

test("a peer offering only 5..6 is refused with protocol-unsupported and the hub's range", async () => {
  const env = setup()
  const { got, closed } = await rawHello(env, { protocol: { min: 5, max: 6 } })
  expect(got[0]).toMatchObject({ type: "refused", code: "protocol-unsupported", protocol: { min: 1, max: 4 } })
  expect((got[0] as { message: string }).message).toMatch(/speaks protocol 1\.\.4/)
  expect(closed).toBe("protocol-unsupported")
})

const TodoV2 = defineMachine({ ...Todo, version: 2 })
const TodoChanged = defineMachine({
  ...Todo,
  commands: { ...Todo.commands, add: { args: Schema.Struct({ id: Schema.String, title: Schema.String, due: Schema.Number }), apply: Todo.commands.add.apply as never } },
})

test.each([
  ["machine-unknown", { name: "chess", version: 1, fingerprint: "x" }],
  ["schema-too-old", { ...info(Todo), version: 0 }],
  ["schema-too-new", info(TodoV2)],
  ["schema-mismatch", info(TodoChanged)],
])("machine check refuses with %s", async (code, machine) => {
  const env = setup()
  const { got, closed } = await rawHello(env, { machines: [machine] })
  expect(got[0]).toMatchObject({ type: "refused", code, machine: machine.name })
  expect((got[0] as { message: string }).message.length).toBeGreaterThan(20)
  expect(closed).toBe(code)
})

test("fingerprints see encodings and recursion, not descriptions", () => {
  const one = (args: Schema.Codec<any, any>) => defineMachine({ name: "m", version: 1, initial: () => ({}), commands: { c: { args, apply: () => {} } } }).fingerprint
  expect(one(Schema.Struct({ n: Schema.NumberFromString }))).not.toBe(one(Schema.Struct({ n: Schema.String })))
  expect(one(Schema.Struct({ n: Schema.String.annotate({ description: "a name" }) }))).toBe(one(Schema.Struct({ n: Schema.String })))
  expect(one(Schema.Struct({ n: Schema.optional(Schema.String) }))).not.toBe(one(Schema.Struct({ n: Schema.String })))
  interface Tree { readonly children: ReadonlyArray<Tree> }
  const Tree: Schema.Codec<Tree> = Schema.Struct({ children: Schema.Array(Schema.suspend((): Schema.Codec<Tree> => Tree)) })
  expect(one(Tree)).toMatch(/^[0-9a-f]{16}$/)
  expect(one(Tree)).not.toBe(one(Schema.Struct({ children: Schema.Array(Schema.String) })))
})

test("the same machine definition has a stable fingerprint; a schema change alters it", () => {
  expect(defineMachine({ ...Todo }).fingerprint).toBe(Todo.fingerprint)
  expect(TodoChanged.fingerprint).not.toBe(Todo.fingerprint)
  expect(TodoV2.fingerprint).not.toBe(Todo.fingerprint)
})

test("authenticate refuses with unauthorized and the hook's sentence", async () => {
  const env = setup({ authenticate: (hello) => (hello.credentials === "good" ? { id: "alice" } : { refuse: "Bad token; sign in again." }) })
  const bad = await rawHello(env, { credentials: "nope" })
  expect(bad.got[0]).toMatchObject({ type: "refused", code: "unauthorized", message: "Bad token; sign in again." })
  const good = await rawHello(env, { credentials: "good" })
  expect(good.got[0]).toMatchObject({ type: "welcome" })
})

test("a clientId is bound to the principal that first used it", async () => {
  const env = setup({ authenticate: (hello) => ({ id: hello.credentials ?? "?" }) })
  const alice = await rawHello(env, { credentials: "alice", clientId: "shared" })
  expect(alice.got[0]).toMatchObject({ type: "welcome" })
  const mallory = await rawHello(env, { credentials: "mallory", clientId: "shared" })
  expect(mallory.got[0]).toMatchObject({ type: "refused", code: "unauthorized" })
})

test("authorize: read refused on subscribe, write refused as a rejection that consumes the clientSeq", async () => {
  const env = setup({ authorize: (_p, docId, access) => docId !== "secret" && (access === "read" || docId !== "readonly") })
  const { got, conn } = await rawHello(env, {})
  conn.send({ type: "subscribe", docId: "secret", machine: "todo", version: 1, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  conn.send({ type: "subscribe", docId: "readonly", machine: "todo", version: 1, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  conn.send({ type: "submit", docId: "readonly", commands: [{ clientSeq: 1, name: "add", args: { id: "a", title: "x" } }], ackedClientSeq: 0 })
  await env.rt.run({ forMs: 100 })
  expect(got).toContainEqual(expect.objectContaining({ type: "error", code: "unauthorized", docId: "secret" }))
  expect(got).toContainEqual({ type: "results", docId: "readonly", outcomes: [{ clientSeq: 1, rejection: { code: "unauthorized", message: expect.stringMatching(/may not change/) } }] })
  const doc = await env.hub.doc("readonly", Todo)
  expect(doc.headSeq).toBe(0)
})

test("a client refused for an old schema keeps its data and outbox and waits for the app", async () => {
  const env = setup({ machines: [TodoV2] })
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [Todo], autoConnect: false })
  const statuses: string[] = []
  client.onStatus((s) => statuses.push(s))
  const doc = await client.open(Todo, "list")
  client.connect()
  doc.submit("add", { id: "a", title: "offline edit" })
  await env.rt.run({ forMs: 60_000 })
  expect(client.status).toBe("refused")
  expect(client.refusal?.code).toBe("schema-too-old")
  expect(doc.state.items["a"]?.title).toBe("offline edit")
  expect(doc.pendingCount).toBe(1)
  // One attempt, no hot loop: a minute later it still tried only once.
  expect(statuses.filter((s) => s === "connecting").length).toBe(1)
})

test("a client refused for a newer schema than the hub retries with backoff, not in a hot loop", async () => {
  const env = setup()
  const client = await CanonClient.open({ transport: env.net.transport("c"), runtime: env.rt, machines: [TodoV2], backoff: { baseMs: 100, maxMs: 5_000 } })
  let attempts = 0
  client.onStatus((s) => { if (s === "connecting") attempts++ })
  await env.rt.run({ forMs: 60_000 })
  expect(client.refusal?.code).toBe("schema-too-new")
  expect(attempts).toBeGreaterThan(3)
  expect(attempts).toBeLessThan(60)
})

test("the handshake timer ends with the handshake: a proved hello or a hub shutdown leaves no timer pending", async () => {
  // A pending 10 s timer per connection kept Node processes (and jest) alive after close.
  const rt = new VirtualRuntime(5)
  const live = new Set<object>()
  const counting = {
    now: () => rt.now(),
    random: () => rt.random(),
    setTimer: (ms: number, fn: () => void) => {
      const key = {}
      live.add(key)
      const t = rt.setTimer(ms, () => { live.delete(key); fn() })
      return { cancel: () => { live.delete(key); t.cancel() } }
    },
  }
  const net = new MemoryNetwork(rt, { latency: () => 2 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: counting, checkpointEvery: Infinity })
  net.listen(hub)
  const env = { rt, net, hub }
  const { got } = await rawHello(env, {})
  expect(got[0]).toMatchObject({ type: "welcome" })
  expect(live.size).toBe(0)
  // A connection that never says hello, then the hub shuts down.
  env.net.transport("silent").connect({ onOpen: () => {}, onMessage: () => {}, onClose: () => {} })
  await rt.run({ forMs: 50 })
  expect(live.size).toBe(1)
  await hub.close()
  await rt.run({ forMs: 50 })
  expect(live.size).toBe(0)
})

/**
 * What an app hands a document enters as plain data or not at all (core/replica/doc.ts). Before:
 * arguments with a getter or proxy that throws made `submit` throw (the Effect `submit` died
 * with "Result adapter can only return schema issues"), and a presence that was not plain data
 * (a function, a cycle, a throwing getter) threw later, inside a send in a microtask: an
 * uncaught exception that ends a Node process. And a command whose schema passes a value
 * through (Schema.Unknown) kept the app's own object: an app changing it after submit changed
 * what was stored and sent later (others saw the new value, the submitter the old), and one
 * made cyclic after submit failed every later write of the document.
 */
import { Cause, Effect, Exit } from "effect"
import * as Schema from "effect/Schema"
import { CanonClient, CanonError, CommandRejected, Hub, defineMachine } from "../core/index.js"
import { submit } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const setup = async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  net.listen(new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt }))
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt })
    return { client, doc: await client.open(Todo, "d") }
  }
  return { rt, open }
}

const cycle = () => {
  const o: Record<string, unknown> = { id: "c", title: "t" }
  o.self = o
  return o
}

const hostile = (): Record<string, unknown> => ({
  "a getter that throws": Object.defineProperty({ title: "x" }, "id", { get() { throw new Error("getter") }, enumerable: true }),
  "a proxy that throws": new Proxy({}, { get() { throw new Error("proxy get") }, ownKeys() { throw new Error("proxy keys") }, has() { throw new Error("has") }, getOwnPropertyDescriptor() { throw new Error("gopd") } }),
  "a cycle": cycle(),
  "a function": { id: "f", title: () => "x" },
  "a bigint": { id: 1n, title: "x" },
})

test("submit refuses arguments that are not plain data with invalid-args, and never throws or dies", async () => {
  const { rt, open } = await setup()
  const { client, doc } = await open("a")
  // (A cycle outside the declared fields is dropped by the schema's encoder, and fine.)
  for (const [what, args] of Object.entries(hostile()).filter(([w]) => w !== "a cycle")) {
    let receipt: Promise<unknown> & { clientSeq: number }
    try {
      receipt = doc.submit("add", args as never)
    } catch (e) {
      throw new Error(`submit threw for ${what}: ${String(e)}`)
    }
    expect([what, receipt.clientSeq]).toEqual([what, -1])
    const e = await receipt.then(() => undefined, (x: unknown) => x)
    expect([what, e instanceof CommandRejected ? e.code : String(e)]).toEqual([what, "invalid-args"])
    const exit = await Effect.runPromiseExit(submit(doc, "add", args as never))
    expect([what, Exit.isFailure(exit) && !Cause.hasDies(exit.cause)]).toEqual([what, true])
  }
  // The document still works: nothing of those is pending, a good command goes through.
  expect(doc.pendingCount).toBe(0)
  const ok = doc.submit("add", { id: "ok", title: "fine" })
  await rt.run({ forMs: 100 })
  await expect(ok).resolves.toMatchObject({ seq: 1 })
  await client.close()
})

test("setPresence takes plain data only: anything else throws state-unencodable at the call, the presence before it stays, and nothing throws later", async () => {
  const { rt, open } = await setup()
  const a = await open("a")
  const b = await open("b")
  a.doc.setPresence({ name: "Ada" })
  await rt.run({ forMs: 100 })
  for (const [what, state] of Object.entries(hostile())) {
    let thrown: unknown
    try {
      a.doc.setPresence(state)
    } catch (e) {
      thrown = e
    }
    expect([what, thrown instanceof CanonError ? thrown.code : String(thrown)]).toEqual([what, "state-unencodable"])
    await rt.run({ forMs: 100 }) // a throw inside the send would fail this test as an uncaught error
  }
  expect(b.doc.presence.get(a.client.clientId)).toEqual({ name: "Ada" })
  // A copy is sent: the app changing its object afterwards (into something unencodable) changes nothing.
  const mine: Record<string, unknown> = { name: "Ada", editing: "card-1" }
  a.doc.setPresence(mine)
  mine.later = () => 1
  await rt.run({ forMs: 100 })
  expect(b.doc.presence.get(a.client.clientId)).toEqual({ name: "Ada", editing: "card-1" })
  await a.client.close()
  await b.client.close()
})

const Bag = defineMachine({
  name: "bag",
  version: 1,
  initial: () => ({ v: null as unknown }),
  commands: { put: { args: Schema.Struct({ v: Schema.Unknown }), apply: (s, a) => { s.v = a.v } } },
})

test("submit takes a copy: the app changing its object afterwards (into other data, or a cycle) changes nothing sent, stored or applied", async () => {
  const rt = new VirtualRuntime(4)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  net.listen(new Hub({ machines: [Bag], storage: new MemoryStorage(), runtime: rt }))
  const open = async (name: string) => {
    const client = await CanonClient.open({ transport: net.transport(name), runtime: rt, storage: new MemoryStorage() })
    return { client, doc: await client.open(Bag, "d") }
  }
  const a = await open("a")
  const b = await open("b")
  await rt.run({ forMs: 50 })
  const obj: Record<string, unknown> = { x: 1 }
  const first = a.doc.submit("put", { v: obj })
  obj.x = 2 // the app reuses its object, as apps do
  await rt.run({ forMs: 500 })
  expect((await first).seq).toBe(1)
  expect({ a: a.doc.state.v, b: b.doc.state.v }).toEqual({ a: { x: 1 }, b: { x: 1 } })

  const node: Record<string, unknown> = { name: "n" }
  const second = a.doc.submit("put", { v: node })
  node.self = node // made cyclic after submit returned
  const later = a.doc.submit("put", { v: "plain" })
  await rt.run({ forMs: 500 })
  expect([(await second).seq, (await later).seq]).toEqual([2, 3])
  expect(a.doc.pending).toEqual([])
  expect(b.doc.state.v).toBe("plain")
  await a.client.close()
  await b.client.close()
})

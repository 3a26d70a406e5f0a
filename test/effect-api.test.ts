import { Context, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { CanonClient, type Hub } from "../core/index.js"
import { CanonClientService, CanonError, CommandRejected, HubService, changes, events, open, status, submit } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

/** A network, and a hub layer that attaches the hub to it (and closes it on release). */
const setup = (seed = 1) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 5 })
  const hubs: Hub[] = []
  const hubLayer = Layer.effectDiscard(HubService.use((hub) => Effect.sync(() => {
    hubs.push(hub)
    net.listen(hub)
  }))).pipe(Layer.provideMerge(HubService.layer({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })))
  const clientLayer = (name: string) => CanonClientService.layer({ transport: net.transport(name), runtime: rt })
  return { rt, net, hubs, hubLayer, clientLayer }
}

/** Runs an Effect while advancing virtual time (the virtual runtime only moves inside rt.run). */
const drive = async <A, E>(rt: VirtualRuntime, effect: Effect.Effect<A, E>, maxMs = 60_000): Promise<A> => {
  let done = false
  const p = Effect.runPromise(effect).finally(() => {
    done = true
  })
  p.catch(() => {})
  for (let t = 0; !done && t < maxMs; t += 10) await rt.run({ forMs: 10 })
  if (!done) throw new Error(`Effect did not finish within ${maxMs} virtual ms.`)
  return p
}

/** Lets microtasks and Effect fibers run until `cond` holds. */
const until = async (cond: () => boolean, rounds = 1000): Promise<void> => {
  for (let i = 0; i < rounds && !cond(); i++) await new Promise((r) => setImmediate(r))
  if (!cond()) throw new Error("condition never held")
}

/** Counts live listeners of a doc by wrapping its public `on` (which `subscribe` uses too); not "closed", which streams add to end with the doc. */
const countListeners = (doc: { on: (...a: any[]) => () => unknown }) => {
  const counter = { active: 0 }
  const on = doc.on.bind(doc)
  doc.on = (...a: any[]) => {
    if (a[0] === "closed") return on(...a)
    const off = on(...a)
    counter.active++
    let done = false
    return () => {
      if (!done) {
        done = true
        counter.active--
      }
      return off()
    }
  }
  return counter
}

test("open + submit through layers: two clients converge, layers close clients and hub", async () => {
  const { rt, net, hubs, hubLayer, clientLayer } = setup(1)
  const replica = (name: string, item: string) =>
    Effect.gen(function* () {
      const doc = yield* open(Todo, "list")
      const { seq } = yield* submit(doc, "add", { id: item, title: item.toUpperCase() })
      // Wait until both commands are confirmed here.
      yield* changes(doc, { current: true }).pipe(Stream.filter(() => doc.confirmedSeq === 2 && doc.pendingCount === 0), Stream.runHead)
      return { seq, hash: doc.confirmedHash(), items: Object.keys(doc.state.items).sort(), client: yield* CanonClientService }
    }).pipe(Effect.provide(clientLayer(name)))

  const [a, b] = await drive(rt, Effect.all([replica("a", "x"), replica("b", "y")], { concurrency: "unbounded" }).pipe(Effect.provide(hubLayer)))

  expect([a.seq, b.seq].sort()).toEqual([1, 2])
  expect(a.items).toEqual(["x", "y"])
  expect(b.items).toEqual(["x", "y"])
  expect(a.hash).toBe(b.hash)
  // The client layers closed their clients, the hub layer its hub.
  expect(a.client.status).toBe("closed")
  expect(b.client.status).toBe("closed")
  expect(a.client).not.toBe(b.client)
  expect(hubs).toHaveLength(1)
  expect(net.connectionCount).toBe(0)
})

test("a rejected command fails with CommandRejected, caught by catchTag", async () => {
  const { rt, hubLayer, clientLayer } = setup(2)
  const program = Effect.gen(function* () {
    const doc = yield* open(Todo, "list")
    const rejections = yield* Effect.forkChild(events(doc, "rejected").pipe(Stream.take(1), Stream.runCollect))
    const first = yield* submit(doc, "add", { id: "x", title: "one" })
    // Refused by the authority (ctx.reject): typed error channel.
    const dup = yield* submit(doc, "add", { id: "x", title: "two" }).pipe(
      Effect.map(() => "accepted"),
      Effect.catchTag("CommandRejected", (e) => Effect.succeed(`${e.code}|${e.command}|${e.message}`)),
    )
    // Refused locally (schema): same error type, at once.
    const invalid = yield* submit(doc, "add", { id: 1 } as never).pipe(Effect.flip)
    // Names and arguments are checked at compile time (these Effects are never run).
    // @ts-expect-error unknown command
    submit(doc, "nope", {})
    // @ts-expect-error missing "title"
    submit(doc, "add", { id: "z" })
    return { first, dup, invalid, rejected: yield* Fiber.join(rejections), title: doc.state.items["x"]?.title }
  }).pipe(Effect.provide(clientLayer("a")), Effect.provide(hubLayer))

  const r = await drive(rt, program)
  expect(r.first).toEqual({ seq: 1 })
  expect(r.dup).toBe("rejected|add|Item x already exists.")
  expect(r.invalid).toBeInstanceOf(CommandRejected)
  expect(r.invalid._tag).toBe("CommandRejected")
  expect((r.invalid as CommandRejected).code).toBe("invalid-args")
  expect(r.rejected).toEqual([{ clientSeq: 2, command: "add", rejection: { code: "rejected", message: "Item x already exists." } }])
  expect(r.title).toBe("one")

  // Without catchTag, runPromise rejects with the error itself.
  const { rt: rt2, hubLayer: hub2, clientLayer: client2 } = setup(3)
  const failing = Effect.gen(function* () {
    const doc = yield* open(Todo, "list")
    return yield* submit(doc, "toggle", { id: "missing" })
  }).pipe(Effect.provide(client2("a")), Effect.provide(hub2))
  await expect(drive(rt2, failing)).rejects.toMatchObject({ _tag: "CommandRejected", code: "rejected", command: "toggle" })
})

test("changes emits after a submit and unsubscribes when interrupted", async () => {
  const { rt, net, hubLayer } = setup(4)
  const scope = Effect.runSync(Scope.make())
  const hubCtx = await Effect.runPromise(Layer.buildWithScope(hubLayer, scope))
  expect(Context.get(hubCtx, HubService)).toBeDefined()
  // The Promise API and the Effect API mix: a client opened the plain way.
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt })
  const doc = await client.open(Todo, "list")
  const listeners = countListeners(doc)

  const seen: number[] = []
  const fiber = Effect.runFork(Stream.runForEach(changes(doc), (s) => Effect.sync(() => seen.push(s.count))))
  await until(() => listeners.active === 1)
  expect(seen).toEqual([])

  const receipt = Effect.runPromise(submit(doc, "add", { id: "x", title: "milk" }))
  await until(() => seen.length >= 1)
  expect(seen[0]).toBe(1) // the optimistic view, before any round trip
  await rt.run({ forMs: 100 })
  await expect(receipt).resolves.toEqual({ seq: 1 })

  await Effect.runPromise(Fiber.interrupt(fiber))
  expect(listeners.active).toBe(0)
  const before = seen.length
  doc.submit("add", { id: "y", title: "eggs" })
  await rt.run({ forMs: 100 })
  expect(seen.length).toBe(before)

  // A finite stream also unsubscribes when it ends.
  const two = Effect.runPromise(changes(doc).pipe(Stream.map((s) => s.count), Stream.take(2), Stream.runCollect))
  await until(() => listeners.active === 1)
  doc.submit("add", { id: "z", title: "jam" })
  await until(() => listeners.active === 1) // still waiting for the second change
  doc.submit("remove", { id: "z" })
  await rt.run({ forMs: 100 })
  expect((await two).length).toBe(2)
  expect(listeners.active).toBe(0)

  await client.close()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  expect(net.connectionCount).toBe(0)
})

test("the client layer closes the client when its scope closes", async () => {
  const { rt, hubLayer, clientLayer } = setup(5)
  const hubScope = Effect.runSync(Scope.make())
  await Effect.runPromise(Layer.buildWithScope(hubLayer, hubScope))

  const scope = Effect.runSync(Scope.make())
  const ctx = await Effect.runPromise(Layer.buildWithScope(clientLayer("a"), scope))
  const client = Context.get(ctx, CanonClientService)
  const statuses = Effect.runPromise(Stream.runCollect(status(client)))
  await rt.run({ forMs: 100 })
  expect(client.status).toBe("online")

  const doc = await drive(rt, open(Todo, "list").pipe(Effect.provide(ctx)))
  await drive(rt, submit(doc, "add", { id: "x", title: "milk" }))
  // Opening again through the service gives the same document.
  expect(await Effect.runPromise(open(Todo, "list").pipe(Effect.provide(ctx)))).toBe(doc)

  await Effect.runPromise(Scope.close(scope, Exit.void))
  expect(client.status).toBe("closed")
  // The status stream began with the current status and ended after "closed".
  expect(await statuses).toEqual(["connecting", "online", "offline", "closed"])

  // A closed client or document is a CanonError in the error channel.
  const reopened = await Effect.runPromise(open(Todo, "other").pipe(Effect.provide(ctx), Effect.flip))
  expect(reopened).toBeInstanceOf(CanonError)
  expect(reopened.code).toBe("closed")
  const code = await Effect.runPromise(submit(doc, "add", { id: "y", title: "eggs" }).pipe(
    Effect.map(() => "accepted"),
    Effect.catchTag("CanonError", (e) => Effect.succeed(e.code)),
  ))
  expect(code).toBe("closed")

  await Effect.runPromise(Scope.close(hubScope, Exit.void))
})

test("a client whose storage fails to open fails the layer with a CanonError", async () => {
  const rt = new VirtualRuntime(6)
  const net = new MemoryNetwork(rt)
  const storage = new MemoryStorage()
  await storage.close()
  const program = CanonClientService.use((c) => Effect.succeed(c.clientId)).pipe(
    Effect.provide(CanonClientService.layer({ transport: net.transport("a"), runtime: rt, storage })),
    Effect.flip,
  )
  const e = await Effect.runPromise(program)
  expect(e).toBeInstanceOf(CanonError)
  expect(e.code).toBe("closed")
})

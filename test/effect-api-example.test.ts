/**
 * The @example of core/effect/index.ts, as printed (Todo, transport and render filled in):
 * `render` must see the item it adds. Effect.forkChild starts the child fiber later, so
 * `changes(doc)` alone subscribed after `submit` had applied the command locally and
 * notified, and the confirmation that follows changes nothing: the example rendered nothing
 * until `current: true` (the view as it is when the stream starts) was added.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Hub } from "../core/index.js"
import { CanonClientService, changes, open, submit } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { Todo } from "./support/machines.js"

test("the index.ts example renders the item it adds", async () => {
  const net = new MemoryNetwork(systemRuntime)
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
  net.listen(hub)
  const transport = net.transport("a")
  const rendered: Array<ReadonlyArray<string>> = []
  const render = (s: { items: Record<string, unknown> }) => rendered.push(Object.keys(s.items))
  let result: unknown

  // ---- the example, as printed ----
  const program = Effect.gen(function* () {
    const doc = yield* open(Todo, "groceries")
    // `current: true` renders the view as it is too: the stream subscribes when its fiber starts, later.
    yield* Effect.forkChild(Stream.runForEach(changes(doc, { current: true }), (s) => Effect.sync(() => render(s))))
    const { seq } = yield* submit(doc, "add", { id: "t1", title: "Milk" }).pipe(
      Effect.catchTag("CommandRejected", (e) => Effect.succeed({ seq: -1, why: e.message })),
    )
    result = seq
  })

  await Effect.runPromise(program.pipe(Effect.provide(CanonClientService.layer({ transport, runtime: systemRuntime }))))
  // ---- end ----

  expect(result).toBe(1)
  // The view rendered last shows the item the program added (today: render was never called).
  expect(rendered.at(-1)).toEqual(["t1"])
  await hub.close()
})

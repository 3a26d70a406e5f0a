/**
 * CanonClientService.make's release is `Effect.promise(() => client.close())`
 * (core/effect/services.ts): when close rejects (here a transport whose connection throws on
 * close; CanonClient.#close still lets go of the storage and rethrows), the rejection becomes
 * a defect of the scope's close. A program that finished with a value then exits with a Die
 * instead: its result is lost, and neither catchTag nor catch (the typed channel) can see
 * or handle the failure. The client is closed and the claim released either way, so a
 * failed close should be reported (logged), not replace the program's outcome.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { CanonClient, Hub } from "../core/index.js"
import type { ClientTransport } from "../core/index.js"
import { CanonClientService } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

test("a client whose close fails does not turn the program's success into a defect", async () => {
  const rt = new VirtualRuntime(61)
  const net = new MemoryNetwork(rt, { latency: () => 5 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const inner = net.transport("a")
  const transport: ClientTransport = {
    connect: (listener) => {
      const conn = inner.connect(listener)
      return Object.assign(Object.create(conn), {
        send: conn.send.bind(conn),
        close: () => { throw new Error("socket already torn down") },
      })
    },
  }
  const storage = new MemoryStorage()
  const program = CanonClientService.use((client) => Effect.succeed(client.clientId)).pipe(
    Effect.provide(CanonClientService.layer({ transport, runtime: rt, storage })),
  )
  let done = false
  const p = Effect.runPromiseExit(program).finally(() => (done = true))
  for (let i = 0; i < 100 && !done; i++) await rt.run({ forMs: 10 })
  const exit = await p

  // The storage was let go regardless (a new client may open on it).
  const again = await CanonClient.open({ transport: net.transport("b"), runtime: rt, storage, autoConnect: false })
  await again.close()
  await hub.close()

  if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toBe("") // today: a Die "socket already torn down"
  expect(Exit.isSuccess(exit)).toBe(true)
})

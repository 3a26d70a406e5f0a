/**
 * A hub that refuses the client for good ("unauthorized" here) rejects every waiting receipt
 * with CanonError("refused") (Doc.refused). The Effect API's `submit` promises CanonError in
 * its typed error channel, but turns that rejection into a defect (Effect.die).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { CanonClient, Hub } from "../core/index.js"
import { CanonError, submit } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

test("a receipt rejected because the hub refused the client is a typed CanonError, not a defect", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 5 })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, authenticate: () => ({ refuse: "Bad token." }) })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt })
  const doc = await client.open(Todo, "list")

  const exitP = Effect.runPromise(Effect.exit(submit(doc, "add", { id: "x", title: "milk" })))
  await rt.run({ forMs: 60_000 })
  expect(client.status).toBe("refused")
  const exit = await exitP

  expect(Exit.isFailure(exit)).toBe(true)
  if (Exit.isFailure(exit)) {
    // Today: Cause is a Die holding the CanonError; catchTag("CanonError") cannot see it.
    expect(Cause.hasDies(exit.cause)).toBe(false)
    const err = Cause.findErrorOption(exit.cause)
    expect(err._tag).toBe("Some")
    if (err._tag === "Some") {
      expect(err.value).toBeInstanceOf(CanonError)
      expect((err.value as CanonError).code).toBe("refused")
    }
  }

  // And so catchTag("CanonError") recovers it.
  const code = await Effect.runPromise(submit(doc, "add", { id: "y", title: "eggs" }).pipe(
    Effect.map(() => "accepted"),
    Effect.catchTag("CanonError", (e) => Effect.succeed(e.code)),
    Effect.catchDefect(() => Effect.succeed("defect")),
  ))
  expect(code).toBe("refused")
  await client.close()
  await hub.close()
})

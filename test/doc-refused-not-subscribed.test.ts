/**
 * A document whose subscribe the hub refused (a machine it does not serve) is told that
 * refusal once. Submits the client sent before the refusal arrived were answered
 * `not-subscribed`, which the app heard as a second error ("Subscribe to "x" before
 * "submit"."): it reads like a mistake in the app's code (a newcomer following the README).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const Other = defineMachine({
  name: "other", version: 1, initial: () => ({ n: 0 }),
  commands: { bump: { args: Schema.Struct({}), apply: (s: { n: number }) => void s.n++ } },
})

test("a refused subscribe is the one error the app hears, whatever it submitted meanwhile", async () => {
  const rt = new VirtualRuntime(2)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("c"), runtime: rt, clientId: "c", storage: new MemoryStorage() })
  const doc = await client.open(Other, "x")
  const errors: string[] = []
  doc.on("error", (e) => errors.push(e.code))
  const outcomes: string[] = []
  for (let i = 0; i < 3; i++) doc.submit("bump", {}).then(() => outcomes.push("ok"), (e) => outcomes.push(e.code))
  for (let t = 0; t < 1000; t += 10) await rt.run({ forMs: 10 })
  expect({ errors, outcomes }).toEqual({ errors: ["machine-unknown"], outcomes: ["refused", "refused", "refused"] })
  expect(doc.pendingCount).toBe(3)
  await client.close()
  await hub.close()
})

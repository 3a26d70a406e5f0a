/**
 * `submit`'s doc comment: fails "with a CanonError ("closed") when the document is closed".
 * That held only for a doc already closed when the Effect ran. A command waiting for its
 * confirmation when the doc (or its client, or the client layer's scope) closed never
 * settled: Doc.close (core/replica/doc.ts) left its receipts pending, and a caller awaiting
 * one (a Promise or an Effect) waited forever. Now they reject with CanonError "closed", and
 * the command stays in the outbox.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { CanonClient } from "../core/index.js"
import { CanonError, submit } from "../core/effect/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const until = async (cond: () => boolean, rounds = 2000): Promise<boolean> => {
  for (let i = 0; i < rounds && !cond(); i++) await new Promise((r) => setImmediate(r))
  return cond()
}

const closedCode = (exit: Exit.Exit<unknown, unknown> | undefined): string | undefined => {
  if (exit === undefined || !Exit.isFailure(exit)) return undefined
  const e = Cause.findErrorOption(exit.cause)
  return e._tag === "Some" && e.value instanceof CanonError ? e.value.code : "not a CanonError"
}

test("a submit waiting for confirmation fails with CanonError closed when its client closes", async () => {
  const rt = new VirtualRuntime(21)
  const net = new MemoryNetwork(rt) // no hub: the command waits
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, autoConnect: false })
  const doc = await client.open(Todo, "list")
  let exit: Exit.Exit<unknown, unknown> | undefined
  const fiber = Effect.runFork(submit(doc, "add", { id: "x", title: "milk" }))
  fiber.addObserver((e) => (exit = e))
  await until(() => doc.pendingCount === 1)

  await client.close()
  expect(doc.isClosed).toBe(true)
  await until(() => exit !== undefined)
  const settled = exit !== undefined
  if (!settled) await Effect.runPromise(Fiber.interrupt(fiber))
  expect(settled).toBe(true) // today: the fiber is still suspended
  expect(closedCode(exit)).toBe("closed")
})

test("a submit waiting for confirmation fails with CanonError closed when its doc closes", async () => {
  const rt = new VirtualRuntime(22)
  const net = new MemoryNetwork(rt)
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, autoConnect: false })
  const doc = await client.open(Todo, "list")
  let exit: Exit.Exit<unknown, unknown> | undefined
  const fiber = Effect.runFork(submit(doc, "add", { id: "x", title: "milk" }))
  fiber.addObserver((e) => (exit = e))
  await until(() => doc.pendingCount === 1)

  await doc.close()
  await until(() => exit !== undefined)
  const settled = exit !== undefined
  if (!settled) await Effect.runPromise(Fiber.interrupt(fiber))
  expect(settled).toBe(true)
  expect(closedCode(exit)).toBe("closed")
  await client.close()
})

test("Promise API: a receipt waiting when its document closes rejects with CanonError closed; the command stays in the outbox", async () => {
  const rt = new VirtualRuntime(22)
  const net = new MemoryNetwork(rt)
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, autoConnect: false, storage })
  const doc = await client.open(Todo, "list")
  const receipt = doc.submit("add", { id: "x", title: "milk" })
  await receipt.persisted
  await client.close()
  await expect(receipt).rejects.toMatchObject({ code: "closed" })
  const again = await CanonClient.open({ transport: net.transport("a"), runtime: rt, autoConnect: false, storage })
  expect((await again.open(Todo, "list")).pending.map((p) => p.name)).toEqual(["add"])
  await again.close()
})

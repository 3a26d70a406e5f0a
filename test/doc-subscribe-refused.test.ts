/**
 * A document the hub will not serve on a connection (its subscribe refused: the client may not
 * read it, one past maxDocsPerConnection, a newer version of a document held back at its
 * version...). Before: the refusal was an `error` event and the receipts of commands made on it
 * waited forever (an `await doc.submit(...)` hung). Now they settle with `refused` naming the
 * hub's code and sentence, as for a refused client, and the commands stay in the outbox.
 */
import { CanonClient, CanonError, Hub } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { Todo } from "./support/machines.js"

const told = (receipt: Promise<unknown>) => receipt.then(() => "confirmed", (e: unknown) => (e instanceof CanonError ? `${e.code}: ${e.message}` : String(e)))

const world = (options: ConstructorParameters<typeof Hub>[0] extends infer O ? Partial<O> : never) => {
  const rt = new VirtualRuntime(9)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  net.listen(new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt, ...options }))
  return { rt, net }
}

test("a document the client may not read: its receipts settle refused (unauthorized), the command stays in the outbox; another document is served", async () => {
  const { rt, net } = world({ authorize: async (_p, docId) => docId !== "secret" })
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt, storage })
  const secret = await client.open(Todo, "secret")
  const open = await client.open(Todo, "open")
  const r = secret.submit("add", { id: "x", title: "X" })
  const fine = open.submit("add", { id: "y", title: "Y" })
  const errors: string[] = []
  secret.on("error", (e) => errors.push(e.code))
  await rt.run({ forMs: 200 })
  expect(await told(r)).toMatch(/^refused: unauthorized: You may not read document "secret"\. The command is kept in the outbox on this device\.$/)
  expect(await told(fine)).toBe("confirmed")
  expect(errors).toContain("unauthorized")
  expect(secret.pending.map((p) => p.name)).toEqual(["add"])
  // A command made after the refusal is told at once.
  expect(await told(secret.submit("add", { id: "z", title: "Z" }))).toMatch(/^refused: unauthorized/)
  await client.close()
})

test("one document past maxDocsPerConnection: refused (too-many-docs), not left waiting", async () => {
  const { rt, net } = world({ limits: { maxDocsPerConnection: 1 } })
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt })
  const first = await client.open(Todo, "one")
  await rt.run({ forMs: 50 })
  const second = await client.open(Todo, "two")
  const r1 = first.submit("add", { id: "a", title: "A" })
  const r2 = second.submit("add", { id: "b", title: "B" })
  await rt.run({ forMs: 200 })
  expect(await told(r1)).toBe("confirmed")
  expect(await told(r2)).toMatch(/^refused: too-many-docs: One connection may follow at most 1 documents/)
  await client.close()
})

test("without a storage, the refusal does not say the command is kept on this device: it is kept in memory only", async () => {
  const { rt, net } = world({ authorize: async (_p, docId) => docId !== "secret" })
  const client = await CanonClient.open({ transport: net.transport("a"), runtime: rt })
  const secret = await client.open(Todo, "secret")
  const r = secret.submit("add", { id: "x", title: "X" })
  await rt.run({ forMs: 200 })
  expect(await told(r)).toMatch(/^refused: unauthorized: You may not read document "secret"\. The command is kept in the outbox in memory only \(no storage\)\.$/)
  await client.close()
})

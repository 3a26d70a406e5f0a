/**
 * The hub records a client's identity (the hash of its secret) at its first hello, for good.
 * A loop of hellos with fresh clientIds from one address made one durable record each
 * (13,635 in 10 s from one address, measured against a hub process: some 13 GB a day that
 * nothing collects). New identities are now counted per address (per principal with an
 * authenticate hook), `newClientsPerSecond` after a burst of `newClientBurst`; a hello past it
 * is answered `rate-limited` and closed (the client retries after its backoff), and clients
 * the hub knows are never counted.
 */
import { Hub, type ClientMessage, type ServerMessage } from "../core/index.js"
import type { Connection } from "../core/ports/transport.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { AuthorityStore } from "../core/internal.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { RawClient, closeAllRaw, newIdentity, showAnswer } from "./support/hostile-raw.js"

const world = (options: { readonly authenticate?: boolean } = {}) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const storage = new MemoryStorage()
  const hub = new Hub({
    machines: [], storage, runtime: rt, limits: { newClientsPerSecond: 2, newClientBurst: 5 },
    // The principal is the credential itself.
    ...(options.authenticate ? { authenticate: (hello: { credentials?: string }) => ({ id: hello.credentials ?? "nobody" }) } : {}),
  })
  net.listen(hub)
  /** Says hello from `address` as `clientId`; resolves with what the hub answered. */
  const hello = async (address: string, clientId: string, secret: string, credentials?: string): Promise<string> => {
    const got: ServerMessage[] = []
    let closed: string | undefined
    const conn: Connection<ClientMessage> = net.transport(address).connect({
      onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret, ...(credentials !== undefined ? { credentials } : {}) } as ClientMessage),
      onMessage: (m) => got.push(m),
      onClose: (c) => (closed = c.code),
    })
    await rt.run({ forMs: 20 })
    const answer = got.some((m) => m.type === "welcome") ? "welcome" : got.find((m) => m.type === "error" || m.type === "refused")?.code ?? `closed ${closed}`
    conn.close()
    await rt.run({ forMs: 5 })
    return answer
  }
  const identities = async (ids: ReadonlyArray<string>) => {
    const store = new AuthorityStore(storage)
    let n = 0
    for (const id of ids) if ((await store.identity(id)) !== undefined) n++
    return n
  }
  return { rt, hub, hello, identities }
}

const id = (prefix: string, i: number) => `${prefix}${String(i).padStart(16 - prefix.length, "0")}`

test("fresh clientIds from one address: a burst, then the rate; past it rate-limited, nothing recorded; a known client and another address are not held", async () => {
  const w = world()
  const secrets = new Map<string, string>()
  const fresh = async (i: number) => {
    const clientId = id("a", i)
    secrets.set(clientId, newClientSecret(w.rt))
    return w.hello("attacker", clientId, secrets.get(clientId)!)
  }
  const answers: string[] = []
  for (let i = 0; i < 20; i++) answers.push(await fresh(i))
  // 20 hellos in some 500 ms: the burst of 5 and one more from the refill.
  expect(answers.filter((a) => a === "welcome").length).toBeGreaterThanOrEqual(5)
  expect(answers.filter((a) => a === "welcome").length).toBeLessThanOrEqual(7)
  expect(answers.filter((a) => a !== "welcome").every((a) => a === "rate-limited")).toBe(true)
  const ids = [...secrets.keys()]
  expect(await w.identities(ids)).toBe(answers.filter((a) => a === "welcome").length)
  // A client the hub knows says hello again from the same address: not counted, welcomed.
  expect(await w.hello("attacker", ids[0]!, secrets.get(ids[0]!)!)).toBe("welcome")
  // Another address has its own bucket.
  expect(await w.hello("someone-else", id("b", 1), newClientSecret(w.rt))).toBe("welcome")
  // The rate refills: a second later, a fresh client from the first address gets in.
  await w.rt.run({ forMs: 3_000 })
  expect(await fresh(100)).toBe("welcome")
})

test("with an authenticate hook, new clientIds are counted per principal, whatever the address", async () => {
  const w = world({ authenticate: true })
  const answers: string[] = []
  for (let i = 0; i < 12; i++) answers.push(await w.hello(`addr-${i}`, id("p", i), newClientSecret(w.rt), "mallory"))
  expect(answers.filter((a) => a === "welcome").length).toBeLessThanOrEqual(7)
  expect(answers).toContain("rate-limited")
  expect(await w.hello("addr-0", id("q", 1), newClientSecret(w.rt), "alice")).toBe("welcome")
})

test("over WebSocket, an IPv6 client's fresh identities are counted by its /64: rotating addresses within it starts no new burst", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, limits: { newClientsPerSecond: 0.001, newClientBurst: 5 } })
  // Behind a trusted proxy (the loopback peer), so the test can speak for other addresses.
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], trustProxy: true })
  try {
    const hello = async (address: string) => {
      const c = await RawClient.connect(server.urls()[0]!, { headers: { "X-Forwarded-For": address } })
      const identity = newIdentity()
      const answer = showAnswer(await c.hello(identity.clientId, { secret: identity.secret }))
      await c.close()
      return answer
    }
    const answers: string[] = []
    for (let i = 1; i <= 8; i++) answers.push(await hello(`2001:db8:7:7::${i.toString(16)}`))
    expect(answers.slice(0, 5)).toEqual(Array(5).fill("welcome"))
    expect(answers.slice(5).map((a) => a.split(":")[0])).toEqual(Array(3).fill("error rate-limited"))
    // Another subscriber's /64, and an IPv4 address, have buckets of their own.
    expect(await hello("2001:db8:7:8::1")).toBe("welcome")
    expect(await hello("203.0.113.9")).toBe("welcome")
  } finally {
    await closeAllRaw()
    await server.close()
    await hub.close()
  }
})

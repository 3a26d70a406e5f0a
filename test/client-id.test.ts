/**
 * Self-certifying client ids (core/client-id.ts): the id Canon makes for a new client is
 * derived from its secret, so a hub with no record of it (restored from a backup older than
 * the client's first hello) still refuses whoever says it first with another secret. Before,
 * a reader who had seen the id in a document's entries registered it first and wrote as it,
 * and the real client was locked out of its own id.
 */
import fc from "fast-check"
import { CanonClient, Hub, replicaStorage, type ClientMessage, type ServerMessage } from "../core/index.js"
import type { Connection } from "../core/ports/transport.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { newClientIdentity, newClientSecret, type Runtime } from "../core/ports/runtime.js"
import { SELF_CERTIFYING_ID, clientIdOfDigest, clientIdPreimage } from "../core/client-id.js"
import { sha256 } from "../core/sha256.js"
import { offlineTransport } from "./support/offline.js"

/** A hub on empty storage (a restore from an older backup: no identity recorded) and a hello helper. */
const restoredHub = () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const hello = async (address: string, clientId: string, secret: string): Promise<string> => {
    const got: ServerMessage[] = []
    const conn: Connection<ClientMessage> = net.transport(address).connect({
      onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret } as ClientMessage),
      onMessage: (m) => got.push(m),
      onClose: () => {},
    })
    await rt.run({ forMs: 20 })
    const refusal = got.find((m): m is Extract<ServerMessage, { type: "refused" | "error" }> => m.type === "refused" || m.type === "error")
    conn.close()
    await rt.run({ forMs: 5 })
    return got.some((m) => m.type === "welcome") ? "welcome" : `${refusal?.code}: ${refusal?.message}`
  }
  return { rt, hello }
}

test("a hub with no record of a Canon-made id refuses whoever says it first with another secret, and welcomes its client", async () => {
  const w = restoredHub()
  const victim = await newClientIdentity(w.rt)
  expect(victim.clientId).toMatch(SELF_CERTIFYING_ID)
  // A reader saw the id in a document's entries and connects first, with a secret of its own.
  const impostor = await w.hello("reader", victim.clientId, newClientSecret(w.rt))
  expect(impostor).toMatch(/^unauthorized: Client id c\.[0-9a-v]{16} is made from its client's secret/)
  // The secret's own client is not locked out (nothing was recorded for the impostor).
  expect(await w.hello("victim", victim.clientId, victim.secret)).toBe("welcome")
  // And once recorded, the impostor is refused as before.
  expect(await w.hello("reader", victim.clientId, newClientSecret(w.rt))).toMatch(/^unauthorized:/)
})

test("ids of other forms (an app's own, or made before) are still trusted at first contact", async () => {
  const w = restoredHub()
  expect(await w.hello("a", "my-own-id-0001", newClientSecret(w.rt))).toBe("welcome")
  expect(await w.hello("a", "k3j5h2l4m6n8p0q1", newClientSecret(w.rt))).toBe("welcome")
})

test("an id of the self-certifying form that its secret does not make is refused at first contact (an app should not choose that form)", async () => {
  const w = restoredHub()
  expect(await w.hello("a", "c.0123456789abcdef", newClientSecret(w.rt))).toMatch(/^unauthorized:/)
})

test("property: every secret makes an id of the form, WebCrypto's digest (what browsers and Node use) agrees with the hub's SHA-256, other secrets make other ids", async () => {
  await fc.assert(fc.asyncProperty(fc.string({ minLength: 16, maxLength: 256, unit: "binary" }), fc.string({ minLength: 16, maxLength: 64 }), async (secret, other) => {
    const id = clientIdOfDigest(sha256(clientIdPreimage(secret)))
    expect(id).toMatch(SELF_CERTIFYING_ID)
    expect(clientIdOfDigest(await systemRuntime.digest!(clientIdPreimage(secret)))).toBe(id)
    if (other !== secret) expect(clientIdOfDigest(sha256(clientIdPreimage(other)))).not.toBe(id)
  }), { numRuns: 200 })
})

test("the id takes the digest's first 80 bits, five at a time", () => {
  const digest = new Uint8Array(32)
  digest.set([0xff, 0x00, 0x80, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd])
  // The 80 bits in groups of five, as base-32 digits (computed independently in Python).
  expect(clientIdOfDigest(digest)).toBe("c.vs0800938ljojaud")
})

describe("clients", () => {
  const clients: CanonClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
  })

  test("a new client gets a self-certifying id, with storage or without; stored, it keeps it; an app's own id keeps its form", async () => {
    const storage = replicaStorage(new MemoryStorage())
    const first = await CanonClient.open({ transport: offlineTransport, runtime: systemRuntime, storage, autoConnect: false })
    expect(first.clientId).toMatch(SELF_CERTIFYING_ID)
    const id = first.clientId
    await first.close()
    const again = await CanonClient.open({ transport: offlineTransport, runtime: systemRuntime, storage, autoConnect: false })
    clients.push(again)
    expect(again.clientId).toBe(id)
    const bare = await CanonClient.open({ transport: offlineTransport, runtime: systemRuntime, autoConnect: false })
    clients.push(bare)
    expect(bare.clientId).toMatch(SELF_CERTIFYING_ID)
    const own = await CanonClient.open({ transport: offlineTransport, runtime: systemRuntime, clientId: "device-7", autoConnect: false })
    clients.push(own)
    expect(own.clientId).toBe("device-7")
  })

  test("a runtime that cannot hash (a page without crypto.subtle) makes a random id that still works", async () => {
    const noDigest: Runtime = { now: () => Date.now(), setTimer: systemRuntime.setTimer, random: Math.random, digest: () => Promise.reject(new Error("no subtle")) }
    const c = await CanonClient.open({ transport: offlineTransport, runtime: noDigest, autoConnect: false })
    clients.push(c)
    expect(c.clientId).toMatch(/^[0-9a-z]{16}$/)
  })
})

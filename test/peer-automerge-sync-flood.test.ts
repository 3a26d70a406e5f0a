/**
 * A replica syncing with peers (adapters/peer/automerge-sync.ts) decoded a peer's sync message
 * before `cleanSyncMessage` counted its lists, and takes messages up to 64 MiB: one of millions
 * of empty `have` entries was an object and a Uint8Array per entry before it was refused (the
 * hub's route fell over the same way: test/automerge-server-sync-flood.test.ts). Now it is
 * refused from its bytes (adapters/automerge/admit.ts `admitSyncMessage`), as is a Bloom filter
 * Automerge panics on; the replica keeps syncing with its honest peers.
 *
 * Automerge is wrapped (jest's ESM module mock) to count the `have` entries of what it decodes.
 */
import { jest } from "@jest/globals"
import { probeLink } from "./support/probe-link.js"
import { haveFlood } from "./support/automerge-sync-bytes.js"

const A = await import("@automerge/automerge")
/** `have` entries of every sync message decoded. */
const decodedHaves: number[] = []
jest.unstable_mockModule("@automerge/automerge", () => ({
  ...A,
  decodeSyncMessage: (bytes: Uint8Array) => {
    const d = A.decodeSyncMessage(bytes)
    decodedHaves.push(d.have.length)
    return d
  },
}))
const { AutomergeReplica, memoryLinkPair } = await import("../adapters/peer/index.js")
const { attach } = await import("./support/replicas.js")


test("a sync message of a million empty have entries is refused before it is decoded; the replica syncs on with an honest peer", async () => {
  const errors: { code: string; message: string }[] = []
  const replica = new AutomergeReplica(A.from({ items: ["a"] as string[] }), { onError: (e) => errors.push(e) })
  const attacker = probeLink()
  attach(replica, attacker.link)
  // 0x42 | heads [] | need [] | 1,000,000 x {lastSync [], bloom b""} | changes []: 2 MB.
  const H = 1_000_000
  const flood = haveFlood(H)
  attacker.deliver(flood)
  await replica.idle()
  expect(Math.max(0, ...decodedHaves)).toBeLessThanOrEqual(16)
  expect(errors.map((e) => e.code)).toEqual(["update-malformed"])
  expect(errors[0]!.message).toMatch(/more than 16 have entries/)
  // A Bloom filter of no bits: Automerge panicked on it (a remainder by zero) at its next answer.
  attacker.deliver(new Uint8Array([0x42, 0, 0, 1, 0, 3, 1, 0, 7, 0]))
  await replica.idle()
  expect(errors.map((e) => e.code)).toEqual(["update-malformed", "update-malformed"])
  expect(errors[1]!.message).toMatch(/Bloom filter/)

  // An honest peer syncs both ways.
  const [mine, theirs] = memoryLinkPair()
  attach(replica, mine)
  const honest = new AutomergeReplica(A.init<{ items: string[] }>())
  attach(honest, theirs)
  await replica.idle()
  await honest.idle()
  replica.change((d) => { d.items.push("b") })
  for (let i = 0; i < 20 && honest.doc.items?.length !== 2; i++) {
    await replica.idle()
    await honest.idle()
    await new Promise((r) => setImmediate(r))
  }
  expect(honest.doc.items).toEqual(["a", "b"])
  honest.change((d) => { d.items.push("c") })
  for (let i = 0; i < 20 && replica.doc.items.length !== 3; i++) {
    await replica.idle()
    await honest.idle()
    await new Promise((r) => setImmediate(r))
  }
  expect(replica.doc.items).toEqual(["a", "b", "c"])
  expect(Math.max(0, ...decodedHaves)).toBeLessThanOrEqual(16)
})

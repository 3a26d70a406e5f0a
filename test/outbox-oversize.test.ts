/**
 * A command no frame carries is never sent (core/replica/doc.ts `#pump`). One stored by a run
 * that allowed larger commands (`maxCommandBytes` 2 MiB, then the default 256 KiB) was sent
 * by the next process as it was: its submit was over the 1 MiB frame, the transport ended the
 * connection (`too-large`) and the client reconnected and sent it again, forever. Every
 * document of the client was stuck, and the app heard nothing. It is now refused where it
 * would be sent (`command-too-large`, told once), and the commands after it go, renumbered.
 * One a frame carries still goes, over today's limit too: the last run may have sent it, and
 * only the hub knows whether it applied it (a review found the first fix told such a command
 * `rejected` while it was in the log).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { offlineTransport } from "./support/offline.js"
import type { BatchOp } from "../core/index.js"
import { running, settle } from "./support/virtual-time.js"

const Blob = defineMachine({
  name: "blob",
  version: 1,
  initial: () => ({ n: 0, len: 0 }),
  commands: {
    put: { args: Schema.Struct({ data: Schema.String }), apply: (s, a) => { s.len = a.data.length } },
    incr: { args: Schema.Struct({}), apply: (s) => { s.n++ } },
  },
})

test("a stored command over today's maxCommandBytes is refused where it would be sent; the commands after it, and other documents, go", async () => {
  const rt = new VirtualRuntime(3)
  const disk = new MemoryStorage()
  // Offline, a run allowing 2 MiB commands stores one of 1.2 MB between two small ones.
  const first = await running(rt, CanonClient.open({ transport: offlineTransport, runtime: rt, storage: disk, autoConnect: false, maxCommandBytes: 2 << 20 }))
  const d1 = await running(rt, first.open(Blob, "big"))
  const receipts = [d1.submit("incr", {}), d1.submit("put", { data: "x".repeat(1_200_000) }), d1.submit("incr", {})]
  await running(rt, Promise.all(receipts.map((r) => r.persisted)))
  await running(rt, first.close())

  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Blob], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  // Opened offline, so that the app is listening before anything is sent.
  const second = await running(rt, CanonClient.open({ transport: net.transport("p2"), runtime: rt, storage: disk, autoConnect: false }))
  const statuses: string[] = []
  second.onStatus((s) => statuses.push(s))
  const big = await running(rt, second.open(Blob, "big"))
  const other = await running(rt, second.open(Blob, "other"))
  const told: string[] = []
  big.on("rejected", (e) => told.push(`rejected #${e.clientSeq} ${e.command} ${e.rejection.code}`))
  big.on("confirmed", (e) => told.push(`confirmed #${e.clientSeq} ${e.command}`))
  big.on("error", (e) => told.push(`error ${e.code}`))
  expect(big.pendingCount).toBe(3)
  const elsewhere = other.submit("incr", {})
  second.connect()
  await settle(rt, 10_000)
  await expect(elsewhere).resolves.toMatchObject({ seq: 1 })
  // Refused where it would be sent (before #1's answer); #3 takes the number it left (the hub says where numbering resumes).
  expect(told).toEqual(["rejected #2 put command-too-large", "confirmed #1 incr", "error sequence-gap", "confirmed #2 incr"])
  expect(big.pendingCount).toBe(0)
  expect(big.state).toEqual({ n: 2, len: 0 })
  // Connected once, not again and again.
  expect(statuses.filter((s) => s === "online")).toHaveLength(1)
  await running(rt, second.close())
  await hub.close()
}, 60_000)

test("a stored command over today's maxCommandBytes that the hub applied in the last run is confirmed, not told rejected", async () => {
  const rt = new VirtualRuntime(3)
  const disk = new MemoryStorage()
  const net = new MemoryNetwork(rt, { latency: () => 20, encode: true })
  const hub = new Hub({ machines: [Blob], storage: new MemoryStorage(), runtime: rt, maxCommandBytes: 1 << 20 })
  net.listen(hub)
  const first = await running(rt, CanonClient.open({ transport: net.transport("p1"), runtime: rt, storage: disk, maxCommandBytes: 1 << 20 }))
  const d1 = await running(rt, first.open(Blob, "big"))
  await settle(rt, 500)
  const r = d1.submit("put", { data: "x".repeat(300_000) })
  r.catch(() => {})
  await r.persisted
  // Applied by the hub; the answer is lost with the connection.
  await rt.run({ forMs: 30 })
  net.drop()
  await running(rt, first.close())

  const second = await running(rt, CanonClient.open({ transport: net.transport("p2"), runtime: rt, storage: disk, autoConnect: false }))
  const big = await running(rt, second.open(Blob, "big"))
  const told: string[] = []
  big.on("rejected", (e) => told.push(`rejected #${e.clientSeq} ${e.rejection.code}`))
  big.on("confirmed", (e) => told.push(`confirmed #${e.clientSeq} ${e.command}`))
  expect(big.pendingCount).toBe(1)
  second.connect()
  await settle(rt, 3000)
  expect(told).toEqual(["confirmed #1 put"])
  expect(big.state.len).toBe(300_000)
  await running(rt, second.close())
  await hub.close()
})

test("a failed write of the refusal's outbox removal does not take out the command renumbered into that number", async () => {
  const rt = new VirtualRuntime(3)
  let failRemoval = false
  const disk = new MemoryStorage({ failWrite: (ops: ReadonlyArray<BatchOp>) => {
    if (!failRemoval || !ops.some((o) => o.type === "del")) return false
    failRemoval = false
    return true
  } })
  const first = await running(rt, CanonClient.open({ transport: offlineTransport, runtime: rt, storage: disk, autoConnect: false, maxCommandBytes: 2 << 20 }))
  const d1 = await running(rt, first.open(Blob, "big"))
  const receipts = [d1.submit("put", { data: "x".repeat(1_200_000) }), d1.submit("incr", {}), d1.submit("incr", {})]
  await running(rt, Promise.all(receipts.map((r) => r.persisted)))
  await running(rt, first.close())

  const net = new MemoryNetwork(rt, { latency: () => 20, encode: true })
  const hub = new Hub({ machines: [Blob], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const second = await running(rt, CanonClient.open({ transport: net.transport("p2"), runtime: rt, storage: disk, autoConnect: false }))
  const big = await running(rt, second.open(Blob, "big"))
  // The refusal's removal fails; the hub's sequence-gap renumbers the next command into #1; then the link is cut.
  big.on("error", (e) => { if (e.code === "sequence-gap") net.partition("p2") })
  failRemoval = true
  second.connect()
  await settle(rt, 3000)
  const left = big.pendingCount
  expect(left).toBeGreaterThan(0)
  await running(rt, second.close())
  const third = await running(rt, CanonClient.open({ transport: offlineTransport, runtime: rt, storage: disk, autoConnect: false }))
  const again = await running(rt, third.open(Blob, "big"))
  expect(again.pendingCount).toBe(left)
  await running(rt, third.close())
  await hub.close()
})

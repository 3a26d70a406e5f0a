/**
 * Messages stay under the frame limit whatever the commands weigh: submits, live fan-out and
 * catch-up pages are cut by size (the memory network here encodes real frames, which refuse
 * anything over 1 MiB).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { evolve } from "../core/schema/versions.js"
import { sizeBound } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { cutBySize } from "../core/authority/doc-authority.js"
import { Todo } from "./support/machines.js"

test("2 MB of commands in one tick reach a late joiner in frames under the limit", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const writer = await CanonClient.open({ transport: net.transport("w"), runtime: rt })
  const w = await writer.open(Todo, "big")
  await rt.run({ forMs: 20 })
  const title = "x".repeat(10_000)
  const receipts = Array.from({ length: 200 }, (_, i) => w.submit("add", { id: `i${i}`, title }))
  await rt.run({ forMs: 2_000 })
  await expect(Promise.all(receipts)).resolves.toHaveLength(200)
  const reader = await CanonClient.open({ transport: net.transport("r"), runtime: rt })
  const r = await reader.open(Todo, "big")
  await rt.run({ forMs: 2_000 })
  expect(r.confirmedSeq).toBe(200)
  expect(r.confirmedHash()).toBe(w.confirmedHash())
})

/**
 * A union costs its member's index on top of the value, so compact arguments (protocol 2) can
 * be larger than canonical ones: booleans typed `Union(Union(Boolean, Number), String)` take
 * three bytes compact, one canonical. Submits and entries are cut by the bytes they are sent
 * as; cut by their canonical size, the writer's submit and the joiner's catch-up page were
 * over the frame limit, refused by the transport each time the connection came back.
 */
const Flags = defineMachine({
  name: "flags",
  version: 1,
  initial: () => ({ n: 0 }),
  commands: {
    set: { args: Schema.Struct({ flags: Schema.Array(Schema.Union([Schema.Union([Schema.Boolean, Schema.Number]), Schema.String])) }), apply: (s: { n: number }) => { s.n++ } },
  },
})

/** A hub of Flags v1 on a memory network that encodes real frames, and a client opener. */
const flagsWorld = (seed: number) => {
  const rt = new VirtualRuntime(seed)
  const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
  net.listen(new Hub({ machines: [Flags], storage: new MemoryStorage(), runtime: rt }))
  const client = (name: string, autoConnect = true) => CanonClient.open({ transport: net.transport(name), runtime: rt, autoConnect })
  return { rt, client }
}

/** `length` booleans: one byte each canonical, three compact. */
const booleans = (length: number): boolean[] => Array.from({ length }, (_, i) => i % 2 === 0)

test("compact arguments larger than their canonical form still travel in frames under the limit, both ways", async () => {
  const { rt, client } = flagsWorld(13)
  const w = await (await client("w")).open(Flags, "flags")
  // Follows from the start: the hub fans the commits out to it live.
  const f = await (await client("f")).open(Flags, "flags")
  await rt.run({ forMs: 20 })
  // 20 KB canonical each, 60 KB compact: 26 of them were one submit by canonical size, 1.5 MB sent.
  const flags = booleans(20_000)
  const receipts = Array.from({ length: 30 }, () => w.submit("set", { flags }))
  await rt.run({ forMs: 2_000 })
  await expect(Promise.all(receipts)).resolves.toHaveLength(30)
  const r = await (await client("r")).open(Flags, "flags")
  await rt.run({ forMs: 2_000 })
  for (const d of [f, r]) {
    expect(d.confirmedSeq).toBe(30)
    expect(d.state.n).toBe(30)
  }
})

test("a late joiner's catch-up pages of many small commands whose compact form is larger are cut as sent", async () => {
  const { rt, client } = flagsWorld(14)
  const w = await (await client("w")).open(Flags, "small")
  await rt.run({ forMs: 20 })
  // 800 B canonical each, 2.4 KB compact: a catch-up page (512 entries) was one message by
  // canonical size (about 440 KB), 1.2 MB sent.
  const flags = booleans(800)
  const receipts = Array.from({ length: 2_000 }, () => w.submit("set", { flags }))
  await rt.run({ forMs: 5_000 })
  await expect(Promise.all(receipts)).resolves.toHaveLength(2_000)
  const r = await (await client("r")).open(Flags, "small")
  await rt.run({ forMs: 5_000 })
  expect(r.confirmedSeq).toBe(2_000)
  expect(r.state.n).toBe(2_000)
})

test("an app newer than its hub (compat mode) sends a long outbox of large commands in frames under the limit", async () => {
  // The hub runs v1; the app runs v2 (the same command) and steps down to v1, sending downcasts.
  const FlagsV2 = evolve(Flags, { version: 2, migrateState: (s: { n: number }) => ({ n: s.n }), commands: Flags.commands })
  const { rt, client } = flagsWorld(15)
  const writer = await client("w", false)
  const w = await writer.open(FlagsV2, "compat")
  // 20 KB canonical each, 60 KB compact: 256 of them (the count per submit) are 15 MB.
  const flags = booleans(20_000)
  const receipts = Array.from({ length: 30 }, () => w.submit("set", { flags }))
  writer.connect()
  await rt.run({ forMs: 5_000 })
  await expect(Promise.all(receipts)).resolves.toHaveLength(30)
  expect(w.state.n).toBe(30)
})

test("a single command too large for a frame is refused locally with a sentence", async () => {
  const rt = new VirtualRuntime(12)
  const client = await CanonClient.open({ transport: new MemoryNetwork(rt).transport("c"), runtime: rt, autoConnect: false })
  const doc = await client.open(Todo, "d")
  const receipt = doc.submit("add", { id: "huge", title: "y".repeat(600_000) })
  expect(receipt.clientSeq).toBe(-1)
  await expect(receipt).rejects.toMatchObject({ code: "command-too-large", message: expect.stringMatching(/take \d+ bytes; at most 262144 fit in a command/) })
  expect(doc.pendingCount).toBe(0)
})

test("cutBySize keeps every run under the bound and loses nothing", () => {
  const entries = Array.from({ length: 100 }, (_, i) => ({ seq: i + 1, time: 0, clientId: "c", clientSeq: i + 1, name: "add", args: { t: "z".repeat((i * 37) % 900) } }))
  const runs = cutBySize(entries, 5_000)
  expect(runs.flat()).toEqual(entries)
  for (const run of runs) {
    const size = run.reduce((n, e) => n + 32 + sizeBound(e.args), 0)
    expect(run.length === 1 || size <= 5_000).toBe(true)
  }
})

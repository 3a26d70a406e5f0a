/**
 * The outcomes of one group commit go to a connection cut into `results` messages under the
 * message size limit, as entries are. They went as one message, and a rejection carries its
 * sentence (up to 1,024 UTF-16 units, ~3 KiB of UTF-8): a few hundred rejections with long
 * sentences arriving while a commit was written (an app's ctx.reject quoting what the user
 * typed, in a language outside Latin-1) made a frame over 1 MiB, and the transport ended the
 * connection `too-large`, cutting every document on it; the client sent its outbox again.
 * Found by a helper's attack review.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type KVStore } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"

const Names = defineMachine({
  name: "names",
  version: 1,
  initial: () => ({ taken: {} as Record<string, true> }),
  commands: {
    // An app's own refusal quoting what the user typed (its sentence is cut to 1,024 units).
    claim: { args: Schema.Struct({ name: Schema.String }), apply: (_s, a, ctx) => ctx.reject(`«${a.name}» ${"该名称不可用".repeat(200)}`) },
  },
})

test("many rejections with long sentences reach the client (the results are cut to fit frames)", async () => {
  const rt = new VirtualRuntime(11)
  const refused: Array<{ type: string; bytes: number }> = []
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true, onRefused: (r) => refused.push(r) })
  // A disk whose group commit takes 10 ms (an fsync): what arrives meanwhile joins the next batch.
  const inner = new MemoryStorage()
  const storage: KVStore = {
    get: (k) => inner.get(k), range: (o) => inner.range(o), close: () => inner.close(),
    batch: (ops, o) => {
      const copy = ops.map((op) => ({ ...op }))
      return new Promise<void>((resolve, reject) => rt.setTimer(10, () => void inner.batch(copy, o).then(resolve, reject)))
    },
  }
  const hub = new Hub({ machines: [Names], storage, runtime: rt })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("c"), runtime: rt, backoff: { baseMs: 10, maxMs: 100 } })
  const doc = await client.open(Names, "n")
  await rt.run({ forMs: 100 })
  let settled = 0
  for (let i = 0; i < 1024; i++) doc.submit("claim", { name: `n${i}` }).then(() => settled++, () => settled++)
  await rt.run({ forMs: 30_000 })
  expect({ settled, refused: refused.length, pending: doc.pending.length }).toEqual({ settled: 1024, refused: 0, pending: 0 })
  await client.close()
  await hub.close()
}, 120_000)

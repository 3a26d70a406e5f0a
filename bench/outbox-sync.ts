/**
 * The `outbox` suite: a replica that made N commands offline (persisted outbox on its
 * storage) comes online and syncs them through a hub over WebSocket on 127.0.0.1. The figure
 * is the time from `connect()` until every command is confirmed, for N = 5k, 20k and 40k:
 * linear, not quadratic (issue 9 measured 1.6 / 16 / 71 s on the code before). The hub keeps
 * its default per-connection limits: an honest client's offline backlog must never be
 * treated as a flood.
 */
import { CanonClient, Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { check, figure, now, type Figure, type Suite } from "./harness.js"
import { Counter } from "./machines.js"
import { until } from "./wire-util.js"

/** Milliseconds from connect() to all `n` offline commands confirmed. */
export const syncOutbox = async (n: number): Promise<number> => {
  let refused = 0
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, onEvent: (e) => { if (e.type === "limit" && e.code !== "rate-held") refused++ } })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }] })
  const client = await CanonClient.open({
    transport: wsClientTransport(server.urls()[0]!), runtime: systemRuntime, storage: new MemoryStorage(), machines: [Counter], autoConnect: false,
  })
  try {
    const doc = await client.open(Counter, "offline")
    const receipts = Array.from({ length: n }, () => doc.submit("incr", { by: 1 }))
    await Promise.all(receipts.map((r) => r.persisted))
    check(doc.pendingCount === n, `${n} commands pending before connecting`)
    const t0 = now()
    client.connect()
    await until(() => doc.pendingCount === 0, 120_000, `${n} offline commands to sync`, 5)
    const ms = now() - t0
    const seqs = await Promise.all(receipts)
    check(seqs[n - 1]!.seq === n && (await hub.doc("offline", Counter)).headSeq === n, "every command applied once, in order")
    // Slowed to the rate if it must be (rate-held), never refused or closed as a flood.
    check(refused === 0, "the offline backlog hit no limit but the rate")
    return ms
  } finally {
    await client.close()
    await server.close()
    await hub.close()
  }
}

export const suite: Suite = {
  name: "outbox",
  title: "a long offline outbox syncs in linear time (WebSocket loopback, hub in this process)",
  async run(ctx) {
    const runs = ctx.quick ? 1 : 3
    const out: Figure[] = []
    for (const n of ctx.quick ? [5_000, 40_000] : [5_000, 20_000, 40_000]) {
      const samples: number[] = []
      for (let i = 0; i < runs; i++) {
        samples.push(await syncOutbox(n))
        ctx.log(`${n} offline commands: ${samples[samples.length - 1]!.toFixed(0)} ms`)
      }
      out.push(figure(`outbox-${n}`, `${n.toLocaleString("en")} offline commands confirmed after connect`, "ms", samples, n === 40_000 ? { goal: { op: "<=", value: 3000 } } : {}))
    }
    return out
  },
}

/**
 * Workload 3, contended counter: 20 replicas increment one counter concurrently while every
 * link is delayed (each message 20-120 ms, seeded, FIFO per direction), all on a
 * VirtualRuntime. Each replica increments `perReplica` times at seeded moments spread over
 * `windowMs` (the same schedule for every system).
 *
 * - Canon: bench/machines.ts Counter `incr {by: 1}` through CanonClients over MemoryNetwork
 *   (the delays above, codec frames) to a Hub on MemoryStorage; ordered commands give the
 *   exact count.
 * - Yjs, its natural approach: a Y.Map key set to the local value + 1 (last writer wins:
 *   concurrent increments are lost).
 * - Automerge, its natural approach: an Automerge Counter, `increment(1)` (merges by addition).
 * The peers' updates go replica -> server -> the 19 others over StarLinks with the same delays.
 *
 * Figures: time to converge (virtual ms from the first increment until every replica shows
 * the final value: mostly the links' delays, so near 1x by construction), the CPU time to run
 * the whole simulation (wall clock), and the final value each system ends with.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { CanonClient, Hub, type Doc } from "../core/index.js"
import { seededRandom } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { check, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { Counter } from "./machines.js"
import { SYSTEMS, StarLinks, backToBack, pick, stopwatch, triple, type Sys, relayYjs } from "./peers-common.js"

const DOC = "counter"

export interface CounterSizes {
  readonly replicas: number
  readonly perReplica: number
  readonly windowMs: number
  readonly plan: Plan
}

interface CounterRun {
  /** Virtual ms from the first increment to convergence. */
  readonly convergeMs: number
  /** Wall-clock ms to run the simulation (increments and convergence). */
  readonly wallMs: number
  /** Process CPU ms over the same. */
  readonly cpuMs: number
  readonly value: number
}

/** When each replica increments: sorted offsets in [0, windowMs), the same for every system. */
const schedule = (s: CounterSizes): number[][] => {
  const rnd = seededRandom(2024)
  return Array.from({ length: s.replicas }, () => Array.from({ length: s.perReplica }, () => Math.floor(rnd() * s.windowMs)).sort((a, b) => a - b))
}

/** Link delay: 20-120 ms, seeded. */
const delay = (seed: number) => {
  const rnd = seededRandom(seed)
  return () => 20 + Math.floor(rnd() * 100)
}

const canonCounter = async (s: CounterSizes, times: number[][]): Promise<CounterRun> => {
  const runtime = new VirtualRuntime(5)
  const network = new MemoryNetwork(runtime, { latency: delay(99), encode: true })
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime })
  network.listen(hub)
  const clients: CanonClient[] = []
  const docs: Array<Doc<typeof Counter>> = []
  for (let i = 0; i < s.replicas; i++) {
    const client = await CanonClient.open({ transport: network.transport(`r${i}`), runtime, clientId: `replica-${i}` })
    clients.push(client)
    docs.push(await client.open(Counter, DOC))
  }
  await runtime.run({ until: () => docs.every((d) => d.synced) })
  const total = s.replicas * s.perReplica
  const t0 = runtime.now()
  for (const [i, offsets] of times.entries()) for (const at of offsets) runtime.setTimer(at, () => void docs[i]!.submit("incr", { by: 1 }))
  const first = t0 + Math.min(...times.map((o) => o[0]!))
  const watch = stopwatch()
  const converged = () => docs.every((d) => d.pendingCount === 0 && d.confirmedSeq === total && d.state.value === total)
  await runtime.run({ until: converged })
  const { ms: wallMs, cpu: cpuMs } = watch()
  check(converged(), `Canon: every replica shows ${total}`)
  const convergeMs = runtime.now() - first
  for (const c of clients) await c.close()
  await hub.close()
  return { convergeMs, wallMs, cpuMs, value: docs[0]!.state.value }
}

const yjsCounter = async (s: CounterSizes, times: number[][]): Promise<CounterRun> => {
  const runtime = new VirtualRuntime(5)
  const links = new StarLinks(runtime, delay(99))
  const server = new Y.Doc()
  const docs = Array.from({ length: s.replicas }, (_, i) => {
    const d = new Y.Doc()
    d.clientID = i + 1
    return d
  })
  relayYjs(links, server, docs)
  const t0 = runtime.now()
  for (const [i, offsets] of times.entries()) {
    const map = docs[i]!.getMap<number>("counter")
    for (const at of offsets) runtime.setTimer(at, () => map.set("value", (map.get("value") ?? 0) + 1))
  }
  const first = t0 + Math.min(...times.map((o) => o[0]!))
  const watch = stopwatch()
  await runtime.run()
  const { ms: wallMs, cpu: cpuMs } = watch()
  const value = server.getMap<number>("counter").get("value") ?? 0
  for (const d of docs) check((d.getMap<number>("counter").get("value") ?? 0) === value, "Yjs: every replica converged")
  for (const d of docs) d.destroy()
  server.destroy()
  return { convergeMs: links.lastDelivery - first, wallMs, cpuMs, value }
}

type AmCounter = { value: A.Counter }

const automergeCounter = async (s: CounterSizes, times: number[][]): Promise<CounterRun> => {
  const runtime = new VirtualRuntime(5)
  const links = new StarLinks(runtime, delay(99))
  const seedDoc = A.from<AmCounter>({ value: new A.Counter(0) }, { actor: "ff" })
  const seed = A.save(seedDoc)
  A.free(seedDoc)
  let server = A.load<AmCounter>(seed, { actor: "fe" })
  const docs = Array.from({ length: s.replicas }, (_, i) => A.load<AmCounter>(seed, { actor: (i + 1).toString(16).padStart(2, "0") }))
  const t0 = runtime.now()
  for (const [i, offsets] of times.entries()) {
    for (const at of offsets) {
      runtime.setTimer(at, () => {
        docs[i] = A.change(docs[i]!, (d) => {
          d.value.increment(1)
        })
        const change = A.getLastLocalChange(docs[i]!)!
        links.send(`r${i}`, "server", change, (bytes) => {
          ;[server] = A.applyChanges(server, [bytes])
          for (let j = 0; j < docs.length; j++) {
            if (j !== i) links.send("server", `r${j}`, bytes, (b) => {
              ;[docs[j]] = A.applyChanges(docs[j]!, [b])
            })
          }
        })
      })
    }
  }
  const first = t0 + Math.min(...times.map((o) => o[0]!))
  const watch = stopwatch()
  await runtime.run()
  const { ms: wallMs, cpu: cpuMs } = watch()
  const value = server.value.value
  for (const d of docs) check(d.value.value === value, "Automerge: every replica converged")
  for (const d of docs) A.free(d)
  A.free(server)
  return { convergeMs: links.lastDelivery - first, wallMs, cpuMs, value }
}

export const counterWorkload = async (ctx: SuiteContext, s: CounterSizes, add: (f: Figure) => void): Promise<void> => {
  const times = schedule(s)
  const total = s.replicas * s.perReplica
  ctx.log(`counter: ${s.replicas} replicas x ${s.perReplica} increments over ${s.windowMs} ms, links 20-120 ms`)
  const run = (sys: Sys) => (sys === "canon" ? canonCounter(s, times) : sys === "yjs" ? yjsCounter(s, times) : automergeCounter(s, times))
  const all = await backToBack<"converge" | "wall" | "cpu" | "value">(s.plan, SYSTEMS, async (sys) => {
    const r = await run(sys)
    return { converge: r.convergeMs, wall: r.wallMs, cpu: r.cpuMs, value: r.value }
  })
  const scope = `${s.replicas} replicas x ${s.perReplica} = ${total.toLocaleString("en-US")} increments`
  triple(add, "counter", "converge", `3. counter: time to converge, virtual (${scope})`, "ms", pick(all, "converge"),
    { note: "virtual time from the first increment until every replica shows its final value; dominated by the 20-120 ms links" })
  triple(add, "counter", "wall", `3. counter: wall time to run it (${scope})`, "ms", pick(all, "wall"),
    { note: "wall clock of the whole simulation on the VirtualRuntime (every message encoded, sent, applied)" })
  triple(add, "counter", "cpu", `3. counter: CPU time to run it (${scope})`, "ms", pick(all, "cpu"),
    { note: "process CPU (user + system, all threads) over the same run" })
  triple(add, "counter", "value", `3. counter: final value (exact: ${total.toLocaleString("en-US")})`, "count", pick(all, "value"),
    { ratios: false, note: "Canon: ordered commands; Yjs: Y.Map last-writer-wins (loses concurrent increments); Automerge: Counter" })
}

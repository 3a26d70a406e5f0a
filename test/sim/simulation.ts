/**
 * The seeded fault simulator: one hub, K replicas and a hostile raw client over the
 * in-memory network, on virtual time. A seed fixes everything: latencies, the workload, the
 * faults. After an active phase full of faults the network heals, every process is brought
 * back, and the checker compares what every peer ended with (see checker.ts).
 */
import { CanonClient, Hub, hashState, type ClientMessage, type Connection, type Doc, type Machine, type ServerMessage } from "../../core/index.js"
import { AuthorityStore, seededRandom } from "../../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { SimProcess } from "./process.js"
import { Todo } from "../support/machines.js"
import { checkWorld, type Ledger } from "./checker.js"

export interface SimOptions {
  readonly seed: number
  readonly replicas: number
  /** Virtual ms of workload and faults. */
  readonly activeMs?: number
  /** Workload operations (submits) in the active phase, roughly. */
  readonly ops?: number
  /** How wild the faults are: 0 = none, 1 = default. */
  readonly faults?: number
  /** The machine replicated (default Todo). */
  readonly machine?: Machine<any, any>
  /** Checkpoint period of the authority. */
  readonly checkpointEvery?: number
  /** Quiet-checkpoint delay of the authority (ms). */
  readonly quietCheckpointMs?: number
  /** The machine is non-deterministic on purpose: a replay cannot reproduce the authority's hash. */
  readonly nondeterministic?: boolean
}

export interface SimResult {
  readonly seed: number
  readonly failures: ReadonlyArray<string>
  /** Digest of everything that happened: equal digests mean an identical run. */
  readonly digest: string
  readonly stats: Record<string, number>
  readonly trace: ReadonlyArray<string>
}

const DOC = "sim-doc"

interface Replica {
  readonly name: string
  readonly disk: MemoryStorage
  proc: SimProcess
  client: CanonClient | undefined
  doc: Doc<any> | undefined
  clientId: string | undefined
  partitioned: boolean
}

export const runSimulation = async (options: SimOptions): Promise<SimResult> => {
  const { seed } = options
  const machine = options.machine ?? Todo
  const activeMs = options.activeMs ?? 20_000
  const ops = options.ops ?? 120
  const faultLevel = options.faults ?? 1
  const rt = new VirtualRuntime(seed)
  const rng = seededRandom(seed ^ 0x5eed)
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(rng() * xs.length)]!
  const trace: string[] = []
  const log = (s: string) => trace.push(`${rt.now() - 1_700_000_000_000} ${s}`)
  const stats: Record<string, number> = {
    submits: 0, localRefusals: 0, drops: 0, partitions: 0, replicaCrashes: 0, hubCrashes: 0, rawInvalid: 0, desyncs: 0,
  }

  // Real frames: the simulator also exercises the wire codec.
  const net = new MemoryNetwork(rt, { latency: () => Math.floor(rng() * 20), encode: true })
  // Mostly fast, sometimes a slow write: widens the window in which a crash loses it.
  const diskLatency = () => (rng() < 0.1 ? Math.floor(rng() * 60) : Math.floor(rng() * 4))
  const ledger: Ledger = { submitted: new Map(), confirmed: new Map(), rejected: new Map(), rawOutcomes: new Map(), errors: [] }

  // ---- the hub process ----
  const hubDisk = new MemoryStorage({ latency: { runtime: rt, ms: diskLatency } })
  let hubProc = new SimProcess("hub", rt, hubDisk)
  let hub: Hub
  const startHub = () => {
    // One hub process at a time (a real store is locked by its process).
    if (hubProc.alive && trace.length > 0) return
    hubProc = new SimProcess("hub", rt, hubDisk)
    hub = new Hub({
      machines: [machine],
      storage: hubProc.storage,
      runtime: hubProc.runtime,
      checkpointEvery: options.checkpointEvery ?? 16,
      quietCheckpointMs: options.quietCheckpointMs ?? 500,
      // The checker reads the whole log: no compaction (covered by test/snapshot*.test.ts).
      // Before the kept tail was capped at the snapshot's size, the sim's logs (under the
      // 64 KiB tail) were never compacted either; a resync snapshot now would be.
      snapshots: { tailBytes: Infinity },
      onEvent: (e) => {
        if (e.type === "doc-broken" || e.type === "doc-load-failed") ledger.errors.push(`hub: ${e.type} ${e.docId}: ${String(e.error)}`)
        else if (e.type === "refused" || e.type === "limit") ledger.errors.push(`hub: ${e.type} ${e.code}: ${e.message}`)
      },
    })
    net.listen(hub)
    log("hub up")
  }
  startHub()

  // ---- replicas ----
  const replicas: Replica[] = []
  const startReplica = async (r: Replica) => {
    r.proc = new SimProcess(r.name, rt, r.disk)
    const proc = r.proc
    const client = await CanonClient.open({
      transport: proc.wrapTransport(net.transport(r.name)),
      runtime: proc.runtime,
      storage: proc.storage,
      backoff: { baseMs: 50, maxMs: 2_000 },
      stableMs: 3_000,
      snapshotEvery: 20,
    })
    if (!proc.alive) return
    const doc = await client.open(machine, DOC)
    if (!proc.alive) return
    r.client = client
    r.doc = doc
    r.clientId = client.clientId
    doc.on("confirmed", (e) => {
      const key = `${client.clientId}:${e.clientSeq}`
      const prev = ledger.confirmed.get(key)
      if (prev !== undefined && prev !== e.seq) ledger.errors.push(`${key} confirmed twice with different seqs ${prev} and ${e.seq}`)
      ledger.confirmed.set(key, e.seq)
    })
    doc.on("rejected", (e) => {
      ledger.rejected.set(`${client.clientId}:${e.clientSeq}`, e.rejection.code)
    })
    doc.on("desync", (d) => { stats.desyncs!++; log(`${r.name} desync at ${d.seq}`) })
    doc.on("error", (e) => log(`${r.name} error ${e.code}: ${e.message}`))
    log(`${r.name} up as ${client.clientId} seq=${doc.confirmedSeq} pending=${doc.pendingCount}`)
  }
  for (let i = 0; i < options.replicas; i++) {
    const disk = new MemoryStorage({ latency: { runtime: rt, ms: diskLatency } })
    const r: Replica = { name: `r${i}`, disk, proc: new SimProcess(`r${i}`, rt, disk), client: undefined, doc: undefined, clientId: undefined, partitioned: false }
    replicas.push(r)
    // Storage takes virtual time: everything async happens inside rt.run.
    rt.setTimer(0, () => { void startReplica(r) })
  }

  // ---- a hostile raw client: invalid arguments, unknown commands, retries ----
  let rawConn: Connection<ClientMessage> | undefined
  let rawSeq = 0
  const rawConnect = () => {
    const conn = net.transport("raw").connect({
      onOpen: () => {
        conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "raw-client", secret: "raw-client-secret-0123456789", machines: [] })
        conn.send({ type: "subscribe", docId: DOC, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
      },
      onMessage: (m: ServerMessage) => {
        if (m.type === "results") for (const o of m.outcomes) ledger.rawOutcomes.set(o.clientSeq, "seq" in o ? `seq:${o.seq}` : "rejection" in o ? o.rejection.code : `seqAtMost:${o.seqAtMost}`)
      },
      onClose: () => { if (rawConn === conn) rawConn = undefined },
    })
    rawConn = conn
  }

  // ---- workload ----
  const ids = ["a", "b", "c", "d", "e", "f", "g", "h"]
  const randomCommand = (): [string, unknown] => {
    if (machine !== Todo) {
      const names = [...machine.compiled.keys()]
      return [pick(names), {}]
    }
    const r = rng()
    const id = pick(ids)
    if (r < 0.3) return ["add", { id, title: `t${Math.floor(rng() * 100)}` }]
    if (r < 0.5) return ["rename", { id, title: `r${Math.floor(rng() * 100)}` }]
    if (r < 0.6) return ["toggle", { id }]
    if (r < 0.75) return ["remove", { id }]
    if (r < 0.95) return ["note", { text: `n${Math.floor(rng() * 1000)}` }]
    return ["boom", {}]
  }

  const submit = (r: Replica) => {
    const doc = r.doc
    if (doc === undefined || !r.proc.alive) return
    const invalid = machine === Todo && rng() < 0.05
    const [name, args] = invalid ? ["rename", { id: 7 }] : randomCommand()
    const receipt = doc.submit(name as never, args as never)
    stats.submits!++
    if (receipt.clientSeq < 0) {
      stats.localRefusals!++
      receipt.catch((e: { code?: string }) => { if (e.code !== "invalid-args") ledger.errors.push(`local refusal with code ${e.code}`) })
      return
    }
    const key = `${r.clientId}:${receipt.clientSeq}`
    ledger.submitted.set(key, { name, persisted: false })
    receipt.persisted.then(() => { ledger.submitted.get(key)!.persisted = true })
    receipt.then((v) => {
      const prev = ledger.confirmed.get(key)
      if (prev !== undefined && prev !== v.seq) ledger.errors.push(`${key}: receipt seq ${v.seq} but event seq ${prev}`)
      ledger.confirmed.set(key, v.seq)
    }, (e: { code?: string }) => ledger.rejected.set(key, e.code ?? "?"))
    log(`${r.name} submit ${receipt.clientSeq} ${name}`)
  }

  const crashReplica = (r: Replica) => {
    if (!r.proc.alive) return
    r.proc.kill()
    net.drop(r.name)
    r.client = undefined
    r.doc = undefined
    stats.replicaCrashes!++
    log(`${r.name} crash`)
    rt.setTimer(200 + Math.floor(rng() * 2000), () => { void startReplica(r) })
  }

  const crashHub = () => {
    if (!hubProc.alive) return
    hubProc.kill()
    net.stopServer()
    stats.hubCrashes!++
    log("hub crash")
    rt.setTimer(100 + Math.floor(rng() * 1500), startHub)
  }

  // Schedule the active phase up front, so the order of events depends on the seed only.
  const opGap = activeMs / ops
  for (let t = 0, i = 0; i < ops; i++) {
    t += Math.floor(rng() * opGap * 2)
    if (t >= activeMs) break
    const at = t
    rt.setTimer(at, () => {
      const x = rng()
      const f = faultLevel
      if (x < 0.05 * f) {
        const r = pick(replicas)
        stats.drops!++
        log(`drop ${r.name}`)
        net.drop(r.name)
      } else if (x < 0.08 * f) {
        const r = pick(replicas)
        if (!r.partitioned) {
          r.partitioned = true
          stats.partitions!++
          log(`partition ${r.name}`)
          net.partition(r.name)
          rt.setTimer(500 + Math.floor(rng() * 3000), () => { r.partitioned = false; net.heal(r.name); log(`heal ${r.name}`) })
        }
      } else if (x < 0.11 * f) {
        crashReplica(pick(replicas))
      } else if (x < 0.125 * f) {
        crashHub()
      } else if (x < 0.16 && machine === Todo) {
        // The raw client: invalid arguments and unknown commands, sometimes resent.
        if (rawConn === undefined) rawConnect()
        const retry = rawSeq > 0 && rng() < 0.3
        const clientSeq = retry ? rawSeq : ++rawSeq
        const bad = rng() < 0.5 ? { clientSeq, name: "rename", args: { id: 42, title: null } } : { clientSeq, name: "launch-missiles", args: {} }
        stats.rawInvalid!++
        log(`raw submit ${clientSeq}${retry ? " (retry)" : ""}`)
        rawConn?.send({ type: "submit", docId: DOC, commands: [bad], ackedClientSeq: 0 })
      } else {
        // A burst of submits, sometimes followed closely by a fault aimed at the window
        // between a submit and its acknowledgement (or its durable write).
        const r = pick(replicas)
        const n = 1 + Math.floor(rng() * 4)
        for (let k = 0; k < n; k++) submit(r)
        if (rng() < 0.3 * f) {
          const y = rng()
          rt.setTimer(Math.floor(rng() * 40), () => {
            if (y < 0.45) { stats.drops!++; log(`drop ${r.name} (after submit)`); net.drop(r.name) }
            else if (y < 0.7) crashReplica(r)
            else crashHub()
          })
        }
      }
    })
  }

  await rt.run({ forMs: activeMs + 100 })

  // ---- heal: everything back up, then wait for quiet ----
  log("heal all")
  net.heal()
  for (const r of replicas) r.partitioned = false
  if (!hubProc.alive) startHub()
  // Let restarts scheduled in the active phase happen, then bring back anyone still down.
  await rt.run({ forMs: 3_000 })
  for (const r of replicas) if (!r.proc.alive || r.doc === undefined) rt.setTimer(0, () => { void startReplica(r) })
  const quiet = () => {
    if (!hubProc.alive) return false
    for (const r of replicas) {
      if (r.doc === undefined || r.client?.status !== "online" || !r.doc.synced || r.doc.pendingCount > 0) return false
    }
    return true
  }
  await rt.run({ forMs: 60_000, until: quiet })
  // One more quiet period: the quiet checkpoint is published and any desync resolved.
  await rt.run({ forMs: 3_000 })
  await rt.run({ forMs: 30_000, until: quiet })

  // ---- check ----
  // Reads of the simulated disk resolve at once (only writes take virtual time).
  const authority = await hub!.doc(DOC, machine)
  const entries = await new AuthorityStore(hubDisk).entries(DOC, 0, 1_000_000)
  const failures = await checkWorld({
    machine,
    docId: DOC,
    authority: { seq: authority.headSeq, hash: authority.stateHash() },
    entries,
    replicas: replicas.map((r) => ({ name: r.name, clientId: r.clientId!, doc: r.doc, status: r.client?.status })),
    ledger,
    replayable: !options.nondeterministic,
    reload: async () => {
      const fresh = new Hub({ machines: [machine], storage: hubDisk, runtime: rt })
      const d = await fresh.doc(DOC, machine)
      const out = { seq: d.headSeq, hash: d.stateHash() }
      await fresh.close()
      return out
    },
  })
  stats.entries = entries.length
  stats.events = trace.length
  const digest = hashState([trace, entries.map((e) => [e.seq, e.clientId, e.clientSeq, e.name]), authority.stateHash()])
  await hub!.close()
  for (const r of replicas) await r.client?.close()
  return { seed, failures, digest, stats, trace }
}

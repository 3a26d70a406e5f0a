/**
 * Figure 3 of the `snapshots` suite: what the hub stores for the peers board workload
 * (bench/peers-board.ts: 5 replicas, seeded add / rename / move / delete, each op its own
 * command) now that the log is compacted behind snapshots, beside what Yjs and Automerge
 * store for the same ops (encodeStateAsUpdate / save of the server's document).
 *
 * Canon runs the workload as bench/peers-board.ts does (CanonClients over MemoryNetwork with
 * codec frames, a Hub on MemoryStorage, VirtualRuntime), and its store is measured (every key
 * and value) three ways: (a) as the workload ends (the default policy snapshots and compacts
 * as the log grows), (b) after the document goes quiet and takes a snapshot at its head
 * (`snapshotNow`, compaction behind it, default policy: a tail of min(64 KiB, snapshot size)), (c) as (b) with `tailBytes: 0`.
 */
import { CanonClient, Hub, type Doc, type HubOptions } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { check, figure, type Figure, type SuiteContext } from "./harness.js"
import { BoardMachine } from "./peers-machines.js"
import { automergeBoard, boardScript, canonArgs, runBoard, yjsBoard, type BoardScript, type BoardWorld } from "./peers-board.js"
import { UNLIMITED, runUntil, turn } from "./peers-common.js"
import { storedBytes } from "./peers-text.js"

const DOC = "board"

export interface BoardStoredSizes {
  readonly replicas: number
  readonly rounds: number
  readonly opsPerRound: number
}

/** Bytes (keys + values) of a store by kind of record (core/store/keys.ts). */
const KINDS: Record<string, string> = { am: "head", ae: "log entries", ac: "client records (old format)", aw: "client marks", ao: "outcomes", ak: "checkpoints", as: "snapshot metas", at: "snapshot chunks", az: "horizon" }
const byKind = async (storage: MemoryStorage): Promise<string> => {
  const out = new Map<string, number>()
  for (const [k, v] of await storage.range({})) {
    const kind = k[0] === 0x61 ? KINDS[String.fromCharCode(k[0]!, k[1]!)] ?? "other" : k[0] === 0x69 ? "client identities" : "other"
    out.set(kind, (out.get(kind) ?? 0) + k.length + v.length)
  }
  return [...out].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n.toLocaleString("en-US")}`).join(", ")
}

interface CanonStored {
  readonly kinds: string
  readonly end: number
  readonly quiet: number
  readonly snapshot: number
  readonly horizon: number
  readonly head: number
}

/** The board on Canon (as peers-board.ts runs it), then its hub's store measured. */
const canonStored = async (script: BoardScript, replicas: number, hubOptions: Partial<HubOptions>): Promise<CanonStored> => {
  const runtime = new VirtualRuntime(11)
  const network = new MemoryNetwork(runtime, { encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [BoardMachine], storage, runtime, limits: UNLIMITED, ...hubOptions })
  network.listen(hub)
  const clients: CanonClient[] = []
  const docs: Array<Doc<typeof BoardMachine>> = []
  for (let i = 0; i < replicas; i++) {
    const client = await CanonClient.open({ transport: network.transport(`r${i}`), runtime, clientId: `replica-${i}` })
    clients.push(client)
    docs.push(await client.open(BoardMachine, DOC))
  }
  await runtime.run()
  const world: BoardWorld = {
    apply: async (i, op) => {
      const [name, args] = canonArgs(op)
      docs[i]!.submit(name as never, args as never)
      await turn()
    },
    drain: async () => {
      await runtime.run()
    },
    verify: () => {},
    storedBytes: () => storedBytes(storage),
    close: async () => {},
  }
  await runBoard(world, script)
  // The quiet checkpoint and any snapshot the policy began run to the end.
  await runtime.run({ forMs: 5_000 })
  for (const d of docs) check(d.pendingCount === 0 && d.confirmedSeq === script.ops, `Canon: every replica confirmed all ${script.ops} ops`)
  const end = await storedBytes(storage)
  const doc = await hub.doc(DOC, BoardMachine)
  // The job yields on the runtime's timers (with JournaledState.freeze): drive the virtual clock.
  let meta: Awaited<ReturnType<typeof doc.snapshotNow>> | undefined
  doc.snapshotNow().then((m) => (meta = m), (e: unknown) => { throw e })
  await runUntil(runtime, () => meta !== undefined, "the snapshot at the head")
  meta = meta!
  check(meta.seq === script.ops, "the snapshot is at the head")
  await runtime.run({ forMs: 5_000 })
  const quiet = await storedBytes(storage)
  const out = { kinds: await byKind(storage), end, quiet, snapshot: meta.size, horizon: doc.compactedThrough, head: doc.headSeq }
  for (const c of clients) await c.close()
  await hub.close()
  return out
}

export const boardStoredWorkload = async (ctx: SuiteContext, s: BoardStoredSizes, add: (f: Figure) => void): Promise<void> => {
  const script = boardScript(42, s.replicas, s.rounds, s.opsPerRound)
  const def = await canonStored(script, s.replicas, {})
  const noTail = await canonStored(script, s.replicas, { snapshots: { tailBytes: 0 } })
  const yjs = yjsBoard(s.replicas)
  await runBoard(yjs, script)
  yjs.verify(script)
  const yjsBytes = await yjs.storedBytes()
  await yjs.close()
  const am = automergeBoard(s.replicas)
  await runBoard(am, script)
  am.verify(script)
  const amBytes = await am.storedBytes()
  await am.close()
  const scope = `board workload, ${script.ops.toLocaleString("en-US")} ops${script.ops < 5_000 ? " (--quick: not 5,000)" : ""}`
  ctx.log(`${scope}: Canon store ${def.end} B as the workload ends, ${def.quiet} B after a snapshot at the head (state ${def.snapshot} B, compacted through ${def.horizon} of ${def.head}), ${noTail.quiet} B with tailBytes 0; Yjs ${yjsBytes} B, Automerge ${amBytes} B`)
  const common = "Canon: every key and value of the hub's store (snapshot chunks and meta, the log's kept tail, head, checkpoints, client records); Yjs: encodeStateAsUpdate of the server doc; Automerge: save"
  add(figure("board-stored-quiet", `3. stored bytes after compaction, ${scope}: Canon (default policy, snapshot at the head)`, "bytes", [def.quiet],
    { note: `${common}. The document went quiet and took a snapshot (snapshotNow) of its ${def.snapshot}-byte state; the log is compacted through seq ${def.horizon} of ${def.head}, keeping min(64 KiB, the snapshot's size) of entries behind it (Snapshotter.tailBytesBehind: a replica further behind than that gets fewer bytes from the snapshot). By kind: ${def.kinds}. Before that cap (a fixed 64 KiB tail; commit c2dee11, bench/results/snapshots.pre-freeze.json) this row was 81,909 B, 1.51x Yjs` }))
  add(figure("board-stored-yjs", `3. stored bytes: Yjs`, "bytes", [yjsBytes]))
  add(figure("board-stored-automerge", `3. stored bytes: Automerge`, "bytes", [amBytes]))
  add(figure("board-stored-ratio", `3. stored bytes after compaction: Canon / Yjs`, "x", [def.quiet / yjsBytes], { goal: { op: "<=", value: 0.5 } }))
  add(figure("board-stored-end", `3b. Canon as the workload ends (default policy, no snapshot asked for)`, "bytes", [def.end],
    { note: "what the byte-based policy left: snapshots taken as the log outgrew max(256 KiB, the last snapshot), compacted behind them keeping min(64 KiB, snapshot size) of entries; the log since the last snapshot is kept whole" }))
  add(figure("board-stored-end-ratio", `3b. ... / Yjs`, "x", [def.end / yjsBytes]))
  add(figure("board-stored-notail", `3c. Canon with tailBytes 0, snapshot at the head`, "bytes", [noTail.quiet],
    { note: `what the store holds without the catch-up tail; by kind: ${noTail.kinds}` }))
  add(figure("board-stored-notail-ratio", `3c. ... / Yjs`, "x", [noTail.quiet / yjsBytes]))
}

/**
 * Workload 4, cold start: open a document whose history holds `entries` board ops (the
 * board workload's generator, one writer) and read it.
 *
 * - Canon, from LevelDB, two ways:
 *   - the hub: LevelStorage.open + Hub.doc, which replays the whole log (the authority keeps
 *     no snapshot), then a read of the state;
 *   - a replica: LevelStorage.open + CanonClient.open + client.open, which loads the replica's
 *     snapshot (written every 1000 confirmed entries, the default) and replays the tail.
 *   Both stores are written through the public API: a CanonClient (on its own LevelStorage)
 *   submitting the ops to a Hub on LevelStorage over MemoryNetwork.
 * - Yjs, y-leveldb style: the document as one merged update (encodeStateAsUpdate, V1) under
 *   one key in LevelDB; open the store, get it, applyUpdate into a new Y.Doc, read.
 * - Automerge: its saved file (save); read the file, load, read.
 * Time to first read: from nothing open to a value read from the document, page cache warm
 * (each store was just written and is read again every run).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { Level } from "level"
import { CanonClient, Hub, type ClientTransport } from "../core/index.js"
import { MemoryNetwork, VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { check, now, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { BoardMachine, COLUMNS, type BoardState } from "./peers-machines.js"
import { automergeApply, boardScript, canonArgs, yjsApply, type AmBoard, type BoardOp } from "./peers-board.js"
import { SYSTEMS, UNLIMITED, backToBack, pick, runUntil, triple, turn } from "./peers-common.js"
import { storedBytes } from "./peers-text.js"

const DOC = "board"
const offline: ClientTransport = { connect: () => { throw new Error("offline") } }

export interface ColdStartSizes {
  readonly entries: number
  readonly plan: Plan
}

/** Builds the hub's and a replica's LevelDB stores through Canon's public API. */
const buildCanon = async (ops: ReadonlyArray<BoardOp>, hubDir: string, replicaDir: string): Promise<{ hubBytes: number; replicaBytes: number }> => {
  const runtime = new VirtualRuntime(3)
  const network = new MemoryNetwork(runtime, { encode: true })
  const hubStorage = await LevelStorage.open(hubDir)
  const replicaStorage = await LevelStorage.open(replicaDir)
  const hub = new Hub({ machines: [BoardMachine], storage: hubStorage, runtime, limits: UNLIMITED })
  network.listen(hub)
  const client = await CanonClient.open({ transport: network.transport("writer"), runtime, storage: replicaStorage, clientId: "writer" })
  const doc = await client.open(BoardMachine, DOC)
  await runUntil(runtime, () => doc.synced, "the writer to sync")
  // Bursts of 256 (one submit message each), drained before the next burst.
  for (let i = 0; i < ops.length; i += 256) {
    for (const op of ops.slice(i, i + 256)) {
      const [name, args] = canonArgs(op)
      doc.submit(name as never, args as never)
    }
    await turn()
    await runUntil(runtime, () => doc.pendingCount === 0, "the burst to be confirmed")
  }
  check(doc.confirmedSeq === ops.length, `Canon's log holds all ${ops.length} entries`)
  await doc.whenStored()
  await client.close()
  await hub.close()
  const hubBytes = await storedBytes(hubStorage)
  const replicaBytes = await storedBytes(replicaStorage)
  await hubStorage.close()
  await replicaStorage.close()
  return { hubBytes, replicaBytes }
}

const cardCount = (s: BoardState): number => Object.keys(s.cards).length

const canonHubOpen = async (dir: string, cards: number): Promise<number> => {
  const t0 = now()
  const storage = await LevelStorage.open(dir)
  const hub = new Hub({ machines: [BoardMachine], storage, runtime: systemRuntime })
  const doc = await hub.doc(DOC, BoardMachine)
  const n = cardCount(doc.state)
  const ms = now() - t0
  check(n === cards, `Canon hub: ${cards} cards (read ${n})`)
  await hub.close()
  await storage.close()
  return ms
}

const canonReplicaOpen = async (dir: string, cards: number): Promise<number> => {
  const t0 = now()
  const storage = await LevelStorage.open(dir)
  const client = await CanonClient.open({ transport: offline, runtime: systemRuntime, storage, autoConnect: false })
  const doc = await client.open(BoardMachine, DOC)
  const n = cardCount(doc.state as BoardState)
  const ms = now() - t0
  check(n === cards, `Canon replica: ${cards} cards (read ${n})`)
  await client.close()
  await storage.close()
  return ms
}

const KEY = "board"

/** Shared with bench/snapshots-coldstart.ts. */
export const buildYjs = async (ops: ReadonlyArray<BoardOp>, dir: string): Promise<number> => {
  const doc = new Y.Doc()
  doc.clientID = 1
  const columns = doc.getMap<Y.Array<string>>("columns")
  doc.transact(() => {
    for (const c of COLUMNS) columns.set(c, new Y.Array<string>())
  })
  for (const op of ops) yjsApply(doc, op)
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  const db = new Level<string, Uint8Array>(dir, { valueEncoding: "view" })
  await db.open()
  await db.put(KEY, update)
  await db.close()
  return update.length
}

/** Shared with bench/snapshots-coldstart.ts. */
export const yjsOpen = async (dir: string, cards: number): Promise<number> => {
  const t0 = now()
  const db = new Level<string, Uint8Array>(dir, { valueEncoding: "view" })
  await db.open()
  const update = await db.get(KEY)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update!)
  const n = doc.getMap("cards").size
  const ms = now() - t0
  check(n === cards, `Yjs: ${cards} cards (read ${n})`)
  doc.destroy()
  await db.close()
  return ms
}

/** Shared with bench/snapshots-coldstart.ts. */
export const buildAutomerge = (ops: ReadonlyArray<BoardOp>, file: string): number => {
  const columns: Record<string, A.ImmutableString[]> = {}
  for (const c of COLUMNS) columns[c] = []
  let doc = A.from<AmBoard>({ cards: {}, columns }, { actor: "01" })
  for (const op of ops) doc = automergeApply(doc, op)
  const bytes = A.save(doc)
  A.free(doc)
  writeFileSync(file, bytes)
  return bytes.length
}

/** Shared with bench/snapshots-coldstart.ts. */
export const automergeOpen = (file: string, cards: number): number => {
  const t0 = now()
  const doc = A.load<AmBoard>(readFileSync(file))
  const n = Object.keys(doc.cards).length
  const ms = now() - t0
  check(n === cards, `Automerge: ${cards} cards (read ${n})`)
  A.free(doc)
  return ms
}

export const coldStartWorkload = async (ctx: SuiteContext, s: ColdStartSizes, add: (f: Figure) => void): Promise<void> => {
  const script = boardScript(7, 1, Math.ceil(s.entries / 1000), Math.min(1000, s.entries))
  const ops = script.rounds.flatMap((r) => r[0]!)
  const cards = script.final.size
  const dir = mkdtempSync(path.join(os.tmpdir(), "canon-bench-coldstart-"))
  try {
    const d = { hub: path.join(dir, "canon-hub"), replica: path.join(dir, "canon-replica"), yjs: path.join(dir, "yjs"), automerge: path.join(dir, "board.automerge") }
    const b0 = now()
    const canon = await buildCanon(ops, d.hub, d.replica)
    const b1 = now()
    const yjsBytes = await buildYjs(ops, d.yjs)
    const b2 = now()
    const amBytes = buildAutomerge(ops, d.automerge)
    const b3 = now()
    const size = s.entries >= 1000 ? `${s.entries / 1000}k` : String(s.entries)
    ctx.log(`cold start: ${ops.length.toLocaleString("en-US")} ops, ${cards} cards; built Canon ${((b1 - b0) / 1000).toFixed(1)} s, Yjs ${((b2 - b1) / 1000).toFixed(1)} s, Automerge ${((b3 - b2) / 1000).toFixed(1)} s`)

    const all = await backToBack<"replica" | "hub">(s.plan, SYSTEMS, async (sys) => {
      if (sys === "canon") return { replica: await canonReplicaOpen(d.replica, cards), hub: await canonHubOpen(d.hub, cards) }
      const ms = sys === "yjs" ? await yjsOpen(d.yjs, cards) : automergeOpen(d.automerge, cards)
      return { replica: ms, hub: ms }
    })
    const scope = `${size}-op history${s.entries < 100_000 ? " (--quick: not 100k)" : ""}`
    triple(add, "coldstart", "open", `4. cold start: time to first read, ${scope} (Canon: replica store)`, "ms", pick(all, "replica"),
      { note: "Canon: LevelStorage.open + CanonClient.open + open(doc): snapshot + tail; Yjs: Level open + get + applyUpdate; Automerge: readFile + load" })
    triple(add, "coldstart", "open-hub", `4. cold start: time to first read, ${scope} (Canon: hub, log replay)`, "ms", pick(all, "hub"),
      { note: "Canon: LevelStorage.open + Hub.doc, replaying every entry (the authority keeps no snapshot); Yjs and Automerge as above" })
    triple(add, "coldstart", "stored", `4. cold start: bytes stored, ${scope} (Canon: replica store)`, "bytes",
      { canon: [canon.replicaBytes], yjs: [yjsBytes], automerge: [amBytes] },
      { note: `Canon's hub store (log + records) is ${canon.hubBytes.toLocaleString("en-US")} bytes of keys and values` })
    triple(add, "coldstart", "stored-hub", `4. cold start: bytes stored, ${scope} (Canon: hub log)`, "bytes",
      { canon: [canon.hubBytes], yjs: [yjsBytes], automerge: [amBytes] })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Workload 1, board ops: 5 replicas doing a seeded mix of add / rename / move / delete on
 * cards in 8 ordered columns, in rounds: each replica does its ops of the round (each op its
 * own command / transaction / change, so its own message), then the network drains.
 *
 * The script is generated once from a sequential model, so every system runs the same ops:
 * within a round a card is touched by one replica only (no concurrent move of one card, which
 * would duplicate it in the CRDTs' lists), so every system ends with the same cards, titles
 * and columns (the order inside a column may differ: concurrent inserts are ordered by each
 * system's own rule).
 *
 * - Canon: BoardMachine commands through CanonClients over MemoryNetwork (codec frames) to a
 *   Hub on MemoryStorage, on a VirtualRuntime with no latency.
 * - Yjs: `cards` Y.Map of Y.Map {title, col}, `columns` Y.Map of Y.Array of ids; one
 *   transaction per op; V1 updates (y-websocket's), star through a server Y.Doc.
 * - Automerge: the same shape (ImmutableString for ids, titles and columns: scalars, like the
 *   others; plain strings would make every id a collaborative text object); one `change` per
 *   op; getLastLocalChange / applyChanges, star through a server document.
 * The peers' messages go through StarLinks on a VirtualRuntime, the same delivery model as
 * Canon's MemoryNetwork.
 *
 * Figures: time until all replicas applied all ops; bytes on the wire per op (WebSocket
 * loopback run: Canon's WsServer + ws clients, the peers' relay + ws clients); final stored
 * size (Canon: the hub's log in storage; Yjs: encodeStateAsUpdate; Automerge: save); memory
 * (heap and RSS deltas after GC, whole system of 5 replicas + server, in a fresh process).
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import { CanonClient, Hub, encodeCanonical, seededRandom, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { check, figure, now, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { BoardMachine, COLUMNS, type BoardState } from "./peers-machines.js"
import {
  CountingServer, SYSTEMS, StarLinks, UNLIMITED, backToBack, medianMemoryInChildren, openSocket, pick, startRelay, stopwatch, triple, turn, waitFor,
  type Elapsed, type MemoryDelta, type Sys, relayYjs, YJS_REMOTE } from "./peers-common.js"
import { storedBytes } from "./peers-text.js"

const DOC = "board"

export type BoardOp =
  | { readonly t: "add"; readonly id: string; readonly col: string; readonly pos: number; readonly title: string }
  | { readonly t: "rename"; readonly id: string; readonly title: string }
  | { readonly t: "move"; readonly id: string; readonly col: string; readonly pos: number }
  | { readonly t: "delete"; readonly id: string }

export interface BoardScript {
  /** rounds[r][i]: replica i's ops in round r, in order. */
  readonly rounds: ReadonlyArray<ReadonlyArray<ReadonlyArray<BoardOp>>>
  readonly ops: number
  /** The final board of the sequential model: id -> [title, col]. */
  readonly final: ReadonlyMap<string, readonly [string, string]>
}

const WORDS = ["plan", "ship", "fix", "test", "review", "draft", "deploy", "design", "spec", "bench", "write", "call"]

/**
 * The seeded script: per op, add 22%, rename 38%, move 22%, delete 18% (a board that grows
 * slowly: ~4% of ops net new cards). A card is touched by one replica per round.
 */
export const boardScript = (seed: number, replicas: number, rounds: number, opsPerRound: number): BoardScript => {
  const rnd = seededRandom(seed)
  const int = (n: number) => Math.floor(rnd() * n)
  const cards = new Map<string, { title: string; col: string }>()
  const columns = new Map<string, string[]>(COLUMNS.map((c) => [c, []]))
  const ids: string[] = []
  const out: BoardOp[][][] = []
  let made = 0
  const title = () => `${WORDS[int(WORDS.length)]} ${WORDS[int(WORDS.length)]} #${int(10_000)}`
  for (let r = 0; r < rounds; r++) {
    const owner = new Map<string, number>()
    const round: BoardOp[][] = []
    for (let i = 0; i < replicas; i++) {
      const ops: BoardOp[] = []
      for (let k = 0; k < opsPerRound; k++) {
        const roll = rnd()
        // A card this replica may touch: known to all (or its own this round), not another's this round.
        let target: string | undefined
        if (roll >= 0.22 && ids.length > 0) {
          for (let tries = 0; tries < 8 && target === undefined; tries++) {
            const id = ids[int(ids.length)]!
            const o = owner.get(id)
            if (o === undefined || o === i) target = id
          }
        }
        if (target === undefined) {
          const id = `r${i}-${made++}`
          const col = COLUMNS[int(COLUMNS.length)]!
          const list = columns.get(col)!
          const pos = int(list.length + 1)
          const t = title()
          ops.push({ t: "add", id, col, pos, title: t })
          cards.set(id, { title: t, col })
          list.splice(pos, 0, id)
          ids.push(id)
          owner.set(id, i)
          continue
        }
        owner.set(target, i)
        const card = cards.get(target)!
        if (roll < 0.6) {
          const t = title()
          ops.push({ t: "rename", id: target, title: t })
          card.title = t
        } else if (roll < 0.82) {
          const col = COLUMNS[int(COLUMNS.length)]!
          const from = columns.get(card.col)!
          from.splice(from.indexOf(target), 1)
          const to = columns.get(col)!
          const pos = int(to.length + 1)
          ops.push({ t: "move", id: target, col, pos })
          to.splice(pos, 0, target)
          card.col = col
        } else {
          ops.push({ t: "delete", id: target })
          const from = columns.get(card.col)!
          from.splice(from.indexOf(target), 1)
          cards.delete(target)
          ids.splice(ids.indexOf(target), 1)
        }
      }
      round.push(ops)
    }
    out.push(round)
  }
  const final = new Map([...cards].map(([id, c]) => [id, [c.title, c.col] as const]))
  return { rounds: out, ops: rounds * replicas * opsPerRound, final }
}

/** JSON with object keys sorted: equal content, equal text, whatever the insertion order. */
const stable = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]])) : x)

/** A board as [id, title, col] sorted by id, plus each column's ids as a set signature. */
const signature = (cards: Iterable<readonly [string, string, string]>): string => {
  const rows = [...cards].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return JSON.stringify(rows)
}

const expectedSignature = (script: BoardScript): string => signature([...script.final].map(([id, [t, c]]) => [id, t, c] as const))

/** Checks a board: its cards match the script's, each column lists exactly its cards. */
const checkBoard = (script: BoardScript, who: string, cards: Array<readonly [string, string, string]>, columns: Record<string, string[]>): void => {
  check(signature(cards) === expectedSignature(script), `${who}: the cards equal the script's`)
  for (const c of COLUMNS) {
    const listed = [...(columns[c] ?? [])].sort()
    const members = cards.filter((x) => x[2] === c).map((x) => x[0]).sort()
    check(JSON.stringify(listed) === JSON.stringify(members), `${who}: column ${c} lists exactly its cards`)
  }
}

// ---- the three systems, in memory ----

/** A running board of one system: apply ops, drain the network, inspect. */
export interface BoardWorld {
  apply(replica: number, op: BoardOp): Promise<void> | void
  drain(): Promise<void>
  /** Checks every replica against the script. */
  verify(script: BoardScript): void
  storedBytes(): Promise<number>
  close(): Promise<void>
}

export const canonArgs = (op: BoardOp): [string, Record<string, unknown>] => {
  switch (op.t) {
    case "add": return ["add", { id: op.id, col: op.col, pos: op.pos, title: op.title }]
    case "rename": return ["rename", { id: op.id, title: op.title }]
    case "move": return ["move", { id: op.id, col: op.col, pos: op.pos }]
    case "delete": return ["delete", { id: op.id }]
  }
}

const canonBoardRows = (s: BoardState): Array<readonly [string, string, string]> =>
  Object.keys(s.cards).map((id) => [id, s.cards[id]!.title, s.cards[id]!.col] as const)

const canonColumns = (s: BoardState): Record<string, string[]> => {
  const out: Record<string, string[]> = {}
  for (const c of COLUMNS) out[c] = [...s.columns[c]!]
  return out
}

export const canonBoard = async (replicas: number): Promise<BoardWorld & { snapshotBytes(): number }> => {
  const runtime = new VirtualRuntime(11)
  const network = new MemoryNetwork(runtime, { encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [BoardMachine], storage, runtime, limits: UNLIMITED })
  network.listen(hub)
  const clients: CanonClient[] = []
  const docs: Array<Doc<typeof BoardMachine>> = []
  for (let i = 0; i < replicas; i++) {
    const client = await CanonClient.open({ transport: network.transport(`r${i}`), runtime, clientId: `replica-${i}` })
    clients.push(client)
    docs.push(await client.open(BoardMachine, DOC))
  }
  await runtime.run()
  let rejected = 0
  for (const d of docs) d.on("rejected", () => rejected++)
  return {
    apply: async (i, op) => {
      const [name, args] = canonArgs(op)
      docs[i]!.submit(name as never, args as never)
      // Its own message: the outbox flushes before the next op (a user acts, then acts again).
      await turn()
    },
    drain: async () => {
      await runtime.run()
    },
    verify: (script) => {
      check(rejected === 0, `Canon: no command rejected (${rejected})`)
      const seq = docs[0]!.confirmedSeq
      for (const [i, d] of docs.entries()) {
        check(d.pendingCount === 0 && d.confirmedSeq === seq && seq === script.ops, `Canon replica ${i}: all ${script.ops} ops confirmed (${d.confirmedSeq}, ${d.pendingCount} pending)`)
        const s = d.state as BoardState
        checkBoard(script, `Canon replica ${i}`, canonBoardRows(s), canonColumns(s))
      }
      const first = stable(docs[0]!.snapshot())
      for (const d of docs) check(stable(d.snapshot()) === first, "Canon replicas are identical")
    },
    storedBytes: () => storedBytes(storage),
    snapshotBytes: () => encodeCanonical(docs[0]!.snapshot()).length,
    close: async () => {
      for (const c of clients) await c.close()
      await hub.close()
    },
  }
}

/** Yjs: the board's shape, and op application on a Y.Doc (one transaction per op). */
const yjsInit = (doc: Y.Doc): void => {
  const columns = doc.getMap<Y.Array<string>>("columns")
  doc.transact(() => {
    for (const c of COLUMNS) columns.set(c, new Y.Array<string>())
  })
}

export const yjsApply = (doc: Y.Doc, op: BoardOp): void => {
  const cards = doc.getMap<Y.Map<string>>("cards")
  const columns = doc.getMap<Y.Array<string>>("columns")
  const remove = (col: string, id: string) => {
    const list = columns.get(col)!
    list.delete(list.toArray().indexOf(id), 1)
  }
  doc.transact(() => {
    switch (op.t) {
      case "add": {
        const card = new Y.Map<string>()
        card.set("title", op.title)
        card.set("col", op.col)
        cards.set(op.id, card)
        const list = columns.get(op.col)!
        list.insert(Math.min(op.pos, list.length), [op.id])
        return
      }
      case "rename":
        cards.get(op.id)!.set("title", op.title)
        return
      case "move": {
        const card = cards.get(op.id)!
        remove(card.get("col")!, op.id)
        const list = columns.get(op.col)!
        list.insert(Math.min(op.pos, list.length), [op.id])
        card.set("col", op.col)
        return
      }
      case "delete": {
        const card = cards.get(op.id)!
        remove(card.get("col")!, op.id)
        cards.delete(op.id)
      }
    }
  })
}

const yjsRows = (doc: Y.Doc): { rows: Array<readonly [string, string, string]>; columns: Record<string, string[]> } => {
  const rows: Array<readonly [string, string, string]> = []
  doc.getMap<Y.Map<string>>("cards").forEach((card, id) => rows.push([id, card.get("title")!, card.get("col")!]))
  const columns: Record<string, string[]> = {}
  doc.getMap<Y.Array<string>>("columns").forEach((list, c) => (columns[c] = list.toArray()))
  return { rows, columns }
}

/** The initial Yjs board every replica starts from (one update, from one seed doc). */
const yjsSeed = (): Uint8Array => {
  const seed = new Y.Doc()
  seed.clientID = 1_000_000
  yjsInit(seed)
  const u = Y.encodeStateAsUpdate(seed)
  seed.destroy()
  return u
}

const REMOTE = YJS_REMOTE

export const yjsBoard = (replicas: number): BoardWorld & { docs: Y.Doc[] } => {
  const runtime = new VirtualRuntime(11)
  const links = new StarLinks(runtime)
  const seed = yjsSeed()
  const server = new Y.Doc()
  Y.applyUpdate(server, seed, REMOTE)
  const docs: Y.Doc[] = []
  for (let i = 0; i < replicas; i++) {
    const doc = new Y.Doc()
    doc.clientID = i + 1
    Y.applyUpdate(doc, seed, REMOTE)
    docs.push(doc)
  }
  relayYjs(links, server, docs)
  return {
    docs,
    apply: (i, op) => yjsApply(docs[i]!, op),
    drain: async () => {
      await runtime.run()
    },
    verify: (script) => {
      for (const [i, d] of [...docs, server].entries()) {
        const { rows, columns } = yjsRows(d)
        checkBoard(script, `Yjs doc ${i}`, rows, columns)
      }
      const first = stable(docs[0]!.toJSON())
      for (const d of [...docs, server]) check(stable(d.toJSON()) === first, "Yjs docs are identical")
    },
    storedBytes: async () => Y.encodeStateAsUpdate(server).length,
    close: async () => {
      for (const d of docs) d.destroy()
      server.destroy()
    },
  }
}

/** Automerge: the board's shape. Strings are ImmutableString (scalars, as in the others). */
export type AmBoard = {
  cards: Record<string, { title: A.ImmutableString; col: A.ImmutableString }>
  columns: Record<string, A.ImmutableString[]>
}

const amSeed = (): Uint8Array => {
  const columns: Record<string, A.ImmutableString[]> = {}
  for (const c of COLUMNS) columns[c] = []
  const doc = A.from<AmBoard>({ cards: {}, columns }, { actor: "ff" })
  const bytes = A.save(doc)
  A.free(doc)
  return bytes
}

const actorOf = (i: number): string => (i + 1).toString(16).padStart(2, "0")

/** Index of `id` in a column, read from the materialized document (outside a change). */
const amIndex = (list: ReadonlyArray<A.ImmutableString>, id: string): number => {
  for (let k = 0; k < list.length; k++) if (list[k]!.val === id) return k
  return -1
}

export const automergeApply = (doc: A.Doc<AmBoard>, op: BoardOp): A.Doc<AmBoard> => {
  switch (op.t) {
    case "add":
      return A.change(doc, (d) => {
        d.cards[op.id] = { title: new A.ImmutableString(op.title), col: new A.ImmutableString(op.col) }
        const list = d.columns[op.col]!
        list.splice(Math.min(op.pos, list.length), 0, new A.ImmutableString(op.id))
      })
    case "rename":
      return A.change(doc, (d) => {
        d.cards[op.id]!.title = new A.ImmutableString(op.title)
      })
    case "move": {
      const from = doc.cards[op.id]!.col.val
      const at = amIndex(doc.columns[from]!, op.id)
      return A.change(doc, (d) => {
        d.columns[from]!.splice(at, 1)
        const list = d.columns[op.col]!
        list.splice(Math.min(op.pos, list.length), 0, new A.ImmutableString(op.id))
        d.cards[op.id]!.col = new A.ImmutableString(op.col)
      })
    }
    case "delete": {
      const from = doc.cards[op.id]!.col.val
      const at = amIndex(doc.columns[from]!, op.id)
      return A.change(doc, (d) => {
        d.columns[from]!.splice(at, 1)
        delete d.cards[op.id]
      })
    }
  }
}

const amRows = (doc: A.Doc<AmBoard>): { rows: Array<readonly [string, string, string]>; columns: Record<string, string[]> } => {
  const rows = Object.keys(doc.cards).map((id) => [id, doc.cards[id]!.title.val, doc.cards[id]!.col.val] as const)
  const columns: Record<string, string[]> = {}
  for (const c of Object.keys(doc.columns)) columns[c] = doc.columns[c]!.map((s) => s.val)
  return { rows, columns }
}

export const automergeBoard = (replicas: number): BoardWorld & { docs: Array<A.Doc<AmBoard>> } => {
  const runtime = new VirtualRuntime(11)
  const links = new StarLinks(runtime)
  const seed = amSeed()
  let server = A.load<AmBoard>(seed, { actor: "fe" })
  const docs: Array<A.Doc<AmBoard>> = []
  for (let i = 0; i < replicas; i++) docs.push(A.load<AmBoard>(seed, { actor: actorOf(i) }))
  const world = {
    docs,
    apply: (i: number, op: BoardOp) => {
      docs[i] = automergeApply(docs[i]!, op)
      const change = A.getLastLocalChange(docs[i]!)!
      links.send(`r${i}`, "server", change, (bytes) => {
        ;[server] = A.applyChanges(server, [bytes])
        for (let j = 0; j < docs.length; j++) {
          if (j !== i) links.send("server", `r${j}`, bytes, (b) => {
            ;[docs[j]] = A.applyChanges(docs[j]!, [b])
          })
        }
      })
    },
    drain: async () => {
      await runtime.run()
    },
    verify: (script: BoardScript) => {
      for (const [i, d] of [...docs, server].entries()) {
        const { rows, columns } = amRows(d)
        checkBoard(script, `Automerge doc ${i}`, rows, columns)
      }
      const first = stable(docs[0])
      for (const d of [...docs, server]) check(stable(d) === first, "Automerge docs are identical")
    },
    storedBytes: async () => A.save(server).length,
    close: async () => {
      for (const d of docs) A.free(d)
      A.free(server)
    },
  }
  return world
}

/** Runs the script on a world: each round, every replica's ops, then the network drains. */
export const runBoard = async (world: BoardWorld, script: BoardScript): Promise<Elapsed> => {
  const watch = stopwatch()
  for (const round of script.rounds) {
    for (const [i, ops] of round.entries()) for (const op of ops) await world.apply(i, op)
    await world.drain()
  }
  return watch()
}

export const makeBoard = async (sys: Sys, replicas: number): Promise<BoardWorld> =>
  sys === "canon" ? canonBoard(replicas) : sys === "yjs" ? yjsBoard(replicas) : automergeBoard(replicas)

// ---- wire bytes: WebSocket loopback ----

const canonBoardWire = async (script: BoardScript, replicas: number): Promise<{ up: number; down: number }> => {
  const counting = await CountingServer.start()
  const hub = new Hub({ machines: [BoardMachine], storage: new MemoryStorage(), runtime: systemRuntime, limits: UNLIMITED })
  const ws = await WsServer.start(hub, { server: counting.server })
  const clients: CanonClient[] = []
  try {
    const docs: Array<Doc<typeof BoardMachine>> = []
    for (let i = 0; i < replicas; i++) {
      const client = await CanonClient.open({ transport: wsClientTransport(counting.url), runtime: systemRuntime, clientId: `replica-${i}` })
      clients.push(client)
      docs.push(await client.open(BoardMachine, DOC))
    }
    await waitFor(() => docs.every((d) => d.synced), "every replica to sync")
    counting.mark()
    let submitted = 0
    for (const round of script.rounds) {
      for (const [i, ops] of round.entries()) {
        for (const op of ops) {
          const [name, args] = canonArgs(op)
          docs[i]!.submit(name as never, args as never)
          submitted++
          await turn()
        }
      }
      const expected = submitted
      await waitFor(() => docs.every((d) => d.pendingCount === 0 && d.confirmedSeq === expected), "every replica to apply the round")
    }
    await counting.quiet()
    return counting.since()
  } finally {
    for (const c of clients) await c.close()
    await ws.close()
    await hub.close()
    await counting.close()
  }
}

/** A peer over WebSocket loopback: replicas send each op's update to a relay that fans it out. */
const peerBoardWire = async (
  script: BoardScript,
  replicas: number,
  make: (i: number, send: (u: Uint8Array) => void) => { apply(op: BoardOp): void; receive(u: Uint8Array): void },
  serverReceive: (u: Uint8Array) => void,
): Promise<{ up: number; down: number }> => {
  const counting = await CountingServer.start()
  const wss = startRelay(counting.server, serverReceive)
  const sockets = []
  try {
    const received: number[] = []
    const peers = []
    for (let i = 0; i < replicas; i++) {
      const socket = await openSocket(counting.url)
      sockets.push(socket)
      received.push(0)
      const peer = make(i, (u) => socket.send(u))
      socket.on("message", (data: Buffer) => {
        received[i]!++
        peer.receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      })
      peers.push(peer)
    }
    counting.mark()
    let sent = 0
    const own = received.map(() => 0)
    for (const round of script.rounds) {
      for (const [i, ops] of round.entries()) {
        for (const op of ops) {
          peers[i]!.apply(op)
          sent++
          own[i]!++
          await turn()
        }
      }
      // Each replica receives every update but its own.
      const total = sent
      await waitFor(() => received.every((n, i) => n === total - own[i]!), "every replica to receive the round")
    }
    await counting.quiet()
    return counting.since()
  } finally {
    for (const s of sockets) s.close()
    await new Promise<void>((r) => wss.close(() => r()))
    await counting.close()
  }
}

const yjsBoardWire = (script: BoardScript, replicas: number) => {
  const seed = yjsSeed()
  const server = new Y.Doc()
  Y.applyUpdate(server, seed, REMOTE)
  const docs: Y.Doc[] = []
  return peerBoardWire(script, replicas, (i, send) => {
    const doc = new Y.Doc()
    doc.clientID = i + 1
    Y.applyUpdate(doc, seed, REMOTE)
    doc.on("update", (u: Uint8Array, origin: unknown) => {
      if (origin !== REMOTE) send(u)
    })
    docs.push(doc)
    return { apply: (op) => yjsApply(doc, op), receive: (u) => Y.applyUpdate(doc, u, REMOTE) }
  }, (u) => Y.applyUpdate(server, u, REMOTE)).finally(() => {
    for (const d of docs) d.destroy()
    server.destroy()
  })
}

const automergeBoardWire = (script: BoardScript, replicas: number) => {
  const seed = amSeed()
  let server = A.load<AmBoard>(seed, { actor: "fe" })
  return peerBoardWire(script, replicas, (i, send) => {
    let doc = A.load<AmBoard>(seed, { actor: actorOf(i) })
    return {
      apply: (op) => {
        doc = automergeApply(doc, op)
        send(A.getLastLocalChange(doc)!)
      },
      receive: (u) => {
        ;[doc] = A.applyChanges(doc, [u])
      },
    }
  }, (u) => {
    ;[server] = A.applyChanges(server, [u])
  })
}

// ---- the workload ----

export interface BoardSizes {
  readonly replicas: number
  readonly rounds: number
  readonly opsPerRound: number
  readonly plan: Plan
  readonly memory: boolean
  /** Child processes per system for the memory figures (the median is reported). */
  readonly memoryRuns: number
}

export const boardWorkload = async (ctx: SuiteContext, s: BoardSizes, add: (f: Figure) => void): Promise<void> => {
  const script = boardScript(42, s.replicas, s.rounds, s.opsPerRound)
  ctx.log(`board: ${s.replicas} replicas x ${s.rounds} rounds x ${s.opsPerRound} ops = ${script.ops.toLocaleString("en-US")} ops, ${script.final.size} cards at the end`)
  const sizes: Partial<Record<Sys, number>> = {}
  let snapshot = 0
  const all = await backToBack<"ms" | "cpu">(s.plan, SYSTEMS, async (sys, measured) => {
    const world = await makeBoard(sys, s.replicas)
    const { ms, cpu } = await runBoard(world, script)
    world.verify(script)
    if (measured && sizes[sys] === undefined) {
      sizes[sys] = await world.storedBytes()
      if (sys === "canon") snapshot = (world as Awaited<ReturnType<typeof canonBoard>>).snapshotBytes()
    }
    await world.close()
    return { ms, cpu }
  })
  const scope = `${script.ops.toLocaleString("en-US")} ops, ${s.replicas} replicas`
  triple(add, "board", "time", `1. board: time until all replicas applied all ops (${scope})`, "ms", pick(all, "ms"),
    { note: "in memory on a VirtualRuntime, no latency; each op its own message; Canon: MemoryNetwork with codec frames (protocol 2), Hub on MemoryStorage; peers: star through a server doc", yjsGoal: { op: "<=", value: 1 } })
  triple(add, "board", "cpu", `1. board: CPU time of that run (${scope})`, "ms", pick(all, "cpu"),
    { note: "process CPU (user + system, all threads) over the same run: less sensitive than wall time to other work on the machine" })
  triple(add, "board", "stored", "1. board: final stored size (Canon: hub log + records; Yjs: encodeStateAsUpdate; Automerge: save)", "bytes",
    { canon: [sizes.canon!], yjs: [sizes.yjs!], automerge: [sizes.automerge!] },
    { note: `Canon's state snapshot (canonical encoding, what a replica stores) is ${snapshot.toLocaleString("en-US")} bytes` })
  add(figure("board.snapshot.canon", "1. board: Canon state snapshot (canonical bytes, for reference)", "bytes", [snapshot]))

  const t0 = now()
  const cw = await canonBoardWire(script, s.replicas)
  const t1 = now()
  const yw = await yjsBoardWire(script, s.replicas)
  const t2 = now()
  const aw = await automergeBoardWire(script, s.replicas)
  ctx.log(`  wire runs: Canon ${((t1 - t0) / 1000).toFixed(1)} s, Yjs ${((t2 - t1) / 1000).toFixed(1)} s, Automerge ${((now() - t2) / 1000).toFixed(1)} s`)
  const ops = script.ops
  triple(add, "board", "wire", "1. board: bytes on the wire per op, all replicas, both directions", "B/op",
    { canon: [(cw.up + cw.down) / ops], yjs: [(yw.up + yw.down) / ops], automerge: [(aw.up + aw.down) / ops] },
    { note: "WebSocket loopback, TCP payload at the server (frames included), one run. Canon (protocol 2): submits, results, entries to the 4 others (the submitter's own elided), acks; peers: update up, relayed to the 4 others", yjsGoal: { op: "<=", value: 1 } })
  triple(add, "board", "wire-up", "1. board: bytes per op, replicas to server only", "B/op",
    { canon: [cw.up / ops], yjs: [yw.up / ops], automerge: [aw.up / ops] })

  if (s.memory) {
    const mem: Partial<Record<Sys, MemoryDelta>> = {}
    for (const sys of SYSTEMS) mem[sys] = await medianMemoryInChildren(s.memoryRuns, { workload: "board", sys, replicas: s.replicas, rounds: s.rounds, opsPerRound: s.opsPerRound })
    triple(add, "board", "heap", "1. board: heap held at the end, 5 replicas + server (after GC)", "bytes",
      { canon: [mem.canon!.heap], yjs: [mem.yjs!.heap], automerge: [mem.automerge!.heap] }, { note: "median of fresh processes per system; Canon's includes the hub's in-memory log (MemoryStorage)" })
    triple(add, "board", "rss", "1. board: RSS held at the end, 5 replicas + server (after GC)", "bytes",
      { canon: [mem.canon!.rss], yjs: [mem.yjs!.rss], automerge: [mem.automerge!.rss] }, { note: "RSS includes Automerge's WebAssembly memory; differences of a few MB are noise (pages the allocator keeps or returns)" })
  }
}

/**
 * Issue 11's board row: the board workload of bench/peers-board.ts (5 replicas, seeded add /
 * rename / move / delete in rounds) with card descriptions as collaborative text, several
 * replicas typing into the same card's description at once each round (bench/crdt-board-script.ts).
 * Figure: time until all replicas agree (every op applied, every description equal on every
 * replica), Canon over Yjs, measured back to back.
 *
 * - Canon, as the demo does it (apps/demo/board.ts): the board is a BoardMachine document;
 *   each card's description is its own `CardText` document (a `yText()` CRDT field) at
 *   `cardTextDocId(board, card)`, opened by every replica when the card is first typed into
 *   (everyone looks at the card being edited). Keystrokes are edits of the field's Y.Text, so
 *   the field's outbox turns them into `$crdt.description` merges (coalesced while one is in
 *   flight). CanonClients over MemoryNetwork (codec frames) to a Hub on MemoryStorage, on a
 *   VirtualRuntime with no latency.
 * - Yjs: peers-board's Y.Doc board, plus a `desc` Y.Text in each card's Y.Map, made in the
 *   card's add transaction; one transaction (one update, one message) per keystroke; star
 *   through a server Y.Doc over StarLinks on a VirtualRuntime.
 * Each board op is its own message (Canon: an event-loop turn after each submit, as in
 * peers-board). A Yjs keystroke is its own update and message; a Canon keystroke goes to the
 * field's outbox, which sends the first of a round's keystrokes at once and coalesces the
 * rest while that merge is unconfirmed (as it does for a real typist during a round trip).
 * A round's messages are delivered when it drains.
 * After each run the bench checks every replica against the script (the board's cards, each
 * description's length) and against each other (every description equal), and throws if not.
 *
 * Where Canon's time goes (full size, 2026-12-01, 2 shared cores, load ~2-3; ~1.4x Yjs): the
 * typing costs Canon less than Yjs (Canon ~+0.4 s over the same run without keystrokes, Yjs
 * ~+0.6 s: a typist's keystrokes of a round travel as one or two coalesced merges, where Yjs
 * relays every keystroke's update to every peer). The excess is the board: without keystrokes
 * Canon is ~1.9x Yjs, as the ordered ops cost the hub a commit each (fan-out through the
 * protocol codec, storage) and the replicas an integrate and rebase (the `peers` suite's board
 * row, the same ops without descriptions, is ~1.5x Yjs), plus one description document opened
 * per card typed into on every replica (`--cpu-prof`: ~6% of Canon's run, mostly the field's
 * `new Y.Doc()` drawing a random guid, lib0 uuidv4 = 31 getRandomValues calls, ~0.3 ms per doc;
 * a fixed guid made Canon's run ~10% faster in a trial).
 */
import * as Y from "yjs"
import { CanonClient, Hub, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CardText, cardTextDocId } from "../apps/demo/card-text.js"
import { check, figure, median, type Figure, type Plan, type SuiteContext } from "./harness.js"
import { BoardMachine, type BoardState } from "./peers-machines.js"
import { canonArgs, yjsBoard, type BoardOp, type BoardScript } from "./peers-board.js"
import { UNLIMITED, backToBack, pick, stopwatch, turn, type Elapsed, type Sys } from "./peers-common.js"
import { descScript, type DescScript, type DescSizes, type Keystroke } from "./crdt-board-script.js"

const BOARD = "board"

export type DescSys = "canon" | "yjs"

/** A running board with descriptions, of one system. */
export interface DescWorld {
  apply(replica: number, op: BoardOp): Promise<void> | void
  /** Before a round's typing: every replica holds the card's description. */
  open(card: string): Promise<void> | void
  type(replica: number, card: string, key: Keystroke): Promise<void> | void
  /** Delivers everything sent; resolves once every replica applied it. */
  drain(): Promise<void>
  /** One card's description on every replica. */
  texts(card: string): string[]
  /** The final board, id -> [title, col], of replica `i`. */
  cards(replica: number): Map<string, readonly [string, string]>
  /** Throws if a replica has not applied every op and keystroke or the replicas differ. */
  verify(script: DescScript): void
  close(): Promise<void>
}

const sameBoard = (who: string, cards: Map<string, readonly [string, string]>, script: BoardScript): void => {
  const key = (m: ReadonlyMap<string, readonly [string, string]>) => JSON.stringify([...m].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
  check(key(cards) === key(script.final), `${who}: the cards equal the script's`)
}

/** What every system must end with: the script's board, and each description agreed and whole. */
const verifyWorld = (sys: string, world: DescWorld, script: DescScript, replicas: number): void => {
  for (let i = 0; i < replicas; i++) sameBoard(`${sys} replica ${i}`, world.cards(i), script.board)
  for (const [card, length] of script.lengths) {
    if (!script.typed.has(card)) continue
    const texts = world.texts(card)
    check(texts.every((t) => t === texts[0]), `${sys}: card ${card}'s description is equal on every replica (${texts.map((t) => t.length).join(", ")} chars)`)
    check(texts[0]!.length === length, `${sys}: card ${card}'s description holds every keystroke (${texts[0]!.length} chars, expected ${length})`)
  }
}

export const canonDescBoard = async (replicas: number): Promise<DescWorld> => {
  const runtime = new VirtualRuntime(11)
  const network = new MemoryNetwork(runtime, { encode: true })
  const hub = new Hub({ machines: [BoardMachine, CardText], storage: new MemoryStorage(), runtime, limits: UNLIMITED })
  network.listen(hub)
  const clients: CanonClient[] = []
  const boards: Array<Doc<typeof BoardMachine>> = []
  let rejected = 0
  for (let i = 0; i < replicas; i++) {
    const client = await CanonClient.open({ transport: network.transport(`r${i}`), runtime, clientId: `replica-${i}` })
    clients.push(client)
    const doc = await client.open(BoardMachine, BOARD)
    doc.on("rejected", () => rejected++)
    boards.push(doc)
  }
  await runtime.run()
  /** card -> its description document on each replica. */
  const descs = new Map<string, Array<Doc<typeof CardText>>>()
  const all = () => [...boards, ...[...descs.values()].flat()]
  const world: DescWorld = {
    apply: async (i, op) => {
      const [name, args] = canonArgs(op)
      boards[i]!.submit(name as never, args as never)
      await turn()
    },
    open: async (card) => {
      if (descs.has(card)) return
      const docs: Array<Doc<typeof CardText>> = []
      for (const c of clients) {
        const d = await c.open(CardText, cardTextDocId(BOARD, card))
        d.on("rejected", () => rejected++)
        docs.push(d)
      }
      descs.set(card, docs)
    },
    type: (i, card, key) => {
      const text = descs.get(card)![i]!.crdt.description
      // The field's outbox takes the change in a microtask, before the runner's next step; no
      // event-loop turn per keystroke (the Yjs side pays none either).
      if (key.t === "ins") text.insert(key.pos, key.text)
      else text.delete(key.pos, 1)
    },
    drain: async () => {
      // A confirmation releases the field's coalesced keystrokes (a microtask later): run
      // until nothing is pending anywhere.
      for (let k = 0; ; k++) {
        await runtime.run()
        if (all().every((d) => d.pendingCount === 0)) return
        check(k < 1_000, "Canon: a round's commands all get confirmed")
        await turn()
      }
    },
    texts: (card) => (descs.get(card) ?? []).map((d) => d.crdt.description.toString()),
    cards: (i) => {
      const s = boards[i]!.state as BoardState
      return new Map(Object.keys(s.cards).map((id) => [id, [s.cards[id]!.title, s.cards[id]!.col] as const]))
    },
    verify: (script) => {
      check(rejected === 0, `Canon: no command rejected (${rejected})`)
      for (const [i, d] of boards.entries()) {
        check(d.pendingCount === 0 && d.confirmedSeq === script.board.ops, `Canon replica ${i}: all ${script.board.ops} board ops confirmed (${d.confirmedSeq}, ${d.pendingCount} pending)`)
        const s = d.state as BoardState
        for (const [col, ids] of Object.entries(s.columns)) {
          check(JSON.stringify([...ids].sort()) === JSON.stringify(Object.keys(s.cards).filter((id) => s.cards[id]!.col === col).sort()), `Canon replica ${i}: column ${col} lists exactly its cards`)
        }
      }
      for (const [card, docs] of descs) check(docs.every((d) => d.pendingCount === 0), `Canon: card ${card}'s description has nothing pending`)
      check(descs.size === script.typed.size, `Canon: a description document per card typed into (${descs.size} of ${script.typed.size})`)
      verifyWorld("Canon", world, script, replicas)
    },
    close: async () => {
      for (const c of clients) await c.close()
      await hub.close()
    },
  }
  return world
}

export const yjsDescBoard = (replicas: number): DescWorld => {
  const board = yjsBoard(replicas)
  const desc = (doc: Y.Doc, card: string): Y.Text | undefined =>
    (doc.getMap<Y.Map<unknown>>("cards").get(card)?.get("desc") as Y.Text | undefined)
  const world: DescWorld = {
    apply: (i, op) => {
      const doc = board.docs[i]!
      // The description is made with its card, in the same transaction (one update): a
      // Y.Text made later by two typists at once would be two texts, one of them lost.
      doc.transact(() => {
        void board.apply(i, op)
        if (op.t === "add") doc.getMap<Y.Map<unknown>>("cards").get(op.id)!.set("desc", new Y.Text())
      })
    },
    open: () => {},
    type: (i, card, key) => {
      const text = desc(board.docs[i]!, card)!
      if (key.t === "ins") text.insert(key.pos, key.text)
      else text.delete(key.pos, 1)
    },
    drain: () => board.drain(),
    texts: (card) => board.docs.map((d) => desc(d, card)?.toString() ?? "<no description>"),
    cards: (i) => {
      const out = new Map<string, readonly [string, string]>()
      board.docs[i]!.getMap<Y.Map<unknown>>("cards").forEach((c, id) => out.set(id, [c.get("title") as string, c.get("col") as string]))
      return out
    },
    verify: (script) => {
      // The board's own check also holds the server doc equal to the replicas (toJSON, descriptions included).
      board.verify(script.board)
      verifyWorld("Yjs", world, script, replicas)
    },
    close: () => board.close(),
  }
  return world
}

export const makeDescBoard = (sys: DescSys, replicas: number): Promise<DescWorld> | DescWorld =>
  sys === "canon" ? canonDescBoard(replicas) : yjsDescBoard(replicas)

/**
 * Runs the script on a world: each round, every replica's board ops, then the round's typing
 * (typists interleaved keystroke by keystroke), then the network drains and the round's
 * description must be equal everywhere.
 */
export const runDescBoard = async (world: DescWorld, script: DescScript): Promise<Elapsed> => {
  const watch = stopwatch()
  for (const [r, round] of script.board.rounds.entries()) {
    for (const [i, ops] of round.entries()) for (const op of ops) await world.apply(i, op)
    const { card, keys } = script.typing[r]!
    if (card !== undefined) {
      await world.open(card)
      for (const { replica, key } of keys) await world.type(replica, card, key)
    }
    await world.drain()
    if (card !== undefined) {
      const texts = world.texts(card)
      check(texts.every((t) => t === texts[0]), `round ${r}: card ${card}'s description agrees on every replica after the drain`)
    }
  }
  return watch()
}

export interface DescBoardSizes extends DescSizes {
  readonly plan: Plan
}

export const DESC_QUICK: DescBoardSizes = { replicas: 5, rounds: 10, opsPerRound: 5, typists: 3, keysPerTypist: 10, plan: { warmup: 1, warmupMs: 0, runs: 3 } }
export const DESC_FULL: DescBoardSizes = { replicas: 5, rounds: 100, opsPerRound: 10, typists: 3, keysPerTypist: 20, plan: { warmup: 1, warmupMs: 0, runs: 5 } }

const SYSTEMS: ReadonlyArray<DescSys & Sys> = ["canon", "yjs"]

/** The row: time until all replicas agree, both systems, per-run ratio with its goal. */
export const descBoardWorkload = async (ctx: SuiteContext, s: DescBoardSizes): Promise<Figure[]> => {
  const script = descScript(42, s)
  const n = (x: number) => x.toLocaleString("en-US")
  ctx.log(`board + descriptions: ${s.replicas} replicas x ${s.rounds} rounds: ${n(script.board.ops)} board ops, ${n(script.keystrokes)} keystrokes (${s.typists} typists x ${s.keysPerTypist} per round into one card), ${script.typed.size} descriptions typed, ${script.board.final.size} cards at the end`)
  const all = await backToBack<"ms" | "cpu">(s.plan, SYSTEMS, async (sys) => {
    const world = await makeDescBoard(sys as DescSys, s.replicas)
    try {
      const { ms, cpu } = await runDescBoard(world, script)
      world.verify(script)
      return { ms, cpu }
    } finally {
      await world.close()
    }
  })
  const ms = pick(all, "ms")
  const cpu = pick(all, "cpu")
  const canon = ms.canon!
  const yjs = ms.yjs!
  const scope = `${n(script.board.ops)} ops + ${n(script.keystrokes)} keystrokes, ${s.replicas} replicas`
  ctx.log(`board + descriptions: Canon ${canon.map((x) => x.toFixed(0)).join("/")} ms, Yjs ${yjs.map((x) => x.toFixed(0)).join("/")} ms`)
  return [
    figure("board.time.canon", `6. board + concurrent descriptions: Canon, time until all replicas agree (${scope})`, "ms", canon,
      { note: "BoardMachine document + a CardText document (yText field) per card typed into, as the demo; CanonClients -> MemoryNetwork (codec frames, no latency) -> Hub on MemoryStorage, VirtualRuntime" }),
    figure("board.time.yjs", `6. board + concurrent descriptions: Yjs, same`, "ms", yjs,
      { note: "one Y.Doc (cards Y.Map with a desc Y.Text each), one update per op and keystroke, star through a server Y.Doc" }),
    figure("board.time.ratio", "6. board + concurrent descriptions: Canon / Yjs, time until all replicas agree", "x", canon.map((c, i) => c / yjs[i]!),
      { goal: { op: "<=", value: 1.0 }, note: "per run, back to back; where Canon's time goes: the header of bench/crdt-board.ts (the ordered board ops and a description document per card, not the typing)" }),
    figure("board.cpu.ratio", "6. board + concurrent descriptions: Canon / Yjs, CPU time of those runs", "x", cpu.canon!.map((c, i) => c / cpu.yjs![i]!),
      { note: `process CPU (user + system), less sensitive than wall time to other work on the machine; Canon ${median(cpu.canon!).toFixed(0)} ms, Yjs ${median(cpu.yjs!).toFixed(0)} ms` }),
  ]
}

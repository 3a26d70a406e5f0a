/**
 * A model check of presence views under random churn: three clients of two connections each
 * on two documents subscribe, subscribe again, unsubscribe (the app closing a document and
 * perhaps opening it again on the same connection), set and clear their presence, stop and
 * start reading, and close and reconnect, in random order with time passing between. Once
 * everyone reads and the hub has had time to relay, each live connection's view of each
 * document it has open (what it was sent, applied as a replica does: a document it has not
 * open drops it, a document opened again takes what was on its way) must be what the hub
 * holds: each client shown as the last set presence of its connections other than the one
 * looking (followers.ts `latestPresence`), no one else. And the hub keeps no presence
 * bookkeeping past that: nothing queued or owed, a note of what it showed a connection true, the last relay of each
 * client its presence as held, no note of a departed subscription for a connection that
 * follows the document again.
 *
 * Odd seeds unload a document as soon as nobody follows it, every third sets large presences
 * now and then (relays wait for the budgets). A failing seed prints its problems and step log;
 * CANON_PRESENCE_SEED=<n> replays that seed alone and prints what each connection read.
 * Before 13efd32 (a leave owed to a connection that unsubscribed was dropped) 34 of these 600
 * seeds ended with a departed client still shown; at 082438a one did (seed 375: the note of
 * what the connection may have been shown went with the document, unloaded before it
 * subscribed again).
 */
import { WirePeer, hubWorld } from "./support/hub-wire.js"
import type { Connection } from "../core/ports/transport.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { Todo } from "./support/machines.js"

type World = ReturnType<typeof hubWorld>

const SEEDS = 600
const STEPS = 200
const CLIENTS = ["clienta00000", "clientb00000", "clientc00000"] as const
const CONNECTIONS_PER_CLIENT = 2
const DOCS = ["room", "hall"] as const
/** Small, so a connection that stops reading is paused after a message or two. */
const HIGH_WATER = 200
/** Time enough, once everyone reads, for every relay and every paused connection's due. */
const SETTLE_MS = 20_000
/** A large presence: relayed to five others, about half a client's presence budget a second (followers.ts PRESENCE_CLIENT_BYTES_PER_SECOND). */
const LARGE_BYTES = 100_000

/** What this test reads of a document's followers (white box: what the hub holds). */
interface HeldFollower {
  readonly conn: Connection<ServerMessage>
  readonly clientId: string
  readonly closed: boolean
  readonly presence: unknown
  readonly presenceMessage: ServerMessage | undefined
  readonly presenceDue: ReadonlySet<string>
  readonly shown: ReadonlyMap<string, ServerMessage> | undefined
  readonly draining: unknown
}
interface HeldFollowers {
  readonly all: ReadonlyMap<Connection<ServerMessage>, HeldFollower>
  readonly presenceChanged: ReadonlyMap<string, unknown>
  readonly presenceJoined: ReadonlySet<HeldFollower>
  readonly presenceStart: ReadonlyMap<string, number>
  readonly presenceFinish: ReadonlyMap<string, number>
  /** Since 798b1ad. */
  readonly presenceRelayed?: ReadonlyMap<string, ServerMessage>
}
interface HeldSession {
  readonly conn: Connection<ServerMessage>
  readonly info: { readonly remoteAddress?: string } | undefined
  /** The clients it may have been shown on documents it unsubscribed from, by docId (hub.ts Session). */
  readonly departed?: ReadonlyMap<string, ReadonlySet<string>>
}

/** A deterministic generator (a seed replays exactly). */
const random = (seed: number) => {
  let s = seed >>> 0 || 1
  return (): number => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff
    return s / 0x80000000
  }
}

/** One connection of a client, and what its app shows of each document it has open. */
class Socket {
  /** docId → clientId → state, for the documents open on this connection. */
  readonly views = new Map<string, Map<string, unknown>>()
  private read = 0
  /** The presence messages it took, as they reached its documents (printed for a failing seed replayed). */
  readonly trace: string[] = []
  constructor(readonly name: string, readonly peer: WirePeer, readonly address: string) {}

  get live(): boolean {
    return this.peer.closed === undefined
  }

  /** Applies what it read since last time, as a replica routes it: by docId, to the document open then. */
  take(): void {
    const received = this.peer.received
    for (; this.read < received.length; this.read++) {
      const m = received[this.read]!
      if (m.type !== "presence") continue
      const view = this.views.get(m.docId)
      this.trace.push(`${view === undefined ? "dropped " : ""}${m.docId} ${m.clientId.slice(6, 7)}=${m.state === null ? "gone" : (m.state as { n?: number }).n}`)
      if (view === undefined) continue
      if (m.state === null) view.delete(m.clientId)
      else view.set(m.clientId, m.state)
    }
  }
}

/** The last set presence among `conns` other than `to` (followers.ts `latestPresence`). */
const latestPresence = (conns: ReadonlyArray<HeldFollower>, to: HeldFollower | undefined): HeldFollower | undefined => {
  let holder: HeldFollower | undefined
  for (const o of conns) if (o !== to && !o.closed && o.presence !== null) holder = o
  return holder
}

/** A view in short: each client (its first letter) and its state's number. */
const show = (view: ReadonlyMap<string, unknown>): string =>
  JSON.stringify([...view].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, s]) => [c.slice(6, 7), (s as { n?: number }).n]))

const runSeed = async (seed: number): Promise<{ readonly problems: string[]; readonly log: string[]; readonly traces: string[] }> => {
  const next = random(seed)
  const pick = <T>(items: ReadonlyArray<T>): T => items[Math.floor(next() * items.length)]!
  // Odd seeds unload a document as soon as nobody follows it; every third one sets large
  // presences now and then, so relays wait for the budgets.
  const unloadAtOnce = seed % 2 === 1
  const large = seed % 3 === 0
  const w: World = hubWorld({
    highWaterMark: HIGH_WATER,
    ...(unloadAtOnce ? { idleDocuments: { count: 0 } } : {}),
    ...(large ? { limits: { maxPresenceBytes: LARGE_BYTES + 100 } } : {}),
  }, seed)
  const secrets = new Map<string, string>(CLIENTS.map((c) => [c, newClientSecret(w.rt)]))
  const conns: Socket[] = []
  const log: string[] = []
  let addresses = 0
  const connect = async (clientId: string): Promise<Socket> => {
    const peer = new WirePeer(clientId)
    const address = `model:${seed}:${addresses++}`
    peer.listener = w.hub.accept(peer.conn, { remoteAddress: address })
    peer.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: secrets.get(clientId)! })
    await w.run(5)
    if (!peer.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} was not welcomed`)
    const c = new Socket(`${clientId.slice(6, 7)}${conns.length}`, peer, address)
    conns.push(c)
    return c
  }
  for (const clientId of CLIENTS) for (let i = 0; i < CONNECTIONS_PER_CLIENT; i++) await connect(clientId)

  let n = 0
  for (let step = 0; step < STEPS; step++) {
    // What each read so far reaches the documents open now.
    for (const c of conns) c.take()
    const c = pick(conns.filter((x) => x.live))
    const docId = pick(DOCS)
    const open = c.views.has(docId)
    const x = next()
    if (x < 0.2) {
      if (!open) {
        c.views.set(docId, new Map())
        w.subscribe(c.peer, docId)
        log.push(`${c.name} subscribe ${docId}`)
      } else {
        w.subscribe(c.peer, docId, c.peer.of("synced", docId).at(-1)?.seq ?? 0)
        log.push(`${c.name} subscribe-again ${docId}`)
      }
    } else if (x < 0.3) {
      if (open) {
        c.views.delete(docId)
        c.peer.send({ type: "unsubscribe", docId })
        log.push(`${c.name} unsubscribe ${docId}`)
      }
    } else if (x < 0.6) {
      if (open) {
        const state = next() < 0.25 ? null : large && next() < 0.2 ? { n: n++, pad: "p".repeat(LARGE_BYTES) } : { n: n++ }
        c.peer.send({ type: "presence-set", docId, state })
        log.push(`${c.name} ${state === null ? "clear" : `set ${state.n}`} ${docId}`)
      }
    } else if (x < 0.7) {
      c.peer.stall()
      log.push(`${c.name} stall`)
    } else if (x < 0.8) {
      c.peer.read()
      log.push(`${c.name} read`)
    } else if (x < 0.83) {
      c.peer.conn.close()
      const again = await connect(c.peer.clientId)
      log.push(`${c.name} close, ${again.name} connects`)
    } else {
      const ms = Math.floor(next() * 120)
      await w.run(ms)
      log.push(`run ${ms}`)
    }
  }
  for (const c of conns) c.peer.read()
  await w.run(SETTLE_MS)
  for (const c of conns) c.take()

  const problems: string[] = []
  const traces = () => conns.map((c) => `${c.name}: ${c.trace.join(", ")}`)
  const sessions = (w.hub as unknown as { sessions: ReadonlySet<HeldSession> }).sessions
  const byHubConn = new Map<Connection<ServerMessage>, Socket>()
  const sessionOf = new Map<Connection<ServerMessage>, HeldSession>()
  for (const s of sessions) {
    const c = conns.find((x) => x.address === s.info?.remoteAddress)
    if (c !== undefined) byHubConn.set(s.conn, c)
    sessionOf.set(s.conn, s)
  }
  for (const docId of DOCS) {
    const held = ((await w.hub.doc(docId, Todo)) as unknown as { followers: HeldFollowers }).followers
    const followers = [...held.all.values()]
    const byClient = new Map<string, HeldFollower[]>()
    for (const f of followers) byClient.set(f.clientId, [...(byClient.get(f.clientId) ?? []), f])
    const following = new Set<Socket>()
    for (const f of followers) {
      const c = byHubConn.get(f.conn)
      if (c === undefined || !c.live) {
        problems.push(`${docId}: a follower of a closed connection (${f.clientId})`)
        continue
      }
      following.add(c)
      const view = c.views.get(docId)
      if (view === undefined) {
        problems.push(`${c.name} follows ${docId} with the document closed`)
        continue
      }
      const want = new Map<string, unknown>()
      for (const [clientId, list] of byClient) {
        const holder = latestPresence(list, f)
        if (holder !== undefined) want.set(clientId, holder.presence)
      }
      if (show(view) !== show(want)) problems.push(`${c.name} on ${docId} shows ${show(view)}, the hub holds ${show(want)}`)
      if (f.presenceDue.size > 0) problems.push(`${c.name} on ${docId} is still owed ${[...f.presenceDue]}`)
      // A note of what it was shown, left by a relay it needed not be sent (its own change), is what it holds.
      for (const [clientId, message] of f.shown ?? []) {
        if (message !== latestPresence(byClient.get(clientId) ?? [], f)?.presenceMessage) problems.push(`${c.name} on ${docId} is noted as shown ${JSON.stringify(message)}, not what it holds of ${clientId}`)
      }
      if (f.draining !== undefined && f.draining !== false) problems.push(`${c.name} on ${docId} still has a drain timer armed`)
      if (sessionOf.get(f.conn)?.departed?.has(docId)) problems.push(`${c.name} follows ${docId} and is noted as departed from it too`)
    }
    for (const c of conns) if (c.live && c.views.has(docId) && !following.has(c)) problems.push(`${c.name} has ${docId} open and does not follow it`)
    if (held.presenceChanged.size + held.presenceJoined.size + held.presenceStart.size + held.presenceFinish.size > 0) {
      problems.push(`${docId}: presence bookkeeping left: changed ${held.presenceChanged.size}, joined ${held.presenceJoined.size}, start ${held.presenceStart.size}, finish ${held.presenceFinish.size}`)
    }
    if (held.presenceRelayed !== undefined) {
      for (const [clientId, list] of byClient) {
        const holder = latestPresence(list, undefined)
        const relayed = held.presenceRelayed.get(clientId)
        if (holder === undefined ? relayed !== undefined : relayed !== holder.presenceMessage) problems.push(`${docId}: ${clientId} last relayed as ${JSON.stringify(relayed)}, held as ${JSON.stringify(holder?.presence ?? null)}`)
      }
      for (const clientId of held.presenceRelayed.keys()) if (!byClient.has(clientId)) problems.push(`${docId}: ${clientId} is gone and still noted as last relayed`)
    }
  }
  await w.hub.close()
  return { problems, log, traces: traces() }
}

test("every live connection ends showing the presence the hub holds, whatever the churn", async () => {
  const only = process.env.CANON_PRESENCE_SEED
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: SEEDS }, (_, i) => i + 1)
  const failed: number[] = []
  for (const seed of seeds) {
    const { problems, log, traces } = await runSeed(seed)
    if (problems.length === 0) continue
    failed.push(seed)
    // The first failing seed in full (replay it alone with CANON_PRESENCE_SEED).
    if (failed.length === 1 || only !== undefined) {
      console.log(`presence model, seed ${seed} (CANON_PRESENCE_SEED=${seed} to replay):\n  ${problems.join("\n  ")}\nsteps:\n  ${log.join("\n  ")}${only !== undefined ? `\nwhat each connection read:\n  ${traces.join("\n  ")}` : ""}`)
    }
  }
  expect(failed).toEqual([])
}, 120_000)

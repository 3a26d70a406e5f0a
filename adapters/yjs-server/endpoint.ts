/**
 * The y-websocket endpoint: stock `y-websocket` clients (WebsocketProvider) sync a Y.Doc
 * through the hub, persisted and compacted by the CRDT document authority, with the hub's
 * authenticate / authorize hooks and the WsServer's connection limits.
 *
 * Mount it on the WsServer: `routes: [yjsRoute(hub.crdtDocs)]`; a provider then connects to
 * `new WebsocketProvider("ws://host:port/yjs", room, doc, { params: { token } })`. The room is
 * the raw path after the prefix (the stock server does not percent-decode either).
 *
 * Per socket (the verified requirements, notes A.3):
 * - authenticate before anything is sent: credentials from the `token` query parameter (or
 *   `credentials(info)`), refused with close 4401; no read access: 4403 (y-websocket treats
 *   4400-4499 as permanent and stops retrying). Without write access the socket still syncs
 *   and relays awareness; its updates are dropped and it is told once (auth message).
 * - send SyncStep1 (the hub's state vector) first: without it a client's offline edits never
 *   reach the server; then the known awareness states.
 * - a step1 whose state vector lists more clients than the document has plus
 *   `MAX_UNSEEN_STATE_VECTOR_CLIENTS` is answered as an empty one (the whole document, always
 *   a right answer) from its count, unread; the entries of the others are read only once the
 *   pace below lets the step1 through.
 * - step1 is answered with step2 (V1): an empty state vector costs a few bytes and makes the
 *   hub encode and send the whole document, so a socket's step1s are answered three at once,
 *   then one a second (a newer one waiting replaces the older: it asks for no less), each
 *   once the answer before it is written out (one in flight per socket); the whole document's
 *   answer is encoded once and shared until the document changes, and an encode is charged
 *   to the principal's CRDT work budget (its measured time; a principal in debt waits).
 * - step2 / update go to the authority (checked, stored,
 *   then fanned out to the *other* sockets only, no echo). A refused update (malformed, too
 *   large, missing dependencies) closes the socket with 4400: a stock client cannot recover
 *   from a state the hub refuses, and a hostile one should not retry. Except an `update`
 *   (not a step2) whose dependencies the hub lacks: a stock provider that typed while the hub
 *   was away sends its next edit as an update before the step2 holding what that edit
 *   continues (the edit is made before the hub's step1 arrives), so it is dropped and the
 *   socket asked for what the hub lacks (a step1, at most once per `ASK_AGAIN_MS` while no
 *   step2 has come), as a peer session does (adapters/peer/yjs-sync.ts); the step2 carries it.
 *   Closing it stopped the provider for good (test/yjs-server-reconnect-typing.test.ts).
 * - writers are bound (core/crdt-docs/authority.ts): the first principal to show a Yjs
 *   clientID (its awareness state) or to write structs of it owns it, durably; another
 *   principal's update with new structs of that clientID is refused (`not-owner`, 4400), so
 *   nobody writes as another user or takes the clocks of its next edits, not even one who saw
 *   a reader's clientID in the room and wrote as it first while the reader was offline. Tabs
 *   of one user share a principal. A client relaying a third party's edits the
 *   hub has not seen yet binds them to itself: set `bindWriters: false` where users relay each
 *   other's edits outside the hub (y-webrtc beside it).
 * - awareness is relayed on the document's tick (core/crdt-docs/authority.ts `relay`, 50 ms):
 *   the latest state per clientID, however often it changed in between; a removal (state
 *   null) goes at once. A socket more than 1 MiB behind on what it was sent is sent no
 *   awareness until it has drained, then the latest state of each clientID it missed (more
 *   than a room's worth: the room's states as they are then), so awareness alone never makes a
 *   socket too far behind. Each socket's clients are removed (state null) when it closes;
 *   states not renewed for 30 s are forgotten.
 * - per socket, messages other than updates are limited to `messagesPerSecond` (burst
 *   `messageBurst`) and the bytes of its awareness (and of the states its awareness queries
 *   are answered with) to `awarenessBytesPerSecond` (burst `awarenessByteBurst`); past either
 *   it is closed (4400, `rate-limited`): the flooder is cut, not the sockets it floods.
 *   A stock client sends back every awareness change it is sent (a joiner: the room's states
 *   in one message); an awareness message within what the hub sent that socket and it has not
 *   sent back (`ECHO_MESSAGES` and `ECHO_BYTES` at most), whose news (if any) is all other
 *   sockets' states (held by one, or shown before and let go), is paid from that, not from
 *   these rates, may be as large, and what the room or the socket has no room for in it is
 *   dropped, not closed: else a room busy with others' states (or holding more than
 *   `maxAwarenessBytes` of them) closed every stock client in it, and so did a state that
 *   changed (its socket left, or set again) before a joiner sent the room's states back.
 *   Updates are paced instead (input flow control, the principal's CRDT work budget). Bounded: a room keeps at most
 *   `MAX_AWARENESS_STATES_PER_ROOM` states and `MAX_AWARENESS_BYTES_PER_ROOM` bytes of them
 *   (past that, states of new clients are dropped, not relayed, and the hub reports
 *   `presence-limit` once per socket: the socket still syncs its document); one socket holds
 *   at most `MAX_AWARENESS_STATES_PER_SOCKET` states and `maxAwarenessBytes` bytes of them
 *   (a stock provider has one clientID): past that it is closed with 4400. A removal (null
 *   state) of a client the room does not hold is dropped. So what a joiner or a
 *   query-awareness gets is bounded too.
 * - an awareness state must be JSON nesting at most MAX_VALUE_DEPTH levels (a stock client
 *   parses, compares and re-encodes every state it is sent): a message holding another is
 *   refused whole and its socket closed (4400, `presence-invalid`). A state is kept, counted
 *   and relayed as a stock client encodes it again (`canonicalAwarenessState`: `1e20` is 21
 *   digits), so what one sends back is the bytes it was sent.
 * - an awareness state belongs to the socket that set it: another socket's new state for
 *   that clientID is dropped (reported once per socket), unless it is the same signed-in
 *   principal (a reconnect while the old socket lingers); no socket sets the state of a
 *   clientID whose document writes another principal owns, or that another principal held
 *   first in this room (remembered after its socket leaves, so nobody takes it over while
 *   its owner is away). So nobody shows a cursor or a
 *   name as someone else. A removal stays allowed (stock clients remove others' states on
 *   their 30 s timeout); the owner's next renewal shows it again.
 * - a clientID's awareness clock is moved far only by its owner: another socket's removal is
 *   kept and relayed at the room's clock for it plus one at most, not at the clock it came
 *   with (the owner's stock client answers a removal of its own state with that clock plus
 *   one: a removal at 2^53-1 made it send 2^53, which the hub does not decode, and its socket
 *   was closed 4400, for good). A clock more than `MAX_AWARENESS_CLOCK_STEP` past the room's
 *   for that clientID, or past `MAX_AWARENESS_CLOCK` (2^52), is dropped (reported once per
 *   socket), not closed; so the hub sends no clock near 2^53, and no clock a stock client
 *   reaches counting up from what it was sent is refused.
 * - input flow control (adapters/ws/inflow.ts): a socket whose frames the hub has not finished
 *   with (updates not yet durable, frames waiting for authentication) pass `maxInflowBytes` is
 *   paused until they are down to half, so a peer sending faster than the disk slows down
 *   instead of filling the hub's memory.
 * - every 10 s: a 3-byte awareness keepalive (the client closes a socket silent for 30 s;
 *   pings do not count) and a WebSocket ping. A socket with no sign that it reads for
 *   `pongTimeoutMs` (three rounds) is terminated: a pong to one of the pings, or what the hub
 *   sent leaving at a reader's pace (a slow reader working through a large document has the
 *   ping queued behind it), counting only the time the socket is read (time held unread, up to 120 s a wait: ws/pong-clock.ts). A
 *   message from the peer is no sign: a peer can send without reading.
 */
import * as Y from "yjs"
import { WebSocket, type RawData } from "ws"
import type { CrdtDocAuthority, CrdtSubscriber } from "../../core/crdt-docs/authority.js"
import type { CrdtDocHost } from "../../core/crdt-docs/host.js"
import { loadPayer, workPayer } from "../../core/crdt-docs/work-budget.js"
import { DEFAULT_MAX_DOC_MESSAGE_BYTES } from "../../core/crdt-docs/engine.js"
import { ANONYMOUS, type Principal } from "../../core/authority/auth.js"
import type { WsConnectionInfo, WsRoute } from "../ws/server.js"
import { DEFAULT_MAX_INFLOW_BYTES, socketInflow } from "../ws/inflow.js"
import { PongClock, SweepLateness } from "../ws/pong-clock.js"
import { Backlog } from "../ws/backlog.js"
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from "../ws/shared.js"
import type { Inflow } from "../../core/inflow.js"
import { TokenBucket } from "../../core/authority/limits.js"
import { AnswerBudget } from "../peer/answer-budget.js"
import {
  AWARENESS_KEEPALIVE, canonicalAwarenessState, decodeAwarenessUpdate, decodeYMessage, encodeAuthDenied, encodeAwareness, encodeAwarenessUpdate,
  encodeStep1, encodeStep2, encodeUpdate, forEachStateVectorEntry, stateVectorToAnswer, type AwarenessEntry,
} from "./protocol.js"

export interface YjsRouteOptions {
  /** Path prefix. Default "/yjs". */
  readonly prefix?: string
  /** Credentials handed to `authenticate` (as `hello.credentials`). Default: the `token` query parameter. */
  readonly credentials?: (info: WsConnectionInfo) => string | undefined
  /** Keepalive, ping and awareness sweep period. Default 10,000 ms. */
  readonly keepaliveMs?: number
  /** A socket with no sign that it reads this long after a ping is terminated (ws/pong-clock.ts). Default three keepalive periods. */
  readonly pongTimeoutMs?: number
  /** Awareness states not renewed this long are forgotten. Default 30,000 ms. */
  readonly awarenessTimeoutMs?: number
  /** Largest awareness message (but one changing nothing, sent back: see the header), and the most bytes of awareness states one socket holds. Default 64 KiB. */
  readonly maxAwarenessBytes?: number
  /** Awareness states a room keeps. Default `MAX_AWARENESS_STATES_PER_ROOM`. */
  readonly maxAwarenessStates?: number
  /** Bytes of awareness states a room keeps. Default `MAX_AWARENESS_BYTES_PER_ROOM`. */
  readonly maxAwarenessRoomBytes?: number
  /** Awareness states one socket holds. Default `MAX_AWARENESS_STATES_PER_SOCKET`. */
  readonly maxAwarenessStatesPerSocket?: number
  /**
   * Close a socket (1013, it reconnects and resyncs) with more than this unsent, beyond the
   * largest message written since it last drained (a whole document may be larger). Default 8 MiB.
   */
  readonly maxBufferedBytes?: number
  /** Bind Yjs clientIDs to the principal that first writes as them (see the header). Default true. */
  readonly bindWriters?: boolean
  /** Bytes of a socket's frames the hub may be working on before it stops reading it. Default 8 MiB. */
  readonly maxInflowBytes?: number
  /**
   * Largest message a socket may send: a larger one closes it (1009). Default 9 MiB
   * (DEFAULT_MAX_DOC_MESSAGE_BYTES): a stock client sends all it
   * did offline in one message. The engine bounds each update within it apart.
   */
  readonly maxMessageBytes?: number
  /** Messages (updates aside) a socket may send per second, sustained. Default 1,000 (Canon's connection rate). */
  readonly messagesPerSecond?: number
  /** ... and at once. Default 2,000. */
  readonly messageBurst?: number
  /** Bytes of awareness a socket may send (and query) per second, sustained. Default 1 MiB. */
  readonly awarenessBytesPerSecond?: number
  /** ... and at once. Default 4 MiB. */
  readonly awarenessByteBurst?: number
}

export interface YjsRoute extends WsRoute {
  /** Sockets open on this route. */
  readonly connections: number
  /** Documents encoded to answer step1s (diagnostics: the whole document's answer is shared until it changes). */
  readonly step1Encodes: number
  /** Bytes of frames received and not yet done with, over all sockets (input flow control). */
  readonly pendingBytes: number
  /** Stops the timer (the WsServer closes the sockets). */
  close(): void
}

interface AwarenessState {
  clock: number
  state: string
  conn: Conn | undefined
  at: number
}

interface Room {
  readonly docId: string
  readonly awareness: Map<number, AwarenessState>
  /**
   * The principal that first held each clientID's awareness here, kept after its socket
   * leaves (the newest `maxAwarenessStates * 4`): a clientID is only seen once its owner has
   * announced it, so the first holder is its owner, and nobody takes it over while it is away.
   */
  readonly claimed: Map<number, string>
  /** Sum of the states' lengths. */
  bytes: number
}

interface Conn extends CrdtSubscriber {
  readonly ws: WebSocket
  /** The room's awareness entries this socket set last (it owns them). */
  readonly ids: Set<number>
  /** Sum of the lengths of the states in `ids`. */
  awarenessBytes: number
  /** Told (reported) once that its room's awareness is full. */
  toldFull: boolean
  /** Told (reported) once that it set a state another owns. */
  toldNotOwner: boolean
  /** Told (reported) once that it moved an awareness clock too far. */
  toldClock: boolean
  /**
   * Awareness messages, and their bytes, the hub sent it and it has not sent back (a stock
   * client relays every change it is sent): a message that changes nothing the room holds is
   * paid from these first (see the header). At most ECHO_MESSAGES and ECHO_BYTES.
   */
  echoMessages: number
  echoBytes: number
  /** Id of the principal it authenticated as (once it has). */
  principal: string | undefined
  readonly inflow: Inflow
  /** Its unsent bytes against `maxBufferedBytes` (past the largest message written). */
  readonly backlog: Backlog
  /** Its messages (updates aside) and its awareness bytes: past either, it is closed. */
  readonly messageRate: TokenBucket
  readonly awarenessRate: TokenBucket
  /**
   * Awareness held while the socket is behind (see `sendEphemeral`), the latest per clientID;
   * "all": more than a room's worth, the room's states are sent instead.
   */
  due: Map<unknown, Uint8Array> | "all" | undefined
  /** Its step1s (their state vectors), paced (see the header). */
  readonly step1s: AnswerBudget<Uint8Array>
  /** When the hub last asked this socket for what it lacks (a step1 after a dropped update), while no step2 has come since. */
  askedAt: number | undefined
  /** A step1 answer is being made or written out; `step1Next`: the one to answer after it. */
  answering: boolean
  step1Next: Uint8Array | undefined
  room: Room | undefined
  doc: CrdtDocAuthority<Y.Doc> | undefined
  pongs: PongClock
  closed: boolean
}

/** Awareness states a room keeps (a stock room has a few dozen); states of new clients past it are dropped. */
export const MAX_AWARENESS_STATES_PER_ROOM = 1024
/** Bytes of awareness states (their JSON) a room keeps; past it, new or growing states are dropped. */
export const MAX_AWARENESS_BYTES_PER_ROOM = 512 * 1024
/** Awareness states one socket may hold (a stock provider holds one); past it the socket is closed (4400). */
export const MAX_AWARENESS_STATES_PER_SOCKET = 64
/**
 * The highest awareness clock the room keeps: far below 2^53, the first clock the hub does not
 * decode (its socket is closed), so no stock client counting up from a clock the hub sent it
 * (+1 a renewal or a removal of its own state answered) gets there (2^52 renewals).
 */
export const MAX_AWARENESS_CLOCK = 2 ** 52
/** How far past the clock the room holds for a clientID one message may move it (a stock client counts up by one). */
export const MAX_AWARENESS_CLOCK_STEP = 2 ** 20
/**
 * Awareness a socket may have been sent and not yet sent back, messages and bytes (see
 * `Conn.echoMessages`): more than what is on its way between the hub and a client that reads
 * (the hub holds awareness back from a socket 1 MiB behind), little to spend at once.
 */
const ECHO_MESSAGES = 65_536
const ECHO_BYTES = 16 << 20


/** How long a socket asked for what the hub lacks may take to answer before a dropped update asks again. */
const ASK_AGAIN_MS = 1000

/** Step1s a socket has answered at once, then one per STEP1_EVERY_MS (as a peer session's, adapters/peer/yjs-sync.ts). */
const STEP1_BURST = 3
const STEP1_EVERY_MS = 1000

/** Each document's whole state as a step2 message, until its next transaction: shared by every socket asking for it. */
const wholeAnswers = new WeakMap<Y.Doc, Uint8Array>()
const watched = new WeakSet<Y.Doc>()

const rememberWhole = (doc: Y.Doc, answer: Uint8Array): void => {
  if (!watched.has(doc)) {
    watched.add(doc)
    // Any transaction may change it (a no-op one only costs one more encode).
    doc.on("afterTransaction", () => wholeAnswers.delete(doc))
  }
  wholeAnswers.set(doc, answer)
}

/**
 * Whether answering `stateVector` sends the whole document: it names no client the document
 * has, past clock 0. Reads every entry (throws on a malformed vector) without building a map.
 */
const asksWhole = (doc: Y.Doc, stateVector: Uint8Array): boolean => {
  let whole = true
  forEachStateVectorEntry(stateVector, (client, clock) => {
    if (whole && clock > 0 && Y.getState(doc.store, client) > 0) whole = false
  })
  return whole
}

/** A socket this far behind on what it was sent gets no awareness until it drains (the hub's backpressure pause). */
const EPHEMERAL_HIGH_WATER = 1 << 20
/** How often sockets holding awareness back are looked at. */
const DRAIN_POLL_MS = 50

/** Our close codes: 4400-4499 stop a y-websocket client for good, others make it retry. */
const CLOSE = { malformed: 4400, unauthorized: 4401, forbidden: 4403, kind: 4409, unavailable: 4503, slow: 1013, away: 1001 } as const

const queryParam = (url: string, name: string): string | undefined => {
  const q = url.indexOf("?")
  return q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get(name) ?? undefined)
}

const toBytes = (data: RawData): Uint8Array => (Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data)

export const yjsRoute = (host: CrdtDocHost, options: YjsRouteOptions = {}): YjsRoute => {
  const prefix = (options.prefix ?? "/yjs").replace(/\/+$/, "")
  const maxFrameBytes = options.maxMessageBytes ?? DEFAULT_MAX_DOC_MESSAGE_BYTES
  const credentials = options.credentials ?? ((info: WsConnectionInfo) => queryParam(info.url, "token"))
  const period = options.keepaliveMs ?? 10_000
  const pongTimeoutMs = options.pongTimeoutMs ?? 3 * period
  const awarenessTimeout = options.awarenessTimeoutMs ?? 30_000
  const maxAwareness = options.maxAwarenessBytes ?? 64 * 1024
  const maxRoomStates = options.maxAwarenessStates ?? MAX_AWARENESS_STATES_PER_ROOM
  const maxRoomBytes = options.maxAwarenessRoomBytes ?? MAX_AWARENESS_BYTES_PER_ROOM
  const maxSocketStates = options.maxAwarenessStatesPerSocket ?? MAX_AWARENESS_STATES_PER_SOCKET
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024
  const bindWriters = options.bindWriters ?? true
  const maxInflow = options.maxInflowBytes ?? DEFAULT_MAX_INFLOW_BYTES
  const messagesPerSecond = options.messagesPerSecond ?? 1000
  const messageBurst = options.messageBurst ?? 2000
  const awarenessBytesPerSecond = options.awarenessBytesPerSecond ?? 1 << 20
  const awarenessByteBurst = options.awarenessByteBurst ?? 4 << 20
  const rooms = new Map<string, Room>()
  const conns = new Set<Conn>()
  /** Sockets holding awareness back until they drain. */
  const congested = new Set<Conn>()
  let drainTimer: ReturnType<typeof setTimeout> | undefined
  let step1Encodes = 0

  const refuse = (code: string, message: string) => host.report({ type: "refused", code, message })

  /** The gate every send goes through: false if the socket is gone or (closed now) too far behind. */
  const mayWrite = (conn: Conn, bytes: Uint8Array): boolean => {
    if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return false
    if (conn.backlog.exceeded(conn.ws.bufferedAmount)) {
      close(conn, CLOSE.slow, "Too far behind; reconnect to resync.")
      return false
    }
    conn.backlog.wrote(bytes.length)
    return true
  }

  const send = (conn: Conn, bytes: Uint8Array): void => {
    if (mayWrite(conn, bytes)) conn.ws.send(bytes)
  }

  /** Sends an awareness message: what a stock client sends back of it is paid by it (see the header). */
  const sendAwareness = (conn: Conn, bytes: Uint8Array): void => {
    conn.echoMessages = Math.min(conn.echoMessages + 1, ECHO_MESSAGES)
    conn.echoBytes = Math.min(conn.echoBytes + bytes.length, ECHO_BYTES)
    send(conn, bytes)
  }

  /**
   * Relayed awareness (one clientID's state or removal, `key` its clientID): sent, unless the
   * socket is behind; then only the latest per clientID waits until it drains. Relayed as it
   * came, a flood of awareness could push a reader past `maxBufferedBytes` and get it closed.
   */
  const sendEphemeral = (conn: Conn, key: unknown, payload: Uint8Array): void => {
    if (conn.closed) return
    if (conn.due === undefined && conn.ws.bufferedAmount <= EPHEMERAL_HIGH_WATER) return sendAwareness(conn, payload)
    conn.due ??= new Map()
    if (conn.due !== "all") {
      conn.due.delete(key)
      conn.due.set(key, payload)
      // Bounded: past a room's worth of clientIDs, the room's states replace them (removals
      // then reach the client by its own 30 s timeout).
      if (conn.due.size > maxRoomStates) conn.due = "all"
    }
    congested.add(conn)
    drainTimer ??= setTimeout(drain, DRAIN_POLL_MS)
  }

  const drain = (): void => {
    drainTimer = undefined
    for (const conn of [...congested]) {
      if (conn.closed) {
        congested.delete(conn)
        continue
      }
      if (conn.ws.bufferedAmount > EPHEMERAL_HIGH_WATER) continue
      congested.delete(conn)
      const due = conn.due
      conn.due = undefined
      if (due === "all") {
        const all = conn.room === undefined ? undefined : awarenessOf(conn.room)
        if (all !== undefined) sendAwareness(conn, all)
      } else if (due !== undefined) for (const payload of due.values()) sendAwareness(conn, payload)
    }
    if (congested.size > 0) drainTimer = setTimeout(drain, DRAIN_POLL_MS)
  }

  /** Sends `bytes`; resolves once they are written out (or the socket is gone). */
  const sendWritten = (conn: Conn, bytes: Uint8Array): Promise<void> =>
    new Promise((resolve) => {
      if (!mayWrite(conn, bytes)) return resolve()
      conn.ws.send(bytes, () => resolve())
    })

  /**
   * The step2 answering `stateVector` on `conn`'s document: the shared whole answer, or encoded
   * (and charged); undefined if the vector is malformed (the socket is closed).
   */
  const step2For = async (conn: Conn, stateVector: Uint8Array): Promise<Uint8Array | undefined> => {
    const doc = conn.doc!
    let all: boolean
    try {
      // Read here, past the socket's pace, not where it arrived (its length was bounded there).
      all = asksWhole(doc.doc, stateVector)
    } catch {
      refuse("protocol-error", "y-websocket: a step1 whose state vector does not decode.")
      close(conn, CLOSE.malformed, "Bad state vector.")
      return undefined
    }
    const whole = all ? wholeAnswers.get(doc.doc) : undefined
    if (whole !== undefined) return whole
    return doc.answer(workPayer(conn.principal ?? "anonymous", conn), (ydoc) => {
      // Looked up again: the document may have changed while the payer waited off a debt.
      const all = asksWhole(ydoc, stateVector)
      const cached = all ? wholeAnswers.get(ydoc) : undefined
      if (cached !== undefined) return cached
      const answer = encodeStep2(Y.encodeStateAsUpdate(ydoc, stateVector))
      step1Encodes++
      if (all) rememberWhole(ydoc, answer)
      return answer
    })
  }

  /** Answers a step1 that passed the socket's pace; one answer in flight per socket, a newer request waits. */
  const answerStep1 = (conn: Conn, req: Uint8Array): void => {
    if (conn.answering) {
      conn.step1Next = req
      return
    }
    conn.answering = true
    void (async () => {
      try {
        let next: Uint8Array | undefined = req
        while (next !== undefined && !conn.closed) {
          const answer = await step2For(conn, next)
          if (conn.closed || answer === undefined) return
          // The next answer is not made until this one has left: a reader asking faster than it
          // reads holds one answer, not one per request.
          await sendWritten(conn, answer)
          next = conn.step1Next
          conn.step1Next = undefined
        }
      } catch (e) {
        if (!conn.closed) close(conn, CLOSE.unavailable, e instanceof Error ? e.message : "The document is unavailable.")
      } finally {
        // In the same turn as the loop's end: a request arriving later starts a new answer.
        conn.answering = false
      }
    })()
  }

  const close = (conn: Conn, code: number, reason: string): void => {
    if (conn.ws.readyState === WebSocket.OPEN || conn.ws.readyState === WebSocket.CONNECTING) conn.ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES))
    leave(conn)
  }

  /** The socket is gone: stop following, remove its awareness states (telling the others). */
  const leave = (conn: Conn): void => {
    if (conn.closed) return
    conn.closed = true
    conns.delete(conn)
    congested.delete(conn)
    conn.due = undefined
    conn.step1s.close()
    conn.step1Next = undefined
    const { room, doc } = conn
    if (room === undefined || doc === undefined) return
    doc.unsubscribe(conn)
    for (const id of [...conn.ids]) {
      const s = room.awareness.get(id)
      if (s === undefined || s.conn !== conn) continue
      forget(room, id)
      // At once, and replacing its state if that is still due (relayNow).
      if (s.state !== "null") doc.relayNow(encodeAwareness(encodeAwarenessUpdate([{ clientID: id, clock: s.clock, state: "null" }])), conn, id)
    }
    if (doc.subscriberCount === 0) {
      rooms.delete(room.docId)
      host.release(doc)
    }
  }

  /** Sets a room's awareness entry, keeping the room's and the owners' counts. */
  const put = (room: Room, id: number, entry: AwarenessState): void => {
    forget(room, id)
    room.awareness.set(id, entry)
    const principal = entry.conn?.principal
    if (principal !== undefined && !room.claimed.has(id)) {
      // Shown, the clientID is public: bound to whoever showed it first, before anyone writes as it.
      if (bindWriters && principal !== ANONYMOUS.id) entry.conn!.doc!.claim(String(id), principal)
      room.claimed.set(id, principal)
      if (room.claimed.size > maxRoomStates * 4) room.claimed.delete(room.claimed.keys().next().value!)
    }
    room.bytes += entry.state.length
    if (entry.conn !== undefined) {
      entry.conn.ids.add(id)
      entry.conn.awarenessBytes += entry.state.length
    }
  }

  const forget = (room: Room, id: number): void => {
    const cur = room.awareness.get(id)
    if (cur === undefined) return
    room.awareness.delete(id)
    room.bytes -= cur.state.length
    if (cur.conn !== undefined && cur.conn.ids.delete(id)) cur.conn.awarenessBytes -= cur.state.length
  }

  /** Whether `conn` may set the awareness state of `id` (see the header), held now by `cur`. */
  const mayClaim = (conn: Conn, id: number, cur: AwarenessState | undefined): boolean => {
    const writer = bindWriters ? conn.doc!.ownerOf(String(id)) : undefined
    if (writer !== undefined && writer !== conn.principal) return false
    const first = conn.room!.claimed.get(id)
    if (first !== undefined && first !== conn.principal) return false
    const holder = cur?.conn
    return holder === undefined || holder === conn || holder.closed || (holder.principal === conn.principal && conn.principal !== ANONYMOUS.id)
  }

  /**
   * Whether `e` changes what the room holds for its clientID (`cur`): the y-protocols rule (a
   * newer clock wins; at the same clock only a removal does), and the removal of a state the
   * room does not hold (forgotten, or never there) changes nothing.
   */
  const isNews = (cur: AwarenessState | undefined, e: AwarenessEntry): boolean =>
    cur === undefined ? e.state !== "null" : cur.clock < e.clock || (cur.clock === e.clock && e.state === "null" && cur.state !== "null")

  /**
   * Applies an awareness update to the room within its bounds (see the header). Returns what
   * to relay (`whole`: every entry of the message was taken), or `close`: why the socket is
   * closed (`code`: what is reported).
   */
  const takeAwareness = (conn: Conn, room: Room, received: ReadonlyArray<AwarenessEntry>, echo: boolean): { entries: AwarenessEntry[]; whole: boolean } | { close: string; code: string } => {
    // Every state is checked before any is taken: a message is refused whole, and nothing a
    // stock client cannot read is ever kept, relayed or sent to a joiner. Each is kept as a
    // stock client encodes it again (canonicalAwarenessState).
    const entries: AwarenessEntry[] = []
    let whole = true
    for (const e of received) {
      const c = canonicalAwarenessState(e.state)
      if ("problem" in c) return { close: c.problem, code: "presence-invalid" }
      if (c.state === e.state) entries.push(e)
      else {
        whole = false
        entries.push({ clientID: e.clientID, clock: e.clock, state: c.state })
      }
    }
    const now = performance.now()
    const taken: AwarenessEntry[] = []
    let full = false
    for (const e of entries) {
      const cur = room.awareness.get(e.clientID)
      const isNull = e.state === "null"
      if (!isNews(cur, e)) {
        whole = false
        continue
      }
      const mine = cur !== undefined && cur.conn === conn
      if (!isNull && !mine && !mayClaim(conn, e.clientID, cur)) {
        whole = false
        if (!conn.toldNotOwner) {
          conn.toldNotOwner = true
          refuse("presence-not-owner", `y-websocket "${room.docId}": a socket set the awareness state of client ${e.clientID}, which another socket or user owns; dropped.`)
        }
        continue
      }
      // A stock client relays every awareness change it sees, removals of others' states too
      // (its 30 s timeout): such a removal stays the owner's and never counts against the
      // socket that relayed it, or a busy room would close honest clients.
      const owner = isNull && !mine ? cur!.conn : conn
      // Clocks (see the header): another socket's removal moves the clock by one at most; a
      // clock far past the room's, or past the bound, is dropped (never closed).
      const clock = owner === conn ? e.clock : Math.min(e.clock, cur!.clock + 1)
      if (clock > MAX_AWARENESS_CLOCK || (owner === conn && cur !== undefined && clock - cur.clock > MAX_AWARENESS_CLOCK_STEP)) {
        whole = false
        if (!conn.toldClock) {
          conn.toldClock = true
          refuse("presence-clock", `y-websocket "${room.docId}": a socket moved the awareness clock of client ${e.clientID} from ${cur?.clock ?? "none"} to ${e.clock} (at most ${MAX_AWARENESS_CLOCK_STEP} past the room's, and ${MAX_AWARENESS_CLOCK}); dropped.`)
        }
        continue
      }
      if (owner === conn) {
        const over = !mine && conn.ids.size >= maxSocketStates ? `A socket holds at most ${maxSocketStates} awareness states.`
          : conn.awarenessBytes - (mine ? cur.state.length : 0) + e.state.length > maxAwareness ? `A socket's awareness states are limited to ${maxAwareness} bytes.` : undefined
        // Sent back (`echo`: every news in it is another socket's state), what has no room is
        // dropped, never a reason to close a stock client; the socket's own, past the bound, is closed.
        if (over !== undefined && !echo) return { close: over, code: "presence-limit" }
        if (over !== undefined) {
          whole = false
          full = true
          continue
        }
      }
      const bytes = room.bytes - (cur?.state.length ?? 0) + e.state.length
      if ((cur === undefined && room.awareness.size >= maxRoomStates) || (bytes > room.bytes && bytes > maxRoomBytes)) {
        whole = false
        full = true
        continue
      }
      put(room, e.clientID, { clock, state: e.state, conn: owner, at: now })
      if (clock === e.clock) taken.push(e)
      else {
        // Relayed at the clock kept, not as it came.
        whole = false
        taken.push({ clientID: e.clientID, clock, state: e.state })
      }
    }
    if (full && !conn.toldFull) {
      conn.toldFull = true
      refuse("presence-limit", `y-websocket "${room.docId}": no room for more awareness states in the room (it holds ${room.awareness.size}, ${room.bytes} bytes; at most ${maxRoomStates} and ${maxRoomBytes}) or the socket (at most ${maxSocketStates}, ${maxAwareness} bytes); new ones are dropped.`)
    }
    return { entries: taken, whole }
  }

  /** Asks the socket for what the hub lacks (its step2 answers the hub's state vector), paced (see the header). */
  const askAgain = (conn: Conn): void => {
    if (conn.closed || conn.doc === undefined) return
    const now = performance.now()
    if (conn.askedAt !== undefined && now - conn.askedAt < ASK_AGAIN_MS) return
    conn.askedAt = now
    send(conn, encodeStep1(Y.encodeStateVector(conn.doc.doc)))
  }

  const rateLimited = (conn: Conn, what: string): void => {
    refuse("rate-limited", `y-websocket "${conn.room?.docId ?? ""}": a socket sent ${what}; closed.`)
    close(conn, CLOSE.malformed, `Rate limited: ${what}.`)
  }

  const awarenessTooLarge = (conn: Conn, length: number): void => {
    refuse("presence-too-large", `y-websocket: an awareness update of ${length} bytes.`)
    close(conn, CLOSE.malformed, `Awareness is limited to ${maxAwareness} bytes.`)
  }

  const awarenessOf = (room: Room): Uint8Array | undefined => {
    const entries: AwarenessEntry[] = []
    for (const [clientID, s] of room.awareness) if (s.state !== "null") entries.push({ clientID, clock: s.clock, state: s.state })
    return entries.length > 0 ? encodeAwareness(encodeAwarenessUpdate(entries)) : undefined
  }

  /**
   * `writer`: the principal id its updates are judged as for writer ownership (undefined: not
   * judged). Returns the submit of an update (the frame is done with once it settles).
   */
  const handle = (conn: Conn, principalCanWrite: boolean, writer: string | undefined, bytes: Uint8Array, deniedOnce: { told: boolean }): Promise<void> | void => {
    const doc = conn.doc!
    const room = conn.room!
    let msg
    try {
      msg = decodeYMessage(bytes)
    } catch (e) {
      refuse("protocol-error", `y-websocket: an undecodable message (${e instanceof Error ? e.message : String(e)}).`)
      return close(conn, CLOSE.malformed, "Undecodable message.")
    }
    // Updates are paced where they enter (inflow, work budget); what else a socket sends costs
    // the hub an answer or a relay, so it is rate limited, and a flooder is closed.
    // Awareness is rate limited below, once it is known whether it brings anything new.
    if (msg.type !== "step2" && msg.type !== "update" && msg.type !== "awareness" && !conn.messageRate.take(1, performance.now())) return rateLimited(conn, `more than ${messagesPerSecond} messages a second`)
    switch (msg.type) {
      case "step1": {
        // Only the vector's count is read here, at the message rate; its entries are read once
        // the step1 pace lets it through (step2For).
        // Past the bound: the whole document, and the vector is never read (see the constant).
        const stateVector = stateVectorToAnswer(msg.stateVector, doc.doc.store.clients.size)
        if (stateVector === undefined) {
          refuse("protocol-error", "y-websocket: a step1 whose state vector does not decode.")
          return close(conn, CLOSE.malformed, "Bad state vector.")
        }
        return conn.step1s.request(stateVector)
      }
      case "step2":
      case "update": {
        if (!principalCanWrite) {
          if (!deniedOnce.told) {
            deniedOnce.told = true
            send(conn, encodeAuthDenied(`You may read document "${room.docId}" but not change it; your edits stay on your device.`))
          }
          return
        }
        // Yjs emits an empty update (2 bytes) for a step2 that adds nothing: no work.
        if (msg.update.length === 2 && msg.update[0] === 0 && msg.update[1] === 0) return
        // Queued synchronously, so a socket's updates keep their order (or, while its principal
        // is in debt for the hub's work, in turn behind its earlier ones: work-budget.ts).
        const kind = msg.type
        if (kind === "step2") conn.askedAt = undefined
        return doc.submit([msg.update], conn, writer, workPayer(conn.principal ?? "anonymous", conn)).then((outcome) => {
          const bad = outcome.rejected[0]
          if (bad === undefined) return
          // An edit ahead of the step2 holding what it continues (see the header): asked for, not refused.
          if (bad.code === "update-missing-deps" && kind === "update") return askAgain(conn)
          refuse(bad.code, `y-websocket "${room.docId}": ${bad.message}`)
          // No room now (the hub's bound on what its documents hold): the client retries later; anything else it would send again for good.
          close(conn, bad.code === "doc-unavailable" ? CLOSE.unavailable : CLOSE.malformed, `${bad.code}: ${bad.message}`)
        }, (e: unknown) => {
          if (!conn.closed) close(conn, CLOSE.unavailable, e instanceof Error ? e.message : "The document is unavailable.")
        })
      }
      case "awareness": {
        // What a stock client sends back of the awareness it was sent (it relays every change
        // it is sent, a joiner the room's states in one message) is paid from what it was sent,
        // never from its rates, or a room busy with others' states would close it. Sent back:
        // each state in it changes nothing, or is not the socket's own (another socket's, or one
        // shown here before that the room let go meanwhile: news again, as the states of a
        // room changed between sending them to a joiner and its copy coming back; judged as its
        // own, such a copy over 64 KiB closed stock joiners of a room with churn). A message with
        // a state of the socket's own (or a new one) is its own, paid by its rates.
        const credit = conn.echoMessages >= 1 && conn.echoBytes >= bytes.length
        if (msg.update.length > maxAwareness && !credit) return awarenessTooLarge(conn, msg.update.length)
        let received: AwarenessEntry[]
        try {
          received = decodeAwarenessUpdate(msg.update, Math.max(1024, maxRoomStates))
        } catch (e) {
          refuse("protocol-error", `y-websocket: a bad awareness update (${e instanceof Error ? e.message : String(e)}).`)
          return close(conn, CLOSE.malformed, "Bad awareness update.")
        }
        let news = false
        const echo = credit && received.every((e) => {
          const cur = room.awareness.get(e.clientID)
          if (!isNews(cur, e)) return true
          news = true
          return !conn.ids.has(e.clientID) && (cur !== undefined || room.claimed.has(e.clientID))
        })
        if (echo) {
          conn.echoMessages -= 1
          conn.echoBytes -= bytes.length
          // (`every` saw each entry: `news` is whether any is.)
          if (!news) return
        } else {
          if (msg.update.length > maxAwareness) return awarenessTooLarge(conn, msg.update.length)
          const now = performance.now()
          if (!conn.messageRate.take(1, now)) return rateLimited(conn, `more than ${messagesPerSecond} messages a second`)
          if (!conn.awarenessRate.take(msg.update.length, now)) return rateLimited(conn, `more than ${awarenessBytesPerSecond} bytes of awareness a second`)
        }
        let taken: ReturnType<typeof takeAwareness>
        try {
          taken = takeAwareness(conn, room, received, echo)
        } catch (e) {
          refuse("protocol-error", `y-websocket: a bad awareness update (${e instanceof Error ? e.message : String(e)}).`)
          return close(conn, CLOSE.malformed, "Bad awareness update.")
        }
        if ("close" in taken) {
          refuse(taken.code, `y-websocket "${room.docId}": ${taken.close}`)
          return close(conn, CLOSE.malformed, taken.close)
        }
        // One message per clientID: the tick keeps the latest of each (a stock provider has one).
        const { entries, whole } = taken
        for (const e of entries) {
          const one = whole && entries.length === 1 ? bytes : encodeAwareness(encodeAwarenessUpdate([e]))
          if (e.state === "null") doc.relayNow(one, conn, e.clientID)
          else doc.relay(one, conn, e.clientID)
        }
        return
      }
      case "query-awareness": {
        const all = awarenessOf(room)
        if (all === undefined) return
        // A 1-byte query is answered with up to a room's states: paid like sending them.
        if (!conn.awarenessRate.take(all.length, performance.now())) return rateLimited(conn, `more than ${awarenessBytesPerSecond} bytes of awareness a second`)
        return sendAwareness(conn, all)
      }
      default:
        // auth messages from a client, unknown types: ignored, as the stock server does.
        return
    }
  }

  const accept = (ws: WebSocket, info: WsConnectionInfo): void => {
    const path = info.url.split("?")[0]!
    const docId = path.slice(prefix.length + 1)
    const pongs = new PongClock()
    const conn: Conn = {
      ws, ids: new Set(), awarenessBytes: 0, toldFull: false, toldNotOwner: false, toldClock: false, echoMessages: 0, echoBytes: 0, principal: undefined, inflow: socketInflow(ws, maxInflow, pongs), backlog: new Backlog(maxBuffered),
      messageRate: new TokenBucket(messagesPerSecond, messageBurst, performance.now()), awarenessRate: new TokenBucket(awarenessBytesPerSecond, awarenessByteBurst, performance.now()), due: undefined,
      step1s: new AnswerBudget<Uint8Array>(STEP1_BURST, STEP1_EVERY_MS, (req) => answerStep1(conn, req)), answering: false, step1Next: undefined, askedAt: undefined,
      room: undefined, doc: undefined, pongs, closed: false,
      onUpdates: (updates) => {
        for (const u of updates) send(conn, encodeUpdate(u))
      },
      onEphemeral: (payload, _from, key) => sendEphemeral(conn, key, payload),
      onClose: (code, reason) => close(conn, code === "going-away" ? CLOSE.away : CLOSE.unavailable, reason),
    }
    conns.add(conn)
    // Messages that arrive while authenticating wait (bounded), then run in order.
    const early: Array<{ bytes: Uint8Array; done: () => void }> = []
    let ready: ((bytes: Uint8Array, done: () => void) => void) | undefined
    ws.binaryType = "nodebuffer"
    // A message is no sign of life: a peer can send without ever reading what it is sent.
    ws.on("message", (data, isBinary) => {
      if (conn.closed) return
      if (!isBinary) return close(conn, CLOSE.malformed, "y-websocket frames are binary.")
      const bytes = toBytes(data)
      const done = conn.inflow.take(bytes.length)
      if (ready !== undefined) return ready(bytes, done)
      if (early.length >= 64) return close(conn, CLOSE.malformed, "Too many messages before the hub answered.")
      early.push({ bytes, done })
    })
    ws.on("pong", (data) => pongs.pong(data))
    ws.on("close", () => leave(conn))
    ws.on("error", () => leave(conn))

    void (async () => {
      if (docId.length === 0) return close(conn, CLOSE.malformed, "No room in the URL: connect to <prefix>/<room>.")
      const who = await host.authenticate(credentials(info), info)
      if (conn.closed) return
      if ("refuse" in who) {
        refuse("unauthorized", who.refuse)
        return close(conn, CLOSE.unauthorized, who.refuse)
      }
      const principal: Principal = who.principal
      conn.principal = principal.id
      if (!(await host.authorize(principal, docId, "read"))) {
        refuse("unauthorized", `y-websocket: "${principal.id}" may not read "${docId}".`)
        return close(conn, CLOSE.forbidden, `You may not read document "${docId}".`)
      }
      const canWrite = await host.authorize(principal, docId, "write")
      let doc: CrdtDocAuthority<Y.Doc>
      try {
        // A load from storage is paid by the principal (by the address when anonymous): past its rate, refused (4503, retried).
        doc = await host.open<Y.Doc>("yjs", docId, loadPayer(principal.id, conn, info))
      } catch (e) {
        const code = (e as { code?: string }).code
        const message = e instanceof Error ? e.message : String(e)
        return close(conn, code === "doc-kind-mismatch" ? CLOSE.kind : code === "doc-id-invalid" ? CLOSE.malformed : CLOSE.unavailable, message)
      }
      if (conn.closed) return host.release(doc)
      let room = rooms.get(docId)
      if (room === undefined) rooms.set(docId, (room = { docId, awareness: new Map(), claimed: new Map(), bytes: 0 }))
      conn.room = room
      conn.doc = doc
      doc.subscribe(conn)
      if (conn.closed) return
      send(conn, encodeStep1(Y.encodeStateVector(doc.doc)))
      const all = awarenessOf(room)
      if (all !== undefined) sendAwareness(conn, all)
      const denied = { told: false }
      const writer = bindWriters ? principal.id : undefined
      ready = (bytes, done) => {
        const submitted = handle(conn, canWrite, writer, bytes, denied)
        if (submitted === undefined) done()
        else void submitted.finally(done)
      }
      for (const { bytes, done } of early.splice(0)) if (!conn.closed) ready(bytes, done)
    })().catch((e: unknown) => {
      host.report({ type: "refused", code: "internal-error", message: `y-websocket: ${e instanceof Error ? e.message : String(e)}` })
      close(conn, 1011, "The hub failed on this connection.")
    })
  }

  const lateness = new SweepLateness(period, performance.now())
  const timer = setInterval(() => {
    const now = performance.now()
    const late = lateness.at(now)
    for (const conn of conns) {
      if (conn.ws.readyState !== WebSocket.OPEN) continue
      // No sign that it reads (a pong to a ping, what was sent leaving) for pongTimeoutMs of the time it was read (pong-clock.ts).
      if (conn.pongs.overdue(conn.ws, now, pongTimeoutMs, late)) {
        conn.ws.terminate()
        leave(conn)
        continue
      }
      conn.pongs.sendPing(conn.ws, now)
      if (conn.doc !== undefined) send(conn, AWARENESS_KEEPALIVE)
    }
    for (const room of rooms.values()) {
      // Not the stall of a late sweep: renewals sent meanwhile are read only after it.
      for (const [id, s] of room.awareness) if (now - s.at - late >= awarenessTimeout) forget(room, id)
    }
  }, period)
  timer.unref()

  return {
    prefix,
    maxFrameBytes,
    accept,
    get connections() {
      return conns.size
    },
    get step1Encodes() {
      return step1Encodes
    },
    get pendingBytes() {
      let n = 0
      for (const c of conns) n += c.inflow.pending
      return n
    },
    close: () => {
      clearInterval(timer)
      if (drainTimer !== undefined) clearTimeout(drainTimer)
      drainTimer = undefined
      congested.clear()
    },
  }
}

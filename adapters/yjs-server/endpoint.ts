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
 * - step1 is answered with step2 (V1); step2 / update go to the authority (checked, stored,
 *   then fanned out to the *other* sockets only, no echo). A refused update (malformed, too
 *   large, missing dependencies) closes the socket with 4400: a stock client cannot recover
 *   from a state the hub refuses, and a hostile one should not retry.
 * - writers are bound (core/crdt-docs/authority.ts): the first principal to write structs of a
 *   Yjs clientID owns it; another principal's update with new structs of that clientID is
 *   refused (`not-owner`, 4400), so nobody writes as another user or takes the clocks of its
 *   next edits. Tabs of one user share a principal. A client relaying a third party's edits the
 *   hub has not seen yet binds them to itself: set `bindWriters: false` where users relay each
 *   other's edits outside the hub (y-webrtc beside it).
 * - awareness is relayed; each socket's clients are removed (state null) when it closes;
 *   states not renewed for 30 s are forgotten. Bounded: a room keeps at most
 *   `MAX_AWARENESS_STATES_PER_ROOM` states and `MAX_AWARENESS_BYTES_PER_ROOM` bytes of them
 *   (past that, states of new clients are dropped, not relayed, and the hub reports
 *   `presence-limit` once per socket: the socket still syncs its document); one socket holds
 *   at most `MAX_AWARENESS_STATES_PER_SOCKET` states and `maxAwarenessBytes` bytes of them
 *   (a stock provider has one clientID): past that it is closed with 4400. A removal (null
 *   state) of a client the room does not hold is dropped. So what a joiner or a
 *   query-awareness gets is bounded too.
 * - an awareness state belongs to the socket that set it: another socket's new state for
 *   that clientID is dropped (reported once per socket), unless it is the same signed-in
 *   principal (a reconnect while the old socket lingers); no socket sets the state of a
 *   clientID whose document writes another principal owns, or that another principal held
 *   first in this room (remembered after its socket leaves, so nobody takes it over while
 *   its owner is away). So nobody shows a cursor or a
 *   name as someone else. A removal stays allowed (stock clients remove others' states on
 *   their 30 s timeout); the owner's next renewal shows it again.
 * - input flow control (adapters/ws/inflow.ts): a socket whose frames the hub has not finished
 *   with (updates not yet durable, frames waiting for authentication) pass `maxInflowBytes` is
 *   paused until they are down to half, so a peer sending faster than the disk slows down
 *   instead of filling the hub's memory.
 * - every 10 s: a 3-byte awareness keepalive (the client closes a socket silent for 30 s;
 *   pings do not count) and a WebSocket ping (a socket with no pong by the next round is
 *   terminated).
 */
import * as Y from "yjs"
import { WebSocket, type RawData } from "ws"
import type { CrdtDocAuthority, CrdtSubscriber } from "../../core/crdt-docs/authority.js"
import type { CrdtDocHost } from "../../core/crdt-docs/host.js"
import { workPayer } from "../../core/crdt-docs/work-budget.js"
import { ANONYMOUS, type Principal } from "../../core/authority/auth.js"
import type { WsConnectionInfo, WsRoute } from "../ws/server.js"
import { DEFAULT_MAX_INFLOW_BYTES, socketInflow } from "../ws/inflow.js"
import type { Inflow } from "../../core/inflow.js"
import {
  AWARENESS_KEEPALIVE, decodeAwarenessUpdate, decodeYMessage, encodeAuthDenied, encodeAwareness, encodeAwarenessUpdate,
  encodeStep1, encodeStep2, encodeUpdate, type AwarenessEntry,
} from "./protocol.js"

export interface YjsRouteOptions {
  /** Path prefix. Default "/yjs". */
  readonly prefix?: string
  /** Credentials handed to `authenticate` (as `hello.credentials`). Default: the `token` query parameter. */
  readonly credentials?: (info: WsConnectionInfo) => string | undefined
  /** Keepalive, ping and awareness sweep period. Default 10,000 ms. */
  readonly keepaliveMs?: number
  /** Awareness states not renewed this long are forgotten. Default 30,000 ms. */
  readonly awarenessTimeoutMs?: number
  /** Largest awareness message, and the most bytes of awareness states one socket holds. Default 64 KiB. */
  readonly maxAwarenessBytes?: number
  /** Awareness states a room keeps. Default `MAX_AWARENESS_STATES_PER_ROOM`. */
  readonly maxAwarenessStates?: number
  /** Bytes of awareness states a room keeps. Default `MAX_AWARENESS_BYTES_PER_ROOM`. */
  readonly maxAwarenessRoomBytes?: number
  /** Awareness states one socket holds. Default `MAX_AWARENESS_STATES_PER_SOCKET`. */
  readonly maxAwarenessStatesPerSocket?: number
  /** Close a socket (1013, it reconnects and resyncs) with more than this unsent. Default 8 MiB. */
  readonly maxBufferedBytes?: number
  /** Bind Yjs clientIDs to the principal that first writes as them (see the header). Default true. */
  readonly bindWriters?: boolean
  /** Bytes of a socket's frames the hub may be working on before it stops reading it. Default 8 MiB. */
  readonly maxInflowBytes?: number
}

export interface YjsRoute extends WsRoute {
  /** Sockets open on this route. */
  readonly connections: number
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
  /** Id of the principal it authenticated as (once it has). */
  principal: string | undefined
  readonly inflow: Inflow
  room: Room | undefined
  doc: CrdtDocAuthority<Y.Doc> | undefined
  alive: boolean
  closed: boolean
}

/** Awareness states a room keeps (a stock room has a few dozen); states of new clients past it are dropped. */
export const MAX_AWARENESS_STATES_PER_ROOM = 1024
/** Bytes of awareness states (their JSON) a room keeps; past it, new or growing states are dropped. */
export const MAX_AWARENESS_BYTES_PER_ROOM = 512 * 1024
/** Awareness states one socket may hold (a stock provider holds one); past it the socket is closed (4400). */
export const MAX_AWARENESS_STATES_PER_SOCKET = 64

/** Our close codes: 4400-4499 stop a y-websocket client for good, others make it retry. */
const CLOSE = { malformed: 4400, unauthorized: 4401, forbidden: 4403, kind: 4409, unavailable: 4503, slow: 1013, away: 1001 } as const

const queryParam = (url: string, name: string): string | undefined => {
  const q = url.indexOf("?")
  return q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get(name) ?? undefined)
}

const toBytes = (data: RawData): Uint8Array => (Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data)

export const yjsRoute = (host: CrdtDocHost, options: YjsRouteOptions = {}): YjsRoute => {
  const prefix = (options.prefix ?? "/yjs").replace(/\/+$/, "")
  const credentials = options.credentials ?? ((info: WsConnectionInfo) => queryParam(info.url, "token"))
  const period = options.keepaliveMs ?? 10_000
  const awarenessTimeout = options.awarenessTimeoutMs ?? 30_000
  const maxAwareness = options.maxAwarenessBytes ?? 64 * 1024
  const maxRoomStates = options.maxAwarenessStates ?? MAX_AWARENESS_STATES_PER_ROOM
  const maxRoomBytes = options.maxAwarenessRoomBytes ?? MAX_AWARENESS_BYTES_PER_ROOM
  const maxSocketStates = options.maxAwarenessStatesPerSocket ?? MAX_AWARENESS_STATES_PER_SOCKET
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024
  const bindWriters = options.bindWriters ?? true
  const maxInflow = options.maxInflowBytes ?? DEFAULT_MAX_INFLOW_BYTES
  const rooms = new Map<string, Room>()
  const conns = new Set<Conn>()

  const refuse = (code: string, message: string) => host.report({ type: "refused", code, message })

  const send = (conn: Conn, bytes: Uint8Array): void => {
    if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return
    if (conn.ws.bufferedAmount > maxBuffered) return close(conn, CLOSE.slow, "Too far behind; reconnect to resync.")
    conn.ws.send(bytes)
  }

  const close = (conn: Conn, code: number, reason: string): void => {
    if (conn.ws.readyState === WebSocket.OPEN || conn.ws.readyState === WebSocket.CONNECTING) conn.ws.close(code, reason.slice(0, 120))
    leave(conn)
  }

  /** The socket is gone: stop following, remove its awareness states (telling the others). */
  const leave = (conn: Conn): void => {
    if (conn.closed) return
    conn.closed = true
    conns.delete(conn)
    const { room, doc } = conn
    if (room === undefined || doc === undefined) return
    doc.unsubscribe(conn)
    const gone: AwarenessEntry[] = []
    for (const id of [...conn.ids]) {
      const s = room.awareness.get(id)
      if (s === undefined || s.conn !== conn) continue
      forget(room, id)
      if (s.state !== "null") gone.push({ clientID: id, clock: s.clock, state: "null" })
    }
    if (gone.length > 0) doc.relay(encodeAwareness(encodeAwarenessUpdate(gone)), conn)
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
   * Applies an awareness update to the room within its bounds (see the header). Returns what
   * to relay (undefined: nothing was news; "whole": the message as it came), or `close`:
   * why the socket is closed.
   */
  const takeAwareness = (conn: Conn, room: Room, update: Uint8Array): AwarenessEntry[] | "whole" | undefined | { close: string } => {
    const entries = decodeAwarenessUpdate(update, 1024)
    const now = Date.now()
    const taken: AwarenessEntry[] = []
    let whole = true
    let full = false
    for (const e of entries) {
      const cur = room.awareness.get(e.clientID)
      const isNull = e.state === "null"
      // The y-protocols rule: a newer clock wins; at the same clock only a removal does.
      if (cur !== undefined && !(cur.clock < e.clock || (cur.clock === e.clock && isNull && cur.state !== "null"))) continue
      if (cur === undefined && isNull) {
        // The removal of a state the room does not hold (forgotten, or never there): nothing to keep.
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
      if (owner === conn) {
        if (!mine && conn.ids.size >= maxSocketStates) return { close: `A socket holds at most ${maxSocketStates} awareness states.` }
        if (conn.awarenessBytes - (mine ? cur.state.length : 0) + e.state.length > maxAwareness) return { close: `A socket's awareness states are limited to ${maxAwareness} bytes.` }
      }
      const bytes = room.bytes - (cur?.state.length ?? 0) + e.state.length
      if ((cur === undefined && room.awareness.size >= maxRoomStates) || (bytes > room.bytes && bytes > maxRoomBytes)) {
        whole = false
        full = true
        continue
      }
      put(room, e.clientID, { clock: e.clock, state: e.state, conn: owner, at: now })
      taken.push(e)
    }
    if (full && !conn.toldFull) {
      conn.toldFull = true
      refuse("presence-limit", `y-websocket "${room.docId}": the room holds ${room.awareness.size} awareness states (${room.bytes} bytes; at most ${maxRoomStates} and ${maxRoomBytes}); new ones are dropped.`)
    }
    return taken.length === 0 ? undefined : whole ? "whole" : taken
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
    switch (msg.type) {
      case "step1": {
        let diff: Uint8Array
        try {
          diff = Y.encodeStateAsUpdate(doc.doc, msg.stateVector)
        } catch {
          refuse("protocol-error", "y-websocket: a step1 whose state vector does not decode.")
          return close(conn, CLOSE.malformed, "Bad state vector.")
        }
        return send(conn, encodeStep2(diff))
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
        return doc.submit([msg.update], conn, writer, workPayer(conn.principal ?? "anonymous", conn)).then((outcome) => {
          const bad = outcome.rejected[0]
          if (bad === undefined) return
          refuse(bad.code, `y-websocket "${room.docId}": ${bad.message}`)
          close(conn, CLOSE.malformed, `${bad.code}: ${bad.message}`)
        }, (e: unknown) => {
          if (!conn.closed) close(conn, CLOSE.unavailable, e instanceof Error ? e.message : "The document is unavailable.")
        })
      }
      case "awareness": {
        if (msg.update.length > maxAwareness) {
          refuse("presence-too-large", `y-websocket: an awareness update of ${msg.update.length} bytes.`)
          return close(conn, CLOSE.malformed, `Awareness is limited to ${maxAwareness} bytes.`)
        }
        let taken: ReturnType<typeof takeAwareness>
        try {
          taken = takeAwareness(conn, room, msg.update)
        } catch (e) {
          refuse("protocol-error", `y-websocket: a bad awareness update (${e instanceof Error ? e.message : String(e)}).`)
          return close(conn, CLOSE.malformed, "Bad awareness update.")
        }
        if (taken === undefined) return
        if (taken === "whole") return doc.relay(bytes, conn)
        if (Array.isArray(taken)) return doc.relay(encodeAwareness(encodeAwarenessUpdate(taken)), conn)
        refuse("presence-limit", `y-websocket "${room.docId}": ${taken.close}`)
        return close(conn, CLOSE.malformed, taken.close)
      }
      case "query-awareness": {
        const all = awarenessOf(room)
        if (all !== undefined) send(conn, all)
        return
      }
      default:
        // auth messages from a client, unknown types: ignored, as the stock server does.
        return
    }
  }

  const accept = (ws: WebSocket, info: WsConnectionInfo): void => {
    const path = info.url.split("?")[0]!
    const docId = path.slice(prefix.length + 1)
    const conn: Conn = {
      ws, ids: new Set(), awarenessBytes: 0, toldFull: false, toldNotOwner: false, principal: undefined, inflow: socketInflow(ws, maxInflow), room: undefined, doc: undefined, alive: true, closed: false,
      onUpdates: (updates) => {
        for (const u of updates) send(conn, encodeUpdate(u))
      },
      onEphemeral: (payload) => send(conn, payload),
      onClose: (code, reason) => close(conn, code === "going-away" ? CLOSE.away : CLOSE.unavailable, reason),
    }
    conns.add(conn)
    // Messages that arrive while authenticating wait (bounded), then run in order.
    const early: Array<{ bytes: Uint8Array; done: () => void }> = []
    let ready: ((bytes: Uint8Array, done: () => void) => void) | undefined
    ws.binaryType = "nodebuffer"
    ws.on("message", (data, isBinary) => {
      conn.alive = true
      if (conn.closed) return
      if (!isBinary) return close(conn, CLOSE.malformed, "y-websocket frames are binary.")
      const bytes = toBytes(data)
      const done = conn.inflow.take(bytes.length)
      if (ready !== undefined) return ready(bytes, done)
      if (early.length >= 64) return close(conn, CLOSE.malformed, "Too many messages before the hub answered.")
      early.push({ bytes, done })
    })
    ws.on("pong", () => (conn.alive = true))
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
        doc = await host.open<Y.Doc>("yjs", docId)
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
      if (all !== undefined) send(conn, all)
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

  const timer = setInterval(() => {
    const now = Date.now()
    for (const conn of conns) {
      if (conn.ws.readyState !== WebSocket.OPEN) continue
      // A paused socket (input flow control) has its pongs unread: not a dead one.
      if (!conn.alive && !conn.ws.isPaused) {
        conn.ws.terminate()
        leave(conn)
        continue
      }
      conn.alive = false
      conn.ws.ping()
      if (conn.doc !== undefined) send(conn, AWARENESS_KEEPALIVE)
    }
    for (const room of rooms.values()) {
      for (const [id, s] of room.awareness) if (now - s.at >= awarenessTimeout) forget(room, id)
    }
  }, period)
  timer.unref()

  return {
    prefix,
    accept,
    get connections() {
      return conns.size
    },
    get pendingBytes() {
      let n = 0
      for (const c of conns) n += c.inflow.pending
      return n
    },
    close: () => clearInterval(timer),
  }
}

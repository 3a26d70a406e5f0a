/**
 * The automerge-repo endpoint: a stock `Repo` with `WebSocketClientAdapter` syncs documents
 * through the hub (persisted, compacted, with the hub's auth and the WsServer's limits). The
 * hub does not run automerge-repo: it speaks the protocol (protocol.ts) with Automerge's
 * sync messages, one SyncState per (socket, document).
 *
 * Mount: `routes: [automergeRoute(hub.crdtDocs)]`; a client:
 * `new Repo({ network: [new WebSocketClientAdapter("ws://host:port/automerge?token=...")] })`.
 *
 * - Authentication at the upgrade: the `token` query parameter (or `credentials(info)`) goes
 *   to the hub's authenticate hook; refused: close 4401. `authorize` is asked per document:
 *   no read access answers `doc-unavailable` (as the stock `shareConfig` does); read-only
 *   peers get the document but their changes are dropped.
 * - The peer id a socket joins with is bound to it; messages claiming another sender are
 *   ignored. A peer id belongs to the principal that first joined with it (others see it only
 *   after that): another principal joining with it is closed (4400), so nobody sends
 *   ephemeral messages (presence) as another user's peer. That holds for as long as any socket
 *   holds the peer id, whatever else the hub forgot; once none does, the hub remembers its
 *   owner for a reconnect (a stock client comes back with the same peer id), at most 1,024
 *   such per principal (per address without an authenticate hook; its own oldest forgotten
 *   first) and 65,536 in all (then the oldest of whoever keeps the most): peer-owners.ts. One
 *   shared list let one user's 65,700 joins with fresh peer ids (about 35 s) push out everyone's,
 *   then join as a connected victim's peer and send presence as it.
 * - A sync message's changes are checked and stored (durable) before the SyncState records
 *   them; a refused change resets that SyncState (the next round resends what we lack) and
 *   is reported; a malformed frame closes the socket (4400). A sync message is checked from its
 *   bytes before anything decodes it or opens its document (../automerge/admit.ts
 *   `admitSyncMessage`: lists and Bloom filters bounded, hashes named once): 8 MB of empty `have`
 *   entries, decoded, were 4 million JS objects and took the hub's heap; kept in a SyncState,
 *   every later round paid for them. One that fails closes the socket (4400), and only the
 *   cleaned message reaches `receiveSyncMessage`. Should Automerge still fail to answer a peer,
 *   that SyncState starts over (and the socket is closed if it fails again, 1011).
 * - Writers are bound (core/crdt-docs/authority.ts): the first principal to write changes of an
 *   actor owns it; another principal's new change of that actor closes its socket (4400,
 *   `not-owner`). A peer relaying a third party's changes the hub has not seen yet binds them
 *   to itself: set `bindWriters: false` where users relay each other's changes (peers synced
 *   between users outside the hub).
 * - `request` for a document the hub does not have (and the requester has nothing of) is
 *   answered `doc-unavailable`. Only `request` and `sync` open a document for a socket: an
 *   `ephemeral` message for one the socket does not follow is dropped (a stock Repo sends them
 *   once it syncs the document).
 * - Input flow control (adapters/ws/inflow.ts): a socket whose frames the hub has not finished
 *   with (each waits for the one before it, and a change for its disk write) past
 *   `maxInflowBytes` is paused until they are down to half, so a peer sending faster than the
 *   disk slows down instead of filling the hub's memory.
 * - `ephemeral` is relayed to the document's other peers, deduplicated by session and count,
 *   at most `maxEphemeralBytes`, encoded once for all of them (each receiver's frame is a few
 *   bytes of its own, its `targetId`, and the shared rest: protocol.ts `addressTo`).
 * - Backpressure, one gate for everything sent to a peer (`mayWrite`, as core/authority
 *   followers.ts `canSend` for the Canon protocol): past `maxBufferedEphemeralBytes` unsent,
 *   ephemeral messages to it are dropped (they are lossy: the next one replaces them); past
 *   `maxBufferedBytes` beyond the largest message written since it last drained (a whole
 *   document's first sync may be larger: adapters/ws/backlog.ts) it is closed (1013; a stock
 *   client reconnects and resyncs), since a sync message cannot be dropped once its SyncState
 *   counts it as sent. So what the hub holds for a reader is bounded whatever it reads.
 * - One message with changes in flight per (socket, document): until the peer answers it,
 *   changes to the document wait and then go in one message. Automerge sends a peer that has
 *   not told its heads the whole document again with every message, so relaying each change
 *   to a peer still downloading (or not answering) sent it the whole document each time. A
 *   peer that does not answer within `ANSWER_WAIT_MS` of its socket draining is sent again.
 * - Liveness: a ping every `pingMs`; a socket with no sign that it reads for `pongTimeoutMs`
 *   (three periods) is terminated. Only a pong to a ping counts, or what the hub sent leaving
 *   at a reader's pace (a peer can send without reading); the time the socket is held unread
 *   by input flow control is not counted (up to 120 s a wait), the time it is read is (ws/pong-clock.ts).
 */
import * as A from "@automerge/automerge"
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
import type { AutomergeBox } from "./engine.js"
import { admitSyncMessage } from "../automerge/admit.js"
import { PeerOwners } from "./peer-owners.js"
import { PROTOCOL_VERSION, addressTo, decodeRepoMessage, encodeRepoMessage, type RepoMessage } from "./protocol.js"

/** Close code for a peer too far behind: "try again later" (a stock client reconnects and resyncs). */
const CLOSE_SLOW = 1013

/** Peer ids no socket holds whose first principal the route remembers (peer-owners.ts). */
const MAX_PEER_IDS = 65_536
/** Of those, charged to one principal (or address, without an authenticate hook). */
const MAX_PEER_IDS_PER_USER = 1024

export interface AutomergeRouteOptions {
  /** Path prefix. Default "/automerge". */
  readonly prefix?: string
  /** Credentials handed to `authenticate`. Default: the `token` query parameter. */
  readonly credentials?: (info: WsConnectionInfo) => string | undefined
  /** The hub's peer id. Default "canon-hub". */
  readonly peerId?: string
  /** The hub's storage id (lets clients with storage keep their SyncState with it). */
  readonly storageId?: string
  /** Ping period. Default 10,000 ms. */
  readonly pingMs?: number
  /** A socket with no sign that it reads this long after a ping is terminated (ws/pong-clock.ts). Default three ping periods. */
  readonly pongTimeoutMs?: number
  /** Largest ephemeral payload relayed. Default 64 KiB. */
  readonly maxEphemeralBytes?: number
  /** Documents one socket may follow. Default 1,000. */
  readonly maxDocsPerConnection?: number
  /** Bind Automerge actors to the principal that first writes as them (see the header). Default true. */
  readonly bindWriters?: boolean
  /** Bytes of a socket's frames the hub may be working on before it stops reading it. Default 8 MiB. */
  readonly maxInflowBytes?: number
  /**
   * Largest message a socket may send: a larger one closes it (1009). Default 9 MiB
   * (DEFAULT_MAX_DOC_MESSAGE_BYTES): a stock client sends all it
   * did offline in one message. The engine bounds each update within it apart.
   */
  readonly maxMessageBytes?: number
  /**
   * Close a socket (1013, it reconnects and resyncs) with more than this unsent, beyond the
   * largest message written since it last drained (a whole document may be larger). Default 8 MiB.
   */
  readonly maxBufferedBytes?: number
  /** Drop ephemeral messages to a socket with more than this unsent. Default 1 MiB. */
  readonly maxBufferedEphemeralBytes?: number
  /**
   * @internal Peer ids no socket holds whose owner the route remembers (peer-owners.ts; tests
   * reach the bound with a small one). Default 65,536.
   */
  readonly maxPeerIds?: number
  /** @internal Of those, kept for one principal (one address without an authenticate hook). Default 1,024. */
  readonly maxPeerIdsPerUser?: number
}

export interface AutomergeRoute extends WsRoute {
  readonly connections: number
  /** Bytes of frames received and not yet done with, over all sockets (input flow control). */
  readonly pendingBytes: number
  close(): void
}

interface Follow extends CrdtSubscriber {
  readonly doc: CrdtDocAuthority<AutomergeBox>
  syncState: A.SyncState
  readonly canWrite: boolean
  /**
   * Set once the peer's first message was taken: before that the hub sends it nothing of its
   * own accord. (A sync message with no changes reaching a peer that is still requesting the
   * document makes a stock Repo give up on it as unavailable.)
   */
  started: boolean
  /**
   * A message with changes was sent and the peer has not answered it (see `syncTo`): until it
   * does, changes wait (the follow is in `waiting`). `drainedAt`: when its socket was first
   * seen drained meanwhile.
   */
  awaiting: boolean
  drainedAt: number | undefined
  /** A message for it waits for the document's write in flight (`CrdtDocAuthority.storing`). */
  deferred: boolean
}

interface Conn {
  readonly ws: WebSocket
  peerId: string | undefined
  principal: Principal | undefined
  /** Whom the peer id it held is charged to once it closes: its principal, or its address without one. */
  account: string
  /** Who pays for the documents it opens that are not loaded (`loadPayer`: its principal, or its address without one). */
  loadPayer: string
  readonly inflow: Inflow
  /** Its unsent bytes against `maxBufferedBytes` (past the largest message written). */
  readonly backlog: Backlog
  readonly follows: Map<string, Follow | Promise<Follow | undefined>>
  readonly seen: Map<string, number>
  chain: Promise<void>
  pongs: PongClock
  closed: boolean
}

/** How long a peer whose socket has drained may take to answer before it is sent changes again. */
const ANSWER_WAIT_MS = 2_000
const ANSWER_POLL_MS = 100

const queryParam = (url: string, name: string): string | undefined => {
  const q = url.indexOf("?")
  return q < 0 ? undefined : (new URLSearchParams(url.slice(q + 1)).get(name) ?? undefined)
}

const toBytes = (data: RawData): Uint8Array => (Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data)

export const automergeRoute = (host: CrdtDocHost, options: AutomergeRouteOptions = {}): AutomergeRoute => {
  const prefix = (options.prefix ?? "/automerge").replace(/\/+$/, "")
  const maxFrameBytes = options.maxMessageBytes ?? DEFAULT_MAX_DOC_MESSAGE_BYTES
  const credentials = options.credentials ?? ((info: WsConnectionInfo) => queryParam(info.url, "token"))
  const hubId = options.peerId ?? "canon-hub"
  const maxEphemeral = options.maxEphemeralBytes ?? 64 * 1024
  const maxDocs = options.maxDocsPerConnection ?? 1000
  const bindWriters = options.bindWriters ?? true
  const maxInflow = options.maxInflowBytes ?? DEFAULT_MAX_INFLOW_BYTES
  const maxBuffered = options.maxBufferedBytes ?? 8 << 20
  const maxBufferedEphemeral = Math.min(options.maxBufferedEphemeralBytes ?? 1 << 20, maxBuffered)
  const conns = new Set<Conn>()
  /** Peer id -> the principal that first joined with it: never forgotten while a socket holds it. */
  const peerOwners = new PeerOwners(options.maxPeerIds ?? MAX_PEER_IDS, options.maxPeerIdsPerUser ?? MAX_PEER_IDS_PER_USER)
  const peerMetadata = { isEphemeral: false, ...(options.storageId !== undefined ? { storageId: options.storageId } : {}) }

  const refuse = (code: string, message: string) => host.report({ type: "refused", code, message })

  /**
   * The backpressure gate every send goes through (see the header): whether a message may be
   * written to the socket now. `droppable`: an ephemeral message, held to the lower limit.
   */
  const mayWrite = (conn: Conn, droppable: boolean): boolean => {
    if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return false
    const buffered = conn.ws.bufferedAmount
    if (conn.backlog.exceeded(buffered)) {
      refuse("slow-consumer", `automerge-repo: more than ${maxBuffered} bytes waited unread for peer "${conn.peerId ?? "(not joined)"}"; closed.`)
      close(conn, CLOSE_SLOW, "Too far behind; reconnect to resync.")
      return false
    }
    return !droppable || buffered <= maxBufferedEphemeral
  }

  const send = (conn: Conn, m: Record<string, unknown>): void => {
    if (!mayWrite(conn, false)) return
    const bytes = encodeRepoMessage(m)
    conn.backlog.wrote(bytes.length)
    conn.ws.send(bytes)
  }

  /** A relayed ephemeral message (encoded once, without targetId) to one receiver. */
  const sendEphemeral = (conn: Conn, encoded: Uint8Array): void => {
    if (conn.peerId === undefined || !mayWrite(conn, true)) return
    const frame = addressTo(encoded, conn.peerId)
    if (frame === undefined) return
    // One WebSocket message in two fragments, so the shared body is queued, not copied.
    conn.ws.send(frame.head, { binary: true, fin: false })
    conn.ws.send(frame.body, { binary: true, fin: true })
  }

  const close = (conn: Conn, code: number, reason: string): void => {
    if (conn.ws.readyState === WebSocket.OPEN || conn.ws.readyState === WebSocket.CONNECTING) conn.ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES))
    leave(conn)
  }

  const leave = (conn: Conn): void => {
    if (conn.closed) return
    conn.closed = true
    conns.delete(conn)
    if (conn.peerId !== undefined) peerOwners.release(conn.peerId, conn.account)
    for (const f of conn.follows.values()) {
      void Promise.resolve(f).then((follow) => {
        if (follow === undefined) return
        follow.doc.unsubscribe(follow)
        host.release(follow.doc)
      })
    }
    conn.follows.clear()
  }

  /**
   * A peer's sync message whose changes the document already took, for `receiveSyncMessage`
   * to record what the peer has. Its changes are replaced by one change of the document that
   * the peer named as a head: Automerge would otherwise decode a whole document chunk a
   * second time, while a message with no changes at all, its heads now ours, makes Automerge
   * count them as sent and never answer (the peer never hears the hub has its edits).
   */
  const recordOnly = (doc: A.Doc<unknown>, cleaned: A.DecodedSyncMessage): Uint8Array => {
    if (cleaned.changes.length === 0) return A.encodeSyncMessage(cleaned)
    const backend = A.getBackend(doc)
    for (const head of cleaned.heads) {
      const known = backend.getChangeByHash(head)
      if (known != null) return A.encodeSyncMessage({ ...cleaned, changes: [known] })
    }
    return A.encodeSyncMessage(cleaned)
  }

  /**
   * The follow's next message (null: nothing to send), or undefined when Automerge failed twice
   * and the socket was closed. A failure resets the SyncState first: one that throws would throw
   * at every later change of the document, from a timer or another peer's fan-out.
   */
  const generate = (conn: Conn, documentId: string, f: Follow): A.SyncMessage | null | undefined => {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const [next, message] = A.generateSyncMessage(f.doc.doc.doc, f.syncState)
        f.syncState = next
        return message
      } catch (e) {
        refuse("internal-error", `automerge-repo ${documentId}: Automerge could not answer peer "${conn.peerId ?? "(not joined)"}" (${e instanceof Error ? e.message.slice(0, 120) : String(e)}); its sync starts over.`)
        f.syncState = A.initSyncState()
      }
    }
    close(conn, 1011, "The hub could not answer; reconnect to resync.")
    return undefined
  }

  /** Follows holding changes until their peer answers (or stays silent too long), polled. */
  const waiting = new Map<Follow, { conn: Conn; documentId: string }>()
  let waitTimer: ReturnType<typeof setTimeout> | undefined

  const syncTo = (conn: Conn, documentId: string, f: Follow): void => {
    if (f.awaiting) {
      waiting.set(f, { conn, documentId })
      waitTimer ??= setTimeout(pollWaiting, ANSWER_POLL_MS)
      return
    }
    // Never what a crash could still take back: a peer given it would hold data the hub lost,
    // and send another principal's changes back as its own (not-owner).
    const storing = f.doc.storing
    if (storing !== undefined) {
      if (f.deferred) return
      f.deferred = true
      void storing.then(() => {
        f.deferred = false
        if (!conn.closed && conn.follows.get(documentId) === f) syncTo(conn, documentId, f)
      })
      return
    }
    const message = generate(conn, documentId, f)
    if (message == null) return
    send(conn, { type: "sync", senderId: hubId, targetId: conn.peerId, documentId, data: message })
    // A stock peer answers a message that brought it changes (its heads moved): wait for that.
    if (A.decodeSyncMessage(message).changes.length > 0) {
      f.awaiting = true
      f.drainedAt = undefined
    }
  }

  /** The peer answered (any sync message of its own): what waited goes now. */
  const answered = (f: Follow): void => {
    f.awaiting = false
    waiting.delete(f)
  }

  const pollWaiting = (): void => {
    waitTimer = undefined
    const now = performance.now()
    for (const [f, { conn, documentId }] of [...waiting]) {
      if (conn.closed || !conn.follows.has(documentId)) {
        waiting.delete(f)
        continue
      }
      // Still being written out: the peer cannot have answered yet.
      if (conn.ws.bufferedAmount > 0) f.drainedAt = undefined
      else if (f.drainedAt === undefined) f.drainedAt = now
      else if (now - f.drainedAt >= ANSWER_WAIT_MS) {
        answered(f)
        syncTo(conn, documentId, f)
      }
    }
    if (waiting.size > 0) waitTimer = setTimeout(pollWaiting, ANSWER_POLL_MS)
  }

  const unavailable = (conn: Conn, documentId: string) => send(conn, { type: "doc-unavailable", senderId: hubId, targetId: conn.peerId, documentId })

  /** The socket's follow of a document, opened (and authorized) on first use; undefined: refused. */
  const follow = (conn: Conn, documentId: string): Promise<Follow | undefined> | Follow | undefined => {
    const existing = conn.follows.get(documentId)
    if (existing !== undefined) return existing
    if (conn.follows.size >= maxDocs) return undefined
    const opening = (async (): Promise<Follow | undefined> => {
      const principal = conn.principal!
      if (!(await host.authorize(principal, documentId, "read"))) return undefined
      const canWrite = await host.authorize(principal, documentId, "write")
      const doc = await host.open<AutomergeBox>("automerge", documentId, conn.loadPayer).catch((e: unknown) => {
        refuse((e as { code?: string }).code ?? "doc-unavailable", e instanceof Error ? e.message : String(e))
        return undefined
      })
      if (doc === undefined) return undefined
      if (conn.closed) {
        host.release(doc)
        return undefined
      }
      const f: Follow = {
        doc, canWrite, syncState: A.initSyncState(), started: false, awaiting: false, deferred: false, drainedAt: undefined,
        onUpdates: () => {
          if (f.started) syncTo(conn, documentId, f)
        },
        onEphemeral: (payload) => sendEphemeral(conn, payload),
        onClose: (code, reason) => close(conn, code === "going-away" ? 1001 : 4503, reason),
      }
      doc.subscribe(f)
      conn.follows.set(documentId, f)
      return f
    })()
    conn.follows.set(documentId, opening)
    opening.then((f) => {
      if (f === undefined) conn.follows.delete(documentId)
    }, () => conn.follows.delete(documentId))
    return opening
  }

  const onSync = async (conn: Conn, m: Extract<RepoMessage, { type: "request" | "sync" }>): Promise<void> => {
    // Checked from its bytes before it is decoded or its document opened (see the header).
    const decoded = admitSyncMessage(m.data)
    if (typeof decoded === "string") {
      refuse("protocol-error", `automerge-repo: a sync message for ${m.documentId} refused: ${decoded}. Send what Automerge's sync makes.`)
      return close(conn, 4400, `Sync message refused: ${decoded}`)
    }
    const f = await follow(conn, m.documentId)
    if (conn.closed) return
    if (f === undefined) return unavailable(conn, m.documentId)
    answered(f)
    // Nobody has it: the requester holds nothing and the hub never stored it. Its first changes
    // queued or being written now (a document shared as soon as it was made) are waited for:
    // told unavailable, the requester would never hear of it.
    const empty = m.type === "request" && decoded.heads.length === 0 && decoded.changes.length === 0
    if (empty && f.doc.seq === 0) {
      await f.doc.flush().catch(() => {})
      if (conn.closed) return
    }
    if (empty && f.doc.seq === 0) {
      conn.follows.delete(m.documentId)
      f.doc.unsubscribe(f)
      host.release(f.doc)
      return unavailable(conn, m.documentId)
    }
    if (decoded.changes.length > 0) {
      if (!f.canWrite) {
        // Read-only: the changes are not taken; the peer is told what the hub has.
        f.started = true
        return syncTo(conn, m.documentId, f)
      }
      const outcome = await f.doc.submit(decoded.changes, f, bindWriters ? conn.principal!.id : undefined, workPayer(conn.principal!.id, conn)).catch(() => undefined)
      if (conn.closed) return
      if (outcome === undefined) return close(conn, 4503, "The document is unavailable; reconnect.")
      const bad = outcome.rejected[0]
      if (bad !== undefined) {
        refuse(bad.code, `automerge-repo ${m.documentId}: ${bad.message}`)
        // Sending them again would be refused again: this peer stops.
        if (bad.code === "update-malformed" || bad.code === "update-too-large" || bad.code === "not-owner") return close(conn, 4400, `${bad.code}: ${bad.message}`)
        // No room now (the hub's bound on what its documents hold): it reconnects and sends them again later.
        if (bad.code === "doc-unavailable") return close(conn, 4503, `${bad.code}: ${bad.message}`)
        // Start over with this peer: the next round sends what the hub lacks.
        f.started = true
        f.syncState = A.initSyncState()
        return syncTo(conn, m.documentId, f)
      }
    }
    // Every change in it is in the document now: this only records what the peer has.
    f.started = true
    const box = f.doc.doc
    try {
      ;[box.doc, f.syncState] = A.receiveSyncMessage(box.doc, f.syncState, recordOnly(box.doc, decoded))
    } catch (e) {
      refuse("protocol-error", `automerge-repo ${m.documentId}: ${e instanceof Error ? e.message : String(e)}`)
      f.syncState = A.initSyncState()
    }
    syncTo(conn, m.documentId, f)
  }

  const onEphemeral = (conn: Conn, m: Extract<RepoMessage, { type: "ephemeral" }>): void => {
    if (m.data.length > maxEphemeral) return refuse("presence-too-large", `automerge-repo: an ephemeral message of ${m.data.length} bytes.`)
    // Only for a document this socket follows (it sent request or sync for it first, and the
    // hub had it): an ephemeral message opens nothing. Frames are handled in order, so that
    // follow is settled by now.
    const f = conn.follows.get(m.documentId)
    if (f === undefined || f instanceof Promise) return
    const key = `${m.sessionId}\u0000${m.documentId}`
    if ((conn.seen.get(key) ?? -1) >= m.count) return
    if (conn.seen.size >= 4 * maxDocs) conn.seen.clear()
    conn.seen.set(key, m.count)
    // Encoded once here, for every receiver (addressed to each by sendEphemeral); copied out of
    // the encoder's buffer, so the receivers' queues hold its bytes, not a larger slab.
    const { type, senderId, documentId, count, sessionId, data } = m
    f.doc.relay(encodeRepoMessage({ type, senderId, documentId, count, sessionId, data }).slice(), f)
  }

  const handle = async (conn: Conn, frame: Uint8Array): Promise<void> => {
    const m = decodeRepoMessage(frame)
    if (m === undefined) {
      refuse("protocol-error", "automerge-repo: a frame that is not a well-formed message.")
      return close(conn, 4400, "Malformed message.")
    }
    if (m.type === "join") {
      const versions = m.supportedProtocolVersions
      if (versions !== undefined && !versions.includes(PROTOCOL_VERSION)) {
        send(conn, { type: "error", senderId: hubId, message: "unsupported protocol version", targetId: m.senderId })
        return close(conn, 4400, "Unsupported protocol version.")
      }
      if (conn.peerId !== undefined && conn.peerId !== m.senderId) return close(conn, 4400, "One peer id per socket.")
      if (conn.peerId === undefined) {
        // A peer id is seen by others only once its owner has joined: its first principal owns
        // it, always while a socket holds it (peer-owners.ts).
        const principal = conn.principal!.id
        const known = peerOwners.ownerOf(m.senderId)
        if (known !== undefined && known.owner !== principal) {
          refuse("unauthorized", `automerge-repo: "${principal}" joined with a peer id ${known.held ? "another user's connected peer holds" : "another user joined with first"}; closed.`)
          return close(conn, 4400, `This peer id ${known.held ? "is in use by" : "belongs to"} another user; join with your own (a Repo's default peerId is random).`)
        }
        peerOwners.hold(m.senderId, principal)
        conn.peerId = m.senderId
      }
      return send(conn, { type: "peer", senderId: hubId, peerMetadata, selectedProtocolVersion: PROTOCOL_VERSION, targetId: m.senderId })
    }
    // Not joined, or claiming to be another peer: ignored (as the stock server does).
    if (conn.peerId === undefined || m.senderId !== conn.peerId) return
    if (m.type === "request" || m.type === "sync") return onSync(conn, m)
    if (m.type === "ephemeral") return onEphemeral(conn, m)
    // doc-unavailable, remote-heads gossip: nothing for the hub to do.
  }

  const accept = (ws: WebSocket, info: WsConnectionInfo): void => {
    const pongs = new PongClock()
    const conn: Conn = { ws, peerId: undefined, principal: undefined, account: "", loadPayer: "", inflow: socketInflow(ws, maxInflow, pongs), backlog: new Backlog(maxBuffered), follows: new Map(), seen: new Map(), chain: Promise.resolve(), pongs, closed: false }
    conns.add(conn)
    ws.binaryType = "nodebuffer"
    // Authentication first; frames queue behind it on the connection's chain, in order.
    conn.chain = (async () => {
      const who = await host.authenticate(credentials(info), info)
      if ("refuse" in who) {
        refuse("unauthorized", who.refuse)
        return close(conn, 4401, who.refuse)
      }
      conn.principal = who.principal
      // Without a principal (no authenticate hook: everyone is "anonymous"), its address pays.
      conn.account = who.principal.id === ANONYMOUS.id ? `address:${info.limitKey ?? info.remoteAddress ?? ""}` : `principal:${who.principal.id}`
      conn.loadPayer = loadPayer(who.principal.id, conn, info)
    })()
    ws.on("message", (data, isBinary) => {
      // Not a sign of life: a peer that sends but never reads would outlive every sweep.
      if (conn.closed) return
      if (!isBinary) return close(conn, 4400, "automerge-repo frames are binary.")
      const frame = toBytes(data)
      const done = conn.inflow.take(frame.length)
      conn.chain = conn.chain.then(() => (conn.closed ? undefined : handle(conn, frame))).catch((e: unknown) => {
        refuse("internal-error", `automerge-repo: ${e instanceof Error ? e.message : String(e)}`)
        close(conn, 1011, "The hub failed on a message.")
      }).finally(done)
    })
    ws.on("pong", (data) => pongs.pong(data))
    ws.on("close", () => leave(conn))
    ws.on("error", () => leave(conn))
  }

  const pingMs = options.pingMs ?? 10_000
  const pongTimeoutMs = options.pongTimeoutMs ?? 3 * pingMs
  const lateness = new SweepLateness(pingMs, performance.now())
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
    }
  }, pingMs)
  timer.unref()

  return {
    prefix,
    maxFrameBytes,
    accept,
    get connections() {
      return conns.size
    },
    get pendingBytes() {
      let n = 0
      for (const c of conns) n += c.inflow.pending
      return n
    },
    close: () => {
      clearInterval(timer)
      if (waitTimer !== undefined) clearTimeout(waitTimer)
      waitTimer = undefined
      waiting.clear()
    },
  }
}

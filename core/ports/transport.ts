/**
 * The Transport port: how replicas and the hub exchange messages. A transport moves typed
 * messages over some connection (in memory, WebSocket); encoding, if any, is its business.
 *
 * The hub is a `ConnectionAcceptor`: a server transport hands it each new connection and
 * gets back the listener for that connection's messages. A client transport connects and
 * reports to the listener it was given.
 *
 * Every transport passes the shared suite in test/transport-conformance.
 */
import type { ClientMessage, ServerMessage } from "../protocol/messages.js"

/** Why a connection ended. `code` is stable (e.g. "closed", "reset", "protocol-error"). */
export interface CloseInfo {
  readonly code: string
  readonly reason: string
}

/** One end of a connection: what the owner can do with it. */
export interface Connection<Out> {
  send(message: Out): void
  /** Closes; the peer's listener gets `onClose` with this code and reason. */
  close(code?: string, reason?: string): void
  /** Bytes (or messages, for in-memory links) sent but not yet taken by the peer. */
  readonly bufferedAmount: number
  /**
   * Stops delivering the peer's messages until `resume` (a socket is then not read, so TCP
   * slows the peer down): the hub's input flow control. Optional: a transport without it is
   * never paused.
   */
  pause?(): void
  resume?(): void
}

/** What the owner of a connection is told. */
export interface ConnectionListener<In> {
  onOpen?(): void
  onMessage(message: In): void
  onClose(info: CloseInfo): void
}

/** Client side: opens connections to a hub. */
export interface ClientTransport {
  connect(listener: ConnectionListener<ServerMessage>): Connection<ClientMessage>
}

/** Facts about an accepted connection that the hub may use (auth comes in the handshake). */
export interface ConnectionInfo {
  readonly remoteAddress?: string
  /**
   * Whom the hub's per-address limits count this connection as (new identities per address),
   * when it is not `remoteAddress` itself: the WebSocket server counts an IPv6 client by its
   * /64 network, which one subscriber holds whole.
   */
  readonly limitKey?: string
  /** The request URL (WebSocket upgrade), e.g. for a token in the query. */
  readonly url?: string
  /** Request headers (lower-case names), e.g. for a session cookie. */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>
}

/** Server side: the hub accepts each connection a server transport receives. */
export interface ConnectionAcceptor {
  accept(connection: Connection<ServerMessage>, info?: ConnectionInfo): ConnectionListener<ClientMessage>
}

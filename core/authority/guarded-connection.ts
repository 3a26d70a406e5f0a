/**
 * The output gate: the one way the hub sends anything to a connection. The hub wraps each
 * connection it accepts (`guardConnection`) and hands only the wrapped one to its sessions,
 * its documents and their followers, so no reply, error, welcome, entry, result or snapshot
 * chunk can skip it.
 *
 * - Backpressure: a send while more than `hardLimit` bytes wait unread on the connection
 *   (messages, for in-memory links) closes it with `slow-consumer` and is dropped (the client
 *   reconnects and catches up). So what the hub holds for a peer that sends and never reads
 *   is at most `hardLimit` plus one message, whatever it asks the hub to answer. Followers
 *   (followers.ts) pause before this, at the high-water mark; replies are not held there.
 * - Failures: `send` never throws. Documents fan one message out to many connections from
 *   inside their commit loop and timers; a transport that cannot encode a message for one
 *   peer (a bug, or a limit) must cost that peer its connection, not the document or the hub.
 * - Closes: whoever closes it (the hub, a document dropping a slow consumer, the gate, a
 *   failed send), `onClosed` hears of it once: transports do not report a close they were
 *   asked for, and the hub must forget that session all the same. Nothing is sent after.
 */
import type { Connection } from "../ports/transport.js"

/** Default `hardLimit` (AuthorityOptions): bytes a connection may hold unread before it is closed. */
export const DEFAULT_HARD_LIMIT = 8 << 20

export interface GateOptions {
  /** Above this many bytes waiting unread, a send closes the connection (`slow-consumer`). */
  readonly hardLimit: number
  /** A send threw (the connection is then closed). */
  readonly onError: (e: unknown) => void
  /** The connection was closed, by anyone (once), with this code. */
  readonly onClosed?: (code: string | undefined) => void
}

/** Whether `conn` holds more unread than `hardLimit` allows: past it, nothing more is sent. */
export const overHardLimit = (conn: Connection<unknown>, hardLimit: number): boolean => conn.bufferedAmount > hardLimit

/** Closes a connection that stopped reading (the policy's one close code and sentence). */
export const closeSlowConsumer = (conn: Connection<unknown>, hardLimit: number): void =>
  conn.close("slow-consumer", `More than ${hardLimit} bytes waited unread; reconnect to catch up.`)

export const guardConnection = <Out>(conn: Connection<Out>, options: GateOptions): Connection<Out> => {
  const { hardLimit, onError, onClosed = () => {} } = options
  let closed = false
  const close = (code?: string, reason?: string): void => {
    try {
      conn.close(code, reason)
    } catch {
      // already closed
    } finally {
      if (!closed) {
        closed = true
        onClosed(code)
      }
    }
  }
  const gated: Connection<Out> = {
    send(message: Out): void {
      if (closed) return
      if (overHardLimit(conn, hardLimit)) return closeSlowConsumer(gated, hardLimit)
      try {
        conn.send(message)
      } catch (e) {
        onError(e)
        close("internal-error", "The hub could not send a message on this connection; reconnect.")
      }
    },
    close,
    get bufferedAmount() {
      return conn.bufferedAmount
    },
    // Only where the transport can pause: the hub closes a flood it cannot slow down.
    ...(conn.pause !== undefined && conn.resume !== undefined ? { pause: () => conn.pause!(), resume: () => conn.resume!() } : {}),
  }
  return gated
}

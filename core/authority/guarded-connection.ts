/**
 * A connection whose `send` never throws, and whose every close is reported. Documents fan
 * one message out to many connections from inside their commit loop and timers; a transport
 * that cannot encode a message for one peer (a bug, or a limit) must cost that peer its
 * connection, not the document or the hub. Whoever closes it (the hub, a document dropping
 * a slow consumer, a failed send), `onClosed` hears of it once: transports do not report a
 * close they were asked for, and the hub must forget that session all the same.
 */
import type { Connection } from "../ports/transport.js"

export const guardConnection = <Out>(conn: Connection<Out>, onError: (e: unknown) => void, onClosed: () => void = () => {}): Connection<Out> => {
  let closed = false
  const close = (code?: string, reason?: string): void => {
    try {
      conn.close(code, reason)
    } catch {
      // already closed
    } finally {
      if (!closed) {
        closed = true
        onClosed()
      }
    }
  }
  return {
    send(message: Out): void {
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
}

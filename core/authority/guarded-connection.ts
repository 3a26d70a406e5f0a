/**
 * A connection whose `send` never throws. Documents fan one message out to many connections
 * from inside their commit loop and timers; a transport that cannot encode a message for one
 * peer (a bug, or a limit) must cost that peer its connection, not the document or the hub.
 */
import type { Connection } from "../ports/transport.js"

export const guardConnection = <Out>(conn: Connection<Out>, onError: (e: unknown) => void): Connection<Out> => ({
  send(message: Out): void {
    try {
      conn.send(message)
    } catch (e) {
      onError(e)
      try {
        conn.close("internal-error", "The hub could not send a message on this connection; reconnect.")
      } catch {
        // already closed
      }
    }
  },
  close: (code, reason) => conn.close(code, reason),
  get bufferedAmount() {
    return conn.bufferedAmount
  },
  // Only where the transport can pause: the hub closes a flood it cannot slow down.
  ...(conn.pause !== undefined && conn.resume !== undefined ? { pause: () => conn.pause!(), resume: () => conn.resume!() } : {}),
})

/**
 * A client transport around another whose traffic a test sees and may change: `send` gets each
 * client message with the real send (it may hold it, or drop it), `message` each hub message
 * with the listener's delivery, `closed` each end of a connection.
 */
import type { ClientMessage, ClientTransport, CloseInfo, ServerMessage } from "../../core/index.js"

export interface Interception {
  send?(message: ClientMessage, send: (m: ClientMessage) => void): void
  message?(message: ServerMessage, deliver: (m: ServerMessage) => void): void
  closed?(info: CloseInfo): void
}

export const intercepted = (inner: ClientTransport, hooks: Interception): ClientTransport => ({
  connect(l) {
    const deliver = (m: ServerMessage) => l.onMessage(m)
    const conn = inner.connect({
      onOpen: () => l.onOpen?.(),
      onMessage: (m) => (hooks.message !== undefined ? hooks.message(m, deliver) : deliver(m)),
      onClose: (info) => {
        hooks.closed?.(info)
        l.onClose(info)
      },
    })
    const send = (m: ClientMessage) => conn.send(m)
    return {
      send: (m) => (hooks.send !== undefined ? hooks.send(m, send) : send(m)),
      close: (code, reason) => conn.close(code, reason),
      get bufferedAmount() {
        return conn.bufferedAmount
      },
    }
  },
})

/**
 * The devtools' network controls: added latency per direction (0-2,000 ms) on every message
 * between this page and the hub, in order. A visitor sees what Canon does on a slow link:
 * edits apply at once, wait in the outbox, and are rebased when the hub's order arrives.
 * (The offline switch is `client.disconnect()` / `connect()`.)
 */
import type { ClientMessage, ClientTransport, ServerMessage } from "../../../core/index.js"

/** Runs callbacks `ms` after they are queued, never before one queued earlier. */
class Lane {
  private last = 0
  private queued = 0
  run(ms: number, fn: () => void): void {
    if (ms <= 0 && this.queued === 0) return fn()
    const at = Math.max(performance.now() + ms, this.last)
    this.last = at
    this.queued++
    setTimeout(() => {
      this.queued--
      fn()
    }, at - performance.now())
  }
}

export class NetworkShaper {
  /** Added to each message, each way. */
  latencyMs = 0

  wrap(inner: ClientTransport & { onWake?(fn: () => void): () => void }): ClientTransport & { onWake?(fn: () => void): () => void } {
    const shaper = this
    return {
      ...(inner.onWake !== undefined ? { onWake: (fn: () => void) => inner.onWake!(fn) } : {}),
      connect(listener) {
        const up = new Lane()
        const down = new Lane()
        const conn = inner.connect({
          onOpen: () => down.run(shaper.latencyMs, () => listener.onOpen?.()),
          onMessage: (m: ServerMessage) => down.run(shaper.latencyMs, () => listener.onMessage(m)),
          onClose: (info) => down.run(shaper.latencyMs, () => listener.onClose(info)),
        })
        return {
          send: (m: ClientMessage) => up.run(shaper.latencyMs, () => conn.send(m)),
          close: (code?: string, reason?: string) => conn.close(code, reason),
          get bufferedAmount() {
            return conn.bufferedAmount
          },
        }
      },
    }
  }
}

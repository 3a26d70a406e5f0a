/**
 * The hub-wide bound on unsent bytes (adapters/ws/unsent-budget.ts) in the simulator's world:
 * the WebSocket server puts every send through an UnsentBudget; here the memory network's
 * connections do, on the world's virtual clock, so its cuts are one more fault replicas live
 * through (stalled replicas, the big document's snapshots, the hostile clients all fill it).
 *
 * - A connection the budget cuts is reset, as `ws.terminate()` resets a socket: what it held
 *   is lost, and its replica reconnects. Every invariant of the checker must still hold.
 * - `bound` (checked on every send): what the hub's connections hold together is within the
 *   limit, or one message to a connection when no other held anything.
 *
 * Sends are counted after the network took them (a memory link's frame size is known only
 * then): a send the budget refuses resets its connection, so nothing of it arrives, as on a
 * socket the budget cut before the write.
 */
import type { ConnectionAcceptor, ServerMessage } from "../../core/index.js"
import type { MemoryNetwork } from "../../adapters/memory/index.js"
import type { UnsentBudget } from "../../adapters/ws/unsent-budget.js"

export const boundUnsent = (
  hub: ConnectionAcceptor, net: MemoryNetwork, budget: UnsentBudget, checks: { readonly fail: (s: string) => void; readonly log: (s: string) => void },
): ConnectionAcceptor => ({
  accept: (conn, info) => {
    const address = info?.remoteAddress ?? ""
    const client = address.startsWith("memory:") ? address.slice("memory:".length) : address
    let sent = 0
    let gone = false
    const key = {}
    budget.track(key, {
      owner: client,
      unsent: () => conn.bufferedAmount,
      delivered: () => sent - conn.bufferedAmount,
      open: () => !gone,
      cut: (held) => {
        gone = true
        checks.log(`unsent bound: ${client} cut holding ${held} B (${budget.unsent} B held in all)`)
        // Reset, as ws.terminate() resets a socket (a client of this world has one connection at a time).
        net.drop(client)
      },
    })
    const forget = () => {
      gone = true
      budget.release(key)
    }
    const counted: typeof conn = Object.create(conn, {
      // The hub's own close: it does not hear of it again, and the link's bytes are no longer its.
      close: { value: (code?: string, reason?: string) => {
        forget()
        conn.close(code, reason)
      } },
      send: { value: (m: ServerMessage) => {
        if (gone) return
        const before = conn.bufferedAmount
        conn.send(m)
        const bytes = Math.max(0, conn.bufferedAmount - before)
        sent += bytes
        if (!budget.admit(key, bytes)) return
        budget.settle(key)
        const { unsent, limit } = budget
        if (unsent > limit && unsent !== conn.bufferedAmount) {
          checks.fail(`unsent bound: the hub's connections hold ${unsent} B, past the limit of ${limit} B, and not one message alone`)
        }
      } },
    })
    const listener = hub.accept(counted, info)
    return {
      onMessage: (m) => listener.onMessage(m),
      onClose: (c) => {
        forget()
        listener.onClose(c)
      },
    }
  },
})

/**
 * The deaf asker: a raw client that stops reading its connection (the network holds all the
 * hub sends it) and then asks at once (within the hub's message burst) for what the hub
 * answers itself with an error: the state of a document it does not follow (`not-subscribed`) and
 * (at most MAX_SUBSCRIBE_ASKS times, under the hub's bound on refused subscribes) a subscribe
 * naming a machine the hub does not have, 2,000 characters long (`machine-unknown`).
 * Each burst is a fresh client that asks three times the hub's hard limit; one the hub's
 * crashes or failed writes closed first comes again a moment later. An attack found
 * this (review r15, finding 1): the hub's own answers skipped its output backpressure, and
 * sockets that never read grew the hub by 80 MiB/s.
 *
 * It checks the output gate (core/authority/guarded-connection.ts):
 * - `gate` (in `countDeliveries`, churn.ts): the hub never holds more unread on a connection,
 *   the deaf one or any other, than its hard limit (in-memory links count messages) and the
 *   one message that crossed it;
 * - a deaf client that asked all it asks is closed (`slow-consumer`, or the hub went away)
 *   within DEAF_CLOSE_MS, never left open with more answers than the hub may hold.
 */
import type { ClientMessage, Runtime, ServerMessage } from "../../core/index.js"
import type { MemoryNetwork } from "../../adapters/memory/index.js"
import type { HostileTarget } from "./hostile.js"

/** A deaf client still open this long after its last ask was not closed by the gate. */
export const DEAF_CLOSE_MS = 2_000
/** Subscribes a deaf client asks at most: under every world's maxRefusedSubscribes (64 with the churner, SIM_LOADS). */
const MAX_SUBSCRIBE_ASKS = 32
/** A machine no hub serves, long: its name is quoted back bounded. */
const NO_MACHINE = "m".repeat(2_000)

interface Deaf {
  readonly clientId: string
  readonly conn: { close(code?: string, reason?: string): void }
  /** When it sent its last ask (virtual ms), once it has. */
  doneAt: number | undefined
  sent: number
  closed: boolean
}

export class DeafAsker {
  bursts = 0
  asked = 0
  closedSlow = 0
  private closing = false
  private readonly open = new Set<Deaf>()

  constructor(
    private readonly net: MemoryNetwork,
    private readonly rt: Runtime,
    /** The hub's hard limit, in what the links count (bytes or messages). */
    private readonly hardLimit: number,
    /** Asks each deaf client sends: their answers are well past the hard limit. */
    private readonly asks: number,
    private readonly target: HostileTarget,
    private readonly fail: (s: string) => void,
    private readonly log: (s: string) => void,
  ) {}

  /** One deaf client: hello, then deaf, then three times the hard limit of asks. */
  burst(attempt = 0): void {
    const n = this.bursts++
    const clientId = `deaf-${n}`
    const name = clientId
    const asks = this.asks
    const { docId } = this.target
    const conn = this.net.transport(name).connect({
      onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: `secret-of-${clientId}-0123456789` } as ClientMessage),
      onMessage: (m: ServerMessage) => {
        if (m.type !== "welcome" || deaf.closed || deaf.sent > 0) return
        // Deaf from here on: what the hub sends waits in the network, counted as unread.
        this.net.stall(name)
        this.log(`deaf ${clientId}: ${asks} asks, never reading`)
        for (; deaf.sent < asks; deaf.sent++, this.asked++) {
          // Refused subscribes stay under the hub's bound on them (it would close the asker
          // `rate-limited` before the gate had its say): the rest ask for states.
          conn.send(deaf.sent % 2 === 0 || deaf.sent >= 2 * MAX_SUBSCRIBE_ASKS
            ? { type: "fetch-state", docId }
            : { type: "subscribe", docId, machine: NO_MACHINE, version: 1, fingerprint: "f", fromSeq: 0, ackedClientSeq: 0 })
        }
        deaf.doneAt = this.rt.now()
      },
      onClose: (info) => {
        deaf.closed = true
        this.open.delete(deaf)
        // What the network held for it is let go (delivered to a connection that is over).
        this.net.unstall(name)
        this.log(`deaf ${clientId} closed ${info.code} after ${deaf.sent} asks`)
        if (info.code === "slow-consumer") this.closedSlow++
        // The hub was down, crashed or failed a write before the gate had its say: again, as a fresh client.
        else if (!this.closing && attempt < 20) this.rt.setTimer(250, () => this.closing || this.burst(attempt + 1))
      },
    })
    const deaf: Deaf = { clientId, conn, doneAt: undefined, sent: 0, closed: false }
    this.open.add(deaf)
  }

  /** The world heals: the deaf clients go; one that asked all and was not closed in time failed the gate. */
  closeAll(): void {
    this.closing = true
    for (const d of [...this.open]) {
      if (d.doneAt !== undefined && this.rt.now() - d.doneAt > DEAF_CLOSE_MS) {
        this.fail(`gate: ${d.clientId} never read, asked ${d.sent} answers (the hub holds at most ${this.hardLimit}) and was still open ${this.rt.now() - d.doneAt} ms after its last ask`)
      }
      d.closed = true
      this.net.unstall(d.clientId)
      d.conn.close("closed", "The deaf asker goes.")
    }
    this.open.clear()
  }
}

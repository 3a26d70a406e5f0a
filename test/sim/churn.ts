/**
 * The subscribe churner: a raw client that, in bursts, subscribes to hundreds of fresh
 * documents and leaves each at once, as fast as the hub reads it. Every subscribe makes the
 * hub load a document from storage, and handling it waits for that load. A ping-pong burst
 * (given a second machine) subscribes instead to a few fresh documents again and again, each
 * time as the other machine: the document is unwritten, so each subscribe claims it
 * (hub.ts `claimUnwritten`) and the hub lets it go and loads it again. A refused burst
 * subscribes to fresh documents as a machine the hub does not serve: each is refused, and
 * each took a channel in the connection's codec session. It checks, as it goes, the bounds
 * that keep that from taking the hub (hub.ts `receive`, `acquire`, `refuseSubscribe`):
 *
 * - `queue`: the hub never has more than `maxQueuedMessages` of one connection's messages
 *   read and not handled (plus what one delivery carries past the pause), as seen from the
 *   network: messages delivered to the hub (`countDeliveries`) against subscribes answered;
 * - `loads`: the churner's documents are loaded (each answer a load, a claim's reload included) no faster than its bucket allows: at most
 *   `loadBurst` plus `loadsPerSecond` a second since its hello (the sim runs the hub with small ones, SIM_LOADS) (each burst is a fresh client
 *   with a full bucket);
 * - `refused`: the hub refuses at most `maxRefusedSubscribes` subscribes of one connection and
 *   closes it at the next.
 *
 * The honest replicas' invariants (checker.ts) hold meanwhile. Each burst has its own
 * connection and clientId; a hub crash ends it.
 */
import type { ClientMessage, Runtime, ServerMessage } from "../../core/index.js"
import type { ConnectionAcceptor } from "../../core/ports/transport.js"
import type { MemoryNetwork } from "../../adapters/memory/index.js"
import { steadyNow } from "../../core/ports/runtime.js"
import type { HostileTarget } from "./hostile.js"

/** By the connection's address (`memory:<name>`): messages delivered to the hub, and subscribes it has answered (`synced` or an error for a document). */
export type Deliveries = Map<string, { read: number; answered: number }>

/**
 * The hub as the network sees it, counting what each connection delivers to it and the answers
 * it sends back, as they are sent. With `gate`, each send is checked against the hub's output
 * gate (core/authority/guarded-connection.ts): the hub never holds more unread on a connection
 * than its hard limit and the one message that crossed it (it sends nothing while over it).
 */
export const countDeliveries = (
  hub: ConnectionAcceptor, deliveries: Deliveries, gate?: { readonly hardLimit: number; readonly fail: (s: string) => void },
): ConnectionAcceptor => ({
  accept: (conn, info) => {
    const counts = { read: 0, answered: 0 }
    deliveries.set(info?.remoteAddress ?? "", counts)
    const seen: typeof conn = Object.create(conn, {
      send: { value: (m: ServerMessage) => {
        if (m.type === "synced" || (m.type === "error" && m.docId !== undefined)) counts.answered++
        // The gate sends nothing while more than its hard limit waits unread (in what the link counts).
        const unread = conn.bufferedAmount
        if (gate !== undefined && unread > gate.hardLimit) {
          gate.fail(`gate: the hub sent ${m.type} while ${unread} waited unread for ${info?.remoteAddress ?? "a connection"}, past its hard limit of ${gate.hardLimit}`)
        }
        conn.send(m)
      } },
    })
    const listener = hub.accept(seen, info)
    return {
      onMessage: (m) => {
        counts.read++
        listener.onMessage(m)
      },
      onClose: (c) => listener.onClose(c),
    }
  },
})

/** What one delivery may carry past the pause that the bound sets off, and an unsubscribe handled but not seen so. */
const PAST_PAUSE = 3

/** What a burst sends: fresh documents left at once, claims ping-ponged on four, or subscribes the hub refuses. */
export type ChurnMode = "fresh" | "ping-pong" | "refused"

export class SubscribeChurner {
  bursts = 0
  loads = 0
  /** Subscribes refused by the hub (refused bursts), and connections it closed for them. */
  refused = 0
  refusedCloses = 0
  mostQueued = 0
  private closing = false
  private readonly conns: Array<{ close(code?: string, reason?: string): void }> = []

  constructor(
    private readonly net: MemoryNetwork,
    private readonly rt: Runtime,
    private readonly deliveries: Deliveries,
    /** The hub's limits on loads and queued messages. */
    private readonly limits: { readonly loadsPerSecond: number; readonly loadBurst: number; readonly maxQueuedMessages: number; readonly maxRefusedSubscribes: number },
    private readonly target: HostileTarget,
    /** Another machine the hub serves (ping-pong bursts), or none. */
    private readonly other: HostileTarget | undefined,
    private readonly fail: (s: string) => void,
    private readonly log: (s: string) => void,
  ) {}

  /**
   * One burst: `pairs` subscribes to fresh documents, each followed by its unsubscribe; in
   * `ping-pong` (with a second machine), `pairs` subscribes to four fresh documents, each time
   * as the machine it was not loaded as; in `refused`, `pairs` subscribes to fresh documents as
   * a machine the hub does not serve.
   */
  burst(pairs: number, attempt = 0, mode: ChurnMode = "fresh"): void {
    const n = this.bursts++
    const clientId = `churn-${n}`
    const { machine } = this.target
    const other = mode === "ping-pong" ? this.other?.machine : undefined
    const refusing = mode === "refused"
    let refused = 0
    let welcomedAt: number | undefined
    let loaded = 0
    // Ping-pong: the machines each document was subscribed as, not answered yet, and the one
    // it is loaded as. A subscribe as that machine (a claim the hub refused before) loads nothing.
    const asked = new Map<string, string[]>()
    const loadedAs = new Map<string, string>()
    this.log(`churner ${clientId}: ${pairs} ${other !== undefined ? "ping-pong subscribes" : refusing ? "refused subscribes" : "fresh documents"}`)
    const name = `churner-${n}`
    const conn = this.net.transport(name).connect({
      onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: `secret-of-${clientId}-0123456789` } as ClientMessage),
      onMessage: (m: ServerMessage) => {
        if (m.type === "welcome") {
          welcomedAt = steadyNow(this.rt)
          for (let i = 0; i < pairs; i++) {
            if (other !== undefined) {
              // Documents 0..3 as this machine, then as the other, and so on.
              const m = Math.floor(i / 4) % 2 === 0 ? machine : other
              const docId = `${clientId}-pp${i % 4}`
              asked.set(docId, [...(asked.get(docId) ?? []), m.name])
              conn.send({ type: "subscribe", docId, machine: m.name, version: m.version, fingerprint: m.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
              continue
            }
            const docId = `${clientId}-${i}`
            if (refusing) {
              conn.send({ type: "subscribe", docId, machine: "no-such-machine", version: 1, fingerprint: "none", fromSeq: 0, ackedClientSeq: 0 })
              continue
            }
            conn.send({ type: "subscribe", docId, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
            conn.send({ type: "unsubscribe", docId })
          }
          return
        }
        // Answers come in the order of the subscribes (one connection's messages are handled in order).
        const as = (m.type === "synced" || m.type === "error") && m.docId !== undefined ? asked.get(m.docId)?.shift() : undefined
        const load = other === undefined || (m.type === "synced" && as !== undefined && loadedAs.get(m.docId) !== as)
        if (m.type === "synced" && as !== undefined) loadedAs.set(m.docId, as)
        if (m.type === "synced" && load && m.docId.startsWith(`${clientId}-`) && welcomedAt !== undefined) {
          loaded++
          this.loads++
          // On the hub's steady clock, as its bucket refills (it counts the simulated CPU: cpu.ts).
          const allowed = this.limits.loadBurst + Math.floor((this.limits.loadsPerSecond * (steadyNow(this.rt) - welcomedAt)) / 1000) + 1
          if (loaded > allowed) this.fail(`loads: the hub loaded ${loaded} documents for ${clientId} within ${steadyNow(this.rt) - welcomedAt} ms of its hello, past its bucket (${allowed})`)
        }
        // Read by the hub (the hello aside) and not handled: a subscribe is answered once
        // handled, its unsubscribe (if any) comes right after it.
        const counts = this.deliveries.get(`memory:${name}`)
        const queued = counts === undefined ? 0 : counts.read - 1 - (other !== undefined || refusing ? 1 : 2) * counts.answered
        this.mostQueued = Math.max(this.mostQueued, queued)
        if (queued > this.limits.maxQueuedMessages + PAST_PAUSE) {
          this.fail(`queue: the hub has read ${queued} messages of ${clientId} and not handled them, past maxQueuedMessages ${this.limits.maxQueuedMessages}`)
        }
        if (refusing && m.type === "error" && m.code === "machine-unknown") this.refused++
        if (refusing && m.type === "error" && m.code === "machine-unknown" && ++refused > this.limits.maxRefusedSubscribes + 1) {
          this.fail(`refused: the hub refused ${refused} subscribes of ${clientId} on one connection and kept it open, past maxRefusedSubscribes ${this.limits.maxRefusedSubscribes}`)
        }
        if (m.type === "error" && m.code !== "rate-limited" && !refusing) this.log(`churner ${clientId}: error ${m.code}`)
      },
      onClose: (info) => {
        this.log(`churner ${clientId} closed ${info.code} after ${loaded} loads${refusing ? `, ${refused} refused subscribes` : ""}`)
        if (refusing && info.code === "rate-limited") this.refusedCloses++
        // The hub was down or went down (it crashes in this world): what is left of the burst
        // comes again a moment later, as a fresh client (refused subscribes end in a close).
        const left = pairs - (refusing ? refused : loaded)
        if (left > 0 && !this.closing && attempt < 20 && !(refusing && info.code === "rate-limited")) this.rt.setTimer(250, () => this.closing || this.burst(left, attempt + 1, mode))
      },
    })
    this.conns.push(conn)
  }

  /** The world heals: the churner goes. */
  closeAll(): void {
    this.closing = true
    for (const c of this.conns.splice(0)) c.close("closed", "The churner goes.")
  }
}

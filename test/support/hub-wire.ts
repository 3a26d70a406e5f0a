/**
 * A hub driven directly on virtual time by raw peers whose connections model a socket's send
 * buffer: what the hub sends a peer that is not reading stays in `bufferedAmount` (in bytes,
 * roughly as on a WebSocket) until it reads. For flow-control and lifetime tests of the hub.
 */
import { Hub, type HubOptions } from "../../core/index.js"
import type { Connection, ConnectionListener } from "../../core/ports/transport.js"
import type { ClientMessage, ServerMessage } from "../../core/protocol/messages.js"
import { newClientSecret } from "../../core/ports/runtime.js"
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"
import { Todo } from "./machines.js"

/** About the bytes a message takes on the wire (binary fields counted as bytes). */
export const wireSize = (m: ServerMessage): number =>
  16 + JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? v.length : v instanceof Set ? [...v] : v)).length +
  (m.type === "snapshot-chunk" ? m.bytes.length : 0)

export class WirePeer {
  /** Messages the peer has read. */
  readonly received: ServerMessage[] = []
  private held: ServerMessage[] = []
  private buffered = 0
  reading = true
  /** The most the hub ever left unread for this peer. */
  maxBuffered = 0
  closed: string | undefined
  readonly conn: Connection<ServerMessage>
  listener!: ConnectionListener<ClientMessage>

  constructor(readonly clientId: string) {
    const self = this
    this.conn = {
      send(m) {
        if (self.closed !== undefined) return
        if (self.reading) return void self.received.push(m)
        self.held.push(m)
        self.buffered += wireSize(m)
        self.maxBuffered = Math.max(self.maxBuffered, self.buffered)
      },
      close(code = "closed", reason = "") {
        if (self.closed !== undefined) return
        self.closed = code
        self.listener.onClose({ code, reason })
      },
      get bufferedAmount() {
        return self.buffered
      },
    }
  }

  send(m: ClientMessage | Record<string, unknown>): void {
    if (this.closed === undefined) this.listener.onMessage(m as ClientMessage)
  }

  /** Stops reading: what the hub sends waits in the buffer. */
  stall(): void {
    this.reading = false
  }

  /** Reads everything buffered, and reads as messages come from now on. */
  read(): void {
    this.reading = true
    this.received.push(...this.held)
    this.held = []
    this.buffered = 0
  }

  of<T extends ServerMessage["type"]>(type: T, docId?: string): Array<Extract<ServerMessage, { type: T }>> {
    return this.received.filter((m) => m.type === type && (docId === undefined || (m as { docId?: string }).docId === docId)) as Array<Extract<ServerMessage, { type: T }>>
  }
}

export const hubWorld = (options: Partial<HubOptions> = {}, seed = 1) => {
  const rt = new VirtualRuntime(seed)
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Todo], storage, runtime: rt, ...options })
  let n = 0
  /** A peer that said hello and was welcomed. */
  const peer = async (): Promise<WirePeer> => {
    const clientId = `peer${(n++).toString().padStart(12, "0")}`
    const p = new WirePeer(clientId)
    p.listener = hub.accept(p.conn, { remoteAddress: `test:${clientId}` })
    p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: newClientSecret(rt) })
    await rt.run({ forMs: 5 })
    if (!p.received.some((m) => m.type === "welcome")) throw new Error(`${clientId} was not welcomed: ${JSON.stringify(p.received)}`)
    return p
  }
  const subscribe = (p: WirePeer, docId: string, fromSeq = 0): void =>
    p.send({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq, ackedClientSeq: 0 })
  return { rt, storage, hub, peer, subscribe, run: (ms: number) => rt.run({ forMs: ms }) }
}

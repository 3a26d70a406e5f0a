/**
 * The hub: accepts connections from a transport and routes each document's messages to its
 * authority (one per document, loaded on first use). Documents are independent: a broken or
 * slow document does not hold up any other.
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines: [Todo], storage: new MemoryStorage(), runtime: systemRuntime })
 * const server = network.listen(hub)   // any server transport
 * ```
 */
import type { Machine } from "../machine.js"
import type { KVStore } from "../ports/storage.js"
import type { Connection, ConnectionAcceptor, ConnectionListener } from "../ports/transport.js"
import type { Runtime } from "../ports/runtime.js"
import type { ClientMessage, ServerMessage } from "../protocol/messages.js"
import { AuthorityStore } from "../store/authority-store.js"
import { DocAuthority, type AuthorityOptions } from "./doc-authority.js"

export interface HubOptions extends AuthorityOptions {
  readonly machines: ReadonlyArray<Machine<any>>
  readonly storage: KVStore
  readonly runtime: Runtime
  /** fsync every commit batch. Default false (see README: durability vs. throughput). */
  readonly sync?: boolean
  /** Diagnostics: documents that broke, connections refused. */
  readonly onEvent?: (event: HubEvent) => void
}

export type HubEvent =
  | { readonly type: "doc-broken"; readonly docId: string; readonly error: unknown }
  | { readonly type: "doc-load-failed"; readonly docId: string; readonly error: unknown }
  | { readonly type: "protocol-error"; readonly message: string }

interface Session {
  readonly conn: Connection<ServerMessage>
  clientId: string | undefined
  readonly docs: Set<string>
  chain: Promise<void>
  closed: boolean
}

export class Hub implements ConnectionAcceptor {
  private readonly store: AuthorityStore
  private readonly machines: ReadonlyMap<string, Machine<any>>
  private readonly docs = new Map<string, Promise<DocAuthority<any>>>()
  private readonly sessions = new Set<Session>()
  private closed = false

  constructor(private readonly options: HubOptions) {
    this.store = new AuthorityStore(options.storage, { sync: options.sync ?? false })
    this.machines = new Map(options.machines.map((m) => [m.name, m]))
  }

  accept(conn: Connection<ServerMessage>): ConnectionListener<ClientMessage> {
    const session: Session = { conn, clientId: undefined, docs: new Set(), chain: Promise.resolve(), closed: false }
    if (this.closed) {
      conn.close("going-away", "The hub is shutting down.")
      return { onMessage: () => {}, onClose: () => {} }
    }
    this.sessions.add(session)
    return {
      onMessage: (msg) => {
        // One connection's messages are handled in order, even across async document loads.
        session.chain = session.chain.then(() => this.handle(session, msg)).catch((e) => this.fail(session, e))
      },
      onClose: () => this.drop(session),
    }
  }

  private async handle(session: Session, msg: ClientMessage): Promise<void> {
    if (session.closed) return
    if (msg.type === "hello") {
      session.clientId = msg.clientId
      session.conn.send({ type: "welcome", clientId: msg.clientId })
      return
    }
    const clientId = session.clientId
    if (clientId === undefined) {
      this.protocolError(session, `"${msg.type}" before "hello": say hello first.`)
      return
    }
    switch (msg.type) {
      case "subscribe": {
        const machine = this.machines.get(msg.machine)
        if (machine === undefined) {
          session.conn.send({ type: "error", code: "machine-unknown", message: `This hub has no machine "${msg.machine}".`, docId: msg.docId })
          return
        }
        const doc = await this.doc(msg.docId, machine).catch((error) => {
          this.options.onEvent?.({ type: "doc-load-failed", docId: msg.docId, error })
          const message = error instanceof Error ? error.message : String(error)
          const code = (error as { code?: string }).code ?? "storage-failed"
          session.conn.send({ type: "error", code, message, docId: msg.docId })
          return undefined
        })
        if (doc === undefined || session.closed) return
        if (doc.machine !== machine) {
          session.conn.send({ type: "error", code: "machine-mismatch", message: `Document "${msg.docId}" is a "${doc.machine.name}", not a "${msg.machine}".`, docId: msg.docId })
          return
        }
        session.docs.add(msg.docId)
        doc.subscribe(session.conn, clientId, msg.fromSeq, msg.ackedClientSeq)
        return
      }
      case "submit":
      case "fetch-state":
      case "unsubscribe": {
        const loaded = session.docs.has(msg.docId) ? this.docs.get(msg.docId) : undefined
        if (loaded === undefined) {
          session.conn.send({ type: "error", code: "not-subscribed", message: `Subscribe to "${msg.docId}" before "${msg.type}".`, docId: msg.docId })
          return
        }
        const doc = await loaded
        if (msg.type === "submit") doc.submit(session.conn, clientId, msg)
        else if (msg.type === "fetch-state") doc.fetchState(session.conn)
        else {
          doc.unsubscribe(session.conn)
          session.docs.delete(msg.docId)
        }
        return
      }
      default:
        this.protocolError(session, `Unknown message type "${(msg as { type: string }).type}".`)
    }
  }

  /** The authority of a document, loading it on first use. */
  doc<S>(docId: string, machine: Machine<S>): Promise<DocAuthority<S>> {
    let p = this.docs.get(docId)
    if (p === undefined) {
      p = DocAuthority.load(docId, machine, this.store, this.options.runtime, this.options, (doc, error) => this.broken(doc, error))
      this.docs.set(docId, p)
      p.catch(() => this.docs.delete(docId))
    }
    return p as Promise<DocAuthority<S>>
  }

  private broken(doc: DocAuthority<any>, error: unknown): void {
    this.options.onEvent?.({ type: "doc-broken", docId: doc.docId, error })
    this.docs.delete(doc.docId)
    doc.close()
    // Clients reconnect and resubscribe; the document reloads from what storage holds.
    for (const s of this.sessions) {
      if (s.docs.has(doc.docId)) s.conn.close("storage-failed", `Storage failed for document "${doc.docId}"; reconnect to reload it.`)
    }
  }

  private protocolError(session: Session, message: string): void {
    this.options.onEvent?.({ type: "protocol-error", message })
    session.conn.send({ type: "error", code: "protocol-error", message })
    session.conn.close("protocol-error", message)
    this.drop(session)
  }

  private fail(session: Session, e: unknown): void {
    this.protocolError(session, `Internal error: ${e instanceof Error ? e.message : String(e)}`)
  }

  private drop(session: Session): void {
    if (session.closed) return
    session.closed = true
    this.sessions.delete(session)
    for (const docId of session.docs) {
      void this.docs.get(docId)?.then((d) => d.unsubscribe(session.conn), () => {})
    }
  }

  /** Closes every connection and document. Storage is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true
    for (const s of [...this.sessions]) {
      s.conn.close("going-away", "The hub is shutting down.")
      this.drop(s)
    }
    for (const p of this.docs.values()) {
      const d = await p.catch(() => undefined)
      d?.close()
    }
    this.docs.clear()
  }
}

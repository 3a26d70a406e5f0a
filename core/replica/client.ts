/**
 * The replica side of Canon: one connection to a hub (reconnecting with backoff), one
 * storage, many documents.
 *
 * @example
 * ```ts
 * const client = await CanonClient.open({ transport, runtime: systemRuntime, storage })
 * const doc = await client.open(Todo, "groceries")
 * doc.submit("add", { id: "t1", title: "Milk" })
 * client.onStatus((s) => console.log(s))   // "connecting" | "online" | "offline"
 * ```
 */
import { canonError, errorText } from "../errors.js"
import { docIdProblem } from "../limits.js"
import type { Machine, StateOf } from "../machine.js"
import { REPLICA_STORE, type ReplicaStorage } from "../ports/storage.js"
import type { ClientTransport, CloseInfo, Connection } from "../ports/transport.js"
import { newClientIdentity, newClientSecret, type Runtime, type Timer } from "../ports/runtime.js"
import type { ClientMessage, Refused, ServerMessage, VersionRange } from "../protocol/messages.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../protocol/negotiate.js"
import type { ReplicaStore } from "../store/replica-store.js"
import { backoffDelay, type BackoffOptions } from "./backoff.js"
import { Doc, type DocInit, type DocOptions } from "./doc.js"
// Only the registry: a machine with a version history carries its code (core/schema/versions.ts).
import { historyOf } from "../schema/registry.js"

/**
 * - connecting: a connection is being opened;
 * - online: handshake done, documents sync;
 * - offline: no connection, retrying with backoff (or `disconnect` was called);
 * - refused: the hub refused the handshake for a reason retrying cannot fix (see
 *   `refusal`); local edits keep working; call `connect()` after fixing it (e.g. upgrade);
 * - closed: `close` was called.
 */
export type ClientStatus = "connecting" | "online" | "offline" | "refused" | "closed"

/**
 * Refusals that retrying cannot fix: wait for the app (upgrade, new credentials). `not-found`
 * is a transport's close for a URL with no hub behind it (HTTP 404 at the upgrade) or one it
 * cannot open at all (malformed).
 */
const FINAL_REFUSALS: ReadonlySet<string> = new Set(["schema-too-old", "schema-mismatch", "machine-unknown", "unauthorized", "not-found"])
/** Refusals of a machine, not of the client: a subscribe refused so leaves it out of handshakes. */
const MACHINE_REFUSALS: ReadonlyArray<string> = ["schema-too-new", "schema-too-old", "schema-mismatch", "machine-unknown"]

/**
 * A transport that can tell when retrying now is worth it (the browser's `online` event, a tab
 * made visible): the client then skips what is left of its backoff.
 */
interface WakingTransport extends ClientTransport {
  onWake?(fn: () => void): () => void
}

export interface ClientOptions extends DocOptions {
  readonly transport: ClientTransport
  readonly runtime: Runtime
  /**
   * Machines to declare in the handshake (documents opened later are added, but for a machine
   * a hub refused at a document's subscribe: left out, as the hub would refuse the whole
   * connection for it).
   */
  readonly machines?: ReadonlyArray<Machine<any, any>>
  /** Handed to the hub's authenticate hook; a function is called on every connect. */
  readonly credentials?: string | (() => string | Promise<string>)
  /** Protocol versions to offer. Default: all this build speaks. */
  readonly protocol?: VersionRange
  /**
   * Where the outbox and confirmed state live. Without it, nothing survives a restart. One
   * open client per storage: `open` on a storage another client holds (the store's `claim`:
   * memory, IndexedDB across tabs) rejects with `storage-in-use`; give each tab its own.
   * The adapters' stores are given as they are (MemoryStorage, IndexedDbStorage,
   * LevelStorage); a KVStore of your own as `replicaStorage(kv)` (from "canon"). The replica
   * layer comes with them, so an app without storage does not ship it.
   */
  readonly storage?: ReplicaStorage
  /**
   * Fixed client id (else loaded from storage, or made and stored). A clientId is proved to
   * the hub by a secret made with it and kept in `storage`. Without storage every run makes
   * a new secret: a hub with an `authenticate` hook takes it as the same user's new device;
   * a hub without one refuses the clientId on the second run (let Canon make ids instead).
   * Another id than the storage's is refused (`client-id-changed`) while the storage holds
   * changes not yet sent: they are numbered as the stored id. The ids Canon makes are derived
   * from their secret (core/client-id.ts: a hub with no record of one still knows its owner);
   * an app's own id is trusted by a hub at first contact. Do not choose ids of the form
   * `c.` + 16 base-32 characters: a hub checks those against the secret.
   */
  readonly clientId?: string
  readonly backoff?: BackoffOptions
  /** A connection up this long resets the backoff. Default 10,000 ms. */
  readonly stableMs?: number
  /** Connect at once. Default true. */
  readonly autoConnect?: boolean
}

export class CanonClient {
  readonly clientId: string
  readonly #docs = new Map<string, Doc<any>>()
  #conn: Connection<ClientMessage> | undefined
  #welcomed = false
  #attempt = 0
  #retryTimer: Timer | undefined
  #stableTimer: Timer | undefined
  #currentStatus: ClientStatus = "offline"
  readonly #statusListeners = new Set<(s: ClientStatus, info?: CloseInfo) => void>()
  #wantOnline: boolean
  #lastRefusal: Refused | undefined
  readonly #machines = new Map<string, Machine<any, any>>()
  #stopWake: (() => void) | undefined
  /** Protocol version agreed in the last handshake. */
  protocol: number | undefined
  /**
   * Machines declared at an older version than the app's, on this connection: the hub is
   * older than the app (it refused the newer one with schema-too-new) and the machine's
   * history has the hub's version (core/schema: compat mode, see Doc).
   */
  readonly #declared = new Map<string, number>()
  /** Machines left out of handshakes: refused at a subscribe (MACHINE_REFUSALS, nothing older to offer), or at a handshake though only documents opened since use them. */
  readonly #unserved = new Set<string>()
  /** The last refusal was answered by a new offer (an older version declared, a machine left out): reconnect at once. */
  #steppedDown = false
  /** The current connection was refused (lastRefusal may be from an earlier one). */
  #refusedHere = false

  /** The clientId's secret and how to let go of the storage (ReplicaStore.hold). */
  readonly #held: { readonly secret: string; readonly release: () => void }
  readonly #options: ClientOptions
  readonly #store: ReplicaStore | undefined
  readonly #opening = new Set<Promise<unknown>>()
  /**
   * The last close of each document not opened again since, by docId: the promise of its
   * writes (settled ones stay until the next open; see #openDoc).
   */
  readonly #closingDocs = new Map<string, Promise<void>>()
  #closing: Promise<void> | undefined

  private constructor(held: { readonly clientId: string; readonly secret: string; readonly release: () => void }, options: ClientOptions, store: ReplicaStore | undefined) {
    this.clientId = held.clientId
    this.#held = held
    this.#options = options
    this.#store = store
    this.#wantOnline = options.autoConnect ?? true
    for (const m of options.machines ?? []) this.#machines.set(m.name, m)
  }

  /** Why the hub last refused this client (code, sentence), if it did. */
  get refusal(): { readonly code: string; readonly message: string } | undefined {
    return this.#lastRefusal
  }

  /** Opens a client: loads (or creates and stores) its clientId, then connects. */
  static async open(options: ClientOptions): Promise<CanonClient> {
    // One open client per storage (see KVStore.claim and ReplicaStore.hold): two would share a
    // clientId and its command numbers, and the hub would drop one's commands as the other's
    // retries.
    const storage = options.storage
    if (storage && typeof storage[REPLICA_STORE] !== "function") {
      throw canonError("storage-failed", "This storage is a bare KVStore: pass storage: replicaStorage(kv) (from \"canon\").")
    }
    const store = storage?.[REPLICA_STORE]()
    // Without storage every run is a new identity (see ClientOptions.clientId).
    const client = new CanonClient(store !== undefined
      ? await store.hold(storage!, options.clientId, options.runtime)
      : { ...(options.clientId !== undefined ? { clientId: options.clientId, secret: newClientSecret(options.runtime) } : await newClientIdentity(options.runtime)), release: () => {} }, options, store)
    client.#stopWake = (options.transport as WakingTransport).onWake?.(() => {
      if (client.#currentStatus === "offline" && client.#wantOnline) client.reconnectNow()
    })
    if (client.#wantOnline) client.connect()
    return client
  }

  get status(): ClientStatus {
    return this.#currentStatus
  }

  /** Calls `fn` on every status change; `info` says why a connection closed. */
  onStatus(fn: (status: ClientStatus, info?: CloseInfo) => void): () => void {
    this.#statusListeners.add(fn)
    return () => this.#statusListeners.delete(fn)
  }

  #setStatus(s: ClientStatus, info?: CloseInfo): void {
    if (s === this.#currentStatus) return
    this.#currentStatus = s
    for (const fn of this.#statusListeners) {
      try {
        fn(s, info)
      } catch {
        // listeners must not break the connection logic
      }
    }
  }

  /**
   * Opens a document: loads its confirmed state and outbox from storage (pending commands
   * survive restarts) and follows it on the hub.
   */
  open<M extends Machine<any, any>>(machine: M, docId: string): Promise<Doc<M>> {
    const opening = this.#openDoc(machine, docId)
    // Closing waits for opens in flight: none writes the store (a migration) after it is let go.
    this.#opening.add(opening)
    void opening.finally(() => this.#opening.delete(opening)).catch(() => {})
    return opening
  }

  async #openDoc<M extends Machine<any, any>>(machine: M, docId: string): Promise<Doc<M>> {
    if (this.#currentStatus === "closed") throw canonError("closed", "This client is closed.")
    // Refused here, as the hub would: a subscribe the wire cannot carry would end the connection.
    const problem = docIdProblem(docId)
    if (problem !== undefined) throw canonError("invalid-doc-id", problem)
    const existing = this.#docs.get(docId)
    if (existing !== undefined) {
      if (existing.machine !== machine) throw canonError("machine-mismatch", `Document "${docId}" is open with machine "${existing.machine.name}".`)
      return existing as Doc<M>
    }
    // One writer per document in the store: a document closed a moment ago (an effect's
    // cleanup, then the effect again) may still be writing; read after its writes, and again
    // if it closed meanwhile, or two lanes would number and write the same records.
    let init: DocInit<StateOf<M>> | undefined
    for (let closing = this.#closingDocs.get(docId); ; ) {
      await closing
      init = await this.#store?.openDoc(docId, machine)
      // Every close sets a new entry and every open that makes the document deletes it: the
      // same one after the read means no close of this document came during it.
      if (this.#closingDocs.get(docId) === closing) break
      closing = this.#closingDocs.get(docId)
    }
    init ??= { state: machine.initial(), confirmedSeq: 0, nextClientSeq: 1, snapshotSeq: 0, outbox: [] }
    // Closed meanwhile: its storage may be another client's by now.
    if (this.#closing !== undefined) throw canonError("closed", "This client is closed.")
    const again = this.#docs.get(docId)
    if (again !== undefined) return again as Doc<M>
    // Declared in later handshakes; on this connection the subscribe carries the check.
    if (!this.#machines.has(machine.name)) this.#machines.set(machine.name, machine)
    const doc: Doc<M> = new Doc(machine, docId, this.clientId, this.#store, this.#options.runtime, init, this.#options, (written) => {
      if (this.#docs.get(docId) === doc) this.#docs.delete(docId)
      this.#closingDocs.set(docId, written.catch(() => {}))
    })
    // This document is the store's writer now: what closed before it is behind it.
    this.#closingDocs.delete(docId)
    this.#docs.set(docId, doc)
    if (this.#welcomed && this.#conn) this.#connectDoc(doc)
    return doc
  }

  /** Goes online (after `disconnect`, or with autoConnect off). */
  connect(): void {
    this.#wantOnline = true
    if (this.#conn !== undefined || this.#currentStatus === "closed") return
    if (this.#currentStatus === "refused") this.#attempt = 0
    this.#retryTimer?.cancel()
    this.#retryTimer = undefined
    this.#setStatus("connecting")
    this.#refusedHere = false
    let conn: Connection<ClientMessage> | undefined
    const isCurrent = () => this.#conn === conn && conn !== undefined
    conn = this.#options.transport.connect({
      onOpen: () => {
        if (isCurrent()) void this.#hello(conn!)
      },
      onMessage: (msg) => {
        if (!isCurrent()) return
        try {
          this.#receive(msg)
        } catch (e) {
          // What a hub sends is checked where the replica takes it; this is the net under
          // those checks: a message this client cannot use ends the connection (a new one
          // starts over, after the backoff), it never throws into the transport, where it
          // would be an uncaught exception.
          this.#end(conn!, `Unusable "${msg.type}" from the hub: ${errorText(e)}`)
        }
      },
      onClose: (info) => {
        if (isCurrent()) this.#lost(info)
      },
    })
    this.#conn = conn
  }

  /**
   * Connects now, skipping what is left of the backoff (a "Retry now" link, the network is
   * back). Also retries after a refusal, as `connect` does.
   */
  reconnectNow(): void {
    if (this.#conn !== undefined || this.#currentStatus === "closed") return
    this.#attempt = 0
    this.connect()
  }

  async #hello(conn: Connection<ClientMessage>): Promise<void> {
    const c = this.#options.credentials
    let credentials: string | undefined
    try {
      credentials = typeof c === "function" ? await c() : c
    } catch (e) {
      this.#lost({ code: "credentials-failed", reason: `credentials() threw: ${errorText(e)}` })
      conn.close("closed", "No credentials.")
      return
    }
    if (this.#conn !== conn) return
    conn.send({
      type: "hello",
      protocol: this.#options.protocol ?? SUPPORTED_PROTOCOL,
      clientId: this.clientId,
      secret: this.#held.secret,
      machines: [...this.#machines.values()].filter((m) => !this.#unserved.has(m.name)).map((m) => {
        // Declared by a document's machine (another object of that name may be the one here).
        const v = this.#declared.get(m.name)
        const h = historyOf(m)
        return describeMachine(v !== undefined && h?.has(v) ? h.at(v) : m)
      }),
      ...(credentials !== undefined ? { credentials } : {}),
    })
  }

  /** Goes offline on purpose: local edits keep working and wait in the outbox. */
  disconnect(): void {
    this.#wantOnline = false
    this.#retryTimer?.cancel()
    this.#retryTimer = undefined
    const conn = this.#conn
    if (conn !== undefined) {
      const reason = "Disconnected by the app."
      this.#lost({ code: "closed", reason })
      conn.close("closed", reason)
    }
  }

  #receive(msg: ServerMessage): void {
    if (msg.type === "refused") {
      this.#lastRefusal = msg
      this.#refusedHere = true
      const name = msg.machine
      if (name === undefined || (msg.code === "schema-too-new" && this.#stepDown(this.#machines.get(name)))) return
      // A machine the app did not declare (only documents opened since use it) the hub cannot
      // serve: left out of handshakes from now on, and connect again at once. Its documents
      // are refused at their subscribes; the others are served.
      // Once: a hub that names one left out already is refused as any other refusal (backoff).
      if (this.#machines.has(name) && !this.#unserved.has(name) && !this.#options.machines?.some((m) => m.name === name)) {
        this.#unserved.add(name)
        this.#steppedDown = true
      }
      return
    }
    // A document opened after the welcome (its machine new since the handshake), refused as
    // too new: connect again at once, offering its previous version, as for a refused
    // handshake; else it would sit refused until the connection happened to drop.
    if (msg.type === "error" && MACHINE_REFUSALS.includes(msg.code)) {
      const m = this.#docs.get(msg.docId!)?.machine
      if (msg.code === "schema-too-new" && this.#stepDown(m)) {
        this.#conn!.close("closed", msg.message)
        return this.#lost({ code: msg.code, reason: msg.message })
      }
      // Nothing older to offer: left out of later handshakes (its subscribes carry their own
      // check), or that hub would refuse every document's connection for this one.
      if (m) this.#unserved.add(m.name)
    }
    if (msg.type === "welcome") {
      // Each would reconnect every document and send its outbox again, on the same socket.
      if (this.#welcomed) throw new Error("a second welcome on one connection.")
      this.#welcomed = true
      this.protocol = msg.protocol
      this.#lastRefusal = undefined
      this.#setStatus("online")
      this.#stableTimer?.cancel()
      this.#stableTimer = this.#options.runtime.setTimer(this.#options.stableMs ?? 10_000, () => {
        this.#attempt = 0
      })
      for (const doc of this.#docs.values()) this.#connectDoc(doc)
      return
    }
    // A message without a docId finds no document (no document's id is undefined).
    this.#docs.get((msg as { docId?: string }).docId!)?.receive(msg)
  }

  /** A hub older than the app: declares the previous version of `m`, if the app has it (then #lost connects again at once). */
  #stepDown(m: Machine<any, any> | undefined): boolean | undefined {
    const next = m && (this.#declared.get(m.name) ?? m.version) - 1
    if (m && historyOf(m)?.has(next!)) {
      this.#declared.set(m.name, next!)
      return (this.#steppedDown = true)
    }
  }

  /** Follows `doc` on the current (welcomed) connection: it sends on that one only. */
  #connectDoc(doc: Doc<any>): void {
    const conn = this.#conn!
    doc.connected((m) => conn.send(m), this.protocol ?? 1, this.#declared.get(doc.machine.name), (reason) => this.#end(conn, reason), () => conn.bufferedAmount)
  }

  /** Ends `conn` for what its hub sent (an unusable message, a document's resend budget); the next connection comes after the backoff. */
  #end(conn: Connection<ClientMessage>, reason: string): void {
    if (this.#conn !== conn) return
    conn.close("protocol-error", reason)
    this.#lost({ code: "protocol-error", reason })
  }

  #lost(info: CloseInfo): void {
    this.#conn = undefined
    this.#welcomed = false
    this.#stableTimer?.cancel()
    for (const doc of this.#docs.values()) doc.disconnected()
    if (this.#currentStatus === "closed") return
    // Answered by a new offer (an older version, a machine left out): not a refusal to wait on.
    const refusal = this.#steppedDown ? undefined : (this.#refusedHere ? this.#lastRefusal : undefined) ?? (FINAL_REFUSALS.has(info.code) ? { code: info.code, message: info.reason } : undefined)
    if (refusal !== undefined && FINAL_REFUSALS.has(refusal.code)) {
      // Retrying cannot help: keep local data and the outbox, wait for the app; receipts
      // settle now rather than wait for a connection that will not come.
      this.#lastRefusal = refusal as Refused
      // The app's next connect() offers its own versions first, as every new connection does.
      this.#declared.clear()
      for (const doc of this.#docs.values()) doc.refused(refusal.code, refusal.message)
      this.#setStatus("refused", { code: refusal.code, reason: refusal.message })
      return
    }
    this.#setStatus("offline", info)
    // Declaring an older version is a new offer, made at once, not a retry. Any other new
    // connection (the app's own connect() after a disconnect() too) offers the app's own
    // versions first: the hub may have been upgraded.
    const offer = this.#steppedDown && this.#wantOnline
    this.#steppedDown = false
    if (!offer && refusal === undefined) this.#declared.clear()
    if (!this.#wantOnline) return
    let delay = 0
    if (!offer) delay = backoffDelay(this.#attempt++, () => this.#options.runtime.random(), this.#options.backoff)
    this.#retryTimer = this.#options.runtime.setTimer(delay, () => {
      this.#retryTimer = undefined
      if (this.#wantOnline) this.connect()
    })
  }

  /**
   * Closes the connection and every document; waits for pending writes, then lets go of the
   * storage (a client opened on it meanwhile in this page waits for that). Calls after the
   * first return the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = this.#close()
      this.#store?.closing(this.#closing)
    }
    return this.#closing
  }

  async #close(): Promise<void> {
    try {
      const docs = [...this.#docs.values()]
      let failed: { error: unknown } | undefined
      try {
        this.#stopWake?.()
        this.disconnect()
      } catch (error) {
        // A transport that throws on close: the documents still close before the store is let go.
        failed = { error }
      }
      this.#setStatus("closed")
      this.#docs.clear()
      await Promise.allSettled([...this.#opening])
      await Promise.all(docs.map((d) => d.close()))
      // And those the app closed without waiting: the store is let go after their writes.
      await Promise.all([...this.#closingDocs.values()])
      if (failed !== undefined) throw failed.error
    } finally {
      this.#held.release()
    }
  }
}

/**
 * The hub's side of whole CRDT documents: loads one authority per document (by kind), shares
 * the hub's storage and its authenticate / authorize hooks with the protocol endpoints
 * (y-websocket, automerge-repo, Canon's own links), and unloads a document nobody follows
 * (with a `runtime`, after keeping it loaded a while within bounds: idle-documents.ts).
 *
 * CRDT documents live in their own key space ("c", see core/store/keys.ts), so a y-websocket
 * room can never open or overwrite a machine document; a document keeps the kind it was
 * created with (opening it as another kind is `doc-kind-mismatch`).
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines, storage, runtime, crdt: { engines: [yjsDocEngine(), automergeDocEngine()] } })
 * const doc = await hub.crdtDocs.open("yjs", "notes")
 * ```
 */
import type { Authenticate, Authorize, Principal } from "../authority/auth.js"
import { ANONYMOUS } from "../authority/auth.js"
import type { KVStore } from "../ports/storage.js"
import type { ConnectionInfo } from "../ports/transport.js"
import { docIdProblem } from "../limits.js"
import { checkMaxDocumentBytes } from "../authority/size-bound.js"
import { CrdtDocAuthority, CrdtDocError, type CrdtAuthorityOptions } from "./authority.js"
import type { CrdtDocEngine } from "./engine.js"
import { CrdtWorkBudget, DEFAULT_CRDT_WORK, WorkInFlight, type CrdtWorkLimits } from "./work-budget.js"
import { CrdtDocStore } from "./store.js"
import type { Runtime } from "../ports/runtime.js"
import { DEFAULT_IDLE_CRDT_DOCUMENTS, IdleDocuments, type IdleDocumentLimits } from "../authority/idle-documents.js"

export interface CrdtHostOptions extends CrdtAuthorityOptions {
  readonly engines: ReadonlyArray<CrdtDocEngine<any>>
  readonly storage: KVStore
  /** fsync every batch (default true, as the hub). */
  readonly sync?: boolean
  readonly authenticate?: Authenticate
  readonly authorize?: Authorize
  readonly onEvent?: (event: CrdtDocEvent) => void
  /** Timers for keeping documents nobody follows loaded a while; without it they are unloaded at once. */
  readonly runtime?: Runtime
  /** Bounds on those kept documents (defaults: DEFAULT_IDLE_CRDT_DOCUMENTS, idle-documents.ts). */
  readonly idleDocuments?: Partial<IdleDocumentLimits>
  /**
   * Each principal's share of the hub's decoding work, and its loads of documents from
   * storage (work-budget.ts; defaults DEFAULT_CRDT_WORK; see `open`). Needs `runtime`:
   * without one, work and loads are not metered. Heavy work in
   * flight at once is bounded with or without (`heavyInFlightMicros`).
   */
  readonly work?: Partial<CrdtWorkLimits>
  /**
   * The hub's memory had no room for a document of this host: the owner lets go what else it
   * keeps loaded that nobody uses (a Hub's idle machine documents); returns how many.
   */
  readonly onNoRoom?: () => number
}

export type CrdtDocEvent =
  | { readonly type: "doc-broken"; readonly docId: string; readonly error: unknown }
  | { readonly type: "doc-load-failed"; readonly docId: string; readonly error: unknown }
  | { readonly type: "doc-report"; readonly docId: string; readonly code: string; readonly message: string }
  /** An endpoint refused a peer or an update (bad frame, auth, limits). */
  | { readonly type: "refused"; readonly code: string; readonly message: string }

export class CrdtDocHost {
  private readonly store: CrdtDocStore
  private readonly engines: ReadonlyMap<string, CrdtDocEngine<any>>
  private readonly docs = new Map<string, Promise<CrdtDocAuthority<any>>>()
  /** Loaded documents nobody follows, kept a while (their entries in `docs` stay). */
  private readonly idleDocs: IdleDocuments<{ readonly doc: CrdtDocAuthority<any>; readonly loading: Promise<CrdtDocAuthority<any>> }> | undefined
  private closed = false
  /** The principals' shares of decoding work, shared by every document of this host. */
  private readonly work: CrdtWorkBudget | undefined
  /** Heavy work in flight at once, across this host's documents. */
  private readonly inFlight: WorkInFlight
  /** Documents unloaded whose engine has not let them go yet (a load waiting for room waits for them). */
  private readonly unloading = new Set<Promise<void>>()

  constructor(private readonly options: CrdtHostOptions) {
    checkMaxDocumentBytes(options.maxDocumentBytes, "maxDocumentBytes")
    this.store = new CrdtDocStore(options.storage, { sync: options.sync ?? true })
    this.engines = new Map(options.engines.map((e) => [e.kind, e]))
    this.inFlight = new WorkInFlight(options.work?.heavyInFlightMicros)
    if (options.runtime !== undefined) {
      this.idleDocs = new IdleDocuments(options.runtime, options.idleDocuments, (docId, kept) => this.unloadIdle(docId, kept.doc, kept.loading), DEFAULT_IDLE_CRDT_DOCUMENTS)
      this.work = new CrdtWorkBudget(options.runtime, options.work)
    }
  }

  /**
   * Lets every loaded document nobody follows go, and its owner's (room is needed now, in
   * the hub's memory or an engine's bound); returns how many.
   */
  letGoIdle(): number {
    return (this.idleDocs?.letGoAll() ?? 0) + (this.options.onNoRoom?.() ?? 0)
  }

  /** Kinds this host serves. */
  get kinds(): ReadonlyArray<string> {
    return [...this.engines.keys()]
  }

  report(event: CrdtDocEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch {
      // the app's diagnostics are its own business
    }
  }

  /**
   * The authority of a document, loaded on first use. Rejects with a CrdtDocError.
   *
   * `payer` (an endpoint's `loadPayer`): whoever opens a document that is not loaded pays for
   * reading it from storage, as a client's subscribe does on /sync (hub.ts `acquire`): a
   * token of its loads bucket (`work.loadsPerSecond`, `work.loadBurst`), and, once loaded,
   * the engine's measured time on it, charged to its work (`work.microsPerSecond`). Past the
   * bucket, or in debt, the open is refused `doc-unavailable`, never queued (other payers' opens go on). Without
   * a payer (the app's own calls), or without a `runtime`, a load is not charged.
   */
  open<D = unknown>(kind: string, docId: string, payer?: string): Promise<CrdtDocAuthority<D>> {
    if (this.closed) return Promise.reject(new CrdtDocError("doc-unavailable", "The hub is shutting down."))
    const engine = this.engines.get(kind)
    if (engine === undefined) return Promise.reject(new CrdtDocError("doc-unavailable", `This hub serves no ${kind} documents.`))
    const problem = docIdProblem(docId)
    if (problem !== undefined) return Promise.reject(new CrdtDocError("doc-id-invalid", problem))
    return this.acquire(engine, docId, payer).then(({ doc, kept }) => {
      if (doc.engine.kind !== kind) {
        // Handed back: the caller gets no document to release (a kept one taken above would stay loaded for good).
        if (kept) this.release(doc)
        throw new CrdtDocError("doc-kind-mismatch", `Document "${docId}" is a ${doc.engine.kind} document, not ${kind}.`)
      }
      return doc as CrdtDocAuthority<D>
    })
  }

  /**
   * The loaded (or loading) document, or a load of it, paid by `payer` first (`open`): one past
   * its loads or in debt for its work is refused `doc-unavailable` (the routes close such a
   * socket 4503, which stock clients retry), never queued. Opens at once share one load.
   */
  private async acquire(engine: CrdtDocEngine<any>, docId: string, payer: string | undefined): Promise<{ readonly doc: CrdtDocAuthority<any>; readonly kept: boolean }> {
    // (`open` has refused it already if the host is closed: nothing is awaited before this.)
    let p = this.docs.get(docId)
    // A kept document in use again (its endpoint releases it when its last follower goes).
    const kept = this.idleDocs?.take(docId) !== undefined
    if (p === undefined) {
      const ms = payer === undefined ? 0 : this.work?.loadWait(payer) ?? 0
      if (ms > 0) {
        const rate = this.options.work?.loadsPerSecond ?? DEFAULT_CRDT_WORK.loadsPerSecond
        throw new CrdtDocError("doc-unavailable", `This user opened documents the hub had to read from storage past ${rate} a second, or its work on the hub is in debt: open "${docId}" again in ${Math.ceil(ms / 1000)} s.`)
      }
      p = this.startLoad(engine, docId, payer)
    }
    return { doc: await p, kept }
  }

  /** Reads a document from storage; its engine's time on it is charged to `payer`, if any. */
  private startLoad(engine: CrdtDocEngine<any>, docId: string, payer: string | undefined): Promise<CrdtDocAuthority<any>> {
    const load = () => CrdtDocAuthority.load(docId, engine, this.store, {
      onBroken: (doc, error) => this.broken(doc, error),
      onReport: (r) => this.report({ type: "doc-report", ...r }),
      work: this.work,
      inFlight: this.inFlight,
      onNoRoom: () => void this.letGoIdle(),
      ...(this.options.runtime !== undefined ? { runtime: this.options.runtime } : {}),
    }, this.options)
    // No room beside the loaded documents (the engine's bound on what they hold together):
    // those nobody follows go first, then it is tried once more.
    const p = load().catch(async (e) => {
      if (!(e instanceof CrdtDocError && e.code === "doc-unavailable") || this.closed) throw e
      const freed = this.letGoIdle()
      if (freed === 0 && this.unloading.size === 0) throw e
      await Promise.all(this.unloading)
      return load()
    })
    this.docs.set(docId, p)
    p.then((doc) => {
      // Its next heavy work (a load, a submit, an answer) waits off what this one cost.
      if (payer !== undefined) this.work?.pay(payer, doc.loadMicros)
    }, (error) => {
      this.docs.delete(docId)
      this.report({ type: "doc-load-failed", docId, error })
    })
    return p
  }

  /**
   * A document nobody follows any more: once its writes are done it is kept loaded a while,
   * then unloaded (it reloads from storage on next use).
   */
  release(doc: CrdtDocAuthority<any>): void {
    if (doc.subscriberCount > 0) return
    void doc.flush().then(() => {
      if (doc.subscriberCount > 0 || !doc.idle) return
      const current = this.docs.get(doc.docId)
      if (current === undefined) return
      void current.then((d) => {
        if (d !== doc || doc.subscriberCount > 0 || !doc.idle || this.docs.get(doc.docId) !== current) return
        // Never written (nothing stored): loading it again costs next to nothing, and kept it
        // would push out one that costs (a loop of requests for ids nobody has emptied the
        // keep of every real document).
        if (this.idleDocs === undefined || doc.seq === 0) return this.unloadIdle(doc.docId, doc, current)
        const { base, tail } = doc.storedBytes
        this.idleDocs.keep(doc.docId, { doc, loading: current }, base + tail)
      }, () => {})
    }, () => {})
  }

  /** A kept document's time is up (or room is needed): unloaded, unless it is in use again. */
  private unloadIdle(docId: string, doc: CrdtDocAuthority<any>, loading: Promise<CrdtDocAuthority<any>>): void {
    if (this.docs.get(docId) !== loading || doc.subscriberCount > 0) return
    if (!doc.idle) return this.release(doc)
    this.docs.delete(docId)
    const gone = doc.close("closed", "Unloaded.")
    this.unloading.add(gone)
    void gone.finally(() => this.unloading.delete(gone))
  }

  /**
   * Who a connection of a stock client is: the hub's `authenticate` hook with a synthesized
   * hello (`clientId` "", no machines, `credentials` from the URL or cookie, see the
   * endpoints) and the connection's request info.
   */
  async authenticate(credentials: string | undefined, info: ConnectionInfo | undefined): Promise<{ readonly principal: Principal } | { readonly refuse: string }> {
    const hook = this.options.authenticate
    if (hook === undefined) return { principal: ANONYMOUS }
    try {
      const result: { id?: unknown; refuse?: unknown } = await hook({ type: "hello", protocol: { min: 0, max: 0 }, clientId: "", machines: [], ...(credentials !== undefined ? { credentials } : {}) }, info)
      if (typeof result.id === "string") return { principal: result as Principal }
      return { refuse: typeof result.refuse === "string" ? result.refuse : "Authentication failed." }
    } catch (e) {
      return { refuse: `Authentication failed: ${e instanceof Error ? e.message : String(e)}` }
    }
  }

  async authorize(principal: Principal, docId: string, access: "read" | "write"): Promise<boolean> {
    const hook = this.options.authorize
    if (hook === undefined) return true
    try {
      return (await hook(principal, docId, access)) === true
    } catch {
      return false
    }
  }

  private broken(doc: CrdtDocAuthority<any>, error: unknown): void {
    this.report({ type: "doc-broken", docId: doc.docId, error })
    this.idleDocs?.forget(doc.docId, (kept) => kept.doc === doc)
    void this.docs.get(doc.docId)?.then((d) => {
      if (d === doc) this.docs.delete(doc.docId)
    }, () => {})
    doc.close("storage-failed", `Storage failed for document "${doc.docId}"; reconnect to reload it.`)
  }

  /** Closes every document (subscribers hear `going-away`). Storage is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true
    const all = [...this.docs.values()]
    this.docs.clear()
    this.idleDocs?.clear()
    // Every loaded document stops taking updates at once: one being decoded or applied (a
    // large upload, seconds in slices) is refused, to be sent again after reconnecting, so
    // the flushes below wait only for writes already going to storage.
    for (const p of all) void p.then((d) => d.stopWork(), () => {})
    for (const p of all) {
      const d = await p.catch(() => undefined)
      if (d === undefined) continue
      await d.flush().catch(() => {})
      d.close()
    }
    // After the documents: submits waiting off a debt go on, and find them closed.
    this.work?.close()
  }
}

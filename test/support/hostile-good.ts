/**
 * The well-behaved side of the hostile suite: a real `CanonClient` over the Node WebSocket
 * transport with LevelDB storage, following the attacked documents throughout, and the
 * checks that it is unharmed: its receipts resolve, and its confirmed state hash equals the
 * hub's (a raw `fetch-state`) and a fresh reader's.
 *
 * The transport reads the hub's URL at each connect, so the client follows the hub child
 * across restarts (each restart binds a new port 0).
 */
import {
  CanonClient, CommandRejected, type ClientStatus, type ClientTransport, type CloseInfo, type Doc, type Machine,
} from "../../core/index.js"
import { LevelStorage } from "../../adapters/level/index.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { RawClient } from "./hostile-raw.js"

/** Reconnect quickly: the suite restarts hubs on purpose. */
const BACKOFF = { baseMs: 50, maxMs: 400 }

/** A transport to wherever `url()` says the hub is now. */
export const followingTransport = (url: () => string): ClientTransport => ({
  connect: (listener) => wsClientTransport(url()).connect(listener),
})

/** Rejects after `ms` with `what` in the message. */
export const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer))
}

/** How a receipt settled, in words: `confirmed at seq N` or `rejected CODE: message`. */
export const settle = async (receipt: Promise<{ seq: number }>, ms: number, what: string): Promise<{ seq: number } | { code: string; message: string }> => {
  try {
    return await within(receipt, ms, what)
  } catch (e) {
    if (e instanceof CommandRejected) return { code: e.code, message: e.message }
    throw e
  }
}

/** Polls `cond` every 10 ms for up to `ms`. */
export const waitUntil = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export interface StatusChange {
  readonly status: ClientStatus
  readonly info: CloseInfo | undefined
  readonly at: number
}

export class GoodClient {
  readonly docs = new Map<string, Doc<any>>()
  readonly statusLog: StatusChange[] = []
  /** Errors the hub sent about each document (a load failure, a refused subscribe...). */
  readonly errors = new Map<string, string[]>()
  /** The same, in arrival order across documents. */
  readonly errorLog: Array<{ readonly docId: string; readonly error: string; readonly at: number }> = []

  private constructor(readonly client: CanonClient, private readonly storage: LevelStorage | undefined) {
    client.onStatus((status, info) => this.statusLog.push({ status, info, at: Date.now() }))
  }

  /** A client with LevelDB storage in `dir` (its clientId, outbox and confirmed states persist there). */
  static async open(options: { readonly dir: string; readonly url: () => string; readonly credentials?: string }): Promise<GoodClient> {
    const storage = await LevelStorage.open(options.dir)
    const client = await CanonClient.open({
      transport: followingTransport(options.url),
      runtime: systemRuntime,
      storage,
      backoff: BACKOFF,
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    })
    return new GoodClient(client, storage)
  }

  /** Opens `docId` and waits until it is caught up with the hub. */
  async follow<M extends Machine<any, any>>(machine: M, docId: string, ms = 8000): Promise<Doc<M>> {
    let doc = this.docs.get(docId)
    if (doc === undefined) {
      doc = await this.client.open(machine, docId)
      const errors: string[] = []
      this.errors.set(docId, errors)
      doc.on("error", (e) => {
        errors.push(`${e.code}: ${e.message}`)
        this.errorLog.push({ docId, error: `${e.code}: ${e.message}`, at: Date.now() })
      })
      this.docs.set(docId, doc)
    }
    try {
      await waitSynced(doc, ms, `the well-behaved client following ${docId}`)
    } catch (e) {
      const errors = this.errors.get(docId) ?? []
      throw new Error(`${e instanceof Error ? e.message : String(e)}${errors.length > 0 ? ` (the hub said: ${errors.slice(-2).join(" | ")})` : ""}`)
    }
    return doc as Doc<M>
  }

  /** Stops following a document the attack made unservable (so it does not hold the client's connection hostage). */
  async quarantine(docId: string): Promise<void> {
    const doc = this.docs.get(docId)
    this.docs.delete(docId)
    await doc?.close()
  }

  /** Status changes since `mark` (an index into statusLog) that took it off line. */
  dropsSince(mark: number): string[] {
    return this.statusLog.slice(mark).filter((s) => s.status !== "online" && s.status !== "connecting")
      .map((s) => `${s.status}${s.info ? ` (${s.info.code}: ${s.info.reason})` : ""}`)
  }

  /** Errors the hub sent about `docIds` since `time`, one line each (repeats counted). */
  errorsSince(time: number, docIds: ReadonlySet<string>): string[] {
    const counts = new Map<string, number>()
    for (const e of this.errorLog) {
      if (e.at >= time && docIds.has(e.docId)) counts.set(`${e.docId}: ${e.error}`, (counts.get(`${e.docId}: ${e.error}`) ?? 0) + 1)
    }
    return [...counts].map(([line, n]) => (n > 1 ? `${line} (x${n})` : line))
  }

  async close(): Promise<void> {
    await this.client.close()
    await this.storage?.close()
  }
}

/** Waits until `doc` is synced on the current connection. */
export const waitSynced = (doc: Doc<any>, ms: number, what: string): Promise<void> =>
  doc.synced ? Promise.resolve() : within(new Promise<void>((resolve) => {
    const off = doc.on("synced", () => {
      off()
      resolve()
    })
  }), ms, `${what}: synced`)

/** Reads the hub's state of a document through the protocol (a raw peer's fetch-state). */
export const hubState = async (syncUrl: string, machine: Machine<any, any>, docId: string, credentials?: string): Promise<{ readonly seq: number; readonly hash: string; readonly state: Uint8Array }> => {
  const raw = await RawClient.connect(syncUrl)
  try {
    await raw.helloFresh(undefined, credentials)
    await raw.subscribe(docId, machine)
    const s = await raw.fetchState(docId)
    return { seq: s.seq, hash: s.hash, state: s.state }
  } finally {
    await raw.close()
  }
}

/**
 * The well-behaved client's confirmed state of `docId` equals the hub's and a fresh
 * reader's (same seq, same hash). Throws a sentence naming the first difference. The
 * readers sign in with `credentials` (a hub with an authenticate hook).
 */
export const expectConverged = async (syncUrl: string, machine: Machine<any, any>, good: Doc<any>, docId: string, credentials?: string): Promise<{ readonly seq: number; readonly hash: string }> => {
  await waitUntil(() => good.synced && good.pendingCount === 0, 8000, `the well-behaved client on ${docId} synced with nothing pending`)
  let hub = await hubState(syncUrl, machine, docId, credentials)
  // Entries committed just before the state was read may still be on their way to the client.
  await waitUntil(() => good.confirmedSeq >= hub.seq, 5000, `the well-behaved client on ${docId} reaching the hub's seq ${hub.seq} (at ${good.confirmedSeq})`)
  if (good.confirmedSeq !== hub.seq) hub = await hubState(syncUrl, machine, docId, credentials)
  if (good.confirmedSeq !== hub.seq) throw new Error(`${docId}: the well-behaved client is at seq ${good.confirmedSeq}, the hub at ${hub.seq}`)
  const goodHash = good.confirmedHash()
  if (goodHash !== hub.hash) throw new Error(`${docId}: the well-behaved client's state hash ${goodHash} differs from the hub's ${hub.hash} at seq ${hub.seq}`)

  const fresh = await CanonClient.open({
    transport: wsClientTransport(syncUrl), runtime: systemRuntime, storage: new MemoryStorage(), backoff: BACKOFF,
    ...(credentials !== undefined ? { credentials } : {}),
  })
  try {
    const doc = await fresh.open(machine, docId)
    await waitSynced(doc, 8000, `a fresh reader of ${docId}`)
    await waitUntil(() => doc.confirmedSeq >= hub.seq, 5000, `a fresh reader of ${docId} reaching seq ${hub.seq} (at ${doc.confirmedSeq})`)
    const freshHash = doc.confirmedHash()
    if (freshHash !== goodHash) throw new Error(`${docId}: a fresh reader's state hash ${freshHash} differs from the well-behaved client's ${goodHash} at seq ${hub.seq}`)
  } finally {
    await fresh.close()
  }
  return { seq: hub.seq, hash: hub.hash }
}

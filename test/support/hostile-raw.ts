/**
 * A raw WebSocket peer for the hostile suite: it speaks the wire protocol frame by frame
 * (the codec for ordinary frames, hand-made bytes for hostile ones), records everything the
 * hub sends, and waits for what it expects with bounded timeouts that fail with a
 * description of what did arrive (and how the socket closed, if it did).
 */
import { randomBytes } from "node:crypto"
import { WebSocket, type RawData } from "ws"
import { newClientId, type ClientMessage, type Entry, type Hello, type Machine, type Outcome, type Refused, type ServerMessage, type StateMsg } from "../../core/index.js"
import { decodeServerMessage, describeMachine, encodeClientMessage } from "../../core/internal.js"
import { systemRuntime } from "../../adapters/system/index.js"

export interface Closed {
  readonly code: number
  readonly reason: string
  readonly at: number
}

export type HelloAnswer =
  | { readonly kind: "welcome" }
  | { readonly kind: "refused"; readonly code: string; readonly message: string }
  | { readonly kind: "closed"; readonly closed: Closed }
  | { readonly kind: "error"; readonly code: string; readonly message: string }

export const showAnswer = (a: HelloAnswer): string =>
  a.kind === "welcome" ? "welcome" : a.kind === "closed" ? `closed ${a.closed.code} "${a.closed.reason}"` : `${a.kind} ${a.code}: ${a.message}`

/** A secret of the kind a client proves its clientId with (the hub decides whether it needs one). */
export const newSecret = (): string => randomBytes(32).toString("base64url")

/** A fresh client identity for a raw peer. */
export const newIdentity = (): { readonly clientId: string; readonly secret: string } => ({ clientId: newClientId(systemRuntime), secret: newSecret() })

const toBytes = (data: RawData): Uint8Array =>
  Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data

const open = new Set<RawClient>()

/** Closes every raw client still open (the suite's afterEach). */
export const closeAllRaw = async (): Promise<void> => {
  await Promise.all([...open].map((c) => c.close()))
}

export class RawClient {
  readonly received: ServerMessage[] = []
  /** Frames that did not decode (described), and text frames. */
  readonly garbage: string[] = []
  closed: Closed | undefined
  readonly openedAt = Date.now()
  private readonly waiters = new Set<() => void>()
  private readonly gone: Promise<void>

  private constructor(readonly ws: WebSocket) {
    open.add(this)
    this.gone = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closed = { code, reason: reason.toString(), at: Date.now() }
        open.delete(this)
        this.wake()
        resolve()
      })
    })
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        this.garbage.push(`text frame: ${toBytes(data).length} bytes`)
      } else {
        const d = decodeServerMessage(toBytes(data))
        if (d.ok === true) this.received.push(d.message)
        else if (d.ok === false) this.garbage.push(`${d.error.code}: ${d.error.message}`)
      }
      this.wake()
    })
    ws.on("error", () => {})
  }

  /** Opens a socket (from `localAddress` if given); rejects if the hub refuses the upgrade or it does not open in time. */
  static connect(url: string, options: { readonly localAddress?: string; readonly timeoutMs?: number; readonly headers?: Record<string, string> } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20, ...(options.localAddress ? { localAddress: options.localAddress } : {}), headers: options.headers ?? {} })
      const client = new RawClient(ws)
      const timer = setTimeout(() => {
        ws.terminate()
        reject(new Error(`a socket to ${url} did not open within ${options.timeoutMs ?? 5000} ms`))
      }, options.timeoutMs ?? 5000)
      ws.once("open", () => {
        clearTimeout(timer)
        resolve(client)
      })
      ws.once("unexpected-response", (_req, res) => {
        clearTimeout(timer)
        ws.terminate()
        reject(new Error(`upgrade refused with HTTP ${res.statusCode}`))
      })
      ws.once("close", (code, reason) => {
        clearTimeout(timer)
        reject(new Error(`closed before opening (${code} ${reason.toString()})`))
      })
      ws.once("error", (e) => {
        clearTimeout(timer)
        reject(new Error(`could not open a socket to ${url}: ${e.message}`))
      })
    })
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  get isOpen(): boolean {
    return this.closed === undefined && this.ws.readyState === WebSocket.OPEN
  }

  /** What arrived so far, in one line (for failure messages). */
  describe(): string {
    const types = this.received.filter((m) => m.type !== "keepalive").map((m) => (m.type === "error" ? `error(${m.code}: ${m.message})` : m.type))
    const close = this.closed ? `; closed ${this.closed.code} "${this.closed.reason}"` : ""
    const garbage = this.garbage.length > 0 ? `; undecodable: ${this.garbage.slice(0, 3).join(" | ")}` : ""
    return `received [${types.slice(-12).join(", ")}]${close}${garbage}`
  }

  send(message: ClientMessage): void {
    this.ws.send(encodeClientMessage(message))
  }

  sendFrame(frame: Uint8Array): void {
    this.ws.send(frame)
  }

  /**
   * Resolves with the first value `pick` returns for a message (from index `from` on);
   * rejects after `ms` or once the socket is closed without one.
   */
  waitFor<T>(pick: (m: ServerMessage) => T | undefined, ms: number, what: string, from = 0): Promise<T> {
    return new Promise((resolve, reject) => {
      let i = from
      const check = () => {
        for (; i < this.received.length; i++) {
          const v = pick(this.received[i]!)
          if (v !== undefined) {
            done()
            return resolve(v)
          }
        }
        if (this.closed !== undefined) {
          done()
          reject(new Error(`no ${what}: the socket closed first (${this.describe()})`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no ${what} within ${ms} ms (${this.describe()})`))
      }, ms)
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Resolves with how the socket closed, or undefined if it is still open after `ms`. */
  async waitClosed(ms: number): Promise<Closed | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.gone, new Promise<void>((r) => (timer = setTimeout(r, ms)))])
    clearTimeout(timer)
    return this.closed
  }

  /**
   * Says hello as `clientId`. `secret` goes into the hello where the protocol has a place for
   * it (a codec without one leaves it out). Resolves with the hub's answer.
   */
  async hello(clientId: string, options: { readonly credentials?: string; readonly secret?: string; readonly machines?: ReadonlyArray<Machine<any, any>> } = {}): Promise<HelloAnswer> {
    const from = this.received.length
    const hello = {
      type: "hello",
      // The raw peer writes protocol 1's frames (it keeps no codec session).
      protocol: { min: 1, max: 1 },
      clientId,
      machines: (options.machines ?? []).map(describeMachine),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
    } as Hello
    this.send(hello)
    try {
      return await this.waitFor<HelloAnswer>((m) => {
        if (m.type === "welcome") return { kind: "welcome" }
        if (m.type === "refused") return { kind: "refused", code: (m as Refused).code, message: m.message }
        if (m.type === "error") return { kind: "error", code: m.code, message: m.message }
        return undefined
      }, 5000, "answer to hello", from)
    } catch (e) {
      if (this.closed !== undefined) return { kind: "closed", closed: this.closed }
      throw e
    }
  }

  /** Says hello as a fresh identity and requires a welcome. */
  async helloFresh(identity = newIdentity(), credentials?: string): Promise<{ readonly clientId: string; readonly secret: string }> {
    const a = await this.hello(identity.clientId, { secret: identity.secret, ...(credentials !== undefined ? { credentials } : {}) })
    if (a.kind !== "welcome") throw new Error(`a fresh client was not welcomed: ${showAnswer(a)}`)
    return identity
  }

  /** Follows a document from `fromSeq`; resolves with the hub's head once caught up. */
  async subscribe(docId: string, machine: Machine<any, any>, fromSeq = 0): Promise<number> {
    const from = this.received.length
    this.send({ type: "subscribe", docId, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq, ackedClientSeq: 0 })
    return this.waitFor((m) => {
      if (m.type === "synced" && m.docId === docId) return m.seq
      if (m.type === "error" && m.docId === docId) throw new Error(`subscribing to ${docId} failed: ${m.code}: ${m.message}`)
      return undefined
    }, 8000, `synced for ${docId}`, from)
  }

  /** Every entry of `docId` received so far, in order. */
  entries(docId: string): Entry[] {
    return this.received.flatMap((m) => (m.type === "entries" && m.docId === docId ? m.entries : []))
  }

  /** The outcome of this client's command `clientSeq` on `docId`. */
  outcome(docId: string, clientSeq: number, ms = 5000): Promise<Outcome> {
    return this.waitFor((m) => (m.type === "results" && m.docId === docId ? m.outcomes.find((o) => o.clientSeq === clientSeq) : undefined), ms, `outcome of clientSeq ${clientSeq} on ${docId}`)
  }

  /** The outcome of `clientSeq`, or an error message about `docId` that arrived after `from` (whichever first). */
  answer(docId: string, clientSeq: number, ms: number, from: number): Promise<{ outcome: Outcome } | { error: { code: string; message: string } }> {
    return this.waitFor((m) => {
      if (m.type === "results" && m.docId === docId) {
        const o = m.outcomes.find((x) => x.clientSeq === clientSeq)
        return o === undefined ? undefined : { outcome: o }
      }
      if (m.type === "error" && (m.docId === docId || m.docId === undefined)) return { error: { code: m.code, message: m.message } }
      return undefined
    }, ms, `answer to clientSeq ${clientSeq} on ${docId}`, from)
  }

  /**
   * The hub's whole state of `docId` (subscribe first): a snapshot stream (begin, chunks, end)
   * assembled and acknowledged as a replica does, or a one-frame state from an older hub.
   */
  async fetchState(docId: string, ms = 5000): Promise<StateMsg> {
    const from = this.received.length
    this.send({ type: "fetch-state", docId })
    let bytes: Uint8Array | undefined
    let begin: { seq: number; hash: string; size: number; snapshotId: number } | undefined
    return this.waitFor((m) => {
      if (m.type === "state" && m.docId === docId) return m
      if (!("docId" in m) || m.docId !== docId) return undefined
      if (m.type === "snapshot-begin") {
        begin = m
        bytes = new Uint8Array(m.size)
      } else if (m.type === "snapshot-chunk" && bytes !== undefined && m.snapshotId === begin?.snapshotId) {
        bytes.set(m.bytes, m.offset)
        this.send({ type: "snapshot-ack", docId, snapshotId: m.snapshotId, received: m.offset + m.bytes.length })
      } else if (m.type === "snapshot-end" && bytes !== undefined && begin !== undefined && m.snapshotId === begin.snapshotId) {
        return { type: "state", docId, seq: begin.seq, hash: begin.hash, state: bytes } satisfies StateMsg
      }
      return undefined
    }, ms, `state of ${docId}`, from)
  }

  async close(): Promise<void> {
    if (this.closed !== undefined) return
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate()
    else this.ws.close(1000)
    if ((await this.waitClosed(2000)) === undefined) {
      this.ws.terminate()
      await this.waitClosed(1000)
    }
    open.delete(this)
  }
}

/** What an outcome says, in a few words. */
export const showOutcome = (o: Outcome): string =>
  "seq" in o ? `accepted at seq ${o.seq}` : "rejection" in o ? `rejected ${o.rejection.code}: ${o.rejection.message}` : JSON.stringify(o)

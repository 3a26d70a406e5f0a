/**
 * What the WebSocket server and both WebSocket clients (Node, browser) share: the mapping
 * between Canon's close codes and WebSocket close codes, and the client side of a
 * connection (frame decoding, the idle timer, close reporting) over any socket that can send
 * binary frames.
 *
 * ## Close codes
 *
 * Canon closes with a string code (`CloseInfo.code`). On a WebSocket the code travels twice:
 * as a numeric close code (for proxies, logs and browser devtools) and as the reason's
 * prefix, `"<code>: <sentence>"` (cut to the 123 bytes a close frame allows), so a Canon peer
 * recovers any code exactly, also the ones without a number of their own. A peer reads the
 * prefix when there is one, and the table otherwise.
 *
 * | Canon code             | WebSocket | sent when                                                      |
 * |------------------------|-----------|----------------------------------------------------------------|
 * | `closed`               | 1000      | a normal close by either side                                  |
 * | `going-away`           | 1001      | the hub or the server shuts down                               |
 * | `too-large`            | 1009      | a frame over `maxFrameBytes` (the `ws` library closes with it)  |
 * | (any other Canon code) | 4000      | the code is only in the reason's prefix                        |
 * | `protocol-error`       | 4002      | an undecodable frame, a text frame, a message out of order     |
 * | `unauthorized`         | 4003      | authentication refused, a clientId owned by another principal  |
 * | `storage-failed`       | 4005      | the hub's storage failed for a document; reconnecting reloads  |
 * | `slow-consumer`        | 4008      | more than the hub's `hardLimit` bytes waited unread            |
 * | `timeout`              | 4009      | a client heard nothing for `idleTimeoutMs`                     |
 * | `protocol-unsupported` | 4010      | handshake refusals (the `refused` message says more)           |
 * | `machine-unknown`      | 4011      |                                                                |
 * | `schema-too-old`       | 4012      |                                                                |
 * | `schema-too-new`       | 4013      |                                                                |
 * | `schema-mismatch`      | 4014      |                                                                |
 * | `rate-limited`         | 4029      | more messages or commands per second than the hub's limits     |
 * | `handshake-timeout`    | 4408      | no hello within the hub's handshake deadline                   |
 * | `internal-error`       | 4500      | the transport could not encode a message, or a listener threw  |
 *
 * A client sends only 1000 and 4000-4999 (browsers allow no other): its `going-away` and
 * `too-large` go as 4000 with the prefix.
 *
 * Received, never sent by Canon: 1005 (no code) -> `closed`; 1006 (the connection dropped
 * without a close frame) -> `reset`, or `unreachable` if it never opened; 1002 and 1007 ->
 * `protocol-error`; 1008 -> `policy-violation`; 1011 -> `internal-error`; 1012 and 1013 ->
 * `going-away`. A server that terminates a peer for not answering pings closes no frame: the
 * hub is told `timeout`, the peer sees `reset`.
 */
import { textDecoder, textEncoder } from "../../core/bytes.js"
import { errorText } from "../../core/errors.js"
import type { ClientMessage, CloseInfo, Connection, ConnectionListener, ServerMessage } from "../../core/index.js"
import { decodeServerMessage, encodeClientMessage } from "../../core/protocol/codec-client.js"
import { CodecSession, DEFAULT_MAX_FRAME_BYTES, type CodecOptions } from "../../core/protocol/codec-shared.js"
import { setDeadline, type Timer } from "../../core/ports/runtime.js"
import { systemRuntime } from "../system/runtime.js"

/** Canon close code -> WebSocket close code. Codes not listed are sent as 4000. */
export const WS_CLOSE_CODES: Readonly<Record<string, number>> = {
  "closed": 1000,
  "going-away": 1001,
  "too-large": 1009,
  "protocol-error": 4002,
  "unauthorized": 4003,
  "storage-failed": 4005,
  "slow-consumer": 4008,
  "timeout": 4009,
  "protocol-unsupported": 4010,
  "machine-unknown": 4011,
  "schema-too-old": 4012,
  "schema-too-new": 4013,
  "schema-mismatch": 4014,
  "rate-limited": 4029,
  "handshake-timeout": 4408,
  "internal-error": 4500,
}

/** The WebSocket close code for Canon codes without one of their own. */
export const WS_CLOSE_OTHER = 4000

/** WebSocket close codes the `ws` library or the network produce (never sent by Canon). */
const RECEIVED_ONLY: Readonly<Record<number, string>> = {
  1002: "protocol-error",
  1005: "closed",
  1006: "reset",
  1007: "protocol-error",
  1008: "policy-violation",
  1011: "internal-error",
  1012: "going-away",
  1013: "going-away",
}


/** A close frame's reason may hold at most this many bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 123

/**
 * `s` cut to at most `maxBytes` of UTF-8, on a character boundary (a lone surrogate is U+FFFD),
 * ending in "…" (3 bytes) when cut, so a reader shown it knows there was more. `maxBytes` >= 3.
 */
export const truncateUtf8 = (s: string, maxBytes: number): string => {
  const bytes = textEncoder.encode(s)
  if (bytes.length <= maxBytes) return s
  let end = maxBytes - 3
  // Back off continuation bytes (10xxxxxx) so no character is cut in half.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return textDecoder.decode(bytes.subarray(0, end)) + "…"
}

const CODE_PREFIX = /^([a-z][a-z0-9-]{0,63}):(?: ([\s\S]*))?$/

/**
 * The close frame for a Canon close: numeric code and `"<code>: <reason>"`, fitted to 123
 * bytes. `fromClient`: browsers may only send 1000 and 3000-4999, so a client sends its other
 * codes (going-away, too-large) as 4000; the prefix still carries them.
 */
export const toWsClose = (code: string, reason: string, fromClient = false): { readonly code: number; readonly reason: string } => {
  // CODE_PREFIX matches `code:` exactly when code is a well-formed Canon code.
  const safe = CODE_PREFIX.test(`${code}:`) ? code : "closed"
  // Own keys only: "constructor" is a well-formed code, and the table's prototype has one.
  let ws = Object.hasOwn(WS_CLOSE_CODES, safe) ? WS_CLOSE_CODES[safe]! : WS_CLOSE_OTHER
  if (fromClient && ws !== 1000 && (ws < 3000 || ws > 4999)) ws = WS_CLOSE_OTHER
  return { code: ws, reason: truncateUtf8(reason.length > 0 ? `${safe}: ${reason}` : `${safe}:`, MAX_CLOSE_REASON_BYTES) }
}

/**
 * The Canon close for a received WebSocket close. `opened` false: the connection never
 * opened, so a drop means the hub could not be reached.
 */
export const fromWsClose = (wsCode: number, reason: string, opened: boolean): CloseInfo => {
  const prefixed = CODE_PREFIX.exec(reason)
  if (prefixed !== null) return { code: prefixed[1]!, reason: prefixed[2] ?? "" }
  if (!opened && (wsCode === 1006 || wsCode === 1005)) return { code: "unreachable", reason: reason || "Could not connect to the hub." }
  // The Canon code the WebSocket code stands for, if it has one.
  const code = RECEIVED_ONLY[wsCode] ?? Object.keys(WS_CLOSE_CODES).find((c) => WS_CLOSE_CODES[c] === wsCode) ?? (wsCode >= 3000 ? `ws-${wsCode}` : "closed")
  return { code, reason: reason || (code === "reset" ? "The connection dropped." : `WebSocket closed with code ${wsCode}.`) }
}

// ---- encoding ----

/** Why a message could not become a frame: `too-large`, or the codec's error code. */
export interface EncodeFailure {
  readonly failed: true
  readonly code: string
  readonly reason: string
}

/**
 * A message's frame, or why there is none (never a throw). The frame limit is checked here,
 * so an oversize message is told apart from one the protocol cannot carry at all.
 */
export const encodeFrame = <M extends { readonly type: string }>(
  encode: (m: M, options?: CodecOptions) => Uint8Array,
  message: M,
  maxFrameBytes: number,
  version: number | undefined,
  session?: CodecSession,
): Uint8Array | EncodeFailure => {
  let frame: Uint8Array
  try {
    frame = encode(message, { maxFrameBytes: Number.MAX_SAFE_INTEGER, version, session })
  } catch (e) {
    const code = (e as { code?: unknown }).code
    return { failed: true, code: typeof code === "string" ? code : "protocol-error", reason: `Cannot encode ${message.type}: ${errorText(e)}` }
  }
  if (frame.length > maxFrameBytes) {
    return { failed: true, code: "too-large", reason: `A ${message.type} of ${frame.length} bytes is over the frame limit of ${maxFrameBytes} bytes.` }
  }
  return frame
}

export const isEncodeFailure = (x: Uint8Array | EncodeFailure): x is EncodeFailure => !(x instanceof Uint8Array)

// ---- the client side of a connection ----

/** Options both clients take. */
export interface WsClientOptions {
  /**
   * If nothing at all (message, ping) arrives for this long, the client closes the
   * connection and reports `timeout`. The server pings every 15 s by default, so a live
   * link is never quiet that long. 0 disables it. Default 45,000 ms.
   */
  readonly idleTimeoutMs?: number
  /** The connection must open within this long, or it is reported `unreachable`. Default 15,000 ms. */
  readonly connectTimeoutMs?: number
  /** Largest frame accepted or sent. Default DEFAULT_MAX_FRAME_BYTES (1 MiB), as the server's. */
  readonly maxFrameBytes?: number
}

export const DEFAULT_IDLE_TIMEOUT_MS = 45_000
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000

enum State {
  CONNECTING,
  OPEN,
  DONE,
}

/** What ClientLink needs of a platform socket (the browser's WebSocket and `ws`'s both fit). */
export interface ClientSocket {
  readonly bufferedAmount: number
  send(frame: Uint8Array): void
  close(code: number, reason: string): void
}

/**
 * The engine-facing end of one client connection. The platform file (client-node,
 * client-browser) creates the socket, `attach`es it, and feeds its events to `opened`,
 * `frame`, `heard` and `closed`. The listener hears each event asynchronously (never inside
 * `connect`), `onOpen` at most once, and `onClose` exactly once, unless the owner closed
 * first: whoever calls `close` hears nothing more.
 */
export class ClientLink implements Connection<ClientMessage> {
  readonly #listener: ConnectionListener<ServerMessage>
  #socket: ClientSocket | undefined
  /** Drops the socket on a timeout (see `attach`). */
  #abort: (() => void) | undefined
  /** Connecting, open, done (the enum's numbers in place). */
  #state = State.CONNECTING
  /** Frames sent before the socket opened, sent on open. */
  #early: Uint8Array[] = []
  #earlyBytes = 0
  #lastHeard = 0
  #idleTimer: Timer | undefined
  #connectTimer: Timer | undefined
  /** Protocol version agreed in the handshake (handshake frames are the same in every version). */
  #version: number | undefined
  /** What this end remembers across frames (protocol 2's compact frames). */
  readonly #session = new CodecSession()
  readonly #maxFrameBytes: number
  readonly #idleTimeoutMs: number

  constructor(listener: ConnectionListener<ServerMessage>, options: WsClientOptions) {
    this.#listener = listener
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    if (connectTimeout > 0) {
      // Run late (a stalled process, a throttled tab), it looks once more: the open may be waiting unread.
      this.#connectTimer = setDeadline(systemRuntime, connectTimeout, () => this.#timedOut("unreachable", `The connection did not open within ${connectTimeout} ms.`))
    }
  }

  // ---- fed by the platform ----

  /**
   * `abort` drops the connection at once, without a closing handshake. Where that cannot be
   * done (a page), a timed-out socket is closed with the timeout code instead.
   */
  attach(socket: ClientSocket, abort = () => this.#closeSocket("timeout", "")): void {
    this.#socket = socket
    this.#abort = abort
  }

  /**
   * The socket could not even be created (a bad URL, no WebSocket in this environment):
   * retrying cannot fix it, so the link ends `not-found` and the client stops, as for a 404.
   */
  failed(reason: string): void {
    setTimeout(() => this.#end({ code: "not-found", reason }), 0)
  }

  opened(): void {
    if (this.#state !== State.CONNECTING) return
    this.#state = State.OPEN
    this.#connectTimer?.cancel()
    this.heard()
    this.#armIdle()
    const early = this.#early
    this.#early = []
    this.#earlyBytes = 0
    for (const f of early) this.#socket?.send(f)
    this.#listener.onOpen?.()
  }

  /** A data frame arrived (a string for a text frame). */
  frame(data: Uint8Array | string): void {
    if (this.#state !== State.OPEN) return
    this.heard()
    if (typeof data === "string") return this.#fail("protocol-error", "The hub sent a text frame; Canon frames are binary.")
    const decoded = decodeServerMessage(data, { maxFrameBytes: this.#maxFrameBytes, session: this.#session, version: this.#version })
    if (decoded.ok === "ignore") return
    if (decoded.ok === false) return this.#fail("protocol-error", `Undecodable frame from the hub (${decoded.error.code}): ${decoded.error.message}`)
    const message = decoded.message
    if (message.type === "keepalive") return
    if (message.type === "welcome") this.#version = message.protocol
    this.#listener.onMessage(message)
  }

  /** Something arrived that is not a data frame (ping, pong): the link is alive. */
  heard(): void {
    this.#lastHeard = performance.now()
  }

  /** The socket closed (after a close frame or a drop). */
  closed(wsCode: number, reason: string, error?: string): void {
    if (this.#state === State.DONE) return
    const opened = this.#state === State.OPEN
    const info = fromWsClose(wsCode, reason, opened)
    this.#end(info.code === "unreachable" && error !== undefined ? { code: "unreachable", reason: error } : info)
  }

  /**
   * The hub answered the upgrade with HTTP `status` instead. An answer retrying cannot fix
   * ends the link with a code of its own, so the client stops retrying: a wrong URL (404, 410)
   * is `not-found`, refused credentials (401, 403) `unauthorized`. False for any other status
   * (429, 5xx...): the platform reports the failure, and it is retried. `detail` ends the reason.
   */
  refused(status: number, url: string, detail = ""): boolean {
    const code = status === 404 || status === 410 ? "not-found" : status === 401 || status === 403 ? "unauthorized" : ""
    if (code) this.#end({ code, reason: `The hub at ${url} answered HTTP ${status}: check the URL (the CLI's hub: /sync) and credentials.${detail}` })
    return code !== ""
  }

  // ---- Connection ----

  send(message: ClientMessage): void {
    if (this.#state === State.DONE) return
    const frame = encodeFrame(encodeClientMessage, message, this.#maxFrameBytes, this.#version, this.#session)
    if (!(frame instanceof Uint8Array)) {
      // The protocol cannot carry it (over the frame limit, not plain data): the hub would
      // miss a message, so the connection ends, with the reason; never a throw.
      return this.#fail(frame.code, frame.reason)
    }
    if (this.#state === State.CONNECTING) {
      this.#early.push(frame)
      this.#earlyBytes += frame.length
      return
    }
    this.#socket?.send(frame)
  }

  close(code = "closed", reason = "Closed by the client."): void {
    if (this.#finish()) this.#closeSocket(code, reason)
  }

  get bufferedAmount(): number {
    return this.#earlyBytes + (this.#state === State.DONE ? 0 : (this.#socket?.bufferedAmount ?? 0))
  }

  // ---- internals ----

  #closeSocket(code: string, reason: string): void {
    const frame = toWsClose(code, reason, true)
    this.#socket?.close(frame.code, frame.reason)
  }

  /** Closes the socket with `code` and tells the listener. */
  #fail(code: string, reason: string): void {
    this.#closeSocket(code, reason)
    this.#end({ code, reason })
  }

  /** A deadline passed (not open in time, or nothing heard): drops the socket and tells the listener. */
  #timedOut(code: string, reason: string): void {
    this.#abort?.()
    this.#end({ code, reason })
  }

  /** Marks the connection over (false if it already was): no timers, no early frames. */
  #finish(): boolean {
    if (this.#state === State.DONE) return false
    this.#state = State.DONE
    this.#idleTimer?.cancel()
    this.#connectTimer?.cancel()
    this.#early = []
    this.#earlyBytes = 0
    return true
  }

  /** The connection is over for the listener: tell it once (asynchronously). */
  #end(info: CloseInfo): void {
    if (this.#finish()) setTimeout(() => this.#listener.onClose(info), 0)
  }

  /**
   * Checks for silence when the idle deadline (from the last thing heard) passes, not on every
   * frame. A deadline that runs late (a busy process, a suspended or throttled tab) looks once
   * more a moment later, since what the hub sent meanwhile may be waiting unread (setDeadline);
   * only once, so a throttled tab, whose timers are always late, still times a dead link out.
   */
  #armIdle(): void {
    if (this.#idleTimeoutMs <= 0) return
    const wait = Math.max(1, this.#lastHeard + this.#idleTimeoutMs - performance.now())
    this.#idleTimer = setDeadline(systemRuntime, wait, () => {
      if (performance.now() - this.#lastHeard < this.#idleTimeoutMs) return this.#armIdle()
      this.#timedOut("timeout", `Nothing heard from the hub for ${this.#idleTimeoutMs} ms.`)
    })
  }
}

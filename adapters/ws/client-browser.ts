/**
 * The browser WebSocket client transport, on the global `WebSocket` (binary frames as
 * ArrayBuffers). Same interface as the Node client (client-node.ts); no Node modules here.
 *
 * Heartbeats: browsers answer the server's pings by themselves (so the server detects a dead
 * browser), but a page cannot see pings arrive, so the hub also sends a `keepalive` frame
 * with each ping (every 15 s by default). A link silent for `idleTimeoutMs` (45 s) is
 * declared dead here, so a half-open connection (sleep, a network switch) is noticed.
 *
 * @example
 * ```ts
 * import { wsClientTransport } from "canon/ws/browser"
 * const client = await CanonClient.open({ transport: wsClientTransport("wss://sync.example.com/sync"), runtime: systemRuntime })
 * ```
 */
import { errorText } from "../../core/errors.js"
import type { ClientTransport } from "../../core/index.js"
import { ClientLink, DEFAULT_IDLE_TIMEOUT_MS, type WsClientOptions } from "./shared.js"

/** The part of the WHATWG WebSocket this client uses. */
export interface BrowserWebSocket {
  binaryType: string
  readonly bufferedAmount: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void
}

export type BrowserWebSocketConstructor = new (url: string, protocols?: string | string[]) => BrowserWebSocket

export interface BrowserWsClientOptions extends WsClientOptions {
  /** Subprotocols to offer. */
  readonly protocols?: string | string[]
  /** The WebSocket class to use. Default: the global `WebSocket`. */
  readonly WebSocket?: BrowserWebSocketConstructor
}

/** Default idle timeout of the browser client: the Node client's (the hub's keepalive frames stand in for pings). */
export const BROWSER_DEFAULT_IDLE_TIMEOUT_MS = DEFAULT_IDLE_TIMEOUT_MS

/** A ClientTransport that opens a WebSocket to `url` (ws:// or wss://) for each connection. */
export const wsClientTransport = (url: string | URL, options: BrowserWsClientOptions = {}): ClientTransport & { onWake(fn: () => void): () => void } => ({
  // The network came back, or the tab is in front again (not while hidden): retry at once.
  onWake(fn) {
    const g = globalThis as { addEventListener?: Function; removeEventListener?: Function; document?: { visibilityState: string } }
    const wake = () => g.document?.visibilityState !== "hidden" && fn()
    for (const t of ["online", "visibilitychange"]) g.addEventListener?.(t, wake)
    return () => {
      for (const t of ["online", "visibilitychange"]) g.removeEventListener?.(t, wake)
    }
  },
  connect(listener) {
    const link = new ClientLink(listener, options)
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: BrowserWebSocketConstructor }).WebSocket
    if (Ctor === undefined) {
      link.failed("This environment has no WebSocket.")
      return link
    }
    let ws: BrowserWebSocket
    try {
      ws = options.protocols === undefined ? new Ctor(String(url)) : new Ctor(String(url), options.protocols)
      ws.binaryType = "arraybuffer"
    } catch (e) {
      // A malformed URL (or a blocked port) throws here: reported, never thrown; not retried.
      link.failed(`Cannot connect to ${String(url)}: ${errorText(e)}`)
      return link
    }
    let opened = false
    ws.addEventListener("open", () => {
      opened = true
      link.opened()
    })
    ws.addEventListener("message", ({ data }: { data: unknown }) =>
      link.frame(
        typeof data === "string" ? data
        : data instanceof ArrayBuffer ? new Uint8Array(data)
        : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        // Neither text nor bytes (a Blob, if binaryType was changed): refused as a text frame is.
        : "",
      ))
    // Browsers give no detail on errors; the close event that follows says what is known.
    ws.addEventListener("error", () => {})
    ws.addEventListener("close", (event: { code: number; reason: string }) => {
      // A page is not told the HTTP status of a failed upgrade: ask the same URL over HTTP,
      // so a wrong path (404) or refused credentials end retrying. A Canon hub answers a plain
      // GET on its sync path with 426 (WsServer's own listener; the canon CLI's hub); a hub
      // attached to your server must not answer it 404. Cross-origin without CORS, the probe
      // fails and the close stays a retried one.
      const probe = (globalThis as { fetch?: (u: string) => Promise<{ status: number }> }).fetch
      const closed = () => link.closed(event.code, event.reason)
      if (opened || event.code !== 1006 || !probe) return closed()
      probe(String(url).replace(/^ws/, "http")).then((res) => {
        if (!link.refused(res.status, String(url))) closed()
      }, closed)
    })
    // A page cannot drop a socket without the closing handshake: a timeout closes it (4009).
    link.attach(ws)
    return link
  },
})

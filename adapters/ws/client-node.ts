/**
 * The Node WebSocket client transport, on the `ws` package. Same interface as the browser
 * client (client-browser.ts); `CanonClient` does reconnects, backoff and status on top.
 *
 * @example
 * ```ts
 * const client = await CanonClient.open({
 *   transport: wsClientTransport("wss://sync.example.com/sync"),
 *   runtime: systemRuntime,
 * })
 * ```
 */
import { WebSocket, type ClientOptions as WsLibraryOptions, type RawData } from "ws"
import { DEFAULT_MAX_FRAME_BYTES, type ClientTransport } from "../../core/index.js"
import { ClientLink, type WsClientOptions } from "./shared.js"

export interface NodeWsClientOptions extends WsClientOptions {
  /** Extra HTTP headers of the upgrade request (e.g. a cookie or a bearer token). */
  readonly headers?: Readonly<Record<string, string>>
  /**
   * Options for the `ws` library's client: TLS (`ca`, `cert`, `key`, `rejectUnauthorized`),
   * `agent`, `origin`, `family`... `maxPayload` and `perMessageDeflate` are set by Canon.
   */
  readonly ws?: WsLibraryOptions
  /** Called with each new socket: diagnostics and tests (pause it, terminate it). */
  readonly onSocket?: (socket: WebSocket) => void
}

const toBytes = (data: RawData): Uint8Array =>
  Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data

/** A ClientTransport that opens a WebSocket to `url` (ws:// or wss://) for each connection. */
export const wsClientTransport = (url: string | URL, options: NodeWsClientOptions = {}): ClientTransport => ({
  connect(listener) {
    const link = new ClientLink(listener, options)
    let ws: WebSocket
    try {
      ws = new WebSocket(url, {
        ...options.ws,
        headers: { ...options.ws?.headers, ...options.headers },
        perMessageDeflate: false,
        maxPayload: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      })
    } catch (e) {
      // A malformed URL throws here: reported, never thrown; not retried.
      link.failed(`Cannot connect to ${String(url)} (check the URL: ws:// or wss://): ${e instanceof Error ? e.message : String(e)}`)
      return link
    }
    let error: string | undefined
    ws.on("open", () => link.opened())
    ws.on("message", (data, isBinary) => link.frame(isBinary ? toBytes(data) : Buffer.from(toBytes(data)).toString("utf8")))
    ws.on("ping", () => link.heard())
    ws.on("pong", () => link.heard())
    ws.on("error", (e) => {
      // Node's text alone ("connect ECONNREFUSED 127.0.0.1:8787") does not say what to check.
      error ??= `No hub answered at ${String(url)} (is it running, and is that its address?): ${e.message}`
    })
    // The hub answered the upgrade with an HTTP error (a connection cap's 429, a 403 of
    // verifyUpgrade...): its one-line body says why, so read a little of it into the reason.
    ws.on("unexpected-response", (_req, res) => {
      let body = ""
      let done = false
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(timer)
        const line = body.split("\n")[0]!.trim().slice(0, 200)
        const said = line !== "" ? ` (${line})` : ""
        const status = res.statusCode ?? 0
        // A status retrying cannot fix ends the link with its own code (the client stops);
        // any other (429, 5xx) reads as unreachable and is retried with backoff.
        if (!link.refused(status, String(url), said)) error ??= `The hub refused the connection: HTTP ${status}${said}.`
        ws.terminate()
      }
      const timer = setTimeout(finish, 1_000)
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        body += chunk
        if (body.length >= 1024) finish()
      })
      res.on("end", finish)
      res.on("error", finish)
    })
    ws.on("close", (code, reason) => link.closed(code, reason.toString(), error))
    link.attach(ws, () => ws.terminate())
    options.onSocket?.(ws)
    return link
  },
})

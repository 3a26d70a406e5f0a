/**
 * A request's URL, parsed without ever throwing: Node's HTTP parser passes absolute-form
 * targets through unchecked (`GET http://x:99999/ HTTP/1.1`), and `new URL` throws on them.
 * A page handler that threw took the whole hub process down with one request line.
 */
import type http from "node:http"

/** The request's URL against a placeholder origin, or undefined when it cannot be parsed (answer 400). */
export const requestUrl = (req: http.IncomingMessage): URL | undefined => {
  const raw = req.url ?? "/"
  return URL.canParse(raw, "http://x") ? new URL(raw, "http://x") : undefined
}

/**
 * The hub's HTTP pages for the demo: the board app's files from memory (build.ts), gzipped
 * when the browser accepts it, with ETags; `/status` is the hub's status page; `/api/log` the devtools' view of a board's log.
 */
import type http from "node:http"
import type { Hub, KVStore } from "../../core/index.js"
import { logApi } from "./log-api.js"
import type { PageHandler } from "../hub/start.js"
import { statusPage } from "../hub/status-page.js"
import { requestUrl } from "../hub/request-url.js"
import type { DemoAssets } from "./build.js"

/**
 * Every file of the app: scripts only from the hub (no inline script, no eval), connections
 * only to it, never framed by another site (clickjacking the board's buttons), types as sent.
 * Inline styles stay allowed: the views set style attributes. Workers from blob: URLs too:
 * only the page's own scripts can make one, and a page without Web Locks (plain http from a
 * LAN address) answers its tab locks from one (adapters/system/tab-locks.ts).
 */
const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
}

export const demoPages = (assets: DemoAssets): PageHandler => (req: http.IncomingMessage, res: http.ServerResponse, hub: Hub, storage?: KVStore): boolean => {
  if (req.method !== "GET" && req.method !== "HEAD") return false
  const url = requestUrl(req)
  if (url === undefined) return false
  const path = url.pathname
  if (path === "/status") return statusPage(req, res, hub)
  if (path === "/api/log" && storage !== undefined) {
    void logApi(url, res, storage)
    return true
  }
  const file = assets.files.get(path === "/index.html" ? "/" : path)
  if (file === undefined) return false
  // A file named by the build's ?v= is immutable under the current version's URL only.
  const cache = file.versioned === true && url.searchParams.get("v") !== assets.version ? "no-cache" : file.cache
  const headers: Record<string, string | number> = { "Content-Type": file.type, "Cache-Control": cache, "ETag": file.etag, "Vary": "Accept-Encoding", ...SECURITY_HEADERS }
  if (path === "/sw.js") headers["Service-Worker-Allowed"] = "/"
  if (req.headers["if-none-match"] === file.etag) {
    res.writeHead(304, headers)
    res.end()
    return true
  }
  const gzip = file.gzip !== undefined && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))
  const body = gzip ? file.gzip! : file.body
  if (gzip) headers["Content-Encoding"] = "gzip"
  headers["Content-Length"] = body.length
  res.writeHead(200, headers)
  res.end(req.method === "HEAD" ? undefined : body)
  return true
}

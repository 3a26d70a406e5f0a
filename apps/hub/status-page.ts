/**
 * The hub's status page: what this hub is, how to reach it, what it holds. `npm start`
 * serves it at `/status` next to the demo board (apps/demo/pages.ts); a hub without the
 * demo can serve it at `/` too.
 */
import type http from "node:http"
import type { Hub } from "../../core/index.js"
import { requestUrl } from "./request-url.js"

const html = (hub: Hub, syncPath: string): string => {
  const { documents, connections } = hub.stats()
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Canon hub</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style>
</head><body>
<h1>Canon hub</h1>
<p>Running. Clients sync over WebSocket at <code>${syncPath}</code>.</p>
<p>Open documents: <strong>${documents}</strong> &middot; connections: <strong>${connections}</strong></p>
</body></html>`
}

const PATHS = new Set(["/", "/index.html", "/status"])

export const statusPage = (req: http.IncomingMessage, res: http.ServerResponse, hub: Hub): boolean => {
  const url = requestUrl(req)
  // HEAD too: uptime checks use it.
  if ((req.method !== "GET" && req.method !== "HEAD") || url === undefined || !PATHS.has(url.pathname)) return false
  const body = html(hub, "/sync")
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" })
  res.end(req.method === "HEAD" ? undefined : body)
  return true
}

/**
 * The page at `/`: what this hub is and how to reach it. (The demo board replaces it when
 * the demo app lands.)
 */
import type http from "node:http"
import type { Hub } from "../../core/index.js"

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

export const statusPage = (req: http.IncomingMessage, res: http.ServerResponse, hub: Hub): boolean => {
  if (req.method !== "GET" || (req.url !== "/" && req.url !== "/index.html")) return false
  const body = html(hub, "/sync")
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Length": Buffer.byteLength(body) })
  res.end(body)
  return true
}

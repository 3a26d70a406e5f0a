/**
 * What keeps other websites from using a hub through its visitors' browsers. A page on any
 * site may open a WebSocket to 127.0.0.1:8787 (browsers send its Origin, and nothing else
 * stops it) and write to every board as a client of its own; and a site whose name is made
 * to resolve to 127.0.0.1 (DNS rebinding) reads the hub's pages as its own origin. So:
 *
 * - An upgrade that carries an `Origin` (a browser) must come from a page of the hub itself
 *   (same scheme-less host and port as the request) or from an origin the operator allowed
 *   (`--allow-origin`). Clients that are not browsers send no Origin and are not concerned.
 * - A hub bound to loopback answers only requests addressed to a loopback name (or its
 *   public URL's host): anything else is a 421. Bound to other interfaces with origins
 *   restricted (npm start), it also answers addresses and local names (one label, .local,
 *   .lan, .internal, .home.arpa): a rebinding site's name is in a public domain. A hub that
 *   takes pages of any origin (canon serve's default) takes any Host: a rebinding site
 *   could connect anyway.
 * - The hub's own page is any loopback name at the hub's port when the hub is reached by
 *   one: http://localhost:8787 and ws://127.0.0.1:8787 are the same hub.
 */
import type http from "node:http"

export interface BrowserGuard {
  /** Host names (lowercase, IPv6 in brackets) requests may be addressed to, or "any". */
  readonly hosts: ReadonlySet<string> | "any"
  /** Whether addresses and local names are taken beside `hosts` (bound to other interfaces). */
  readonly localNames: boolean
  /** Origins of other sites whose pages may connect, or "any". */
  readonly origins: ReadonlySet<string> | "any"
}

const isLoopback = (host: string): boolean => host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/** An address, or a name no public DNS zone hands out (what DNS rebinding needs is a public name). */
const isLocalName = (host: string): boolean =>
  /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^\[[0-9a-f:.]+\]$/.test(host) || !host.includes(".") || /\.(local|lan|internal|home\.arpa|localhost)$/.test(host)

export const browserGuard = (bindHost: string, publicUrl: string | undefined, allowOrigins: ReadonlyArray<string> | "any"): BrowserGuard => {
  const hosts = new Set(["localhost", "127.0.0.1", "[::1]", bindHost.includes(":") ? `[${bindHost}]` : bindHost])
  const pub = publicUrl === undefined ? undefined : new URL(publicUrl.replace(/^ws/, "http"))
  if (pub !== undefined) hosts.add(pub.hostname.toLowerCase())
  // Behind a proxy the Host may be rewritten: the public URL's own pages are the hub's too.
  const own = pub === undefined ? [] : [pub.origin]
  const loopback = isLoopback(bindHost)
  return {
    hosts: loopback || allowOrigins !== "any" ? hosts : "any",
    localNames: !loopback,
    origins: allowOrigins === "any" ? "any" : new Set([...own, ...allowOrigins]),
  }
}

/** The Host header's name without its port (IPv6 keeps its brackets), or undefined. */
const hostName = (host: string | undefined): string | undefined => {
  if (host === undefined) return undefined
  try {
    return new URL(`http://${host}`).hostname.toLowerCase()
  } catch {
    return undefined
  }
}

/** Whether the request is addressed to a name this hub answers to. */
export const hostAllowed = (guard: BrowserGuard, req: http.IncomingMessage): boolean => {
  if (guard.hosts === "any") return true
  const name = hostName(req.headers.host)
  return name !== undefined && (guard.hosts.has(name) || (guard.localNames && isLocalName(name)))
}

/** The sentence of a 421: the names this hub answers to, and how to add one. */
export const misdirectedText = (guard: BrowserGuard): string =>
  `Misdirected request: this hub answers to ${guard.localNames ? "its addresses and local names (one label, .local, .lan, .internal, .home.arpa)" : "localhost and 127.0.0.1"}${guard.hosts === "any" ? "" : ` and ${[...guard.hosts].filter((h) => !isLoopback(h) && !(guard.localNames && isLocalName(h))).join(", ") || "no other name"}`}. Reached by another name, start it with --public-url set to that URL.`

/** The sentence of a 403 to a browser page of another site. */
export const refusedOriginText = (origin: string): string =>
  `A page of ${origin} may not connect to this hub: start it with --allow-origin ${origin} (or * for any site) to let it.`

/** Whether an upgrade may become a connection: not a browser, the hub's own page, or an allowed origin. */
export const originAllowed = (guard: BrowserGuard, req: http.IncomingMessage): boolean => {
  const origin = req.headers.origin
  if (origin === undefined || guard.origins === "any") return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  const host = String(req.headers.host ?? "").toLowerCase()
  if (url.host === host || guard.origins.has(url.protocol.startsWith("http") ? url.origin : origin.toLowerCase())) return true
  // A loopback page of the hub's own port is the hub's own page, whichever loopback name either uses.
  const reached = hostName(host)
  return /^https?:$/.test(url.protocol) && reached !== undefined && isLoopback(reached) && isLoopback(url.hostname) && portOf(url) === portOf(new URL(`${url.protocol}//${host}`))
}

const portOf = (url: URL): string => url.port || (url.protocol === "https:" ? "443" : "80")

/**
 * Parses `--allow-origin`: "*" or comma-separated origins, scheme://host[:port]; throws a
 * sentence. Apps in other schemes (capacitor://localhost, tauri://localhost, app://name) are
 * taken as written; "null" (sandboxed and file pages of any site send it) is not an origin.
 */
export const parseOrigins = (text: string, where: string): ReadonlyArray<string> | "any" => {
  if (text.trim() === "*") return "any"
  const list = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  return list.map((o) => {
    const given = o.replace(/\/$/, "")
    let url: URL | undefined
    try {
      url = new URL(given)
    } catch {
      // reported below
    }
    if (url !== undefined && /^https?:$/.test(url.protocol) && url.origin === given.toLowerCase()) return url.origin
    if (url !== undefined && !/^https?:$/.test(url.protocol) && /^[a-z][a-z0-9+.-]*:\/\/[a-z0-9.-]+(:\d+)?$/i.test(given)) return given.toLowerCase()
    throw new Error(`${where}: "${o}" is not an origin: give scheme://host[:port] (e.g. http://localhost:5173 or capacitor://localhost), comma-separated, or * for any site.`)
  })
}

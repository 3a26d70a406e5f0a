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
 *   public URL's host): anything else is a 421. Bound to other interfaces, it cannot know
 *   every name it is reached by, and takes any Host.
 */
import type http from "node:http"

export interface BrowserGuard {
  /** Host names (lowercase, IPv6 in brackets) requests may be addressed to, or "any". */
  readonly hosts: ReadonlySet<string> | "any"
  /** Origins of other sites whose pages may connect, or "any". */
  readonly origins: ReadonlySet<string> | "any"
}

const isLoopback = (host: string): boolean => host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

export const browserGuard = (bindHost: string, publicUrl: string | undefined, allowOrigins: ReadonlyArray<string> | "any"): BrowserGuard => {
  const hosts = new Set(["localhost", "127.0.0.1", "[::1]", bindHost.includes(":") ? `[${bindHost}]` : bindHost])
  const pub = publicUrl === undefined ? undefined : new URL(publicUrl.replace(/^ws/, "http"))
  if (pub !== undefined) hosts.add(pub.hostname.toLowerCase())
  // Behind a proxy the Host may be rewritten: the public URL's own pages are the hub's too.
  const own = pub === undefined ? [] : [pub.origin]
  return {
    hosts: isLoopback(bindHost) ? hosts : "any",
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
  return name !== undefined && guard.hosts.has(name)
}

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
  return url.host === String(req.headers.host ?? "").toLowerCase() || guard.origins.has(url.origin)
}

/** Parses `--allow-origin`: "*" or comma-separated origins (scheme://host[:port]); throws a sentence. */
export const parseOrigins = (text: string, where: string): ReadonlyArray<string> | "any" => {
  if (text.trim() === "*") return "any"
  const list = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  return list.map((o) => {
    let url: URL | undefined
    try {
      url = new URL(o)
    } catch {
      // reported below
    }
    if (url === undefined || !/^https?:$/.test(url.protocol) || url.origin !== o.replace(/\/$/, "")) {
      throw new Error(`${where}: "${o}" is not an origin: give scheme://host[:port] (e.g. http://localhost:5173), comma-separated, or * for any site.`)
    }
    return url.origin
  })
}

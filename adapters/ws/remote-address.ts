/**
 * Who a WebSocket client is, by address: the socket's peer, or, behind a reverse proxy the
 * server is told to trust, the client address the proxy put in `X-Forwarded-For`.
 *
 * `X-Forwarded-For` is a list each proxy appends its peer to, so only its right end is
 * written by proxies; anything to the left may be made up by the client. The client address
 * is therefore the right-most hop that is not a trusted proxy, and the header is read only
 * when the socket's peer itself is trusted: a forged header from anyone else changes
 * nothing.
 *
 * - `trustProxy: false` (default): the socket's peer, whatever the headers say.
 * - `trustProxy: true`: the socket's peer is one trusted proxy (a hub behind a single reverse
 *   proxy): the client is the right-most `X-Forwarded-For` entry.
 * - `trustProxy: ["10.0.0.5", "10.1.0.0/16", "::1"]`: peers (and hops) in these addresses or
 *   CIDR ranges are proxies; the header is read from the right, skipping them.
 *
 * Addresses are compared and reported in one form: IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what
 * a dual-stack socket reports) as plain IPv4, IPv6 in Node's canonical lower-case form.
 */
import * as net from "node:net"
import type * as http from "node:http"

export type TrustProxy = boolean | ReadonlyArray<string>

/** Which peers are trusted proxies, and whether only the socket's peer is (`trustProxy: true`). */
export interface ProxyTrust {
  readonly isProxy: (address: string) => boolean
  readonly peerOnly: boolean
}

const NONE: ProxyTrust = { isProxy: () => false, peerOnly: false }
const PEER: ProxyTrust = { isProxy: () => true, peerOnly: true }

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/** The address in the form used for comparisons and counts; undefined if it is no IP address. */
export const normalizeAddress = (address: string | undefined): string | undefined => {
  if (address === undefined) return undefined
  let a = address.trim()
  // "[::1]" as some proxies write IPv6; a zone index ("fe80::1%eth0") stays as it is.
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1)
  const mapped = MAPPED_V4.exec(a)
  if (mapped !== null && net.isIPv4(mapped[1]!)) return mapped[1]
  const family = net.isIP(a)
  if (family === 4) return a
  if (family === 6) return new net.SocketAddress({ address: a, family: "ipv6" }).address
  return undefined
}

/**
 * The trust predicate for a `trustProxy` option. Throws a TypeError naming the entry that is
 * neither an IP address nor a CIDR range, so a typo fails at start, not silently later.
 */
export const proxyTrust = (option: TrustProxy | undefined): ProxyTrust => {
  if (option === undefined || option === false) return NONE
  if (option === true) return PEER
  const list = new net.BlockList()
  for (const entry of option) {
    const [host, bits, extra] = entry.trim().split("/")
    const address = normalizeAddress(host)
    if (address === undefined || extra !== undefined) throw new TypeError(`trustProxy: "${entry}" is not an IP address or CIDR range (e.g. "10.0.0.5", "10.0.0.0/8", "::1").`)
    const family = net.isIPv4(address) ? "ipv4" : "ipv6"
    if (bits === undefined) {
      list.addAddress(address, family)
      continue
    }
    const prefix = Number(bits)
    if (!/^\d{1,3}$/.test(bits) || prefix > (family === "ipv4" ? 32 : 128)) {
      throw new TypeError(`trustProxy: "${entry}" has a bad prefix length (0-32 for IPv4, 0-128 for IPv6).`)
    }
    list.addSubnet(address, prefix, family)
  }
  const isProxy = (address: string): boolean => {
    const a = normalizeAddress(address)
    return a !== undefined && list.check(a, net.isIPv4(a) ? "ipv4" : "ipv6")
  }
  return { isProxy, peerOnly: false }
}

/** The `X-Forwarded-For` hops, left to right (repeated headers are joined by Node with ", "). */
const forwardedHops = (header: string | string[] | undefined): string[] => {
  if (header === undefined) return []
  const text = Array.isArray(header) ? header.join(",") : header
  return text.split(",").map((h) => h.trim()).filter((h) => h.length > 0)
}

/**
 * The client's address for an upgrade request: see the module header. `undefined` only when
 * the socket has no peer address (it closed already).
 */
export const clientAddress = (req: http.IncomingMessage, trust: ProxyTrust): string | undefined => {
  const peer = normalizeAddress(req.socket.remoteAddress) ?? req.socket.remoteAddress
  if (peer === undefined || !trust.isProxy(peer)) return peer
  const hops = forwardedHops(req.headers["x-forwarded-for"])
  // With `trustProxy: true` only the peer is known to be a proxy: its entry is the client.
  if (trust.peerOnly) return hops.length > 0 ? (normalizeAddress(hops[hops.length - 1]) ?? peer) : peer
  let last = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i])
    // A hop that is no address was not written by a well-behaved proxy: stop at the last
    // address a trusted hop vouched for rather than trust what lies further left.
    if (hop === undefined) return last
    if (!trust.isProxy(hop)) return hop
    last = hop
  }
  return last
}

/** What an IPv6 client is counted as by default: its /64, the block one subscriber gets. */
export const DEFAULT_IPV6_PREFIX = 64

/** Checks an `ipv6Prefix` option: an integer from 1 to 128 (128: each address on its own). */
export const checkIpv6Prefix = (value: number | undefined): number => {
  const v = value ?? DEFAULT_IPV6_PREFIX
  if (Number.isInteger(v) && v >= 1 && v <= 128) return v
  throw new TypeError(`ipv6Prefix must be an integer from 1 to 128 (64: a subscriber's block; 128: each address on its own), not ${String(value)}.`)
}

/** The eight 16-bit groups of an IPv6 address in Node's canonical form (no zone index). */
const ipv6Groups = (address: string): number[] => {
  const [head = "", tail] = address.split("::")
  const part = (s: string): number[] => {
    if (s === "") return []
    const out: number[] = []
    for (const g of s.split(":")) {
      if (g.includes(".")) {
        // An embedded IPv4 tail ("64:ff9b::1.2.3.4"): two groups.
        const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number)
        out.push((a << 8) | b, (c << 8) | d)
      } else out.push(parseInt(g, 16))
    }
    return out
  }
  const left = part(head)
  const right = tail === undefined ? [] : part(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}

/**
 * Whom per-address limits count `address` as (connections per address, new identities per
 * address): an IPv4 address itself; an IPv6 address by its network of `ipv6Prefix` bits
 * ("2001:db8:1:2::/64"), since one subscriber is given a whole /64 and could otherwise open
 * 2^64 "addresses". Anything that is no IP address (a test transport's name) as it is.
 */
export const addressGroup = (address: string, ipv6Prefix = DEFAULT_IPV6_PREFIX): string => {
  const a = normalizeAddress(address)
  if (a === undefined || net.isIPv4(a) || ipv6Prefix >= 128) return a ?? address
  const zone = a.indexOf("%")
  const groups = ipv6Groups(zone === -1 ? a : a.slice(0, zone))
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, ipv6Prefix - 16 * i))
    groups[i] = keep === 0 ? 0 : groups[i]! & (0xffff << (16 - keep)) & 0xffff
  }
  const network = new net.SocketAddress({ address: groups.map((g) => g.toString(16)).join(":"), family: "ipv6" }).address
  return `${network}/${ipv6Prefix}`
}

/**
 * A cap on the TCP sockets a server holds, per client address and in all, applied where a
 * socket enters (the server's 'connection' event), before any byte of it is parsed.
 *
 * Why at the socket: the WebSocket caps (server.ts, connection-limits.ts) count upgrades, so a
 * socket that never upgrades (a keep-alive page socket, one that has sent nothing yet, a slow
 * request) was counted nowhere: one address holding ~990 idle sockets took every descriptor of
 * a hub under `ulimit -n 1024`, and every other client was refused. Each socket here costs a
 * descriptor whatever it becomes, so every one counts, upgraded ones included, from accept
 * until it closes; the WebSocket cap stays a narrower cap inside this one.
 *
 * The address is the socket's peer (headers, and so `trustProxy`'s X-Forwarded-For, do not
 * exist yet), grouped as the WebSocket caps group it: IPv4 per address, IPv6 by its network
 * of `ipv6Prefix` bits (remote-address.ts). A socket over a cap is destroyed at once: nothing
 * is read from it or written to it. The client sees a reset connection, as when a server is
 * full.
 */
import type * as net from "node:net"
import { ConnectionCounter, checkCap, type Admission } from "./connection-limits.js"
import { addressGroup, checkIpv6Prefix, normalizeAddress } from "./remote-address.js"

export interface SocketCapOptions {
  /** Sockets one client address (an IPv6 one: its network) may hold at once; Infinity for no cap. */
  readonly perAddress: number
  /** Sockets held at once, every server this cap is attached to together; Infinity for no cap. */
  readonly total: number
  /** Leading bits of an IPv6 address that count as one client. Default 64, as the WebSocket caps. */
  readonly ipv6Prefix?: number | undefined
  /**
   * Peers held to the total only: a trusted reverse proxy carries many clients on its own
   * address (their X-Forwarded-For is read only later, by the WebSocket cap); loopback peers
   * where they are this machine's own processes.
   */
  readonly exempt?: ((address: string) => boolean) | undefined
}

/**
 * The socket cap that goes with a WebSocket cap, by default: twice it. An address holding all
 * its WebSockets keeps as many sockets again for page requests (a browser opens about 6 per
 * origin), handshakes and closings, and a flood of upgrades meets the WebSocket cap, which
 * answers with a sentence (HTTP 429, or 1013 on a peer listener), before this silent one.
 */
export const socketCapFor = (webSocketCap: number): number => webSocketCap * 2

export class SocketCap {
  private readonly all: ConnectionCounter
  private readonly byAddress: ConnectionCounter
  private readonly ipv6Prefix: number
  private readonly exempt: (address: string) => boolean
  private refusedCount = 0

  /** Caps that are out of range throw a TypeError naming the option. */
  constructor(options: SocketCapOptions) {
    // Two counters, so an exempt peer is held to the total alone.
    this.all = new ConnectionCounter({ total: checkCap("socket cap total", options.total, Infinity), perAddress: Infinity })
    this.byAddress = new ConnectionCounter({ total: Infinity, perAddress: checkCap("socket cap perAddress", options.perAddress, Infinity) })
    this.ipv6Prefix = checkIpv6Prefix(options.ipv6Prefix)
    this.exempt = options.exempt ?? (() => false)
  }

  /**
   * Caps the sockets `server` accepts from now on (an https server: the TCP socket, before its
   * TLS handshake). Returns a function that stops capping it (sockets counted stay counted
   * until they close).
   */
  attach(server: net.Server): () => void {
    // First, so that the server's own listeners (the HTTP parser, TLS) find the socket gone.
    server.prependListener("connection", this.onConnection)
    return () => void server.off("connection", this.onConnection)
  }

  /** Sockets held now: in all, or from one client address (as it is grouped). */
  held(address?: string): number {
    return address === undefined ? this.all.held() : this.byAddress.held(addressGroup(address, this.ipv6Prefix))
  }

  /** Sockets destroyed so far for being over a cap. */
  get refused(): number {
    return this.refusedCount
  }

  private readonly onConnection = (socket: net.Socket): void => {
    const peer = normalizeAddress(socket.remoteAddress) ?? socket.remoteAddress
    // No peer address: it closed before it was accepted.
    if (peer === undefined) return void socket.destroy()
    const place = this.admit(peer)
    if (!place.ok) {
      this.refusedCount++
      socket.destroy()
      return
    }
    socket.once("close", place.release)
  }

  private admit(peer: string): Admission {
    const all = this.all.admit(peer)
    if (!all.ok || this.exempt(peer)) return all
    const mine = this.byAddress.admit(addressGroup(peer, this.ipv6Prefix))
    if (mine.ok) return { ok: true, release: () => (all.release(), mine.release()) }
    all.release()
    return mine
  }
}

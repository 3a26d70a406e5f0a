/**
 * Counts a WebSocket server's sockets, per client address and in total, and says whether
 * one more may come in. A socket counts from the moment its upgrade is taken (before the
 * WebSocket handshake completes) until it closes, so a client cannot get past the cap by
 * opening many upgrades at once.
 */
export interface ConnectionCaps {
  /** Sockets one client address may hold at once. */
  readonly perAddress: number
  /** Sockets the server holds at once. */
  readonly total: number
}

export type Admission =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly status: 429 | 503; readonly reason: string }

/** A cap is a positive integer, or Infinity for none. */
export const checkCap = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback
  if (v === Infinity || (Number.isInteger(v) && v > 0)) return v
  throw new TypeError(`${name} must be a positive integer (or Infinity for no cap), not ${String(value)}.`)
}

export class ConnectionCounter {
  private readonly byAddress = new Map<string, number>()
  private count = 0

  constructor(private readonly caps: ConnectionCaps) {}

  /** Takes a place for a socket from `address`, or says why not. `release` once, when it closes. */
  admit(address: string): Admission {
    if (this.count >= this.caps.total) {
      return { ok: false, status: 503, reason: `The server holds its limit of ${this.caps.total} connections; try again later.` }
    }
    const held = this.byAddress.get(address) ?? 0
    if (held >= this.caps.perAddress) {
      return { ok: false, status: 429, reason: `Too many connections from ${address} (limit ${this.caps.perAddress}); close some and try again.` }
    }
    this.byAddress.set(address, held + 1)
    this.count++
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        this.count--
        const left = (this.byAddress.get(address) ?? 1) - 1
        if (left <= 0) this.byAddress.delete(address)
        else this.byAddress.set(address, left)
      },
    }
  }

  /** Sockets held now: in total, and from one address. */
  held(address?: string): number {
    return address === undefined ? this.count : (this.byAddress.get(address) ?? 0)
  }
}

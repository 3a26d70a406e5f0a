import { TokenBucket } from "./limits.js"

/** What a client spent of its address's pool while it was contended, paid back at its fair rate. */
interface Share {
  /** µs not yet paid back. */
  owed: number
  /** When `owed` was last paid down (steady ms). */
  paidAt: number
}

/** The shares paid back are let go at most this often (the count is the map's size: read per command). */
const RECOUNT_MS = 1_000

/**
 * The work budget of every client behind one address (or one principal): each client's work
 * is paid from its own bucket and from this pool (fresh client ids are cheap: the pool bounds
 * them all together). While the pool is short, its clients wait for it, and a client also
 * waits until what it spent while the pool was under half full is paid back at its fair rate:
 * the pool's rate split among the clients that still owe (max-min fairness, roughly: a client
 * that spends little owes nothing for long and is not counted), at most the pool's burst time. So a client that spends little (an honest user behind the NAT
 * of an attacker) waits only for the pool's refill, not behind the heavy spenders, and the
 * pool bounds the total as before: only the order changes.
 *
 * @example
 * const address = new SharedWork(500_000, 4_000_000, now)
 * clientBucket.parent = address
 * clientBucket.borrow(micros, now) // paid from both; the wait is the longer
 */
export class SharedWork {
  private readonly pool: TokenBucket
  private readonly shares = new Map<TokenBucket, Share>()
  private countedAt: number

  constructor(private readonly rate: number, private readonly burst: number, now: number) {
    this.pool = new TokenBucket(rate, burst, now)
    this.countedAt = now
  }

  /** Pays `n` µs of `child`'s work: the milliseconds `child` waits for this budget (0: none). */
  borrow(child: TokenBucket, n: number, now: number): number {
    const wait = this.pool.borrow(n, now)
    // Owed: what was spent while the pool is under half full (its clients contend for it). Spent
    // from a fuller pool (alone, say), it is nobody's debt: a client that worked alone, then
    // waited behind ninety-nine others, paid it back at a hundredth of the rate (89 s).
    const owed = Math.min(n, (this.pool.until(this.burst / 2, now) * this.rate) / 1000)
    if (owed > 0) {
      let share = this.shares.get(child)
      if (share === undefined) this.shares.set(child, (share = { owed: 0, paidAt: now }))
      else this.payDown(share, now)
      share.owed += owed
    }
    return wait > 0 ? Math.max(wait, this.owedWait(child, now)) : 0
  }

  /** Milliseconds until `child` may spend `n` µs as far as this budget goes (0: now). */
  until(child: TokenBucket, n: number, now: number): number {
    const wait = this.pool.until(n, now)
    return wait > 0 ? Math.max(wait, this.owedWait(child, now)) : 0
  }

  /** Whether the pool is in debt (every client behind it waits). */
  inDebt(now: number): boolean {
    return this.pool.inDebt(now)
  }

  /**
   * Milliseconds until what `child` spent is paid back at its fair rate: at most the pool's
   * burst over its rate (8 s by default; `payDown` caps what it owes), so a heavy spender waits
   * the longest, never for ever.
   */
  private owedWait(child: TokenBucket, now: number): number {
    const share = this.shares.get(child)
    if (share === undefined) return 0
    this.payDown(share, now)
    return share.owed <= 0 ? 0 : Math.ceil((share.owed / this.fairRate(now)) * 1000)
  }

  private payDown(share: Share, now: number): void {
    const fair = this.fairRate(now)
    this.pay(share, now, fair)
    // At most what its fair rate pays back in the pool's burst time: a debt holds a client 8 s
    // at most in all, however many others come to owe (1 s owed with a hundred owing held it
    // 60 s, a wait at a time).
    share.owed = Math.min(share.owed, (fair * this.burst) / this.rate)
  }

  /** Pays `share` down at `fair` µs a second since it was last paid (a clock that went back pays nothing, as TokenBucket's refill). */
  private pay(share: Share, now: number, fair: number): void {
    share.owed = Math.max(0, share.owed - (Math.max(0, now - share.paidAt) / 1000) * fair)
    share.paidAt = now
  }

  /** µs per second each owing client pays back at: the pool's rate split among them (those paid back count until the next look, at most a second). */
  private fairRate(now: number): number {
    if (now - this.countedAt >= RECOUNT_MS || now < this.countedAt) {
      const rate = this.rate / Math.max(1, this.shares.size)
      this.countedAt = now
      for (const [child, share] of this.shares) {
        this.pay(share, now, rate)
        if (share.owed <= 0) this.shares.delete(child)
      }
    }
    return this.rate / Math.max(1, this.shares.size)
  }
}

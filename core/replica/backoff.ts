/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw in [0, capped
 * exponential]), so a hub that restarts is not hit by every client at the same instant.
 * The cap is 2 s: a restarted hub has every client back within 2 s of listening, and a
 * refused TCP connect costs a hub that is down nothing (raise `maxMs` for very many clients).
 */
export interface BackoffOptions {
  /** First ceiling, ms. Default 250. */
  readonly baseMs?: number
  /** Largest ceiling, ms. Default 2,000. */
  readonly maxMs?: number
}

export const backoffDelay = (attempt: number, random: () => number, options: BackoffOptions = {}): number => {
  const base = options.baseMs ?? 250
  const max = options.maxMs ?? 2_000
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}

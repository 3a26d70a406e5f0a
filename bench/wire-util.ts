/** Small helpers of the `wire` suite: bounded waits and percentiles. */

/** Rejects if `p` has not settled within `ms` (calling `onTimeout` first); the timer never outlives it. */
export const deadline = <T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.()
      reject(new Error(`benchmark timed out: ${what} took more than ${ms} ms`))
    }, ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Polls `done` every `stepMs` until it holds; rejects after `ms`. */
export const until = (done: () => boolean, ms: number, what: string, stepMs = 2): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const polled = new Promise<void>((resolve) => {
    const poll = (): void => {
      if (done()) resolve()
      else timer = setTimeout(poll, stepMs)
    }
    poll()
  })
  return deadline(polled, ms, what, () => clearTimeout(timer))
}

/** Nearest-rank percentile (q in (0, 1]) of unsorted values. */
export const percentile = (xs: ReadonlyArray<number>, q: number): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Lets queued I/O callbacks and microtasks run. */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * The time of work done in slices, on a clock passed in (core reads no clock of its own): what
 * runs between its slices (other work, while the event loop turns) is left out. A load or an
 * apply is charged to whoever caused it by what it took, not by the time it was under way.
 */

/** Told by work done in slices when it lets the event loop turn (`pause`) and when it goes on (`resume`). */
export interface SliceMeter {
  /** The work lets the event loop turn now. */
  pause(): void
  /** The work goes on. */
  resume(): void
}

/**
 * A SliceMeter that sums the time of its work's slices on `clock` (ms), from `resume` to
 * `pause`.
 *
 * @example
 * const work = new Stopwatch(() => steadyNow(runtime))
 * work.resume(); decodePiece(); work.pause()
 * charge(work.ms)
 */
export class Stopwatch implements SliceMeter {
  /** Milliseconds of work so far. */
  ms = 0
  private since: number | undefined
  constructor(private readonly clock: () => number) {}
  pause(): void {
    if (this.since !== undefined) this.ms += Math.max(0, this.clock() - this.since)
    this.since = undefined
  }
  resume(): void {
    this.since = this.clock()
  }
}

/** Awaits `wait` (a turn of the event loop, work of another's) with `meter` paused around it. */
export const outside = async <T>(meter: SliceMeter | undefined, wait: () => Promise<T>): Promise<T> => {
  meter?.pause()
  try {
    return await wait()
  } finally {
    meter?.resume()
  }
}

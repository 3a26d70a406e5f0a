/**
 * The simulated hub's CPU. Virtual time stands still while code runs, so a command standing
 * for slow app code (machines.ts `SimBurner`, `burn`) moves this clock instead, and the hub's
 * steady clock reads it (process.ts, `cpu`): the hub measures, slices and charges commands by
 * it as it would by real time. `stretch` is what was burnt since the world's last event began
 * (guard.ts `eventStarted`): the longest is how long the hub held its event loop.
 */
export class SimCpu {
  /** Milliseconds burnt in all, since `reset`. */
  burnt = 0
  /** The longest stretch burnt without the event loop turning. */
  worst = 0
  private stretch = 0

  burn(ms: number): void {
    this.burnt += ms
    this.stretch += ms
    if (this.stretch > this.worst) this.worst = this.stretch
  }

  /** An event of the world begins: the event loop turned. */
  turned(): void {
    this.stretch = 0
  }

  reset(): void {
    this.burnt = this.worst = this.stretch = 0
  }
}

/** One per process: the machines are module constants. The simulation resets it per run. */
export const simCpu = new SimCpu()

/** The most one `burn` takes. */
export const MAX_BURN_MS = 20

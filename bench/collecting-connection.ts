/**
 * A hub-side connection for benchmarks that drive an authority directly: counts what it is
 * sent and wakes the submit waiting for its results.
 */
import type { Connection, ServerMessage } from "../core/index.js"

export class CollectingConnection implements Connection<ServerMessage> {
  readonly bufferedAmount = 0
  accepted = 0
  fannedOut = 0
  errors: string[] = []
  private wake: (() => void) | undefined

  send(m: ServerMessage): void {
    if (m.type === "entries") this.fannedOut += m.entries.length
    else if (m.type === "error") this.errors.push(m.message)
    else if (m.type === "results") {
      this.accepted += m.outcomes.filter((o) => "seq" in o).length
      const wake = this.wake
      this.wake = undefined
      wake?.()
    }
  }

  close(): void {}

  nextResults(): Promise<void> {
    return new Promise((r) => (this.wake = r))
  }
}

/**
 * Soft checks for the hostile suite: an attack has several consequences worth reporting at
 * once (the hub accepted the command, then another client lost its data, then the hub
 * died), so a test collects every problem and fails once with all of them.
 */
import { pollutionSeen } from "../fixtures/hostile-machines.js"

export class Problems {
  readonly list: string[] = []
  /** What happened along the way: printed with the problems, if there are any. */
  readonly notes: string[] = []

  note(message: string): void {
    this.notes.push(message)
  }

  /** Records `message` unless `ok`. */
  check(ok: boolean, message: string): void {
    if (!ok) this.list.push(message)
  }

  /** Runs `step`; a throw becomes a problem (and the rest of the test goes on). */
  async step<T>(what: string, step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step()
    } catch (e) {
      this.list.push(`${what}: ${e instanceof Error ? e.message : String(e)}`)
      return undefined
    }
  }

  /** Fails (with every problem, one per line) if there were any. */
  assertNone(): void {
    if (this.list.length === 0) return
    const notes = this.notes.length > 0 ? `\n  (along the way: ${this.notes.join("; ")})` : ""
    throw new Error(`${this.list.length} problem(s):\n  - ${this.list.join("\n  - ")}${notes}`)
  }
}

/**
 * Removes what a prototype-key attack wrote into this process (the test process is a replica
 * too): the suite must go on in a clean realm whatever the engine did.
 */
export const scrubPollution = (): string[] => {
  const found = pollutionSeen()
  for (const at of [Object.prototype, Object, Function.prototype, Object.prototype.hasOwnProperty, Object.prototype.toString]) {
    if (Object.hasOwn(at, "done")) delete (at as unknown as Record<string, unknown>).done
  }
  return found
}

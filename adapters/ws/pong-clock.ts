/**
 * How long a socket has owed the hub a pong: the one liveness rule of every route (/sync,
 * /yjs, /automerge).
 *
 * - Only a pong answers a ping. A frame from the peer says it sends, not that it reads: a
 *   peer that sends and never reads would otherwise stay, holding what the hub answers it.
 * - Time the hub holds the socket unread (its input flow control) does not count, since the
 *   pong is not read meanwhile; time it is read does. A peer therefore cannot stay by getting
 *   itself held at every sweep, and an honest peer held by a slow disk is not dropped for it.
 *
 * @example
 * ```ts
 * const clock = new PongClock()
 * ws.on("pong", () => clock.pong())
 * setInterval(() => {
 *   const now = Date.now()
 *   if (clock.owed(now) >= timeoutMs) return ws.terminate()
 *   clock.ping(now)
 *   ws.ping()
 * }, timeoutMs / 2)
 * ```
 */
export class PongClock {
  #pingSentAt: number | undefined
  #pausedAt: number | undefined

  /** A ping goes out at `now`: owed from now, unless an older one is still unanswered. */
  ping(now: number): void {
    this.#pingSentAt ??= now
  }

  /** A pong arrived: nothing is owed. */
  pong(): void {
    this.#pingSentAt = undefined
  }

  /** Whether a ping is unanswered. */
  get waiting(): boolean {
    return this.#pingSentAt !== undefined
  }

  /** The hub stops reading the socket at `now`. */
  paused(now: number): void {
    this.#pausedAt ??= now
  }

  /** The hub reads the socket again at `now`: the time it was held is not owed. */
  resumed(now: number): void {
    if (this.#pausedAt !== undefined && this.#pingSentAt !== undefined) this.#pingSentAt += now - Math.max(this.#pausedAt, this.#pingSentAt)
    this.#pausedAt = undefined
  }

  /** Milliseconds the peer has owed a pong while it was read (0 when nothing is owed). */
  owed(now: number): number {
    const sent = this.#pingSentAt
    // While held, owed stops growing where the hold began (or at the ping, if it came later).
    return sent === undefined ? 0 : (this.#pausedAt === undefined ? now : Math.max(this.#pausedAt, sent)) - sent
  }
}

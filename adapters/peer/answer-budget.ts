/**
 * How often a peer's request for everything is answered. A 4-byte Yjs step1 or a 7-byte
 * Automerge message with no heads makes the answering side encode and send its whole
 * document: a peer repeating one would turn a few hundred bytes into tens of megabytes and
 * seconds of CPU. Requests are answered at once while the budget lasts (`burst`), then one
 * per `everyMs`; a request that waits is replaced by a newer one (only the latest is
 * answered, as it supersedes the others).
 */
export class AnswerBudget<T> {
  #tokens: number
  #refilledAt = Date.now()
  #waiting: { readonly value: T } | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  constructor(
    private readonly burst: number,
    private readonly everyMs: number,
    private readonly answer: (request: T) => void,
  ) {
    this.#tokens = burst
  }

  /** Answers `request` now if the budget allows, else when it does (if no newer request comes first). */
  request(request: T): void {
    if (this.#closed) return
    this.#refill()
    if (this.#tokens >= 1 && this.#waiting === undefined) {
      this.#tokens--
      this.answer(request)
      return
    }
    this.#waiting = { value: request }
    this.#timer ??= setTimeout(() => this.#drain(), Math.max(0, this.everyMs - (Date.now() - this.#refilledAt)))
  }

  /** Forgets what waits (the link closed). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#waiting = undefined
  }

  #refill(): void {
    const now = Date.now()
    const earned = Math.floor((now - this.#refilledAt) / this.everyMs)
    if (earned <= 0) return
    this.#tokens = Math.min(this.burst, this.#tokens + earned)
    this.#refilledAt = this.#tokens === this.burst ? now : this.#refilledAt + earned * this.everyMs
  }

  #drain(): void {
    this.#timer = undefined
    const waiting = this.#waiting
    if (this.#closed || waiting === undefined) return
    this.#waiting = undefined
    this.request(waiting.value)
  }
}

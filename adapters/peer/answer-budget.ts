/**
 * How often a peer's request for everything is answered. A 4-byte Yjs step1 or a 7-byte
 * Automerge message with no heads makes the answering side encode and send its whole
 * document: a peer repeating one would turn a few hundred bytes into tens of megabytes and
 * seconds of CPU. Requests are answered at once while the budget lasts (`burst`), then one
 * per `everyMs` (the hub's TokenBucket); a request that waits is replaced by a newer one
 * (only the latest is answered, as it supersedes the others).
 */
import { TokenBucket } from "../../core/authority/limits.js"

export class AnswerBudget<T> {
  readonly #tokens: TokenBucket
  #waiting: { readonly value: T } | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  constructor(
    burst: number,
    private readonly everyMs: number,
    private readonly answer: (request: T) => void,
  ) {
    this.#tokens = new TokenBucket(1000 / everyMs, burst, performance.now())
  }

  /** Answers `request` now if the budget allows, else when it does (if no newer request comes first). */
  request(request: T): void {
    if (this.#closed) return
    if (this.#waiting === undefined && this.#tokens.take(1, performance.now())) return this.answer(request)
    this.#waiting = { value: request }
    // A token is back within everyMs.
    this.#timer ??= setTimeout(() => this.#drain(), this.everyMs)
  }

  /** Forgets what waits (the link closed). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#waiting = undefined
  }

  #drain(): void {
    this.#timer = undefined
    const waiting = this.#waiting
    if (this.#closed || waiting === undefined) return
    this.#waiting = undefined
    this.request(waiting.value)
  }
}

/**
 * How far behind a socket may fall (bytes written and not yet sent) before it is dropped as a
 * slow consumer. The limit counts what waits behind the largest single message written since
 * the socket was last drained: a whole document's first sync may be larger than the limit,
 * and a reader fetching it over a slow link must not be dropped for the first edit relayed
 * while that document is still on its way (it would reconnect, fetch it again, and be dropped
 * again). What a socket may hold stays bounded: the limit plus one message the server chose
 * to write.
 */
export class Backlog {
  #largest = 0

  constructor(readonly limit: number) {}

  /** Whether a socket with `buffered` unsent bytes is past its limit. */
  exceeded(buffered: number): boolean {
    if (buffered === 0) this.#largest = 0
    return buffered > this.limit + this.#largest
  }

  /** A message of `bytes` was written (after `exceeded` said no). */
  wrote(bytes: number): void {
    if (bytes > this.#largest) this.#largest = bytes
  }
}

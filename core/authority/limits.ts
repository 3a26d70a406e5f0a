import type { SharedWork } from "./shared-work.js"

/**
 * Per-connection limits of the hub, with their defaults. A peer past a limit gets a typed
 * error; where continuing would cost the hub (floods), its connection is closed. Other
 * connections never notice.
 */
export interface HubLimits {
  /** Commands in one submit message. Default 1000 (clients send at most 256). */
  readonly maxCommandsPerSubmit: number
  /** Documents one connection may follow at once. Default 100. */
  readonly maxDocsPerConnection: number
  /** Sustained messages per second per connection. Default 1000. */
  readonly messagesPerSecond: number
  /** Messages a connection may send in a burst above the sustained rate. Default 2000. */
  readonly messageBurst: number
  /**
   * Sustained commands per second per client (its connections share one bucket, so a
   * reconnect does not reset it). Default 20,000 (a hub on one core applies
   * some 50,000 a second: a long offline outbox catches up at a good share of it, while one
   * connection cannot take the hub whole). Past it (and the burst), on
   * a transport that can pause, the hub stops reading the connection until the rate allows
   * what it read: a replica back with a long outbox is slowed, never refused. On a transport
   * that cannot pause, a connection past it is closed `rate-limited`.
   */
  readonly commandsPerSecond: number
  /** Burst of commands. Default 20,000 (a replica back from a long offline spell sends its outbox at once). */
  readonly commandBurst: number
  /**
   * Sustained work per second per client, in µs of the hub's time, from a bucket of its own
   * (the client's connections share it). Two kinds are paid from it:
   * - CRDT field updates, by what they may cost to validate and merge as each engine's `weigh`
   *   reads it from their bytes (a 153-byte Automerge change deleting 100,000 characters is
   *   about 3 s), where the submit enters, and by what a merge cost past that, measured;
   * - every other command, by its measured time, after it ran: app code, whose cost no byte
   *   shows (a command that reads the whole state; 1,000 of them over 20,000 keys held a hub
   *   for 29.6 s).
   *
   * Past it, a transport that can pause is not read until the work is paid for (one that
   * cannot is closed `rate-limited` when a merge comes), and the client's commands already
   * read wait in their document, behind nobody else's. Default 250,000 (a quarter of
   * one core).
   */
  readonly workPerSecond: number
  /**
   * Work a client may cause at once, in µs. Default 2,000,000: a paste of some 60,000
   * characters into an Automerge text, or a replica's long outbox, goes through unheld.
   */
  readonly workBurst: number
  /**
   * Work per second of all the clients behind one address (an IPv6 client's /64), or of one
   * principal with an `authenticate` hook, in µs of the hub's time: each client pays from its
   * own bucket and from this one (new client ids are cheap: from one address, 100 of them, each
   * with its own `workBurst`, took 182 s of the hub's time at once, and 95% of it after). While
   * it is in debt every client behind it waits for it, and a client that spent more than its
   * fair part (this rate split among the clients that owe) waits until that is paid back, so
   * an honest client behind an attacker's NAT is not held behind the attacker's debt
   * (core/authority/shared-work.ts). Default 500,000 (half a core: the other half stays for
   * everyone else); 0: no bound but the clients' own.
   */
  readonly sharedWorkPerSecond: number
  /** Work the clients behind one address may cause at once, in µs. Default 4,000,000 (two clients' bursts). */
  readonly sharedWorkBurst: number
  /** @deprecated The former name of `workPerSecond` (which was CRDT work only); used when `workPerSecond` is not given. */
  readonly crdtWorkPerSecond?: number
  /** @deprecated The former name of `workBurst`; used when `workBurst` is not given. */
  readonly crdtWorkBurst?: number
  /** Canonical bytes of one presence state. Default 4096. */
  readonly maxPresenceBytes: number
  /**
   * Bytes of a connection's submitted commands (arguments, estimated) waiting for their group
   * commit; past this the hub stops reading the connection until they are down to half (on a
   * transport that can pause). Default 8 MiB.
   */
  readonly maxInflightBytes: number
  /**
   * Messages of one connection read and not yet handled (a subscribe waits for its document to
   * load, a submit for its document's queue); past this the hub stops reading the connection
   * until half are handled, so a peer sending faster than the hub works waits in its own
   * socket, not in the hub's memory. On a transport that cannot pause, the connection is closed
   * `rate-limited`. Default 256.
   */
  readonly maxQueuedMessages: number
  /**
   * Sustained document loads per second per client (its connections share one bucket): a
   * subscribe to a document the hub does not hold in memory reads it from storage, which costs
   * the hub far more than the message. Each load is paid as it happens (hub.ts `acquire`), the
   * reload after a claim of an unwritten document by another machine included. Past it (and
   * the burst), a transport that can pause is not read, and the load waits, until the rate
   * allows it; one that cannot pause is closed `rate-limited`. Documents already loaded cost
   * nothing. Default 50.
   */
  readonly loadsPerSecond: number
  /** Burst of document loads. Default 200: a client opens its documents at once (at most 100 per connection). */
  readonly loadBurst: number
  /**
   * Subscribes the hub may refuse on one connection (an unknown machine, a document the
   * client may not read, one past maxDocsPerConnection...) before it closes the connection
   * `rate-limited`: with protocol 2 each new document takes a channel in the connection's
   * codec session as the frame is decoded, refused or not, and channels are never given back
   * (core/protocol/codec-shared.ts). The client reconnects with a fresh session. Default 1024.
   */
  readonly maxRefusedSubscribes: number
  /**
   * New client identities the hub records per second, per address (the connection's
   * `limitKey`, e.g. an IPv6 client's /64; per principal with an `authenticate` hook): each
   * is a durable record, kept for good, so a loop of hellos with fresh clientIds would grow
   * the hub's storage without end. Past it (and the burst), a hello with a new clientId is
   * answered `rate-limited` and closed; the client retries later, and known clients are
   * never counted. Default 10.
   */
  readonly newClientsPerSecond: number
  /** Burst of new client identities. Default 100 (a classroom behind one address opening the app at once). */
  readonly newClientBurst: number
  /**
   * Bytes of state per second the hub sends a client (its connections share one bucket), in
   * every snapshot stream it starts for it: a state it asks for (`fetch-state`, after a desync),
   * which makes the hub encode and store a snapshot of the whole document, weighed by the
   * state's size (at least 256 KiB); and a stored snapshot streamed to it (a subscribe behind
   * the compaction horizon or far behind, a `fetch-state` the stored snapshot answers, a
   * subscribe again), weighed by its size (less what a resumed stream skips). Each document
   * also spaces the snapshots made for askers (at least 1 s apart); this bounds what one client
   * costs across all the documents it follows, however often it subscribes. Past it, the
   * stream waits until the client's bucket is out of debt, then starts (never refused; one
   * larger than the burst goes through when the bucket is not in debt, so a client opening one
   * large document is streamed it at once). Default 4 MiB (about a tenth of a core); 0: no
   * bound per client (each document's spacing only).
   */
  readonly stateBytesPerSecond: number
  /** Burst of state bytes streamed (see `stateBytesPerSecond`). Default 16 MiB: a client opens its documents at once. */
  readonly stateBurstBytes: number
}

export const DEFAULT_LIMITS: HubLimits = {
  maxCommandsPerSubmit: 1000,
  maxDocsPerConnection: 100,
  messagesPerSecond: 1000,
  messageBurst: 2000,
  commandsPerSecond: 20_000,
  commandBurst: 20_000,
  workPerSecond: 250_000,
  workBurst: 2_000_000,
  sharedWorkPerSecond: 500_000,
  sharedWorkBurst: 4_000_000,
  maxPresenceBytes: 4096,
  maxInflightBytes: 8 << 20,
  maxQueuedMessages: 256,
  loadsPerSecond: 50,
  loadBurst: 200,
  maxRefusedSubscribes: 1024,
  newClientsPerSecond: 10,
  newClientBurst: 100,
  stateBytesPerSecond: 4 << 20,
  stateBurstBytes: 16 << 20,
}

/** `given` over the defaults, the deprecated names of the work bucket read where the new ones are not given. */
export const hubLimits = (given: Partial<HubLimits> = {}): HubLimits => ({
  ...DEFAULT_LIMITS,
  ...given,
  workPerSecond: given.workPerSecond ?? given.crdtWorkPerSecond ?? DEFAULT_LIMITS.workPerSecond,
  workBurst: given.workBurst ?? given.crdtWorkBurst ?? DEFAULT_LIMITS.workBurst,
})

/** A token bucket over a steady clock (core/ports/runtime.ts `steadyNow`); a clock that went back refills nothing. */
export class TokenBucket {
  private tokens: number
  private last: number
  /** A budget this one's spending is also paid from (a client's work from its address's): `borrow` pays it, `until` and `inDebt` read it (`take` does not: a work bucket is only borrowed from). */
  parent: SharedWork | undefined

  constructor(private readonly rate: number, private readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  /** Takes `n` tokens if there are enough; false means over the limit. */
  take(n: number, now: number): boolean {
    this.refill(now)
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }

  /**
   * Takes `n` tokens, going into debt if it must: the milliseconds until the bucket is out
   * of debt (0 if it had enough). For a connection that is then not read that long.
   */
  borrow(n: number, now: number): number {
    this.refill(now)
    this.tokens -= n
    const wait = this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000)
    return this.parent === undefined ? wait : Math.max(wait, this.parent.borrow(this, n, now))
  }

  /**
   * Takes what `other` has spent below its burst (a connection's own bucket, used before the
   * client was known): the milliseconds until this bucket is out of debt, as `borrow`.
   */
  absorb(other: TokenBucket, now: number): number {
    other.refill(now)
    return this.borrow(Math.max(0, other.burst - other.tokens), now)
  }

  /** Milliseconds until the bucket (and its parent) holds at least `n` tokens, or is full (0: it does). */
  until(n: number, now: number): number {
    this.refill(now)
    const want = Math.min(n, this.burst)
    const wait = this.tokens >= want ? 0 : Math.ceil(((want - this.tokens) / this.rate) * 1000)
    return this.parent === undefined ? wait : Math.max(wait, this.parent.until(this, n, now))
  }

  /** Whether the bucket is in debt (spent past what it held). */
  inDebt(now: number): boolean {
    this.refill(now)
    return this.tokens < 0 || this.parent?.inDebt(now) === true
  }

  /** Whether the bucket is full (as a new one would be). */
  full(now: number): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }

  private refill(now: number): void {
    // A clock that went back refills nothing (it must not take tokens away).
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) / 1000) * this.rate)
    this.last = now
  }
}

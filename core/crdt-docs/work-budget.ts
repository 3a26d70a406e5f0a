/**
 * Each principal's share of the hub's work on whole CRDT documents. Decoding and merging an
 * update costs the hub per struct or change, not per byte: a 200-byte Automerge document chunk
 * can stand for 262,144 changes (seconds of work, in slices), so byte and message limits do
 * not bound it, and many sockets of one user would multiply it.
 *
 * An engine weighs each update where it enters (`CheckResult.weight`, estimated microseconds
 * of hub work, counted before decoding). The payer's bucket pays it at once, refused or not,
 * going into debt if it must; while a payer is in debt, its next submits wait until it is
 * out, in the order they came, so a socket's updates keep their order. Nothing is refused: a
 * heavy uploader is slowed, as a replica with a long outbox is (HubLimits). The endpoints
 * name the payer with `workPayer`: the principal, or the socket when anonymous. Decoding is
 * also bounded in memory, hub-wide: `WorkInFlight` below.
 *
 * Loading a document from storage is work too (`loadWait`): whoever opens a document that is
 * not loaded pays a token of its loads bucket (`loadsPerSecond`, `loadBurst`) and, after the
 * load, its measured time (`pay`); past the bucket or in debt, its open is refused.
 *
 * @example
 * ```ts
 * const work = new CrdtWorkBudget(runtime)
 * await work.turn("alice")      // undefined (no wait) unless alice is in debt
 * work.pay("alice", 2_000_000)  // two seconds of estimated work
 * ```
 */
import { TokenBucket } from "../authority/limits.js"
import { steadyNow, type Runtime, type Timer } from "../ports/runtime.js"
import { ANONYMOUS } from "../authority/auth.js"

export interface CrdtWorkLimits {
  /** Estimated microseconds of hub work a principal may spend at once. Default 15 s (one upload at the engines' largest bound fits). */
  readonly burstMicros: number
  /** Estimated microseconds of hub work per second, sustained, per principal. Default 250,000 (a quarter of one core). */
  readonly microsPerSecond: number
  /** Heavy work in flight at once across the host, all principals (WorkInFlight). Default 1 s (about 28,000 Automerge changes, 21 MB decoded). */
  readonly heavyInFlightMicros: number
  /**
   * Document loads from storage per second, sustained, per payer (`loadPayer`): opening a
   * document that is not loaded reads and decodes it whole (a 55 KB Automerge document of 1M
   * ops takes 0.75 s), and a loop of opens (documents pushed out of memory in between) would
   * make the hub do it again and again. Past it (and the burst), the open is refused (`loadWait`). Default 50;
   * 0: loads are not counted (their time still is).
   * The load's measured time is also charged to the payer's work (`microsPerSecond`).
   */
  readonly loadsPerSecond: number
  /** Loads a payer may cause at once. Default 200 (a client opens its documents at once). */
  readonly loadBurst: number
}

export const DEFAULT_CRDT_WORK: CrdtWorkLimits = { burstMicros: 15_000_000, microsPerSecond: 250_000, heavyInFlightMicros: 1_000_000, loadsPerSecond: 50, loadBurst: 200 }

const connectionIds = new WeakMap<object, string>()
let nextConnection = 0

/**
 * Who pays for a connection's work: its principal, so one user's sockets share one budget;
 * but every connection of the anonymous principal (a hub without an authenticate hook) pays
 * on its own, or one anonymous uploader would make every anonymous writer wait.
 */
export const workPayer = (principalId: string, connection: object): string => {
  // Two namespaces: no principal id an authenticate hook returns can name a connection's account.
  if (principalId !== ANONYMOUS.id) return `p:${principalId}`
  let id = connectionIds.get(connection)
  if (id === undefined) connectionIds.set(connection, (id = `c:${nextConnection++}`))
  return id
}

/**
 * Who pays for a connection's document loads: its principal (the same account as its work,
 * `workPayer`), but for the anonymous principal its address (`ConnectionInfo.limitKey`, else
 * `remoteAddress`), not the connection: a fresh socket would be a fresh bucket, and loads
 * cost the hub whatever socket asks. Without an address, the connection pays.
 */
export const loadPayer = (principalId: string, connection: object, info?: { readonly limitKey?: string; readonly remoteAddress?: string }): string => {
  const address = info?.limitKey ?? info?.remoteAddress
  // A third namespace: neither a principal's account nor a connection's.
  return principalId === ANONYMOUS.id && address !== undefined ? `a:${address}` : workPayer(principalId, connection)
}

/** Principals remembered; one forgotten starts with a full bucket again. */
const MAX_PRINCIPALS = 65_536

interface Account {
  readonly bucket: TokenBucket
  /** Its document loads (made on its first load). */
  loads: TokenBucket | undefined
  /** The last waiting submit's turn: the next one waits behind it. */
  tail: Promise<void> | undefined
}

export class CrdtWorkBudget {
  readonly #accounts = new Map<string, Account>()
  readonly #limits: CrdtWorkLimits
  /** Debts being waited off: their timers, and how to let their submits go at close. */
  readonly #waits = new Map<Timer, () => void>()
  #closed = false

  constructor(private readonly runtime: Runtime, limits: Partial<CrdtWorkLimits> = {}) {
    this.#limits = { ...DEFAULT_CRDT_WORK, ...limits }
  }

  #account(principal: string): Account {
    let a = this.#accounts.get(principal)
    if (a !== undefined) this.#accounts.delete(principal)
    else a = { bucket: new TokenBucket(this.#limits.microsPerSecond, this.#limits.burstMicros, steadyNow(this.runtime)), loads: undefined, tail: undefined }
    this.#accounts.set(principal, a)
    if (this.#accounts.size > MAX_PRINCIPALS) this.#forgetOne()
    return a
  }

  /**
   * Forgets the least recently used account that is out of debt with nobody waiting: one like
   * that is the same as a new one. An account in debt, or with submits waiting their turn, is
   * kept (forgetting it would wipe the debt and let a later submit overtake the waiting ones).
   */
  #forgetOne(): void {
    const now = steadyNow(this.runtime)
    let looked = 0
    for (const [principal, a] of this.#accounts) {
      if (a.tail === undefined && a.bucket.full(now) && (a.loads?.full(now) ?? true)) return void this.#accounts.delete(principal)
      if (++looked === 64) return
    }
  }

  /**
   * When `principal` may submit: undefined at once (not in debt, nobody of its waiting), else a
   * promise that resolves once it is out of debt and every earlier waiting submit of it went.
   */
  turn(principal: string): Promise<void> | undefined {
    if (this.#closed) return undefined
    const a = this.#account(principal)
    if (a.tail === undefined && a.bucket.borrow(0, steadyNow(this.runtime)) === 0) return undefined
    const mine: Promise<void> = (a.tail ?? Promise.resolve()).then(() => this.#outOfDebt(a)).finally(() => {
      if (a.tail === mine) a.tail = undefined
    })
    a.tail = mine
    return mine
  }

  /**
   * Whether `payer` may load a document from storage now: 0 when it may (a token of its loads
   * bucket is taken), else the milliseconds until it may, in debt for loads or for work
   * (nothing taken; a load's time is charged to its work after it, `pay`). Never a wait in a
   * queue: opens queued for their payer outlived their sockets (35,687 sockets of one reader
   * in 30 s held 300 MB of the hub, and each queued open would have loaded later for nobody).
   */
  loadWait(payer: string): number {
    if (this.#closed) return 0
    const a = this.#account(payer)
    const now = steadyNow(this.runtime)
    // A rate of 0 (or none): loads are not counted, only their work.
    if (this.#limits.loadsPerSecond > 0) a.loads ??= new TokenBucket(this.#limits.loadsPerSecond, this.#limits.loadBurst, now)
    const ms = Math.max(a.loads?.until(1, now) ?? 0, a.bucket.borrow(0, now))
    if (ms === 0) a.loads?.borrow(1, now)
    return ms
  }

  /** Charges `micros` of work to `principal` (its next submits wait off any debt). */
  pay(principal: string, micros: number): void {
    if (micros > 0) this.#account(principal).bucket.borrow(micros, steadyNow(this.runtime))
  }

  /** Resolves once `a`'s work is out of debt. */
  #outOfDebt(a: Account): Promise<void> {
    return new Promise((resolve) => {
      const wait = () => {
        const ms = this.#closed ? 0 : a.bucket.borrow(0, steadyNow(this.runtime))
        if (ms === 0) return resolve()
        const timer = this.runtime.setTimer(ms, () => {
          this.#waits.delete(timer)
          wait()
        })
        this.#waits.set(timer, resolve)
      }
      wait()
    })
  }

  /**
   * The host is closing: no debt is waited off any longer. Waiting submits go on at once (and
   * find their document closed); a debt's timer would otherwise keep the process alive for as
   * long as the debt (minutes, with a small rate).
   */
  close(): void {
    this.#closed = true
    for (const [timer, go] of this.#waits) {
      timer.cancel()
      go()
    }
    this.#waits.clear()
  }
}

/**
 * The host's bound on heavy work in flight at once: decoding holds what it decoded until the
 * update is applied (about 750 bytes of heap per Automerge change: 190 MB for one
 * 262,144-change chunk), so uploads checked side by side could exhaust the hub's memory. An
 * update of estimated work at most `light` goes at once; heavier ones wait their turn (in the
 * order they came) while `capacity` is taken, and one larger than `capacity` runs alone.
 */
export class WorkInFlight {
  #taken = 0
  readonly #waiting: Array<{ readonly micros: number; readonly go: () => void }> = []

  constructor(readonly capacity = DEFAULT_CRDT_WORK.heavyInFlightMicros, readonly light = LIGHT_WORK) {}

  /** Resolves (with its release) when `micros` of work may start. */
  async take(micros: number): Promise<() => void> {
    if (micros <= this.light) return () => {}
    if (this.#waiting.length === 0 && this.#fits(micros)) this.#taken += micros
    else await new Promise<void>((go) => this.#waiting.push({ micros, go })) // #wake counts it
    let released = false
    return () => {
      if (released) return
      released = true
      this.#taken -= micros
      this.#wake()
    }
  }

  #fits(micros: number): boolean {
    return this.#taken === 0 || this.#taken + micros <= this.capacity
  }

  #wake(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.micros)) {
      const next = this.#waiting.shift()!
      // Counted now, before its continuation runs, so the next in line sees it.
      this.#taken += next.micros
      next.go()
    }
  }
}

/** Work that goes without waiting its turn: 0.1 s (about 2,800 Automerge changes, 50,000 Yjs structs). */
export const LIGHT_WORK = 100_000

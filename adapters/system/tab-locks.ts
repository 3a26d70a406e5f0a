/**
 * Locks across the tabs of a site where the browser has no Web Locks: a page served over
 * plain http from another machine (a LAN address) is not a secure context, and there
 * `navigator.locks` is undefined. Without a lock two tabs open one replica, share its
 * clientId and outbox, and one tab's commands are dropped as the other's retries.
 *
 * Over a BroadcastChannel (which insecure pages have): a tab asking for a name says so, and
 * waits `windowMs` for an answer; a tab holding the name answers "held", and of two tabs
 * asking at once the one with the smaller ticket goes first (each sees the other's ask, so
 * both agree). A tab that goes away holds nothing any more (it cannot answer), so no lease
 * is left behind by a crash.
 *
 * A holder answers from a worker of its own (`answererSource`), so a page busy for longer than
 * the window (a long render) still answers in time; an asker that is busy itself asks again
 * (its late timer proves nothing). Best effort where Web Locks are exact: where no worker can
 * be made (a Content-Security-Policy without blob: workers) the page answers itself, and a
 * holder busy past the window answers too late, so both tabs hold the name. It costs the
 * window once per claim, only where Web Locks are missing.
 */

/** The part of the Web Locks API the adapters use (navigator.locks.request with a signal). */
export interface LockRequester {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>
}

interface Ask { readonly t: "ask"; readonly name: string; readonly ticket: number }
interface Held { readonly t: "held"; readonly name: string; readonly to: number }

/** How long an ask waits for a holder's answer. */
export const TAB_LOCK_WINDOW_MS = 300
/** Asks of one claim while this tab's own timers run late (it is busy): then it decides. */
const LATE_ASKS = 8
/** The wait after a window, for answers queued behind its timer. */
const HOP_MS = 30

/** A holder's answering thread: told which names this tab holds, it answers asks for them. */
export interface TabLockAnswerer {
  post(message: { readonly hold: string } | { readonly release: string }): void
  close(): void
  /**
   * Settles once it answers (or is known not to: the page answers alone then). A worker needs
   * turns of its page to start: a page that took a name and went straight into a long task
   * would otherwise be answered for by nobody.
   */
  readonly ready?: Promise<void>
}

/** How long a page waits for its answerer to start before it answers alone. */
const ANSWERER_START_MS = 2_000

/**
 * The answering worker's script, for the channel `channel`: a dedicated worker in a page, a
 * worker thread in Node (tests). It answers an ask for a name the tab holds, as the page does.
 */
export const answererSource = (channel: string): string => `
const held = new Set()
const ch = new BroadcastChannel(${JSON.stringify(channel)})
const inPage = typeof self === "object" && typeof self.postMessage === "function"
const port = inPage ? self : require("node:worker_threads").parentPort
ch.onmessage = (e) => {
  const m = e.data
  if (m !== null && typeof m === "object" && m.t === "ask" && typeof m.name === "string" && typeof m.ticket === "number" && held.has(m.name)) ch.postMessage({ t: "held", name: m.name, to: m.ticket })
}
const told = (m) => {
  if (m === null || typeof m !== "object") return
  if (typeof m.hold === "string") held.add(m.hold)
  if (typeof m.release === "string") held.delete(m.release)
}
if (inPage) self.onmessage = (e) => told(e.data)
else port.on("message", told)
port.postMessage("ready")
`

/**
 * A page's answerer: a dedicated worker from a blob URL, or undefined where none can be made.
 * One a Content-Security-Policy blocks is made and then fails (an error event): ready then.
 */
const workerAnswerer = (channel: string): TabLockAnswerer | undefined => {
  type PageWorker = { postMessage(m: unknown): void; terminate(): void; onmessage: unknown; onerror: unknown }
  const g = globalThis as { Worker?: new (url: string) => PageWorker; Blob?: typeof Blob; URL?: typeof URL }
  if (typeof g.Worker !== "function" || typeof g.Blob !== "function" || typeof g.URL?.createObjectURL !== "function") return undefined
  try {
    const url = g.URL.createObjectURL(new g.Blob([answererSource(channel)], { type: "text/javascript" }))
    const worker = new g.Worker(url)
    const ready = new Promise<void>((resolve) => {
      const done = () => {
        g.URL!.revokeObjectURL(url)
        resolve()
      }
      worker.onmessage = done
      worker.onerror = done
      setTimeout(done, ANSWERER_START_MS)
    })
    return { post: (m) => worker.postMessage(m), close: () => worker.terminate(), ready }
  } catch {
    return undefined
  }
}

export class TabLocks implements LockRequester {
  readonly #channel: BroadcastChannel
  readonly #held = new Set<string>()
  /** Names this tab is asking for: its ticket, and what to do when it must wait. */
  readonly #asking = new Map<string, { readonly ticket: number; readonly yieldTo: () => void }>()

  /** Answers for this tab while its page is busy (undefined: the page answers alone). */
  readonly #answerer: TabLockAnswerer | undefined

  constructor(
    channel = "canon-tab-locks",
    readonly windowMs = TAB_LOCK_WINDOW_MS,
    readonly ticket: () => number = Math.random,
    answerer: (channel: string) => TabLockAnswerer | undefined = workerAnswerer,
  ) {
    this.#answerer = answerer(channel)
    this.#channel = new BroadcastChannel(channel)
    // In Node (tests) the channel must not keep the process alive.
    ;(this.#channel as { unref?: () => void }).unref?.()
    this.#channel.onmessage = (e: MessageEvent) => this.#receive(e.data)
  }

  #receive(m: unknown): void {
    // Another tab's message: any shape may come (another version of this code, another script).
    if (typeof m !== "object" || m === null) return
    const { t, name } = m as { t?: unknown; name?: unknown }
    if (typeof name !== "string") return
    const mine = this.#asking.get(name)
    if (t === "ask") {
      const ticket = (m as Ask).ticket
      if (typeof ticket !== "number") return
      // Held here, or asked for here first: the other tab waits.
      if (this.#held.has(name) || (mine !== undefined && mine.ticket < ticket)) this.#post({ t: "held", name, to: ticket })
      else if (mine !== undefined && ticket < mine.ticket) mine.yieldTo()
    } else if (t === "held" && mine !== undefined && (m as Held).to === mine.ticket) {
      mine.yieldTo()
    }
  }

  #post(m: Ask | Held): void {
    this.#channel.postMessage(m)
  }

  /**
   * One ask: true if no tab answered within the window (the name is then held here). A window
   * whose timer ran late (this tab was busy: a page starting, a long render) proves nothing:
   * an answer may be waiting behind the timer, so the same ticket asks again, a few times.
   */
  #ask(name: string): Promise<boolean> {
    return new Promise((resolve) => {
      const ticket = this.ticket()
      let timer: ReturnType<typeof setTimeout>
      let asks = 0
      const ask = () => {
        const at = performance.now()
        timer = setTimeout(() => {
          if (performance.now() - at > this.windowMs * 1.5 && ++asks < LATE_ASKS) return ask()
          // One more short wait before deciding: an answer that came while this tab was busy
          // is a task queued already, and runs before a timer that is not due yet.
          timer = setTimeout(() => {
            this.#asking.delete(name)
            this.#held.add(name)
            this.#answerer?.post({ hold: name })
            resolve(true)
          }, HOP_MS)
        }, this.windowMs)
        this.#post({ t: "ask", name, ticket })
      }
      this.#asking.set(name, {
        ticket,
        yieldTo: () => {
          clearTimeout(timer)
          this.#asking.delete(name)
          resolve(false)
        },
      })
      ask()
    })
  }

  /**
   * As `navigator.locks.request(name, { signal }, callback)`: waits until no other tab holds
   * `name` (asking again each window) or `signal` aborts (rejecting with its reason), then
   * holds it while `callback`'s promise is pending.
   */
  async request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
    const signal = options.signal
    for (;;) {
      if (signal?.aborted) throw signal.reason
      if (!this.#held.has(name) && !this.#asking.has(name) && (await this.#ask(name))) {
        // Held (the page answers meanwhile): the name is used once its answerer answers too.
        await this.#answerer?.ready
        break
      }
      await new Promise<void>((resolve, reject) => {
        const abort = () => {
          clearTimeout(timer)
          reject(signal!.reason)
        }
        const timer = setTimeout(() => {
          signal?.removeEventListener("abort", abort)
          resolve()
        }, this.windowMs)
        signal?.addEventListener("abort", abort, { once: true })
      })
    }
    try {
      return await callback({ name })
    } finally {
      this.#held.delete(name)
      this.#answerer?.post({ release: name })
    }
  }

  /** Stops answering (this tab then holds nothing): for tests, where a tab is an object. */
  close(): void {
    this.#held.clear()
    this.#channel.close()
    this.#answerer?.close()
  }
}

let pageLocks: TabLocks | undefined

/**
 * The page's locks: Web Locks where the browser has them, else TabLocks where it has a
 * BroadcastChannel (insecure pages), else undefined (Node: a process holds its own stores).
 */
export const pageLockRequester = (): LockRequester | undefined => {
  const g = globalThis as { navigator?: { locks?: LockRequester }; document?: unknown; BroadcastChannel?: unknown }
  if (g.navigator?.locks !== undefined) return g.navigator.locks
  if (g.document === undefined || typeof g.BroadcastChannel !== "function") return undefined
  return (pageLocks ??= new TabLocks())
}

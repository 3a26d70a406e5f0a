/**
 * Undo journal: how a replica rebases in time proportional to the commands involved, not to
 * the size of the state.
 *
 * A command's `apply` receives a draft: a proxy over the live state that records, before
 * every write, the property's previous value. Committing a command keeps its records; rolling
 * it back replays them backwards. A replica therefore holds one state object (its view) and
 * rebases by: undoing its pending commands (their writes, newest first), applying the
 * incoming entries, and applying the pending commands again. Nothing is copied, so a 100k-item
 * state rebases as fast as a 1k-item one. (Copy-on-write would copy each touched container,
 * O(container size); persistent maps would force special data types on every machine.)
 *
 * `apply` may also return a new value: that replaces the whole state and is recorded as one
 * undoable write.
 *
 * Writes are only allowed while a command runs: a draft kept past its command throws
 * `state-read-only` on write.
 */
import { canonError } from "./errors.js"

/** Recorded writes, flat: [target, key, hadKey, oldValue] per write. */
export type Journal = unknown[]

const ROOT: object = Object.freeze({ root: true })
const MISSING = Symbol("missing")

const isDraftable = (v: unknown): v is object =>
  typeof v === "object" && v !== null && !ArrayBuffer.isView(v)

/** A state plus the machinery to change it through recorded drafts. */
export class JournaledState<S> {
  private journal: Journal | null = null
  private readonly proxies = new WeakMap<object, object>()
  private readonly targets = new WeakMap<object, object>()
  private readonly handler: ProxyHandler<object>

  constructor(public root: S) {
    const self = this
    const record = (target: object, key: PropertyKey): Journal => {
      const j = self.journal
      if (j === null) {
        throw canonError("state-read-only", "State can only change inside a command's apply; submit a command instead.")
      }
      const had = Object.prototype.hasOwnProperty.call(target, key)
      j.push(target, key, had, had ? (target as Record<PropertyKey, unknown>)[key] : MISSING)
      return j
    }
    /**
     * Arrays change `length` behind the traps: writing past the end grows it, shrinking it
     * drops elements. Record what those implicit changes overwrite, so undo restores it.
     */
    const recordArrayLength = (target: unknown[], key: PropertyKey, value: unknown): void => {
      if (key === "length") {
        for (let i = target.length - 1; i >= (value as number); i--) record(target, String(i))
      } else if (typeof key === "string") {
        const index = Number(key)
        if (Number.isInteger(index) && index >= target.length && String(index) === key) record(target, "length")
      }
    }
    this.handler = {
      get(target, key) {
        const v = (target as Record<PropertyKey, unknown>)[key]
        return isDraftable(v) ? self.draftOf(v) : v
      },
      set(target, key, value) {
        if (Array.isArray(target)) recordArrayLength(target, key, value)
        record(target, key)
        ;(target as Record<PropertyKey, unknown>)[key] = self.unwrap(value)
        return true
      },
      deleteProperty(target, key) {
        if (!Object.prototype.hasOwnProperty.call(target, key)) return true
        record(target, key)
        delete (target as Record<PropertyKey, unknown>)[key]
        return true
      },
      defineProperty(target, key, desc) {
        if (Array.isArray(target)) recordArrayLength(target, key, desc.value)
        record(target, key)
        if ("value" in desc) desc = { ...desc, value: self.unwrap(desc.value) }
        return Reflect.defineProperty(target, key, desc)
      },
      setPrototypeOf() {
        return false
      },
    }
  }

  private draftOf(target: object): object {
    let p = this.proxies.get(target)
    if (p === undefined) {
      p = new Proxy(target, this.handler)
      this.proxies.set(target, p)
      this.targets.set(p, target)
    }
    return p
  }

  private unwrap(value: unknown): unknown {
    return isDraftable(value) ? this.targets.get(value) ?? value : value
  }

  /** The draft handed to `apply`: the root itself when it is a primitive. */
  draft(): S {
    return isDraftable(this.root) ? (this.draftOf(this.root) as S) : this.root
  }

  /** Starts recording into a fresh journal. */
  begin(): Journal {
    const j: Journal = []
    this.journal = j
    return j
  }

  /** Stops recording. */
  end(): void {
    this.journal = null
  }

  /** Replaces the whole state inside the current command (apply returned a value). */
  replaceRoot(next: S): void {
    const j = this.journal
    if (j === null) throw canonError("state-read-only", "State can only change inside a command's apply.")
    j.push(ROOT, "root", true, this.root)
    this.root = this.unwrap(next) as S
  }

  /** Reverts the writes of a journal, newest first. */
  undo(j: Journal): void {
    for (let i = j.length - 4; i >= 0; i -= 4) {
      const target = j[i] as Record<PropertyKey, unknown>
      const key = j[i + 1] as PropertyKey
      if (target === ROOT) {
        this.root = j[i + 3] as S
      } else if (j[i + 2] as boolean) {
        target[key] = j[i + 3]
      } else {
        delete target[key]
      }
    }
  }
}

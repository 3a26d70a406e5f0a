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
 * `state-read-only` on write. The app reads the state through `view()`, a proxy that refuses
 * every write, so a stray assignment cannot corrupt a replica behind the engine's back.
 *
 * Determinism details:
 * - Inside a command, plain objects enumerate their keys in canonical (sorted) order, the
 *   order the state hash uses. Undoing a `delete` puts the key back at the end of the
 *   object's insertion order, so the physical order differs between peers that undid
 *   different commands; sorted enumeration hides that from `apply`.
 * - Values assigned into the state are unwrapped deeply: `s.list = s.list.filter(...)`
 *   stores the items, not drafts of them.
 * - A Uint8Array in the state is immutable (its draft refuses writes): assign a new one.
 */
import { canonError } from "./errors.js"

/** Recorded writes, flat: [target, key, hadKey, oldValue] per write. */
export type Journal = unknown[]

const ROOT: object = Object.freeze({ root: true })
const MISSING = Symbol("missing")

const isObject = (v: unknown): v is object => typeof v === "object" && v !== null

/** Uint8Array methods that write: refused on drafts and views of bytes. */
const BYTE_WRITERS: ReadonlySet<PropertyKey> = new Set(["set", "fill", "copyWithin", "reverse", "sort"])

/** Deep unwrapping stops here: plain data is never this deep (see canonical.ts). */
const MAX_UNWRAP_DEPTH = 512

const readOnly = (): never => {
  throw canonError("state-read-only", "State can only change inside a command's apply; submit a command instead.")
}

/** A state plus the machinery to change it through recorded drafts. */
export class JournaledState<S> {
  private journal: Journal | null = null
  private readonly proxies = new WeakMap<object, object>()
  private readonly views = new WeakMap<object, object>()
  private readonly targets = new WeakMap<object, object>()
  private readonly handler: ProxyHandler<object>
  private readonly bytesHandler: ProxyHandler<object>
  private readonly viewHandler: ProxyHandler<object>

  constructor(public root: S) {
    const self = this
    const record = (target: object, key: PropertyKey): Journal => {
      const j = self.journal
      if (j === null) return readOnly()
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
    /** Canonical (sorted) key order for plain objects; arrays keep index order. */
    const ownKeys = (target: object): ArrayLike<string | symbol> => {
      const keys = Reflect.ownKeys(target)
      return Array.isArray(target) ? keys : (keys as string[]).sort()
    }
    this.handler = {
      get(target, key) {
        const v = (target as Record<PropertyKey, unknown>)[key]
        return isObject(v) ? self.draftOf(v) : v
      },
      set(target, key, value) {
        if (Array.isArray(target)) recordArrayLength(target, key, value)
        record(target, key)
        ;(target as Record<PropertyKey, unknown>)[key] = self.unwrap(value, 0)
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
        if ("value" in desc) desc = { ...desc, value: self.unwrap(desc.value, 0) }
        return Reflect.defineProperty(target, key, desc)
      },
      ownKeys,
      setPrototypeOf: () => false,
    }
    const frozen = {
      set: readOnly,
      deleteProperty: readOnly,
      defineProperty: readOnly,
      setPrototypeOf: readOnly,
    }
    this.bytesHandler = {
      ...frozen,
      get(target, key) {
        const v = (target as unknown as Record<PropertyKey, unknown>)[key]
        if (typeof v !== "function") return v
        // Typed-array methods need the real array as `this`; the writing ones are refused.
        return BYTE_WRITERS.has(key) ? readOnly : (v as Function).bind(target)
      },
    }
    this.viewHandler = {
      ...frozen,
      get(target, key) {
        const v = (target as Record<PropertyKey, unknown>)[key]
        return isObject(v) ? self.viewOf(v) : v
      },
    }
  }

  private draftOf(target: object): object {
    let p = this.proxies.get(target)
    if (p === undefined) {
      p = new Proxy(target, ArrayBuffer.isView(target) ? this.bytesHandler : this.handler)
      this.proxies.set(target, p)
      this.targets.set(p, target)
    }
    return p
  }

  private viewOf(target: object): object {
    let p = this.views.get(target)
    if (p === undefined) {
      p = new Proxy(target, ArrayBuffer.isView(target) ? this.bytesHandler : this.viewHandler)
      this.views.set(target, p)
      this.targets.set(p, target)
    }
    return p
  }

  /**
   * The raw value behind a draft, also inside fresh containers (`s.a = [s.b]`,
   * `s.list = s.list.filter(...)`): drafts must never be stored in the state.
   */
  private unwrap(value: unknown, depth: number): unknown {
    if (!isObject(value)) return value
    const target = this.targets.get(value)
    if (target !== undefined) return target
    if (depth >= MAX_UNWRAP_DEPTH || ArrayBuffer.isView(value)) return value
    const obj = value as Record<string, unknown>
    for (const k of Object.keys(obj)) {
      const v = obj[k]
      if (isObject(v)) {
        const u = this.unwrap(v, depth + 1)
        if (u !== v) obj[k] = u
      }
    }
    return value
  }

  /** A read-only view of the state for the app: reads as the state, refuses writes. */
  view(): S {
    return isObject(this.root) ? (this.viewOf(this.root) as S) : this.root
  }

  /** The draft handed to `apply`: the root itself when it is a primitive. */
  draft(): S {
    return isObject(this.root) ? (this.draftOf(this.root) as S) : this.root
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
    if (j === null) return readOnly()
    j.push(ROOT, "root", true, this.root)
    this.root = this.unwrap(next, 0) as S
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

/**
 * What the engine knows about each proxy it hands out (a draft for commands, a view for the
 * app), and the interface the shared array and byte methods call back into.
 */

/** One proxy over one raw object of one state. */
export interface Meta {
  readonly raw: object
  readonly proxy: object
  readonly host: ProxyHost
  /** A read-only view (the app's) rather than a draft (a command's). */
  readonly view: boolean
  /** Depth of `raw` in the state: 0 for the root container (drafts only). */
  readonly depth: number
  /** Where the draft was last seen: a hint for moves, always verified before use. */
  parent: object | null
  key: string | number
}

/**
 * Proxy -> its meta, for every state in the process. Module-wide so the array and byte methods
 * can be shared frozen functions (a table per state would cost memory per document), and so a
 * proxy can be told from a look-alike without asking it anything (no trap runs).
 */
export const PROXIES = new WeakMap<object, Meta>()

/** What the shared array methods need from the state that owns a proxy. */
export interface ProxyHost {
  /** Element `v` of `m.raw` (at `index`) as code sees it: a draft or view of objects, primitives as they are. */
  out(m: Meta, v: unknown, index: number): unknown
  /** The raw object behind `v` if it is a proxy of this state (draft or view), else `v`. */
  unwrap(v: unknown): unknown
  /** Runs an array mutator (push, pop, shift, unshift, splice, sort, reverse, fill, copyWithin) natively, journaled. */
  mutate(m: Meta, name: string, args: unknown[]): unknown
}

/**
 * The part of Node's `events` module that `abstract-level` (under `level`'s IndexedDB build)
 * uses: an EventEmitter with `newListener` / `removeListener` notifications. A browser build
 * of `canon/level` maps the `events` import here (bench/bundle.ts's bundle (b) does), so the
 * browser needs no Node polyfill package. The demo itself stores through canon/indexeddb and
 * needs none of this.
 */
type Listener = (...args: any[]) => void

export class EventEmitter {
  private readonly events = new Map<string | symbol, Listener[]>()
  private max = 10

  on(name: string | symbol, fn: Listener): this {
    if (this.events.has("newListener")) this.emit("newListener", name, fn)
    const list = this.events.get(name)
    if (list === undefined) this.events.set(name, [fn])
    else list.push(fn)
    return this
  }

  addListener(name: string | symbol, fn: Listener): this {
    return this.on(name, fn)
  }

  prependListener(name: string | symbol, fn: Listener): this {
    this.on(name, fn)
    const list = this.events.get(name)!
    list.unshift(list.pop()!)
    return this
  }

  once(name: string | symbol, fn: Listener): this {
    const wrapper: Listener & { listener?: Listener } = (...args) => {
      this.off(name, wrapper)
      fn.apply(this, args)
    }
    wrapper.listener = fn
    return this.on(name, wrapper)
  }

  off(name: string | symbol, fn: Listener): this {
    const list = this.events.get(name)
    if (list === undefined) return this
    const i = list.findIndex((l) => l === fn || (l as { listener?: Listener }).listener === fn)
    if (i < 0) return this
    const [removed] = list.splice(i, 1)
    if (list.length === 0) this.events.delete(name)
    if (this.events.has("removeListener")) this.emit("removeListener", name, (removed as { listener?: Listener }).listener ?? removed)
    return this
  }

  removeListener(name: string | symbol, fn: Listener): this {
    return this.off(name, fn)
  }

  removeAllListeners(name?: string | symbol): this {
    const names = name === undefined ? [...this.events.keys()].filter((n) => n !== "removeListener") : [name]
    for (const n of names) for (const fn of [...(this.events.get(n) ?? [])].reverse()) this.off(n, fn)
    if (name === undefined) this.events.delete("removeListener")
    return this
  }

  emit(name: string | symbol, ...args: unknown[]): boolean {
    const list = this.events.get(name)
    if (list === undefined || list.length === 0) {
      if (name === "error") throw args[0] instanceof Error ? args[0] : new Error(`Unhandled error event: ${String(args[0])}`)
      return false
    }
    for (const fn of [...list]) fn.apply(this, args)
    return true
  }

  listenerCount(name: string | symbol): number {
    return this.events.get(name)?.length ?? 0
  }

  listeners(name: string | symbol): Listener[] {
    return (this.events.get(name) ?? []).map((l) => (l as { listener?: Listener }).listener ?? l)
  }

  eventNames(): Array<string | symbol> {
    return [...this.events.keys()]
  }

  setMaxListeners(n: number): this {
    this.max = n
    return this
  }

  getMaxListeners(): number {
    return this.max
  }
}

export default EventEmitter

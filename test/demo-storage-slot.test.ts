import { claimSlot, sessionSlotMemory, SLOT_COUNT, type SlotLocks, type SlotMemory } from "../apps/demo/web/storage-slot.js"

/** Web Locks as the browser keeps them: one holder per name, later requests queue until it lets go or their signal aborts. */
class FakeLocks implements SlotLocks {
  readonly #held = new Map<string, { release: () => void; waiting: Array<() => void> }>()

  /** Holds `name` as another page would, until the returned function is called. */
  hold(name: string): () => void {
    let release!: () => void
    void this.request(name, {}, () => new Promise<void>((r) => (release = r)))
    return () => release()
  }

  request(name: string, options: { signal?: AbortSignal }, fn: (lock: unknown) => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const grant = () => {
        const entry = { release: () => {}, waiting: this.#held.get(name)?.waiting ?? [] }
        this.#held.set(name, entry)
        void fn({ name }).then(() => {
          const next = entry.waiting.shift()
          if (next === undefined) this.#held.delete(name)
          else next()
          resolve(undefined)
        })
      }
      const holder = this.#held.get(name)
      if (holder === undefined) return grant()
      const turn = () => {
        options.signal?.removeEventListener("abort", abort)
        grant()
      }
      const abort = () => {
        holder.waiting.splice(holder.waiting.indexOf(turn), 1)
        reject(new DOMException("aborted", "AbortError"))
      }
      holder.waiting.push(turn)
      options.signal?.addEventListener("abort", abort)
    })
  }
}

const memory = (slot?: number): SlotMemory & { slot: number | undefined } => {
  const m = {
    slot,
    get: () => m.slot,
    set: (s: number) => void (m.slot = s),
  }
  return m
}

const WAITS = { reload: 3_000, first: 150, other: 30 }

test("a reloaded tab gets its own slot back, though the old page lets go of it only after a while and slot 0 is free", async () => {
  const locks = new FakeLocks()
  const oldPage = locks.hold("canon-demo-slot-2")
  setTimeout(oldPage, 600) // the old page torn down slowly: longer than a first load waits
  const tab = memory(2)
  const started = Date.now()
  expect(await claimSlot(locks, tab, true, WAITS)).toBe(2)
  expect(Date.now() - started).toBeGreaterThanOrEqual(550)
  expect(tab.slot).toBe(2)
})

test("a new tab takes slot 0 when it is free, and remembers it", async () => {
  const tab = memory()
  expect(await claimSlot(new FakeLocks(), tab, false, WAITS)).toBe(0)
  expect(tab.slot).toBe(0)
})

test("a new tab waits a moment for slot 0 (a page going away may hold it), then takes the next free slot", async () => {
  const locks = new FakeLocks()
  const release = locks.hold("canon-demo-slot-0")
  setTimeout(release, 60)
  expect(await claimSlot(locks, memory(), false, WAITS)).toBe(0)
  locks.hold("canon-demo-slot-0") // another tab, for good
  const tab = memory()
  expect(await claimSlot(locks, tab, false, WAITS)).toBe(1)
  expect(tab.slot).toBe(1)
})

test("a tab that is not a reload (a duplicated tab carries the same memory) does not wait long for a slot another tab holds", async () => {
  const locks = new FakeLocks()
  locks.hold("canon-demo-slot-0") // the tab it was duplicated from
  const tab = memory(0)
  const started = Date.now()
  expect(await claimSlot(locks, tab, false, WAITS)).toBe(1)
  expect(Date.now() - started).toBeLessThan(WAITS.reload)
  expect(tab.slot).toBe(1)
})

test("a reload whose slot stays held (another tab took it meanwhile) moves on after the reload wait", async () => {
  const locks = new FakeLocks()
  locks.hold("canon-demo-slot-1")
  expect(await claimSlot(locks, memory(1), true, { ...WAITS, reload: 200 })).toBe(0)
})

test("every slot held: no slot (the page keeps its edits in memory only); no Web Locks: slot 0", async () => {
  const locks = new FakeLocks()
  for (let s = 0; s < SLOT_COUNT; s++) locks.hold(`canon-demo-slot-${s}`)
  const tab = memory()
  expect(await claimSlot(locks, tab, false, { reload: 10, first: 10, other: 5 })).toBeUndefined()
  expect(tab.slot).toBeUndefined()
  expect(await claimSlot(undefined, memory(5), true, WAITS)).toBe(0)
})

test("the remembered slot is read back only when it names a slot", () => {
  const items = new Map<string, string>()
  const fake = { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v) }
  Object.defineProperty(globalThis, "sessionStorage", { value: fake, configurable: true })
  try {
    const m = sessionSlotMemory("k")
    expect(m.get()).toBeUndefined()
    m.set(7)
    expect(m.get()).toBe(7)
    for (const bad of ["", " ", "abc", "-1", "1.5", String(SLOT_COUNT), "1e1", "0x2"]) {
      items.set("k", bad)
      expect([bad, m.get()]).toEqual([bad, undefined])
    }
    Object.defineProperty(globalThis, "sessionStorage", {
      get: () => {
        throw new Error("SecurityError")
      },
      configurable: true,
    })
    expect(m.get()).toBeUndefined()
    expect(() => m.set(1)).not.toThrow()
  } finally {
    delete (globalThis as { sessionStorage?: unknown }).sessionStorage
  }
})

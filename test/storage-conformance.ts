/**
 * The shared conformance suite of the Storage port (core/ports/storage.ts): every KVStore
 * adapter runs it through `storageConformance(name, factory)` from its own test file.
 *
 * It holds an adapter to what core/store relies on: each operation, batches that apply whole
 * (all ops together, in order, nothing from a malformed one), bytewise unsigned key order with
 * bounds, limits and reverse, large values, many keys over many documents, returned bytes
 * that are the caller's own copies, the closed state, and (for persistent adapters) data that
 * survives close and reopen.
 *
 * What each adapter guarantees for a batch, and what is tested here: the ops of one batch
 * apply in order and become visible together (a concurrent reader sees none or all of them);
 * a batch holding a malformed op (missing key or value) fails and applies nothing.
 * MemoryStorage copies every op before applying any (a malformed op fails the copy) and
 * applies synchronously; LevelStorage builds one LevelDB write batch and discards it on a
 * malformed op, and LevelDB applies a write batch whole, also across a crash (one record in
 * its write-ahead log). An I/O failure in the middle of a write is not simulated here.
 */
import { CanonError, REPLICA_STORE, type BatchOp, type KVStore, type ReplicaStorage } from "../core/index.js"

export interface StorageHarness {
  /** Opens the store. After close(), a persistent adapter opens the same data again. */
  open(): Promise<KVStore>
  /** Whether data survives close() and open() (the reopen test runs only then). */
  readonly persistent: boolean
  /** Removes whatever the store left behind (temp directories). Called after each test. */
  dispose(): Promise<void>
}

const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const put = (key: Uint8Array, value: Uint8Array): BatchOp => ({ type: "put", key, value })
const del = (key: Uint8Array): BatchOp => ({ type: "del", key })

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

/** Bytewise unsigned order, the port's contract (independent of any adapter's helper). */
const compare = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** A deterministic shuffle (xorshift), so a failure replays. */
const shuffled = <T>(xs: ReadonlyArray<T>, seed = 12345): T[] => {
  const out = [...xs]
  let s = seed >>> 0 || 1
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** Deterministic pseudo-random bytes (a large value whose every byte matters). */
const noise = (length: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let s = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    out[i] = s & 0xff
  }
  return out
}

/** A Canon-like key: a prefix, a length-prefixed document id, an 8-byte big-endian seq. */
const docKey = (doc: string, seq: number): Uint8Array => {
  const id = text(doc)
  const k = new Uint8Array(2 + 1 + id.length + 8)
  k[0] = 0x61; k[1] = 0x65; k[2] = id.length
  k.set(id, 3)
  new DataView(k.buffer).setBigUint64(3 + id.length, BigInt(seq))
  return k
}
const docPrefix = (doc: string): Uint8Array => docKey(doc, 0).subarray(0, 3 + text(doc).length)
/** Smallest key above every key that starts with `prefix` (prefix has no trailing 0xff here). */
const after = (prefix: Uint8Array): Uint8Array => {
  const out = prefix.slice()
  out[out.length - 1]!++
  return out
}

const keysOf = (rows: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): string[] => rows.map(([k]) => hex(k))

const expectClosed = async (p: () => Promise<unknown>): Promise<void> => {
  let error: unknown
  try {
    await p()
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(CanonError)
  expect((error as CanonError).code).toBe("closed")
}

/** Keys that catch signed-byte and prefix ordering mistakes, in the order the port requires. */
const ORDERED_KEYS: Uint8Array[] = [
  bytes(0x00),
  bytes(0x00, 0x00),
  bytes(0x00, 0x01),
  bytes(0x00, 0xff),
  bytes(0x01),
  bytes(0x61),
  bytes(0x61, 0x00),
  bytes(0x61, 0x62),
  bytes(0x61, 0x62, 0x63),
  bytes(0x61, 0x7f),
  bytes(0x61, 0x80),
  bytes(0x61, 0xff),
  bytes(0x7f),
  bytes(0x7f, 0xff, 0xff),
  bytes(0x80),
  bytes(0x80, 0x00),
  bytes(0xfe, 0xff),
  bytes(0xff),
  bytes(0xff, 0x00),
  bytes(0xff, 0xff),
  bytes(0xff, 0xff, 0xff),
]

export const storageConformance = (name: string, factory: () => StorageHarness | Promise<StorageHarness>): void => {
  describe(`Storage conformance: ${name}`, () => {
    let harness: StorageHarness
    let kv: KVStore

    beforeEach(async () => {
      harness = await factory()
      kv = await harness.open()
    })

    afterEach(async () => {
      await kv.close().catch(() => {})
      await harness.dispose()
    })

    // A CanonClient takes an adapter's store as its storage as it is: the store brings the
    // replica layer (core/ports/storage.ts ReplicaStorage), which writes through to it.
    test("replica storage: the store carries a replica layer that keeps its records in this store", async () => {
      const carrier = (kv as Partial<ReplicaStorage>)[REPLICA_STORE]
      expect(carrier).toBeInstanceOf(Function)
      const replica = (kv as ReplicaStorage)[REPLICA_STORE]()
      await replica.open()
      await replica.setIdentity("c1", "s1")
      expect(await replica.clientId()).toBe("c1")
      expect((await kv.range({})).length).toBeGreaterThan(0)
      // A second replica layer over the same store reads what the first wrote.
      const again = (kv as ReplicaStorage)[REPLICA_STORE]()
      await again.open()
      expect(await again.clientId()).toBe("c1")
    })

    // Held per object in this realm by every adapter (core/store/hold.ts); across tabs and
    // processes each adapter's own lock (test/storage-indexeddb-tabs.test.ts, storage-level.test.ts).
    test("claim: one holder at a time; a second claim is refused storage-in-use until the first lets go, and a stale let-go frees nobody else's", async () => {
      expect(kv.claim).toBeInstanceOf(Function)
      const first = await kv.claim!()
      const refused = await kv.claim!().catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(CanonError)
      expect((refused as CanonError).code).toBe("storage-in-use")
      first()
      const second = await kv.claim!()
      first()
      expect(((await kv.claim!().catch((e: unknown) => e)) as CanonError).code).toBe("storage-in-use")
      second()
      ;(await kv.claim!())()
    })

    /** The store holding ORDERED_KEYS, each with its index as the value, written in shuffled order. */
    const fillOrdered = async (): Promise<void> => {
      await kv.batch(shuffled(ORDERED_KEYS.map((k, i) => put(k, bytes(i)))))
    }

    describe("get / put / delete", () => {
      it("get of a missing key is undefined, on an empty store and next to other keys", async () => {
        expect(await kv.get(text("nope"))).toBeUndefined()
        await kv.batch([put(text("a"), text("1")), put(text("c"), text("3"))])
        expect(await kv.get(text("b"))).toBeUndefined()
        expect(await kv.get(text("a\x00"))).toBeUndefined()
        expect(await kv.get(text("c\x00"))).toBeUndefined()
      })

      it("put then get, overwrite, delete, delete of a missing key", async () => {
        await kv.batch([put(text("k"), text("one"))])
        expect(await kv.get(text("k"))).toEqual(text("one"))
        await kv.batch([put(text("k"), text("two!"))])
        expect(await kv.get(text("k"))).toEqual(text("two!"))
        await kv.batch([del(text("k"))])
        expect(await kv.get(text("k"))).toBeUndefined()
        await kv.batch([del(text("never-there"))])
        expect(await kv.range({})).toEqual([])
      })

      it("stores an empty value and every byte value exactly", async () => {
        const all = new Uint8Array(256).map((_, i) => i)
        await kv.batch([put(bytes(1), new Uint8Array(0)), put(bytes(2), all)])
        expect(await kv.get(bytes(1))).toEqual(new Uint8Array(0))
        expect(await kv.get(bytes(2))).toEqual(all)
      })

      it("returns plain Uint8Arrays (not Node Buffers, whose slice() shares memory)", async () => {
        await kv.batch([put(bytes(1), bytes(9, 9))])
        const v = await kv.get(bytes(1))
        expect(v?.constructor).toBe(Uint8Array)
        const [[k, v2]] = (await kv.range({})) as [readonly [Uint8Array, Uint8Array]]
        expect(k.constructor).toBe(Uint8Array)
        expect(v2.constructor).toBe(Uint8Array)
      })
    })

    describe("batch", () => {
      it("an empty batch resolves and changes nothing", async () => {
        await kv.batch([])
        expect(await kv.range({})).toEqual([])
      })

      it("applies ops in order: the last op on a key wins", async () => {
        await kv.batch([put(text("x"), text("1")), del(text("x")), put(text("y"), text("1")), put(text("y"), text("2")), put(text("z"), text("1"))])
        await kv.batch([del(text("z")), put(text("z"), text("back"))])
        expect(await kv.get(text("x"))).toBeUndefined()
        expect(await kv.get(text("y"))).toEqual(text("2"))
        expect(await kv.get(text("z"))).toEqual(text("back"))
      })

      it("the ops of one batch become visible together to concurrent readers", async () => {
        const n = 500
        const ops = Array.from({ length: n }, (_, i) => put(docKey("atomic", i + 1), text(`v${i}`)))
        const lo = docPrefix("atomic")
        const hi = after(lo)
        const seen: number[] = []
        const reads: Promise<void>[] = []
        const write = kv.batch(ops)
        for (let i = 0; i < 20; i++) reads.push(kv.range({ gte: lo, lt: hi }).then((rows) => void seen.push(rows.length)))
        await write
        for (let i = 0; i < 5; i++) reads.push(kv.range({ gte: lo, lt: hi }).then((rows) => void seen.push(rows.length)))
        await Promise.all(reads)
        for (const count of seen) expect([0, n]).toContain(count)
        expect(seen[seen.length - 1]).toBe(n)
      })

      it("a batch holding a malformed op rejects and applies none of its ops", async () => {
        await kv.batch([put(text("keep"), text("old"))])
        const bad = [
          put(text("keep"), text("new")),
          put(text("fresh"), text("1")),
          del(text("keep")),
          { type: "put", key: text("broken"), value: undefined } as unknown as BatchOp,
        ]
        // `async` turns a synchronous throw into a rejection: what matters here is that the
        // call fails and the store is untouched. (Returning a rejected promise rather than
        // throwing is the port's contract too; see the adapters' own tests.)
        await expect((async () => kv.batch(bad))()).rejects.toBeDefined()
        const badKey = [put(text("fresh2"), text("1")), { type: "del", key: undefined } as unknown as BatchOp]
        await expect((async () => kv.batch(badKey))()).rejects.toBeDefined()
        expect(await kv.get(text("keep"))).toEqual(text("old"))
        expect(await kv.get(text("fresh"))).toBeUndefined()
        expect(await kv.get(text("fresh2"))).toBeUndefined()
        expect(keysOf(await kv.range({}))).toEqual([hex(text("keep"))])
        // And the store still works.
        await kv.batch([put(text("after"), text("1"))])
        expect(await kv.get(text("after"))).toEqual(text("1"))
      })

      it("accepts { sync: true }", async () => {
        await kv.batch([put(text("s"), text("1"))], { sync: true })
        expect(await kv.get(text("s"))).toEqual(text("1"))
      })
    })

    describe("range", () => {
      it("orders keys bytewise unsigned (0x00, 0x7f, 0x80, 0xff bytes, prefixes first)", async () => {
        const sorted = [...ORDERED_KEYS].sort(compare)
        expect(sorted.map(hex)).toEqual(ORDERED_KEYS.map(hex)) // the fixture itself is in order
        await fillOrdered()
        const rows = await kv.range({})
        expect(keysOf(rows)).toEqual(ORDERED_KEYS.map(hex))
        rows.forEach(([, v], i) => expect(v).toEqual(bytes(i)))
      })

      it("gte is inclusive and lt exclusive, whether or not the bound is a stored key", async () => {
        await fillOrdered()
        const at = (i: number) => hex(ORDERED_KEYS[i]!)
        const idx = (k: Uint8Array) => ORDERED_KEYS.findIndex((x) => hex(x) === hex(k))
        // Bounds on stored keys.
        expect(keysOf(await kv.range({ gte: bytes(0x61), lt: bytes(0x7f) }))).toEqual(
          ORDERED_KEYS.slice(idx(bytes(0x61)), idx(bytes(0x7f))).map(hex))
        // Bounds between stored keys.
        expect(keysOf(await kv.range({ gte: bytes(0x60, 0xff), lt: bytes(0x61, 0x62, 0x63, 0x00) }))).toEqual([
          at(idx(bytes(0x61))), at(idx(bytes(0x61, 0x00))), at(idx(bytes(0x61, 0x62))), at(idx(bytes(0x61, 0x62, 0x63))),
        ])
        expect(keysOf(await kv.range({ gte: bytes(0x61, 0x01), lt: bytes(0x61, 0x62, 0x00) }))).toEqual([at(idx(bytes(0x61, 0x62)))])
        // Only one bound.
        expect(keysOf(await kv.range({ gte: bytes(0xff) }))).toEqual([bytes(0xff), bytes(0xff, 0x00), bytes(0xff, 0xff), bytes(0xff, 0xff, 0xff)].map(hex))
        expect(keysOf(await kv.range({ lt: bytes(0x00, 0x01) }))).toEqual([bytes(0x00), bytes(0x00, 0x00)].map(hex))
        // A prefix range: every key starting with 0x61 and nothing else.
        expect(keysOf(await kv.range({ gte: bytes(0x61), lt: bytes(0x62) }))).toEqual(
          ORDERED_KEYS.filter((k) => k[0] === 0x61).map(hex))
        // The high bytes are above the low ones (no signed compare).
        expect(keysOf(await kv.range({ gte: bytes(0x80) }))).toEqual(ORDERED_KEYS.filter((k) => k[0]! >= 0x80).map(hex))
        expect(keysOf(await kv.range({ lt: bytes(0x80) }))).toEqual(ORDERED_KEYS.filter((k) => k[0]! < 0x80).map(hex))
      })

      it("limit: the first rows in order (and 0 gives none)", async () => {
        await fillOrdered()
        expect(keysOf(await kv.range({ limit: 3 }))).toEqual(ORDERED_KEYS.slice(0, 3).map(hex))
        expect(keysOf(await kv.range({ limit: 1, gte: bytes(0x7f) }))).toEqual([hex(bytes(0x7f))])
        expect(await kv.range({ limit: 0 })).toEqual([])
        expect((await kv.range({ limit: 1000 })).length).toBe(ORDERED_KEYS.length)
      })

      it("reverse: highest first, within bounds, with limit taking the highest", async () => {
        await fillOrdered()
        const rev = [...ORDERED_KEYS].reverse()
        expect(keysOf(await kv.range({ reverse: true }))).toEqual(rev.map(hex))
        expect(keysOf(await kv.range({ reverse: true, limit: 2 }))).toEqual(rev.slice(0, 2).map(hex))
        expect(keysOf(await kv.range({ reverse: true, gte: bytes(0x61), lt: bytes(0x62) }))).toEqual(
          ORDERED_KEYS.filter((k) => k[0] === 0x61).reverse().map(hex))
        expect(keysOf(await kv.range({ reverse: true, lt: bytes(0x80), limit: 2 }))).toEqual([bytes(0x7f, 0xff, 0xff), bytes(0x7f)].map(hex))
        expect(keysOf(await kv.range({ reverse: true, gte: bytes(0xff, 0x00), limit: 10 }))).toEqual(
          [bytes(0xff, 0xff, 0xff), bytes(0xff, 0xff), bytes(0xff, 0x00)].map(hex))
      })

      it("empty ranges: empty store, gte == lt, gte > lt, past every key", async () => {
        expect(await kv.range({})).toEqual([])
        expect(await kv.range({ reverse: true, limit: 5 })).toEqual([])
        await fillOrdered()
        expect(await kv.range({ gte: bytes(0x61), lt: bytes(0x61) })).toEqual([])
        expect(await kv.range({ gte: bytes(0x80), lt: bytes(0x7f) })).toEqual([])
        expect(await kv.range({ gte: bytes(0x80), lt: bytes(0x7f), reverse: true })).toEqual([])
        expect(await kv.range({ gte: bytes(0xff, 0xff, 0xff, 0x00) })).toEqual([])
        expect(await kv.range({ lt: bytes(0x00) })).toEqual([])
        expect(await kv.range({ gte: bytes(0x62), lt: bytes(0x7f) })).toEqual([])
      })

      it("values come back with their keys", async () => {
        await kv.batch([put(text("b"), text("B")), put(text("a"), text("A")), put(text("c"), text("C"))])
        expect(await kv.range({ gte: text("a"), lt: text("c") })).toEqual([[text("a"), text("A")], [text("b"), text("B")]])
      })
    })

    describe("size", () => {
      it("large values (4 MiB): put, get, range, overwrite", async () => {
        const big = noise(4 * 1024 * 1024, 7)
        const big2 = noise(4 * 1024 * 1024 + 3, 8)
        await kv.batch([put(text("big"), big), put(text("big2"), big2), put(text("small"), text("s"))])
        expect(hex((await kv.get(text("big")))!.subarray(0, 64))).toBe(hex(big.subarray(0, 64)))
        expect(Buffer.compare(await kv.get(text("big")) as Uint8Array, big)).toBe(0)
        const rows = await kv.range({ gte: text("big"), lt: text("big3") })
        expect(rows.length).toBe(2)
        expect(Buffer.compare(rows[0]![1], big)).toBe(0)
        expect(Buffer.compare(rows[1]![1], big2)).toBe(0)
        await kv.batch([put(text("big"), text("now small"))])
        expect(await kv.get(text("big"))).toEqual(text("now small"))
      })

      it("many keys (10,000) across 100 documents: each document's range is its keys in seq order", async () => {
        const docs = Array.from({ length: 100 }, (_, d) => `doc-${d}`)
        const all: BatchOp[] = []
        // Seqs crossing byte boundaries (255/256, 65535/65536) in big-endian order.
        const seqs = Array.from({ length: 100 }, (_, i) => (i < 50 ? i + 230 : 65_500 + i))
        for (const d of docs) for (const s of seqs) all.push(put(docKey(d, s), text(`${d}#${s}`)))
        const mixed = shuffled(all, 99)
        for (let i = 0; i < mixed.length; i += 1000) await kv.batch(mixed.slice(i, i + 1000))

        const every = await kv.range({})
        expect(every.length).toBe(10_000)
        for (let i = 1; i < every.length; i++) expect(compare(every[i - 1]![0], every[i]![0])).toBeLessThan(0)

        for (const d of [docs[0]!, docs[1]!, docs[10]!, docs[99]!]) {
          const rows = await kv.range({ gte: docPrefix(d), lt: after(docPrefix(d)) })
          expect(rows.map(([, v]) => new TextDecoder().decode(v))).toEqual(seqs.map((s) => `${d}#${s}`))
          const tail = await kv.range({ gte: docKey(d, 256), lt: after(docPrefix(d)), limit: 5 })
          expect(tail.map(([, v]) => new TextDecoder().decode(v))).toEqual(seqs.filter((s) => s >= 256).slice(0, 5).map((s) => `${d}#${s}`))
          const last = await kv.range({ gte: docPrefix(d), lt: after(docPrefix(d)), reverse: true, limit: 1 })
          expect(new TextDecoder().decode(last[0]![1])).toBe(`${d}#${seqs[seqs.length - 1]}`)
        }
        // "doc-1" is a prefix of "doc-10" as a string, but not as a length-prefixed key.
        expect((await kv.range({ gte: docPrefix("doc-1"), lt: after(docPrefix("doc-1")) })).length).toBe(100)

        // Delete one document's keys in one batch.
        await kv.batch(seqs.map((s) => del(docKey("doc-5", s))))
        expect(await kv.range({ gte: docPrefix("doc-5"), lt: after(docPrefix("doc-5")) })).toEqual([])
        expect((await kv.range({})).length).toBe(9_900)
      })
    })

    describe("copies", () => {
      it("mutating a returned value or key does not change the store", async () => {
        await kv.batch([put(text("k"), text("value")), put(text("l"), text("other"))])
        const v = (await kv.get(text("k")))!
        v.fill(0)
        expect(await kv.get(text("k"))).toEqual(text("value"))
        const rows = await kv.range({})
        for (const [k, val] of rows) {
          k.fill(0x7a)
          val.fill(0)
        }
        expect(await kv.range({})).toEqual([[text("k"), text("value")], [text("l"), text("other")]])
      })

      it("mutating a key or value after passing it to batch does not change the store", async () => {
        const key = text("key1")
        const value = text("value1")
        const pending = kv.batch([put(key, value)])
        // Reused at once, before the write lands (a writer reusing its buffer does this).
        key.set(text("zzzz"))
        value.fill(0x21)
        await pending
        expect(await kv.get(text("key1"))).toEqual(text("value1"))
        expect(await kv.get(text("zzzz1"))).toBeUndefined()
        // And after it landed.
        key.set(text("key1"))
        value.set(text("value1"))
        const k2 = text("key2")
        const v2 = text("value2")
        await kv.batch([put(k2, v2)])
        k2.fill(0)
        v2.fill(0)
        expect(keysOf(await kv.range({}))).toEqual([hex(text("key1")), hex(text("key2"))])
        expect(await kv.get(text("key2"))).toEqual(text("value2"))
      })

      it("each get returns its own copy", async () => {
        await kv.batch([put(text("k"), text("abc"))])
        const a = (await kv.get(text("k")))!
        const b = (await kv.get(text("k")))!
        a[0] = 0
        expect(b).toEqual(text("abc"))
      })
    })

    describe("closed", () => {
      it("after close every call rejects with a CanonError `closed`; close again resolves", async () => {
        await kv.batch([put(text("k"), text("v"))])
        await kv.close()
        await expectClosed(() => kv.get(text("k")))
        await expectClosed(() => kv.batch([put(text("k"), text("w"))]))
        await expectClosed(() => kv.batch([]))
        await expectClosed(() => kv.range({}))
        await expectClosed(() => kv.range({ reverse: true, limit: 1 }))
        await kv.close()
      })

      it("calls after close return rejected promises rather than throwing", async () => {
        await kv.close()
        for (const call of [() => kv.get(text("k")), () => kv.batch([put(text("k"), text("v"))]), () => kv.range({})]) {
          let p: Promise<unknown> | undefined
          expect(() => { p = call() }).not.toThrow()
          await expect(p).rejects.toBeInstanceOf(CanonError)
        }
      })
    })

    describe("reopen", () => {
      it("data persists across close and open of the same store", async () => {
        if (!harness.persistent) return
        const big = noise(1024 * 1024, 3)
        await kv.batch([put(text("a"), text("1")), put(text("b"), text("2")), put(text("big"), big)])
        await kv.batch([del(text("a")), put(text("c"), text("3"))], { sync: true })
        await kv.close()
        kv = await harness.open()
        expect(await kv.get(text("a"))).toBeUndefined()
        expect(keysOf(await kv.range({}))).toEqual([text("b"), text("big"), text("c")].map(hex))
        expect(Buffer.compare((await kv.get(text("big")))!, big)).toBe(0)
        await kv.batch([put(text("d"), text("4"))])
        await kv.close()
        kv = await harness.open()
        expect((await kv.range({})).length).toBe(4)
      })
    })
  })
}

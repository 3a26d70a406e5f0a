/**
 * MemoryStorage as the simulator's disk: read latency, failed writes (nothing applied), and
 * crashes that lose writes in flight and leave reads unanswered.
 */
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { CanonError } from "../core/index.js"

const key = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b))

test("reads take virtual time and return what is durable when they complete", async () => {
  const rt = new VirtualRuntime(1)
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 10, readMs: () => 30 } })
  const write = disk.batch([{ type: "put", key: key("a"), value: key("1") }])
  let read: string | undefined | "pending" = "pending"
  void disk.get(key("a")).then((v) => { read = text(v) })
  await rt.run({ forMs: 5 })
  expect(read).toBe("pending")
  await rt.run({ forMs: 40 })
  await write
  // The write became durable at 10 ms, before the read completed at 30 ms.
  expect(read).toBe("1")
  const rows = disk.range({})
  await rt.run({ forMs: 30 })
  expect((await rows).map(([k]) => text(k))).toEqual(["a"])
})

test("a failed write rejects with storage-failed and applies nothing; later writes still land", async () => {
  const rt = new VirtualRuntime(1)
  const fail = [false, true, false]
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 5 }, failWrite: () => fail.shift() ?? false })
  const first = disk.batch([{ type: "put", key: key("a"), value: key("1") }])
  const second = disk.batch([{ type: "put", key: key("b"), value: key("2") }, { type: "del", key: key("a") }])
  const third = disk.batch([{ type: "put", key: key("c"), value: key("3") }])
  const outcome = second.then(() => "ok", (e: unknown) => e)
  await rt.run({ forMs: 50 })
  await first
  await third
  const e = await outcome
  expect(e).toBeInstanceOf(CanonError)
  expect((e as CanonError).code).toBe("storage-failed")
  expect(text(await disk.get(key("a")))).toBe("1")
  expect(await disk.get(key("b"))).toBeUndefined()
  expect(text(await disk.get(key("c")))).toBe("3")
})

test("without latency a failed write rejects at once", async () => {
  const disk = new MemoryStorage({ failWrite: () => true })
  await expect(disk.batch([{ type: "put", key: key("a"), value: key("1") }])).rejects.toMatchObject({ code: "storage-failed" })
  expect(disk.size).toBe(0)
})

test("a crash loses writes in flight and leaves reads in flight unanswered", async () => {
  const rt = new VirtualRuntime(1)
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 10, readMs: () => 10 } })
  const durable = disk.batch([{ type: "put", key: key("a"), value: key("1") }])
  await rt.run({ forMs: 20 })
  await durable
  let settled = false
  void disk.batch([{ type: "put", key: key("b"), value: key("2") }]).finally(() => { settled = true })
  void disk.get(key("a")).finally(() => { settled = true })
  disk.crash()
  await rt.run({ forMs: 100 })
  expect(settled).toBe(false)
  // The next incarnation reads what was durable.
  const next = disk.get(key("b"))
  await rt.run({ forMs: 20 })
  expect(await next).toBeUndefined()
  const a = disk.get(key("a"))
  await rt.run({ forMs: 20 })
  expect(text(await a)).toBe("1")
})

test("onBatch hears each batch as asked, onDurable only once it is durable; a crash's lost batch is never durable", async () => {
  const rt = new VirtualRuntime(1)
  const asked: string[] = []
  const durable: string[] = []
  const names = (ops: ReadonlyArray<{ type: string; key: Uint8Array }>) => ops.map((op) => `${op.type} ${text(op.key)}`).join(",")
  const disk = new MemoryStorage({ latency: { runtime: rt, ms: () => 10 }, onBatch: (ops) => asked.push(names(ops)), onDurable: (ops) => durable.push(names(ops)) })
  void disk.batch([{ type: "put", key: key("a"), value: key("1") }, { type: "del", key: key("b") }])
  expect(asked).toEqual(["put a,del b"])
  expect(durable).toEqual([])
  await rt.run({ forMs: 20 })
  expect(durable).toEqual(["put a,del b"])
  void disk.batch([{ type: "put", key: key("c"), value: key("3") }])
  disk.crash()
  await rt.run({ forMs: 20 })
  expect(asked).toEqual(["put a,del b", "put c"])
  expect(durable).toEqual(["put a,del b"])
})

test("failWrite sees the batch it decides about", async () => {
  const disk = new MemoryStorage({ failWrite: (ops) => ops.some((op) => text(op.key) === "bad") })
  await disk.batch([{ type: "put", key: key("good"), value: key("1") }])
  await expect(disk.batch([{ type: "put", key: key("bad"), value: key("1") }])).rejects.toMatchObject({ code: "storage-failed" })
  expect(text(await disk.get(key("good")))).toBe("1")
  expect(await disk.get(key("bad"))).toBeUndefined()
})

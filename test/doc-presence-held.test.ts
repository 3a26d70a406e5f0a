/**
 * A replica holds at most MAX_PRESENCE_HELD_BYTES of other clients' presence per document
 * (core/limits.ts), counted as about the memory it takes decoded. It held every clientId a hub
 * named, each state up to a frame, for as long as the connection lasted: a hostile hub (or
 * anyone on a ws:// path) could grow a tab's memory without bound. Counted first by wire bytes
 * (a review found): 4 states of 500,000 empty byte strings, under 4 MiB of wire, took 366 MiB.
 * Past the bound a newcomer is not shown (nor told as gone: it never came); a client that
 * leaves frees its room; presence is relayed as before under it.
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { flush, scriptedHub } from "./support/scripted-hub.js"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { MAX_PRESENCE_HELD_BYTES } from "../core/limits.js"
import { Todo } from "./support/machines.js"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

const DOC = "list"

const openDoc = async () => {
  const { client, deliver } = await scriptedHub([Todo])
  const doc = await client.open(Todo, DOC)
  await flush()
  const events: Array<{ clientId: string; state: unknown }> = []
  doc.on("presence", (e) => events.push(e))
  const presence = (clientId: string, state: unknown) => deliver({ type: "presence", docId: DOC, clientId, state })
  return { client, doc, events, presence }
}

// A 64 KiB string: about 128 KiB in memory (two bytes a character, at most).
const big = "x".repeat(64 << 10)
const name = (i: number) => `p${String(i).padStart(4, "0")}`

test("a hub naming ever more clients cannot grow what a document holds past the bound", async () => {
  const { client, doc, events, presence } = await openDoc()
  for (let i = 0; i < 500; i++) presence(name(i), { big })
  // Each holds at least its string's 64 Ki characters; some are held.
  expect(doc.presence.size).toBeGreaterThan(0)
  expect(doc.presence.size * big.length).toBeLessThanOrEqual(MAX_PRESENCE_HELD_BYTES)
  // The ones past the bound are not shown: the app hears of the held ones only.
  expect(events.length).toBe(doc.presence.size)
  expect(events.every((e) => e.state !== null && doc.presence.has(e.clientId))).toBe(true)
  await client.close()
})

test("what is small on the wire and large in memory counts as its memory", async () => {
  const { client, doc, events, presence } = await openDoc()
  // Under 1 MiB of wire each (what a frame carries), about 90 MiB each decoded.
  const wire = encodeCanonical(Array.from({ length: 500_000 }, () => new Uint8Array(0)))
  expect(wire.length).toBeLessThan(1 << 20)
  for (let i = 0; i < 4; i++) presence(name(i), decodeCanonical(wire))
  expect(doc.presence.size).toBe(0)
  expect(events).toEqual([])
  // Many clients with tiny ids and `{}` (a few bytes of wire each): the memory held stays
  // near the bound. Before: 707,000 held, 82 MiB.
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < 300_000; i++) presence(i.toString(36), {})
  events.length = 0
  gc()
  const grown = process.memoryUsage().heapUsed - before
  expect(doc.presence.size).toBeLessThan(100_000)
  expect(grown).toBeLessThan(2 * MAX_PRESENCE_HELD_BYTES)
  await client.close()
})

test("a client that leaves, or shrinks its state, frees room for another", async () => {
  const { client, doc, presence } = await openDoc()
  let k = 0
  while (k < 1000 && (presence(name(k), { big }), doc.presence.has(name(k)))) k++
  expect(k).toBeGreaterThan(2)
  presence("late", { big })
  expect(doc.presence.has("late")).toBe(false)
  presence(name(0), null)
  presence(name(1), { cursor: 1 })
  presence("late", { big })
  expect(doc.presence.has("late")).toBe(true)
  expect(doc.presence.get(name(1))).toEqual({ cursor: 1 })
  // Replacing a held client's state does not count it twice.
  for (let i = 0; i < 100; i++) presence(name(2), { big })
  expect(doc.presence.has(name(2))).toBe(true)
  await client.close()
})

test("small presence is relayed as before (control)", async () => {
  const { client, doc, events, presence } = await openDoc()
  presence("a", { x: 1 })
  presence("b", { x: 2 })
  presence("a", null)
  expect([...doc.presence]).toEqual([["b", { x: 2 }]])
  expect(events).toEqual([{ clientId: "a", state: { x: 1 } }, { clientId: "b", state: { x: 2 } }, { clientId: "a", state: null }])
  await client.close()
})

test("a state the app changes after it was given does not change what it counted for (a review)", async () => {
  const { client, doc, presence } = await openDoc()
  // The app keeps the avatar elsewhere and trims the state it was given. Counted again when
  // replaced, each state freed less than it took: after 80 updates of one client, no room.
  doc.on("presence", (e) => {
    if (e.state !== null) delete (e.state as Record<string, unknown>).avatar
  })
  for (let i = 0; i < 80; i++) presence("p1", { avatar: big, cursor: i })
  presence("p2", { cursor: 1 })
  expect(doc.presence.size).toBe(2)
  expect(doc.presence.get("p2")).toEqual({ cursor: 1 })
  await client.close()
})

test("a state far past the room is not counted whole (a review: a million nulls took 340 ms of the main thread)", async () => {
  const { client, doc, presence } = await openDoc()
  // Counts the elements read (a Proxy of an array is an array to Array.isArray).
  let reads = 0
  const nulls = new Proxy(new Array<null>(1_000_000).fill(null), {
    get(target, key, receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads++
      return Reflect.get(target, key, receiver)
    },
  })
  presence("p", nulls)
  expect(doc.presence.has("p")).toBe(false)
  // Stopped once past the room: each element counts 24 bytes, 8 MiB is about 350,000 of them.
  expect(reads).toBeLessThan(400_000)
  await client.close()
})

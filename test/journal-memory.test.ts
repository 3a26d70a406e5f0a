/**
 * What the state model keeps alive besides the state itself, which no count of the state sees
 * (the hub's memory gauge counts the state: core/state/heap-estimate.ts). A second review of
 * the gauge found two: the drafts a command read through (a Proxy and its meta, about 170
 * bytes each) stayed for as long as their objects did (one `find` over a million items held
 * 170 MB; the hub now lets them go after each batch, DocAuthority), and a string cut from a
 * longer one (`trim`, `slice`) kept the whole longer one alive (1,500 titles trimmed from
 * 256 KiB arguments held 288 MiB).
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { JournaledState, forgetDrafts, freezeState, grownOf } from "../core/journal.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const heapUsed = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

test("the drafts commands read through are kept between commands, and can be let go (the hub does after each batch)", () => {
  const js = new JournaledState({ items: Array.from({ length: 1_000 }, (_, n) => ({ n })) })
  js.begin()
  const first = js.draft().items[0]
  js.end()
  js.begin()
  // Reused by the next command: reading the same items again makes nothing new.
  expect(js.draft().items[0]).toBe(first)
  js.end()
  forgetDrafts(js)
  js.begin()
  const again = js.draft().items[0]
  expect(again).not.toBe(first)
  // Within a command a draft is the same object each time it is read.
  expect(js.draft().items[0]).toBe(again)
  js.end()
})

test("a string cut from a longer one is stored as a string of its own: the longer one can go", () => {
  const js = new JournaledState({ titles: [] as string[], byKey: {} as Record<string, string> })
  const before = heapUsed()
  for (let i = 0; i < 100; i++) {
    const argument = `${"x".repeat(1 << 20)}${i}`
    js.begin()
    const d = js.draft()
    // Both ways a string enters: pushed (the engine's array methods) and assigned.
    d.titles.push(argument.slice(0, 20))
    d.byKey[`k${i}`] = argument.slice(1, 40)
    js.end()
  }
  const held = heapUsed() - before
  // 100 arguments of 1 MiB: kept alive, 100 MiB; copied, a few hundred KB at most.
  expect(held).toBeLessThan(16 << 20)
  expect(js.root.titles[99]).toBe("x".repeat(20))
})

test("a write while a snapshot holds the state is charged the copy of the container it makes", () => {
  const js = new JournaledState({ map: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])) as Record<string, number>, list: Array.from({ length: 10_000 }, (_, i) => i) })
  const frozen = freezeState(js as JournaledState<unknown>)
  const before = grownOf(js)
  js.begin()
  const d = js.draft()
  d.map.k0 = -1
  d.list[0] = -1
  js.end()
  // The snapshot keeps both containers as they were: 10,000 entries and 10,000 slots copied.
  expect(grownOf(js) - before).toBeGreaterThanOrEqual(10_000 * 48 + 10_000 * 12)
  // A second write into a container already copied takes nothing more.
  const after = grownOf(js)
  js.begin()
  js.draft().map.k1 = -1
  js.end()
  expect(grownOf(js) - after).toBeLessThan(1_000)
  frozen.release()
})

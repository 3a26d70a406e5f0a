/**
 * The demo's remembered author names (apps/demo/web/known-names.ts) are keyed by clientId,
 * which any peer picks: "constructor", "toString" and "__proto__" are valid clientIds. Read off
 * a plain object they named a card's author "function Object() { [native code] }" for every
 * other user, and "__proto__" made every render write the names again. Kept in a Map, bounded.
 */
import { MAX_NAMES, knownNames, rememberNames } from "../apps/demo/web/known-names.js"

const memoryStorage = () => {
  const items = new Map<string, string>()
  return { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => void items.set(k, v), items }
}

test("clientIds that are Object.prototype's names are unknown until seen, and then kept as given", () => {
  const storage = memoryStorage()
  const names = knownNames(storage)
  for (const id of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) expect(names.get(id)).toBeUndefined()
  names.set("__proto__", "Mallory")
  names.set("constructor", "Eve")
  rememberNames(storage, names)
  const again = knownNames(storage)
  expect(again.get("__proto__")).toBe("Mallory")
  expect(again.get("constructor")).toBe("Eve")
  expect(again.get("toString")).toBeUndefined()
  expect(Object.getPrototypeOf(Object.fromEntries(again))).toBe(Object.prototype)
})

test("what is stored and not names (garbage, an array, non-string values) is ignored", () => {
  for (const stored of ["not json", "[1,2]", "null", '{"a":1,"b":"Bob","c":{"x":1}}']) {
    const names = knownNames({ getItem: () => stored })
    expect([...names]).toEqual(stored.includes("Bob") ? [["b", "Bob"]] : [])
  }
})

test(`at most ${MAX_NAMES} names are kept, the most recently seen`, () => {
  const storage = memoryStorage()
  const names = knownNames(storage)
  for (let i = 0; i < MAX_NAMES + 50; i++) names.set(`c${i}`, `n${i}`)
  rememberNames(storage, names)
  const again = knownNames(storage)
  expect(again.size).toBe(MAX_NAMES)
  expect(again.has("c0")).toBe(false)
  expect(again.get(`c${MAX_NAMES + 49}`)).toBe(`n${MAX_NAMES + 49}`)
})

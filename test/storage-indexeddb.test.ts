/**
 * IndexedDbStorage (adapters/indexeddb) against the shared Storage conformance suite, on
 * fake-indexeddb (an IndexedDB written to the specification, in memory, for Node). The real
 * browser runs it under the demo's tests (test/demo-e2e.test.ts: Chromium's IndexedDB).
 * Also: it reads what `canon/level` writes in a browser (browser-level, same layout), and
 * the other way round, so an app can move between the two without losing its data.
 */
import "fake-indexeddb/auto"
import { BrowserLevel } from "browser-level"
import { CanonError } from "../core/index.js"
import { IndexedDbStorage } from "../adapters/indexeddb/index.js"
import { storageConformance } from "./storage-conformance.js"

let n = 0

const deleteDatabase = (name: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name)
    req.onsuccess = () => resolve()
    req.onerror = () => reject(req.error)
  })

storageConformance("indexeddb (fake-indexeddb)", () => {
  const name = `conformance-${++n}`
  return {
    open: () => IndexedDbStorage.open(name),
    persistent: true,
    dispose: () => deleteDatabase(`level-js-${name}`),
  }
})

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

test("it reads what canon/level's browser build (browser-level) wrote, and browser-level reads what it writes", async () => {
  const level = new BrowserLevel<Uint8Array, Uint8Array>("shared", { keyEncoding: "view", valueEncoding: "view" })
  await level.open()
  await level.batch([{ type: "put", key: bytes("a"), value: bytes("from level") }, { type: "put", key: new Uint8Array([0xff, 0]), value: new Uint8Array([1, 2, 3]) }])
  await level.close()

  const idb = await IndexedDbStorage.open("shared")
  expect(await idb.get(bytes("a"))).toEqual(bytes("from level"))
  expect(await idb.range({})).toEqual([[bytes("a"), bytes("from level")], [new Uint8Array([0xff, 0]), new Uint8Array([1, 2, 3])]])
  await idb.batch([{ type: "put", key: bytes("b"), value: bytes("from canon/indexeddb") }, { type: "del", key: bytes("a") }])
  await idb.close()

  const again = new BrowserLevel<Uint8Array, Uint8Array>("shared", { keyEncoding: "view", valueEncoding: "view" })
  await again.open()
  expect(await again.get(bytes("b"))).toEqual(bytes("from canon/indexeddb"))
  expect(await again.get(bytes("a"))).toBeUndefined()
  await again.close()
})

test("another tab deleting the database closes this store instead of blocking; later calls say closed", async () => {
  const idb = await IndexedDbStorage.open("deleted-elsewhere")
  await idb.batch([{ type: "put", key: bytes("k"), value: bytes("v") }])
  await deleteDatabase("level-js-deleted-elsewhere")
  const err = await idb.get(bytes("k")).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(CanonError)
  expect((err as CanonError).code).toBe("closed")
})

test("a database of that name holding something else is refused as storage-corrupt, with what to do", async () => {
  await new Promise<void>((resolve, reject) => {
    const req = indexedDB.open("level-js-foreign", 1)
    req.onupgradeneeded = () => req.result.createObjectStore("not-it")
    req.onsuccess = () => (req.result.close(), resolve())
    req.onerror = () => reject(req.error)
  })
  const err = await IndexedDbStorage.open("foreign").catch((e: unknown) => e)
  expect(err).toBeInstanceOf(CanonError)
  expect((err as CanonError).code).toBe("storage-corrupt")
  expect((err as CanonError).message).toMatch(/open a different name, or delete that database/)
})

test("a value that is not bytes (written by something else) is refused as storage-corrupt, not handed on", async () => {
  const idb = await IndexedDbStorage.open("not-bytes")
  await idb.batch([{ type: "put", key: bytes("ok"), value: bytes("v") }])
  await idb.close()
  await new Promise<void>((resolve, reject) => {
    const req = indexedDB.open("level-js-not-bytes", 1)
    req.onsuccess = () => {
      const tx = req.result.transaction("not-bytes", "readwrite")
      tx.objectStore("not-bytes").put("a string", bytes("bad") as Uint8Array<ArrayBuffer>)
      tx.oncomplete = () => (req.result.close(), resolve())
      tx.onerror = () => reject(tx.error)
    }
    req.onerror = () => reject(req.error)
  })
  const again = await IndexedDbStorage.open("not-bytes")
  expect(await again.get(bytes("ok"))).toEqual(bytes("v"))
  for (const read of [() => again.get(bytes("bad")), () => again.range({}), () => again.range({ reverse: true })]) {
    const err = await read().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CanonError)
    expect((err as CanonError).code).toBe("storage-corrupt")
  }
  await again.close()
})

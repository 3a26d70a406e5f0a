/**
 * The shared Storage conformance suite over LevelStorage (classic-level on disk, a fresh
 * temp directory per test), plus what only a real directory can show: the lock held by an
 * open store, a location that cannot be a store, and fsync'd batches.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { CanonError } from "../core/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { storageConformance } from "./storage-conformance.js"
import { canonErrorOf } from "./support/errors.js"

const tempDir = (): string => mkdtempSync(path.join(os.tmpdir(), "canon-level-"))

storageConformance("level", () => {
  const dir = tempDir()
  return {
    open: () => LevelStorage.open(path.join(dir, "db")),
    persistent: true,
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  }
})

describe("LevelStorage: opening", () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const openError = canonErrorOf

  it("creates a missing directory (nested), with options as one object too", async () => {
    const kv = await LevelStorage.open({ location: path.join(dir, "a", "b", "db"), sync: true })
    await kv.batch([{ type: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) }])
    expect(await kv.get(new Uint8Array([1]))).toEqual(new Uint8Array([2]))
    expect(kv.location).toBe(path.join(dir, "a", "b", "db"))
    await kv.close()
  })

  it("a directory held by an open store is refused with a sentence saying so; free again after close", async () => {
    const location = path.join(dir, "db")
    const first = await LevelStorage.open(location)
    const e = await openError(LevelStorage.open(location))
    expect(e.code).toBe("storage-in-use")
    expect(e.message).toContain(location)
    expect(e.message).toMatch(/in use by another process/)
    expect(e.message).toMatch(/close it first, or open a different directory/)
    await first.close()
    const again = await LevelStorage.open(location)
    await again.close()
  })

  it("a location that is a file, or under a file, is refused with a sentence saying what to do", async () => {
    const file = path.join(dir, "plain-file")
    writeFileSync(file, "not a database")
    for (const location of [file, path.join(file, "db")]) {
      const e = await openError(LevelStorage.open(location))
      expect(e.code).toBe("storage-failed")
      expect(e.message).toContain(location)
      expect(e.message).toMatch(/not a directory .*choose a directory path/)
    }
  })

  it("a damaged store is refused as storage-corrupt; a store missing a file, with a sentence naming it", async () => {
    const location = path.join(dir, "db")
    const kv = await LevelStorage.open(location)
    await kv.batch([{ type: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) }])
    await kv.close()
    // LevelDB's CURRENT file names the manifest: garble it.
    writeFileSync(path.join(location, "CURRENT"), "garbage")
    const e = await openError(LevelStorage.open(location))
    expect(e.code).toBe("storage-corrupt")
    expect(e.message).toContain(location)
    expect(e.message).toMatch(/damaged .*restore it from a backup/)
    // Point it at a manifest that is not there.
    writeFileSync(path.join(location, "CURRENT"), "MANIFEST-999999\n")
    const missing = await openError(LevelStorage.open(location))
    expect(missing.code).toBe("storage-failed")
    expect(missing.message).toContain("MANIFEST-999999")
    expect(missing.message).toMatch(/no file of the store was removed/)
  })

  it("batch returns a rejected promise (never throws) for a malformed op", async () => {
    const kv = await LevelStorage.open(path.join(dir, "db"))
    let p: Promise<void> | undefined
    expect(() => { p = kv.batch([{ type: "put", key: new Uint8Array([1]), value: undefined as unknown as Uint8Array }]) }).not.toThrow()
    await expect(p).rejects.toBeInstanceOf(CanonError)
    await kv.close()
  })

  it("sync: true per store and per batch both write (and read back after reopen)", async () => {
    const location = path.join(dir, "db")
    const kv = await LevelStorage.open(location, { sync: true })
    await kv.batch([{ type: "put", key: new Uint8Array([1]), value: new Uint8Array([1]) }])
    await kv.batch([{ type: "put", key: new Uint8Array([2]), value: new Uint8Array([2]) }], { sync: false })
    await kv.close()
    const kv2 = await LevelStorage.open(location)
    await kv2.batch([{ type: "put", key: new Uint8Array([3]), value: new Uint8Array([3]) }], { sync: true })
    expect((await kv2.range({})).length).toBe(3)
    await kv2.close()
  })
})

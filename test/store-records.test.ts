/**
 * Canon's records over the Storage port (core/store), on both adapters: the format-version
 * key (a newer store is refused with `storage-too-new` and a sentence), a corrupted or
 * truncated record gives `storage-corrupt` naming the document and the key while every other
 * document keeps working, and a hole in a log is detected rather than replayed over.
 * LevelDB runs reopen the directory in between, as a restarted hub would.
 */
import { mkdtempSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { CanonClient, Hub, encodeCanonical, type ClientTransport, type Connection, type HubEvent, type KVStore, type ServerMessage, replicaStorage } from "../core/index.js"
import { AuthorityStore, ReplicaStore, STORAGE_FORMAT } from "../core/internal.js"
import * as K from "../core/store/keys.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { Counter, Todo } from "./support/machines.js"
import { canonErrorOf } from "./support/errors.js"
import { offlineTransport } from "./support/offline.js"

interface Fixture {
  kv: KVStore
  /** What a restarted process sees: the same data, opened again (LevelDB) or the same map (memory). */
  reopen(): Promise<KVStore>
  dispose(): Promise<void>
}

const adapters: Array<[string, () => Promise<Fixture>]> = [
  ["memory", async () => {
    const kv = new MemoryStorage()
    return { kv, reopen: async () => kv, dispose: async () => {} }
  }],
  ["level", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "canon-store-"))
    const location = path.join(dir, "db")
    const fx: Fixture = {
      kv: await LevelStorage.open(location),
      reopen: async () => {
        await fx.kv.close()
        fx.kv = await LevelStorage.open(location)
        return fx.kv
      },
      dispose: async () => {
        await fx.kv.close().catch(() => {})
        rmSync(dir, { recursive: true, force: true })
      },
    }
    return fx
  }],
]

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

const failure = canonErrorOf

/** A hub-side connection that keeps the outcomes the authority acknowledges. */
class Collector implements Connection<ServerMessage> {
  readonly bufferedAmount = 0
  readonly accepted: number[] = []
  readonly errors: string[] = []
  private waiting: Array<() => void> = []
  send(m: ServerMessage): void {
    if (m.type === "results") {
      for (const o of m.outcomes) if ("seq" in o) this.accepted.push(o.seq)
      for (const w of this.waiting.splice(0)) w()
    } else if (m.type === "error") this.errors.push(m.message)
  }
  close(): void {}
  results(): Promise<void> {
    return new Promise((r) => this.waiting.push(r))
  }
}

const hubOver = (kv: KVStore, onEvent?: (e: HubEvent) => void): Hub => new Hub({ machines: [Counter, Todo], storage: kv, runtime: new VirtualRuntime(3), ...(onEvent ? { onEvent } : {}) })

/** Commits `n` `incr` commands to `docId` through the authority, `perBatch` per group commit. */
const submitIncrs = async (hub: Hub, docId: string, n: number, from = 1, perBatch = 4): Promise<Collector> => {
  const doc = await hub.doc(docId, Counter)
  const conn = new Collector()
  for (let cs = from; cs < from + n; cs += perBatch) {
    const commands = []
    for (let i = cs; i < Math.min(cs + perBatch, from + n); i++) commands.push({ clientSeq: i, name: "incr", args: { by: 1 } })
    const done = conn.results()
    doc.submit(conn, `client-of-${docId}`, { type: "submit", docId, commands, ackedClientSeq: cs - 1 })
    await done
  }
  expect(conn.errors).toEqual([])
  return conn
}

/** Two documents of 10 entries each, written by a hub that is then dropped. */
const seedTwoDocs = async (kv: KVStore): Promise<void> => {
  const hub = hubOver(kv)
  await submitIncrs(hub, "alpha", 10)
  await submitIncrs(hub, "beta", 10)
  await hub.close()
}

/** The other document still loads, has its state, and takes new commands after `alpha` failed. */
const betaStillServes = async (hub: Hub): Promise<void> => {
  const beta = await hub.doc("beta", Counter)
  expect(beta.state.value).toBe(10)
  expect(beta.headSeq).toBe(10)
  const conn = await submitIncrs(hub, "beta", 3, 11)
  expect(conn.accepted).toEqual([11, 12, 13])
  expect(beta.state.value).toBe(13)
}

describe.each(adapters)("Canon records over %s", (_name, make) => {
  let fx: Fixture
  beforeEach(async () => {
    fx = await make()
  })
  afterEach(async () => {
    await fx.dispose()
  })

  describe("storage format key", () => {
    it("a fresh store is stamped with the current format; a current one opens", async () => {
      await new AuthorityStore(fx.kv).open()
      const raw = await fx.kv.get(K.formatKey)
      expect(raw).toEqual(encodeCanonical(STORAGE_FORMAT))
      const kv = await fx.reopen()
      await new ReplicaStore(kv).open()
      expect(await new AuthorityStore(kv).head("nothing")).toBeUndefined()
    })

    it("a store written by a newer format is refused with storage-too-new and a sentence, and left untouched", async () => {
      await seedTwoDocs(fx.kv)
      await fx.kv.batch([{ type: "put", key: K.formatKey, value: encodeCanonical(STORAGE_FORMAT + 1) }])
      const kv = await fx.reopen()
      const before = await kv.range({})

      const sentence = `The store was written by a newer Canon (format ${STORAGE_FORMAT + 1}; this build reads up to ${STORAGE_FORMAT}). Upgrade Canon to open it.`
      const a = await failure(new AuthorityStore(kv).head("alpha"))
      expect(a.code).toBe("storage-too-new")
      expect(a.message).toBe(sentence)
      const c = await failure(new AuthorityStore(kv).mark("alpha", "client"))
      expect(c.code).toBe("storage-too-new")
      const r = await failure(new ReplicaStore(kv).load("alpha"))
      expect(r.code).toBe("storage-too-new")
      expect(r.message).toBe(sentence)
      const id = await failure(new ReplicaStore(kv).clientId())
      expect(id.code).toBe("storage-too-new")
      const hub = hubOver(kv)
      const h = await failure(hub.doc("alpha", Counter))
      expect(h.code).toBe("storage-too-new")
      await hub.close()
      const offline: ClientTransport = { connect: () => { throw new Error("offline") } }
      const client = failure(CanonClient.open({ transport: offline, runtime: new VirtualRuntime(1), autoConnect: false, storage: replicaStorage(kv) }))
      expect((await client).code).toBe("storage-too-new")

      // Nothing was rewritten: an upgraded Canon finds the store as it was.
      expect(await kv.range({})).toEqual(before)
    })

    it("an unreadable format key is storage-corrupt", async () => {
      await fx.kv.batch([{ type: "put", key: K.formatKey, value: new Uint8Array([0xff, 0xfe]) }])
      const e = await failure(new AuthorityStore(await fx.reopen()).head("alpha"))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toMatch(/format key is unreadable/)
    })

    // A format that never existed (0, negative, fractional) must not be read as the current
    // one. core/store/format.ts accepts any number <= STORAGE_FORMAT today; when it refuses
    // these, drop `.failing`.
    it("a format number that never existed (0, 0.5) is refused, not misread", async () => {
      for (const v of [0, 0.5]) {
        await fx.kv.batch([{ type: "put", key: K.formatKey, value: encodeCanonical(v) }])
        const e = await failure(new AuthorityStore(fx.kv).head("alpha"))
        expect(["storage-corrupt", "storage-too-new"]).toContain(e.code)
      }
    })
  })

  describe("authority: corrupted records", () => {
    const corruptions: Array<[string, (good: Uint8Array) => Uint8Array]> = [
      ["garbage bytes", () => new Uint8Array([0xff, 0x00, 0x13])],
      ["a truncated value", (good) => good.subarray(0, good.length - 1)],
      ["an empty value", () => new Uint8Array(0)],
      ["a well-formed value of the wrong shape", () => encodeCanonical({ not: "an entry" })],
      ["trailing bytes", (good) => new Uint8Array([...good, 0x00])],
    ]

    it.each(corruptions)("a log entry with %s: storage-corrupt naming the document and key; other documents keep working", async (_what, damage) => {
      await seedTwoDocs(fx.kv)
      const key = K.authEntry("alpha", 3)
      const good = (await fx.kv.get(key))!
      expect(good).toBeDefined()
      await fx.kv.batch([{ type: "put", key, value: damage(good) }])
      const kv = await fx.reopen()

      const direct = await failure(new AuthorityStore(kv).entries("alpha", 0, 100))
      expect(direct.code).toBe("storage-corrupt")
      expect(direct.message).toContain(`document "alpha"`)
      expect(direct.message).toContain(hex(key))
      expect(direct.message).toContain("entry 3")

      const hub = hubOver(kv)
      const e = await failure(hub.doc("alpha", Counter))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain(`"alpha"`)
      expect(e.message).toContain(hex(key))
      await betaStillServes(hub)
      // Still refused on the next try (not cached half-loaded), and beta is unaffected.
      expect((await failure(hub.doc("alpha", Counter))).code).toBe("storage-corrupt")
      expect((await hub.doc("beta", Counter)).state.value).toBe(13)
      await hub.close()
    })

    it("a corrupted head: storage-corrupt naming the document and key; other documents keep working", async () => {
      await seedTwoDocs(fx.kv)
      const key = K.authHead("alpha")
      await fx.kv.batch([{ type: "put", key, value: encodeCanonical(["counter", 1, "ten"]) }])
      const hub = hubOver(await fx.reopen())
      const e = await failure(hub.doc("alpha", Counter))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain(`document "alpha"`)
      expect(e.message).toContain(hex(key))
      expect(e.message).toContain("head")
      await betaStillServes(hub)
      await hub.close()
    })

    it("a corrupted client mark: that client's commands get storage-corrupt naming the document (the operator gets the key); other clients and documents keep working", async () => {
      await seedTwoDocs(fx.kv)
      const key = K.authMark("alpha", "client-of-alpha")
      const good = (await fx.kv.get(key))!
      expect(good).toBeDefined()
      await fx.kv.batch([{ type: "put", key, value: good.subarray(0, 2) }])
      const reports: string[] = []
      const hub = hubOver(await fx.reopen(), (e) => { if (e.type === "doc-report") reports.push(`${e.code}: ${e.message}`) })
      const alpha = await hub.doc("alpha", Counter)
      const victim = new Collector()
      alpha.submit(victim, "client-of-alpha", { type: "submit", docId: "alpha", commands: [{ clientSeq: 11, name: "incr", args: { by: 1 } }], ackedClientSeq: 10 })
      const other = new Collector()
      const done = other.results()
      alpha.submit(other, "someone-else", { type: "submit", docId: "alpha", commands: [{ clientSeq: 1, name: "incr", args: { by: 1 } }], ackedClientSeq: 0 })
      await done
      expect(other.accepted).toEqual([11])
      expect(victim.accepted).toEqual([])
      expect(victim.errors).toHaveLength(1)
      // The peer is told the hub's sentence; what is damaged, and where, is the operator's
      // (hub-hook-failures: a store's own text can name paths).
      expect(victim.errors[0]).toBe(`The hub's storage failed reading this client's records of "alpha".`)
      const report = reports.find((r) => r.startsWith("client-unreadable: "))
      expect(report).toContain(`document "alpha"`)
      expect(report).toContain(hex(key))
      expect(report).toContain("client mark")
      await betaStillServes(hub)
      await hub.close()
    })

    it("a corrupted record of another document is not read while serving this one", async () => {
      await seedTwoDocs(fx.kv)
      await fx.kv.batch([{ type: "put", key: K.authEntry("alpha", 1), value: new Uint8Array([0xff]) }])
      const hub = hubOver(await fx.reopen())
      await betaStillServes(hub)
      await hub.close()
    })
  })

  describe("authority: holes in the log", () => {
    it("a missing entry in the middle is detected by entries() and on load", async () => {
      await seedTwoDocs(fx.kv)
      await fx.kv.batch([{ type: "del", key: K.authEntry("alpha", 5) }])
      const kv = await fx.reopen()
      const e = await failure(new AuthorityStore(kv).entries("alpha", 0, 100))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toBe(`The log of document "alpha" has a hole: entry 5 is missing (found 6).`)
      // A page starting right at the hole, as catch-up would read it.
      expect((await failure(new AuthorityStore(kv).entries("alpha", 4, 3))).message).toMatch(/entry 5 is missing/)
      const hub = hubOver(kv)
      const load = await failure(hub.doc("alpha", Counter))
      expect(load.code).toBe("storage-corrupt")
      expect(load.message).toMatch(/"alpha" has a hole: entry 5 is missing/)
      await betaStillServes(hub)
      await hub.close()
    })

    it("a missing first entry and a missing tail are detected", async () => {
      await seedTwoDocs(fx.kv)
      await fx.kv.batch([{ type: "del", key: K.authEntry("alpha", 1) }, { type: "del", key: K.authEntry("beta", 10) }])
      const hub = hubOver(await fx.reopen())
      const first = await failure(hub.doc("alpha", Counter))
      expect(first.code).toBe("storage-corrupt")
      expect(first.message).toMatch(/entry 1 is missing \(found 2\)/)
      const tail = await failure(hub.doc("beta", Counter))
      expect(tail.code).toBe("storage-corrupt")
      expect(tail.message).toBe(`Document "beta" has head 10 but its log ends at 9.`)
      await hub.close()
    })

    it("a hole at a load page boundary is detected (log longer than one replay page)", async () => {
      const hub0 = new Hub({ machines: [Counter], storage: fx.kv, runtime: new VirtualRuntime(3), catchUpPage: 4 })
      await submitIncrs(hub0, "long", 100, 1, 10)
      await hub0.close()
      // Load reads pages of catchUpPage * 8 = 32 entries: drop the first entry of the second page.
      await fx.kv.batch([{ type: "del", key: K.authEntry("long", 33) }])
      const hub = new Hub({ machines: [Counter], storage: await fx.reopen(), runtime: new VirtualRuntime(3), catchUpPage: 4 })
      const e = await failure(hub.doc("long", Counter))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toMatch(/"long" has a hole: entry 33 is missing \(found 34\)/)
      await hub.close()
    })

    it("a stray key inside the log range (wrong length) is storage-corrupt, not replayed", async () => {
      await seedTwoDocs(fx.kv)
      // Entry 5's key with one extra byte: sorts between entries 5 and 6.
      const stray = new Uint8Array([...K.authEntry("alpha", 5), 0x00])
      await fx.kv.batch([{ type: "put", key: stray, value: (await fx.kv.get(K.authEntry("alpha", 5)))! }])
      const hub = hubOver(await fx.reopen())
      const e = await failure(hub.doc("alpha", Counter))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain(`"alpha"`)
      await betaStillServes(hub)
      await hub.close()
    })

    it("an intact log reloads to the same state and head after reopening", async () => {
      await seedTwoDocs(fx.kv)
      const hub = hubOver(await fx.reopen())
      const alpha = await hub.doc("alpha", Counter)
      expect(alpha.state.value).toBe(10)
      expect(alpha.headSeq).toBe(10)
      // Retries of 9 and 10 (not yet acknowledged by the client) are answered from the stored
      // idempotency records with their original seqs, not applied again; 11 is new.
      const conn = await submitIncrs(hub, "alpha", 3, 9)
      expect(conn.accepted).toEqual([9, 10, 11])
      expect(alpha.state.value).toBe(11)
      await hub.close()
    })
  })

  describe("replica records", () => {
    const meta = (confirmedSeq: number, nextClientSeq: number) => ({ machine: "counter", version: 1, confirmedSeq, nextClientSeq })
    const entry = (seq: number) => ({ seq, time: 1_700_000_000_000 + seq, clientId: "other", clientSeq: seq, name: "incr", args: { by: 1 } })

    it("outbox and confirmations round-trip across a reopen", async () => {
      const rs = new ReplicaStore(fx.kv)
      await rs.setClientId("me")
      await rs.confirm("doc", { meta: meta(0, 3), entries: [], settled: [], outbox: [{ clientSeq: 1, name: "incr", args: { by: 1 } }, { clientSeq: 2, name: "incr", args: { by: 2 } }] })
      await rs.confirm("doc", { meta: meta(2, 3), entries: [entry(1), { ...entry(2), clientId: "me", clientSeq: 1 }], settled: [1] })
      const again = new ReplicaStore(await fx.reopen())
      expect(await again.clientId()).toBe("me")
      const loaded = (await again.load("doc"))!
      expect(loaded.meta).toEqual(meta(2, 3))
      expect(loaded.entries.map((e) => e.seq)).toEqual([1, 2])
      expect(loaded.outbox).toEqual([{ clientSeq: 2, name: "incr", args: { by: 2 } }])
      expect(await again.load("other-doc")).toBeUndefined()
    })

    it("a corrupted outbox record or meta: storage-corrupt naming the document and key; other documents load", async () => {
      const rs = new ReplicaStore(fx.kv)
      for (const d of ["alpha", "beta"]) await rs.confirm(d, { meta: meta(0, 3), entries: [], settled: [], outbox: [{ clientSeq: 1, name: "incr", args: { by: 1 } }, { clientSeq: 2, name: "incr", args: { by: 1 } }] })
      const outboxKey = K.replicaOutbox("alpha", 2)
      await fx.kv.batch([{ type: "put", key: outboxKey, value: new Uint8Array([0x08, 0x05]) }])
      const kv = await fx.reopen()
      const e = await failure(new ReplicaStore(kv).load("alpha"))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain(`document "alpha"`)
      expect(e.message).toContain(hex(outboxKey))
      expect((await new ReplicaStore(kv).load("beta"))!.outbox.length).toBe(2)

      const metaKey = K.replicaMeta("beta")
      await kv.batch([{ type: "put", key: metaKey, value: encodeCanonical(["counter"]) }])
      const m = await failure(new ReplicaStore(kv).load("beta"))
      expect(m.code).toBe("storage-corrupt")
      expect(m.message).toContain(`document "beta"`)
      expect(m.message).toContain(hex(metaKey))
    })

    it("a snapshot whose state bytes are damaged: opening the document is storage-corrupt naming it", async () => {
      await new ReplicaStore(fx.kv).confirm("alpha", { meta: meta(4, 1), entries: [], settled: [], snapshot: { seq: 4, state: new Uint8Array([0xff, 0x00, 0x13]), dropFrom: 1, dropTo: 0 } })
      const client = await CanonClient.open({ transport: offlineTransport, runtime: new VirtualRuntime(1), autoConnect: false, storage: replicaStorage(await fx.reopen()) })
      const e = await failure(client.open(Counter, "alpha"))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toMatch(/^The stored snapshot of document "alpha" is unreadable: /)
      await client.close()
    })

    it("a hole in the replica's confirmed entries is detected when the document opens", async () => {
      const rs = new ReplicaStore(fx.kv)
      await rs.setClientId("me")
      await rs.confirm("alpha", { meta: meta(5, 1), entries: [1, 2, 3, 4, 5].map(entry), settled: [] })
      await rs.confirm("beta", { meta: meta(2, 1), entries: [1, 2].map(entry), settled: [] })
      await fx.kv.batch([{ type: "del", key: K.replicaEntry("alpha", 3) }])
      const offline: ClientTransport = { connect: () => { throw new Error("offline") } }
      const client = await CanonClient.open({ transport: offline, runtime: new VirtualRuntime(1), autoConnect: false, storage: replicaStorage(await fx.reopen()) })
      const e = await failure(client.open(Counter, "alpha"))
      expect(e.code).toBe("storage-corrupt")
      expect(e.message).toContain(`"alpha"`)
      const beta = await client.open(Counter, "beta")
      expect(beta.state.value).toBe(2)
      await client.close()
    })
  })
})

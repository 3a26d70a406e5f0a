/**
 * Whole Yjs documents on the hub hold at most `maxDocStructs` structs. Each update was bounded
 * where it entered (1 MiB, 2^18 structs), but nothing bounded the document: updates accepted
 * one after another grew it until the hub ran out of memory. An update that could take the
 * document past the bound (its structs now, plus what the update may add: its new structs,
 * each with a split, and the splits its deleted ranges make) is now refused whole,
 * `update-too-large`, and the document stays as it was, encodes, reloads and serves. Run
 * with small bounds, through the authority on memory storage and through the y-websocket
 * route on a real WsServer.
 */
import * as Y from "yjs"
import fc from "fast-check"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { MemoryStorage } from "../adapters/memory/index.js"
import { CrdtDocHost } from "../core/crdt-docs/index.js"
import { encodeUpdate, yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { rawUpdate, type RawId } from "./support/yjs-raw.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { until } from "./support/ws.js"

const BOUND = 2_000
const REFUSAL = new RegExp(`^The document would pass the hub's bound of ${BOUND} structs; split its data into more documents\\.$`)

const host = (storage: MemoryStorage, maxDocStructs: number) =>
  new CrdtDocHost({ engines: [yjsDocEngine({ maxDocStructs })], storage, sync: false, compactAfterBytes: 1 << 30 })

const structCount = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) n += list.length
  return n
}

/** Updates of `n` one-character items each that do not merge (inserted at alternate ends), from one writer. */
const scatteredUpdates = (clientID: number, count: number, n: number): { writer: Y.Doc; updates: Uint8Array[] } => {
  const writer = new Y.Doc()
  writer.clientID = clientID
  const updates: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => updates.push(u))
  const t = writer.getText("t")
  for (let k = 0; k < count; k++) {
    writer.transact(() => {
      for (let i = 0; i < n; i++) t.insert(i % 2 === 0 ? 0 : t.length, String.fromCharCode(97 + (i % 26)))
    })
  }
  return { writer, updates }
}

/** The text of a document made of the first `k` of `updates`. */
const textOf = (updates: ReadonlyArray<Uint8Array>, k: number): string => {
  const d = new Y.Doc()
  for (const u of updates.slice(0, k)) Y.applyUpdate(d, u)
  const s = d.getText("t").toString()
  d.destroy()
  return s
}

test("a document takes updates up to its struct bound, refuses the one that could cross it, and still encodes, reloads and serves", async () => {
  const storage = new MemoryStorage()
  const h = host(storage, BOUND)
  const doc = await h.open<Y.Doc>("yjs", "full")
  // At most 40 updates of 100 structs (twice the bound): bounded either way.
  const { writer, updates } = scatteredUpdates(7, 40, 100)
  let taken = 0
  let refusal: { code: string; message: string } | undefined
  for (const u of updates) {
    const out = await doc.submit([u])
    if (out.rejected.length > 0) {
      refusal = out.rejected[0]
      break
    }
    expect(out.stored).toBe(1)
    taken++
    expect(structCount(doc.doc)).toBeLessThanOrEqual(BOUND)
  }
  expect(refusal).toEqual({ code: "update-too-large", index: 0, message: expect.stringMatching(REFUSAL) })
  expect(taken).toBeGreaterThanOrEqual(5)
  // Refused whole: the document is what the taken updates make.
  expect(doc.doc.getText("t").toString()).toBe(textOf(updates, taken))
  expect(structCount(doc.doc)).toBeLessThanOrEqual(BOUND)
  // A resend of everything the document has (a reconnecting client's step2 carries its whole
  // delete set) adds nothing and is acknowledged, not counted as growth.
  const held = Y.encodeStateAsUpdate(doc.doc)
  expect(await doc.submit([held])).toEqual({ stored: 0, known: 1, rejected: [] })
  // It encodes, and a fresh peer gets the same content from it.
  const fresh = new Y.Doc()
  Y.applyUpdateV2(fresh, doc.engine.encode(doc.doc))
  expect(fresh.getText("t").toString()).toBe(textOf(updates, taken))
  await h.close()
  // It reloads from storage whole.
  const again = await host(storage, BOUND).open<Y.Doc>("yjs", "full")
  expect(again.doc.getText("t").toString()).toBe(textOf(updates, taken))
  expect(again.seq).toBe(taken)
  fresh.destroy()
  writer.destroy()
})

test("deleted ranges count the splits they make, and ranges over what is deleted already count nothing", async () => {
  const writer = new Y.Doc()
  writer.clientID = 9
  writer.getText("t").insert(0, "abcdefghijklmnopqrstuvwxyz")
  // One struct of 26 characters; deleting every other one from "b" to "x" (12 ranges) splits
  // it at both ends of each: 25 structs.
  const text = Y.encodeStateAsUpdate(writer)
  const everyOther = rawUpdate([], Array.from({ length: 12 }, (_, i) => [9, 1 + 2 * i, 1] as const))
  for (const [bound, taken] of [[24, false], [25, true]] as const) {
    const h = host(new MemoryStorage(), bound)
    const doc = await h.open<Y.Doc>("yjs", "deletes")
    expect(await doc.submit([text])).toMatchObject({ stored: 1, rejected: [] })
    const before = Y.encodeStateAsUpdate(doc.doc)
    const out = await doc.submit([everyOther])
    if (!taken) {
      expect(out.rejected).toEqual([{ code: "update-too-large", index: 0, message: "The document would pass the hub's bound of 24 structs; split its data into more documents." }])
      // Refused whole: nothing of it was applied.
      expect(Y.encodeStateAsUpdate(doc.doc)).toEqual(before)
    } else {
      expect(out).toEqual({ stored: 1, known: 0, rejected: [] })
      expect(structCount(doc.doc)).toBe(25)
      // At the bound: the same ranges again split nothing (deleted already), known; deleting
      // "c", a struct of its own, splits nothing either and is taken.
      expect(await doc.submit([everyOther])).toEqual({ stored: 0, known: 1, rejected: [] })
      expect(await doc.submit([rawUpdate([], [[9, 2, 1]])])).toEqual({ stored: 1, known: 0, rejected: [] })
      expect(doc.doc.getText("t").toString()).toBe("aegikmoqsuwyz")
      expect(structCount(doc.doc)).toBeLessThanOrEqual(25)
    }
    await h.close()
  }
  writer.destroy()
})

test("an item inside a struct is counted with its split", async () => {
  // Client 1 wrote "abc" (one struct), client 2 "xyz" after it (one struct): 2 structs.
  const base = [rawUpdate([{ client: 1, clock: 0, items: [{ root: "t", text: "abc" }] }]), rawUpdate([{ client: 2, clock: 0, items: [{ origin: [1, 2], text: "xyz" }] }])]
  // Client 3's item goes between (1,1) and (1,2): Yjs splits "abc", the split stays.
  const hostile = rawUpdate([{ client: 3, clock: 0, items: [{ origin: [1, 1], right: [1, 2], text: "q" }] }])
  // (One between (1,1) and (2,1), inside both, skips characters those were written next to: no Yjs document writes it, refused.)
  const skipping = rawUpdate([{ client: 3, clock: 0, items: [{ origin: [1, 1], right: [2, 1], text: "q" }] }])
  for (const [bound, taken] of [[3, false], [4, true]] as const) {
    const h = host(new MemoryStorage(), bound)
    const doc = await h.open<Y.Doc>("yjs", "splits")
    expect(await doc.submit(base)).toMatchObject({ stored: 2, rejected: [] })
    expect((await doc.submit([skipping])).rejected[0]?.code).toBe("update-malformed")
    const out = await doc.submit([hostile])
    expect({ bound, taken: out.stored === 1, code: out.rejected[0]?.code }).toEqual({ bound, taken, code: taken ? undefined : "update-too-large" })
    expect(structCount(doc.doc)).toBeLessThanOrEqual(bound)
    await h.close()
  }
})

test("hostile items and deletions never take a document past its bound (property)", async () => {
  const bound = 24
  let refused = 0
  /**
   * One update: a new client's items, each between two ids the document has (in any order, or
   * an id and the character right of it, which the hub takes), and a deleted range.
   */
  const item = fc.record({ origin: fc.nat(), right: fc.nat(), text: fc.string({ minLength: 1, maxLength: 4 }) })
  const step = fc.record({ items: fc.array(item, { minLength: 1, maxLength: 3 }), del: fc.nat(), len: fc.integer({ min: 1, max: 6 }) })
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 30 }), async (steps) => {
    const h = host(new MemoryStorage(), bound)
    const doc = await h.open<Y.Doc>("yjs", "p")
    await doc.submit([rawUpdate([{ client: 1, clock: 0, items: [{ root: "t", text: "abcdefghij" }] }])])
    // Every id the document holds, as [client, clock].
    const ids = (): RawId[] => [...doc.doc.store.clients].flatMap(([client, structs]) => {
      const last = structs[structs.length - 1]!
      return Array.from({ length: last.id.clock + last.length }, (_, clock) => [client, clock] as const)
    })
    /** The id of the character right of `id` in the text (deleted ones included), if any. */
    const rightOf = ([c, k]: RawId): RawId | undefined => {
      let seen = false
      for (let it = doc.doc.getText("t")._start; it !== null; it = it.right as Y.Item | null) {
        for (let j = 0; j < it.length; j++) {
          if (seen) return [it.id.client, it.id.clock + j]
          seen = it.id.client === c && it.id.clock + j === k
        }
      }
      return undefined
    }
    let client = 100
    for (const s of steps) {
      const all = ids()
      const [dc, dclock] = all[s.del % all.length]!
      const u = rawUpdate(
        [{
          client: client++, clock: 0, items: s.items.map((it) => {
            const origin = all[it.origin % all.length]!
            return { origin, right: (it.right % 2 === 0 ? rightOf(origin) : undefined) ?? all[it.right % all.length]!, text: it.text }
          }),
        }],
        [[dc, dclock, Math.min(s.len, ids().filter(([c]) => c === dc).length - dclock)]],
      )
      const out = await doc.submit([u])
      if (out.rejected[0]?.code === "update-too-large") refused++
      expect(structCount(doc.doc)).toBeLessThanOrEqual(bound)
    }
    // Whatever it took encodes and loads again, as the same text (an item whose origins could
    // not have been neighbours is refused: test/yjs-integrable-origins.property.test.ts).
    const again = doc.engine.load(doc.engine.encode(doc.doc))
    expect(again.getText("t").toString()).toBe(doc.doc.getText("t").toString())
    again.destroy()
    await h.close()
  }), { numRuns: 40, seed: 20240611 })
  // The runs reach the bound (else the property would say nothing).
  expect(refused).toBeGreaterThan(0)
})

test("a document stored past a lowered bound loads whole and takes no more", async () => {
  const storage = new MemoryStorage()
  const { writer, updates } = scatteredUpdates(11, 8, 100)
  const h = host(storage, 10_000)
  const doc = await h.open<Y.Doc>("yjs", "lowered")
  expect(await doc.submit(updates)).toMatchObject({ stored: 8, rejected: [] })
  const text = doc.doc.getText("t").toString()
  await h.close()
  const lower = host(storage, 300)
  const again = await lower.open<Y.Doc>("yjs", "lowered")
  // Acknowledged edits are never dropped on load, whatever the bound is now.
  expect(again.doc.getText("t").toString()).toBe(text)
  expect(structCount(again.doc)).toBeGreaterThan(300)
  const more = new Y.Doc()
  more.clientID = 12
  Y.applyUpdate(more, Y.encodeStateAsUpdate(again.doc))
  more.getText("t").insert(0, "x")
  const out = await again.submit([Y.encodeStateAsUpdate(more, Y.encodeStateVector(again.doc))])
  expect(out.rejected).toEqual([{ code: "update-too-large", index: 0, message: "The document would pass the hub's bound of 300 structs; split its data into more documents." }])
  expect(again.doc.getText("t").toString()).toBe(text)
  await lower.close()
  more.destroy()
  writer.destroy()
})

test("maxDocStructs is checked: a whole number of at least 1", () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(() => yjsDocEngine({ maxDocStructs: bad })).toThrow(/maxDocStructs must be a whole number of at least 1/)
  }
  expect(() => yjsDocEngine({ maxDocStructs: 1 })).not.toThrow()
})

test("y-websocket route: the update that would cross the bound closes its socket 4400 with the reason; the document keeps serving", async () => {
  const reports: Array<{ code: string; message: string }> = []
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine({ maxDocStructs: BOUND })], (h) => [yjsRoute(h)], {
    onEvent: (e) => {
      if (e.type === "crdt" && e.event.type === "refused") reports.push(e.event)
    },
  })
  const base = url("/yjs")
  const sockets: WebSocket[] = []
  const providers: WebsocketProvider[] = []
  try {
    // A reader following the room before the writer fills it.
    const watcher = new WebSocket(`${base}/room?token=reader`)
    sockets.push(watcher)
    let watcherClosed: number | undefined
    watcher.on("close", (code) => (watcherClosed = code))
    await new Promise((r, j) => { watcher.once("open", r); watcher.once("error", j) })

    const { writer, updates } = scatteredUpdates(21, 40, 100)
    const ws = new WebSocket(`${base}/room?token=writer`)
    sockets.push(ws)
    let closed: { code: number; reason: string } | undefined
    ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    // All at once: the socket's updates are taken in order until one is refused.
    for (const u of updates) ws.send(encodeUpdate(u))
    expect(await until(() => closed !== undefined, 10_000)).toBe(true)
    expect(closed!.code).toBe(4400)
    expect(closed!.reason).toBe(`update-too-large: The document would pass the hub's bound of ${BOUND} structs; split its data into more documents.`)
    expect(reports).toContainEqual({ type: "refused", code: "update-too-large", message: expect.stringContaining(`"room": The document would pass the hub's bound of ${BOUND} structs`) })

    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "room")
    const text = doc.doc.getText("t").toString()
    const taken = updates.findIndex((_, k) => textOf(updates, k) === text)
    expect(taken).toBeGreaterThanOrEqual(5)
    expect(taken).toBeLessThan(updates.length)
    expect(structCount(doc.doc)).toBeLessThanOrEqual(BOUND)
    hub.crdtDocs.release(doc)

    // Nobody else was cut off, and a fresh stock client syncs what the document holds.
    expect(watcherClosed).toBeUndefined()
    const reader = new WebsocketProvider(base, "room", new Y.Doc(), { WebSocketPolyfill: WebSocket as never, params: { token: "late" }, maxBackoffTime: 200, disableBc: true })
    providers.push(reader)
    expect(await until(() => reader.synced, 10_000)).toBe(true)
    expect(reader.doc.getText("t").toString()).toBe(text)
    writer.destroy()
  } finally {
    for (const p of providers) {
      p.destroy()
      p.doc.destroy()
    }
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 30_000)

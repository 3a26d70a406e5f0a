/**
 * The whole-document struct bounds (a /yjs hub document's maxDocStructs, a peer session's)
 * count structs as they are held, a shared type as one, and stay exact as types are replaced.
 * 93c1368 weighed types 4 there too (for CRDT fields' load check, which these documents do
 * not have) with a tally that only grew after deletions: a document that kept replacing one
 * Y.Map was refused for good, and one stored under its bound was counted past it, read-only
 * after the upgrade. Found by a helper's review; the weighing is the CRDT field's only now
 * (weighedStructs, test/yjs-struct-count.test.ts).
 */
import * as Y from "yjs"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"
import { countV2Structs, encodeIntegratedV2 } from "../adapters/yjs/integrable.js"
import { YSyncSession, memoryLinkPair } from "../adapters/peer/index.js"
import { sleep } from "./support/ws.js"

test("a hub document that replaces one Y.Map again and again is never refused: it holds a few structs", async () => {
  const BOUND = 400
  const engine = yjsDocEngine({ maxDocStructs: BOUND })
  const doc = engine.empty()
  const writer = new Y.Doc()
  const updates: Uint8Array[] = []
  writer.on("update", (u: Uint8Array) => updates.push(u))
  const root = writer.getMap("root")
  const outcomes: unknown[] = []
  for (let i = 0; i < 300; i++) {
    root.set("current", new Y.Map())
    const u = updates.shift()!
    const c = engine.check(u)
    expect(c.ok).toBe(true)
    await engine.prepare?.(u)
    const [r] = await engine.apply(doc, [u])
    outcomes.push(r)
  }
  // What the document holds, counted as a stored state is (types weighing 4): tiny.
  const held = countV2Structs(encodeIntegratedV2(doc), 1 << 30) as number
  expect(held).toBeLessThan(20)
  expect(outcomes.filter((r) => typeof r === "object" && !(r instanceof Uint8Array))).toEqual([])
})

test("a peer that replaces one Y.Map again and again keeps syncing: its document holds a few structs", async () => {
  const a = new Y.Doc()
  const b = new Y.Doc()
  const [la, lb] = memoryLinkPair()
  const errors: string[] = []
  const sa = new YSyncSession(a, la)
  const sb = new YSyncSession(b, lb, { maxDocStructs: 400, onError: (e) => errors.push(`${e.code}: ${e.message}`) })
  await sleep(20)
  for (let i = 0; i < 300; i++) {
    a.getMap("root").set("current", new Y.Map())
    if (i % 50 === 0) await sleep(1)
  }
  await sleep(50)
  const held = countV2Structs(encodeIntegratedV2(b), 1 << 30) as number
  sa.destroy()
  sb.destroy()
  expect(errors).toEqual([])
  expect(held).toBeLessThan(20)
  expect(Y.encodeStateVector(b)).toEqual(Y.encodeStateVector(a))
})

test("a stored hub document under its bound as counted when stored still takes a one-character edit", async () => {
  const BOUND = 2_000
  const engine = yjsDocEngine({ maxDocStructs: BOUND })
  // What the hub stored (built under the previous count: about 1,200 structs).
  const writer = new Y.Doc()
  const frag = writer.getXmlFragment("prosemirror")
  writer.transact(() => {
    for (let i = 0; i < 300; i++) {
      const p = new Y.XmlElement("paragraph")
      p.insert(0, [new Y.XmlText("x")])
      frag.insert(frag.length, [p])
    }
  })
  let plain = 0
  for (const l of writer.store.clients.values()) plain += l.length
  expect(plain).toBeLessThan(BOUND / 2)
  const doc = engine.load(Y.encodeStateAsUpdateV2(writer))
  // One character typed into the first paragraph.
  const before = Y.encodeStateVector(writer)
  ;((frag.get(0) as Y.XmlElement).get(0) as Y.XmlText).insert(1, "y")
  const u = Y.encodeStateAsUpdate(writer, before)
  expect(engine.check(u).ok).toBe(true)
  await engine.prepare?.(u)
  expect((await engine.apply(doc, [u]))[0]).toBeInstanceOf(Uint8Array)
})

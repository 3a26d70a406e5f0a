/**
 * A CRDT field's limits (`maxUpdateBytes`, Yjs `maxStructs`) say what it accepts from now on;
 * they are not in the machine's fingerprint, so a hub (or an app) can be restarted with lower
 * ones. What the authority logged under the higher ones must still replay: the hub replayed
 * its log with the field checking those limits on `trusted` updates too, refused the merge,
 * and went on without it, without a word: text the first hub acknowledged was gone from the
 * state every replica then resynced to. A replica whose app has lower limits than its hub's
 * refused the hub's entries the same way, and its field differed from everyone else's.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type HubEvent } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

type Limits = { maxUpdateBytes?: number; maxStructs?: number }
const yNote = (limits: Limits = {}) =>
  defineMachine({ name: "ynote", version: 1, initial: () => ({ title: "" }), crdt: { body: yText(limits) }, commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s, a) => { s.title = a.title } } } })
const aNote = (limits: Limits = {}) =>
  defineMachine({ name: "anote", version: 1, initial: () => ({ title: "" }), crdt: { body: automergeText(limits) }, commands: { rename: { args: Schema.Struct({ title: Schema.String }), apply: (s, a) => { s.title = a.title } } } })
type Note = ReturnType<typeof yNote> | ReturnType<typeof aNote>

const textOf = (doc: { crdt: unknown }): string => {
  const body = (doc.crdt as { body: { toString(): string; text?: string } }).body
  return typeof body.text === "string" ? body.text : body.toString()
}
const insert = (doc: { crdt: unknown }, at: number, s: string): void => {
  const body = (doc.crdt as { body: { insert?(i: number, s: string): void; splice?(i: number, n: number, s: string): void } }).body
  if (body.insert !== undefined) body.insert(at, s)
  else body.splice!(at, 0, s)
}

/** One storage, hubs started on it one after the other, clients on one network. */
const world = () => {
  const storage = new MemoryStorage()
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const reports: string[] = []
  const hubWith = (m: Note, options: { snapshots?: { minLogBytes: number } } = {}) => {
    const hub = new Hub({ machines: [m], storage, runtime: rt, onEvent: (e: HubEvent) => { if (e.type === "doc-report") reports.push(e.code) }, ...options })
    net.listen(hub)
    return hub
  }
  let n = 0
  const open = async <M extends Note>(m: M) => running(rt, (await running(rt, CanonClient.open({ transport: net.transport(`c${n++}`), runtime: rt }))).open(m, "n"))
  return { rt, reports, hubWith, open, run: (ms: number) => settleWithTurns(rt, ms) }
}

describe.each([["Yjs", yNote], ["Automerge", aNote]] as const)("%s: a field's update limit lowered", (_, note) => {
  test("text acknowledged under the higher limit is in the state a hub restarted with the lower one replays", async () => {
    const w = world()
    const before = note()
    const after = note({ maxUpdateBytes: 1024 })
    expect(after.fingerprint).toBe(before.fingerprint)
    const first = w.hubWith(before)
    const writer = await w.open(before)
    const text = "hello world ".repeat(500) // one update of about 6 KB
    insert(writer, 0, text)
    await w.run(500)
    expect(writer.pendingCount).toBe(0)
    const want = (await running(w.rt, first.doc("n", before))).stateHash()
    await running(w.rt, first.close())

    const second = w.hubWith(after)
    expect((await running(w.rt, second.doc("n", after))).stateHash()).toBe(want)
    // A reader of either build follows it whole; the lower limit still holds for new updates.
    const [old, fresh] = [await w.open(before), await w.open(after)]
    await w.run(2000)
    expect([textOf(old).length, textOf(fresh).length]).toEqual([text.length, text.length])
    expect(w.reports).toEqual([])
    insert(fresh, 0, "x".repeat(3000))
    await w.run(2000)
    expect(textOf(old)).toBe(textOf(fresh))
  })

  test("a replica whose app has a lower limit than its hub's applies the hub's larger entries", async () => {
    const w = world()
    w.hubWith(note())
    const [writer, small] = [await w.open(note()), await w.open(note({ maxUpdateBytes: 1024 }))]
    const trouble: string[] = []
    small.on("desync", () => trouble.push("desync"))
    small.on("error", (e) => trouble.push(e.code))
    await w.run(100)
    insert(writer, 0, "large paste ".repeat(400))
    await w.run(2000)
    expect(textOf(small)).toBe(textOf(writer))
    expect(small.confirmedHash()).toBe(writer.confirmedHash())
    // Applied as it came, not refused and then repaired from the hub's state.
    expect(trouble).toEqual([])
  })
})

describe("Yjs: maxStructs lowered below a field's size", () => {
  for (const snapshot of [false, true]) {
    test(`the field ${snapshot ? "in a snapshot" : "in the log"} still loads whole; new updates past the bound are refused`, async () => {
      const w = world()
      const before = yNote()
      const after = yNote({ maxStructs: 200 })
      const options = snapshot ? { snapshots: { minLogBytes: 1 } } : { snapshots: { minLogBytes: Infinity } }
      const first = w.hubWith(before, options)
      const writer = await w.open(before)
      // 300 one-character inserts at the start, each its own update: 300 structs that do not merge.
      for (let i = 0; i < 300; i++) {
        insert(writer, 0, "x")
        await w.rt.run({ forMs: 2 })
      }
      await w.run(1000)
      expect(writer.pendingCount).toBe(0)
      const want = (await running(w.rt, first.doc("n", before))).stateHash()
      await running(w.rt, first.close())

      const second = w.hubWith(after, options)
      expect((await running(w.rt, second.doc("n", after))).stateHash()).toBe(want)
      const reader = await w.open(after)
      await w.run(2000)
      expect(textOf(reader)).toBe("x".repeat(300))
      const refused: string[] = []
      reader.on("rejected", (e) => refused.push(e.rejection.message))
      insert(reader, 0, "y")
      await w.run(2000)
      // The change, and its tombstone (one struct is still past the bound).
      expect(refused.length).toBeGreaterThan(0)
      for (const r of refused) expect(r).toContain("more than a field may (200)")
      expect(textOf(reader)).toBe("x".repeat(300))
      expect(w.reports).toEqual([])
    })
  }
})

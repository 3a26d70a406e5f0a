/**
 * An app's editor binding hears of an edit from the handle (Yjs `observe`, Automerge
 * `onChange`) and shows "saving…" from `doc.pendingCount` / `doc.pending` there. The edit is
 * in the field by then, and not stored: it must be counted. Automerge told the app's watchers
 * before the field (and a watcher that threw kept the edit from the outbox for good).
 */
import * as Schema from "effect/Schema"
import { CanonClient, defineMachine, type Doc } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { offlineTransport } from "./support/offline.js"

const Pad = defineMachine({
  name: "pad",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { body: yText(), notes: automergeText() },
  commands: { title: { args: Schema.Struct({ s: Schema.String }), apply: (st, { s }) => { st.title = s } } },
})
type PadDoc = Doc<typeof Pad>

const HOOKS = {
  Yjs: {
    type: (d: PadDoc, s: string) => d.crdt.body.insert(d.crdt.body.length, s),
    text: (d: PadDoc) => d.crdt.body.toString(),
    watch: (d: PadDoc, fn: () => void) => d.crdt.body.observe(fn),
  },
  Automerge: {
    type: (d: PadDoc, s: string) => d.crdt.notes.splice(d.crdt.notes.text.length, 0, s),
    text: (d: PadDoc) => d.crdt.notes.text,
    watch: (d: PadDoc, fn: () => void) => d.crdt.notes.onChange(fn),
  },
} as const

// Automerge only: Yjs emits a transaction's `update` (what the field reports to the outbox)
// after its observers ran, so a Yjs observer still reads the count before its edit (open:
// counting it there needs the engine to say a local change is coming, `beforeObserverCalls`).
const cases = [["Automerge", test]] as const
describe.each(cases)("%s field", (engine, it) => {
  const { type, text, watch } = HOOKS[engine]

  it("pendingCount read in the handle's change callback counts the edit that called it", async () => {
    const rt = new VirtualRuntime(1)
    const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage: new MemoryStorage() })
    const doc = await client.open(Pad, "p")
    const seen: Array<[number, boolean[]]> = []
    watch(doc, () => seen.push([doc.pendingCount, doc.pending.map((p) => p.stored)]))
    type(doc, "a")
    // Right after the edit returns it is counted (15e85cd); the callback that told the app of
    // it said nothing was pending.
    expect(doc.pendingCount).toBe(1)
    expect(seen).toEqual([[1, [false]]])
    await doc.whenStored()
    expect(text(doc)).toBe("a")
    await client.close()
  })
})

test("Automerge: an app's onChange that throws does not keep the edit from becoming a command", async () => {
  const rt = new VirtualRuntime(1)
  const storage = new MemoryStorage()
  const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage })
  const doc = await client.open(Pad, "p")
  doc.crdt.notes.onChange(() => {
    throw new Error("the app's bug")
  })
  expect(() => doc.crdt.notes.splice(0, 0, "kept")).toThrow("the app's bug")
  expect(doc.crdt.notes.text).toBe("kept")
  await doc.whenStored()
  expect(doc.pending.map((p) => [p.name, p.stored])).toEqual([["$crdt.notes", true]])
  await client.close()
  const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage })
  expect((await again.open(Pad, "p")).crdt.notes.text).toBe("kept")
  await again.close()
})

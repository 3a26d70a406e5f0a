/**
 * `doc.whenStored()` called from a handle's own change callback (Yjs `observe`, Automerge
 * `onChange`: where an app's "saving… / saved" indicator hears of typing). The engine reports
 * the edit to the outbox's buffer only after that callback returns. At 15e85cd whenStored made
 * the buffer a command synchronously, so it missed the edit that called it: it resolved with
 * that keystroke in memory only (also one keystroke per turn, which 15e85cd^ missed too), and
 * several edits of one turn became one command each (the previous edits only, each time).
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
  Yjs: { type: (d: PadDoc, s: string) => d.crdt.body.insert(d.crdt.body.length, s), text: (d: PadDoc) => d.crdt.body.toString(), watch: (d: PadDoc, fn: () => void) => d.crdt.body.observe(fn) },
  Automerge: { type: (d: PadDoc, s: string) => d.crdt.notes.splice(d.crdt.notes.text.length, 0, s), text: (d: PadDoc) => d.crdt.notes.text, watch: (d: PadDoc, fn: () => void) => d.crdt.notes.onChange(fn) },
} as const

describe.each(["Yjs", "Automerge"] as const)("%s field", (engine) => {
  const { type, text, watch } = HOOKS[engine]
  test("whenStored from the change callback: every edit is stored once it resolves, and kept", async () => {
    const rt = new VirtualRuntime(1)
    const storage = new MemoryStorage()
    const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage })
    const doc = await client.open(Pad, "p")
    const waits: Array<Promise<void>> = []
    const errors: string[] = []
    doc.on("error", (e) => errors.push(e.message))
    watch(doc, () => void waits.push(doc.whenStored()))
    type(doc, "a")
    type(doc, "b")
    type(doc, "c")
    await Promise.all(waits)
    const stored = doc.pending.map((p) => p.stored)
    expect([text(doc), errors]).toEqual(["abc", []])
    // One turn's edits, one command (as without the callback), stored when whenStored resolves.
    expect(stored).toEqual([true])
    await client.close()
    const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage })
    const reopened = await again.open(Pad, "p")
    expect(text(reopened)).toBe("abc")
    await again.close()
  })

  test("one keystroke per turn: whenStored from its change callback resolves once it is stored", async () => {
    const rt = new VirtualRuntime(1)
    const storage = new MemoryStorage()
    const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, storage })
    const doc = await client.open(Pad, "p")
    const saved: boolean[][] = []
    watch(doc, () => void doc.whenStored().then(() => saved.push(doc.pending.map((p) => p.stored))))
    for (const k of "abc") {
      type(doc, k)
      await new Promise((r) => setImmediate(r))
    }
    expect(saved).toEqual([[true], [true, true], [true, true, true]])
    await client.close()
  })
})

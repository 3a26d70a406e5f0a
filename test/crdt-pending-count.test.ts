/**
 * An edit of a CRDT field is pending from the moment it returns. A field's local changes wait
 * in a buffer (core/crdt/outbox.ts) before they become its merge command: until a microtask
 * after the edit, and, online, for as long as a merge of the same field is unconfirmed (they
 * are coalesced into one command for the round trip). `doc.pendingCount` and `doc.pending`
 * counted only commands, so right after typing they said 0 (an app's "all saved", or its
 * unload warning, was wrong), and at the confirmation of the merge in flight they said 0 while
 * what was typed during its round trip was still unsent; `doc.whenStored()` resolved with that
 * buffer in memory only, so a crash right after it lost the edit. A plain `submit` is counted
 * at once; CRDT edits now are too, both engines.
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine, type Doc } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { offlineTransport } from "./support/offline.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const Pad = defineMachine({
  name: "pad",
  version: 1,
  initial: () => ({ title: "" }),
  crdt: { body: yText(), notes: automergeText() },
  commands: { title: { args: Schema.Struct({ s: Schema.String }), apply: (st, { s }) => { st.title = s } } },
})
type PadDoc = Doc<typeof Pad>

const EDITS = {
  Yjs: { type: (d: PadDoc, s: string) => d.crdt.body.insert(d.crdt.body.length, s), text: (d: PadDoc) => d.crdt.body.toString(), name: "$crdt.body" },
  Automerge: { type: (d: PadDoc, s: string) => d.crdt.notes.splice(d.crdt.notes.text.length, 0, s), text: (d: PadDoc) => d.crdt.notes.text, name: "$crdt.notes" },
} as const
const ENGINES = Object.keys(EDITS) as Array<keyof typeof EDITS>

const offline = async (storage?: MemoryStorage) => {
  const rt = new VirtualRuntime(1)
  const client = await CanonClient.open({ transport: offlineTransport, runtime: rt, autoConnect: false, ...(storage !== undefined ? { storage } : {}) })
  return { rt, client, doc: await client.open(Pad, "p") }
}

const online = async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 40 })
  const hub = new Hub({ machines: [Pad], storage: new MemoryStorage(), runtime: rt })
  net.listen(hub)
  const storage = new MemoryStorage()
  const client = await running(rt, CanonClient.open({ transport: net.transport("w"), runtime: rt, clientId: "w", storage }))
  const doc = await running(rt, client.open(Pad, "p"))
  await settleWithTurns(rt, 200)
  return { rt, net, hub, storage, client, doc }
}

test("a plain submit is pending when it returns (the baseline)", async () => {
  const { client, doc } = await offline()
  void doc.submit("title", { s: "t" }).catch(() => {})
  expect([doc.pendingCount, doc.pending.map((p) => p.name)]).toEqual([1, ["title"]])
  await client.close()
})

describe.each(ENGINES)("%s field", (engine) => {
  const { type, text, name } = EDITS[engine]

  test("an edit is pending when it returns, offline (before the microtask that makes it a command)", async () => {
    const { client, doc } = await offline()
    type(doc, "a")
    expect([doc.pendingCount, doc.pending.map((p) => p.name)]).toEqual([1, [name]])
    // Keystrokes of one turn are still one command.
    type(doc, "b")
    type(doc, "c")
    expect(doc.pendingCount).toBe(1)
    await Promise.resolve()
    expect([doc.pendingCount, doc.pending.map((p) => p.name)]).toEqual([1, [name]])
    expect(text(doc)).toBe("abc")
    await client.close()
  })

  test("online, what is typed while a merge is in flight is pending, also when that merge is confirmed", async () => {
    const { rt, hub, client, doc } = await online()
    const seen: number[] = []
    doc.on("confirmed", () => seen.push(doc.pendingCount))
    type(doc, "x")
    expect(doc.pendingCount).toBe(1)
    await rt.run({ forMs: 5 }) // the merge of "x" is sent, and in flight
    type(doc, "y")
    type(doc, "z")
    // The merge in flight, and "yz" coalescing behind it (one command to come).
    expect(doc.pendingCount).toBe(2)
    expect(doc.pending.map((p) => p.name)).toEqual([name, name])
    await settleWithTurns(rt, 1000)
    // At the confirmation of "x", "yz" was still to go; at its own, nothing was.
    expect(seen).toEqual([1, 0])
    expect([doc.pendingCount, text(doc)]).toEqual([0, "xyz"])
    await client.close()
    await hub.close()
  })

  test("online, whenStored stores what was typed while a merge is in flight: a crash right after it keeps the edit", async () => {
    const { rt, net, hub, storage, client, doc } = await online()
    type(doc, "x")
    await rt.run({ forMs: 5 }) // the merge of "x" is in flight
    type(doc, "y")
    await running(rt, doc.whenStored())
    expect(doc.pending.map((p) => p.stored)).toEqual([true, true])
    // The process dies (the hub is gone too: nothing it would confirm arrives).
    net.partition("w")
    storage.crash()
    const again = await CanonClient.open({ transport: offlineTransport, runtime: rt, clientId: "w", storage, autoConnect: false })
    const reopened = await again.open(Pad, "p")
    expect(text(reopened)).toBe("xy")
    await again.close()
    void client
    await hub.close()
  })

  test("an edit then an immediate close keeps it (doc.close and client.close)", async () => {
    for (const close of ["doc", "client"] as const) {
      const storage = new MemoryStorage()
      const { client, doc } = await offline(storage)
      type(doc, "kept")
      if (close === "doc") await doc.close()
      await client.close()
      const { client: again, doc: reopened } = await offline(storage)
      expect([close, text(reopened), reopened.pending.map((p) => p.name)]).toEqual([close, "kept", [name]])
      await again.close()
    }
  })
})

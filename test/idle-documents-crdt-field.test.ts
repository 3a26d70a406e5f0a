/**
 * Idle documents, hub: the byte bound on kept documents counts `DocAuthority.stateSize`,
 * which for a machine with CRDT fields is the plain root only (doc-authority.ts: `load` measures
 * `encodeCanonical(host.root)`, `measure()` too, and a snapshot's size is not taken "with CRDT
 * fields"); the fields live beside the root (core/crdt/fields.ts), so a document whose content
 * is a Yjs text of megabytes is kept as if it weighed a few bytes. 64 such documents are kept
 * whatever `idleDocuments.bytes` says.
 */
import * as Schema from "effect/Schema"
import * as Y from "yjs"
import { Hub, defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { WirePeer } from "./support/hub-wire.js"
import { newClientSecret } from "../core/ports/runtime.js"

const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), crdt: { body: yText() }, commands: {
  touch: { args: Schema.Struct({}), apply: () => {} },
} })

test("a kept document's CRDT fields count toward the byte bound", async () => {
  const rt = new VirtualRuntime(1)
  const hub = new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt, idleDocuments: { bytes: 1 << 20 }, limits: { commandsPerSecond: 1e9, messagesPerSecond: 1e9 } as never })
  const p = new WirePeer("peer000000000001")
  p.listener = hub.accept(p.conn, { remoteAddress: "test:p" })
  p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: p.clientId, machines: [], secret: newClientSecret(rt) })
  await rt.run({ forMs: 5 })
  const docIds = ["a", "b", "c"]
  const sizes: number[] = []
  for (const docId of docIds) {
    p.send({ type: "subscribe", docId, machine: Note.name, version: Note.version, fingerprint: Note.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 10 })
    // About 1.2 MB of text in the field, in updates under the command bound.
    const y = new Y.Doc()
    const updates: Uint8Array[] = []
    y.on("update", (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < 6; i++) y.getText("t").insert(y.getText("t").length, String.fromCharCode(97 + i).repeat(200_000))
    for (const [i, u] of updates.entries()) {
      p.send({ type: "submit", docId, ackedClientSeq: 0, commands: [{ clientSeq: i + 1, name: "$crdt.body", args: u }] })
      await rt.run({ forMs: 20 })
    }
    await rt.run({ forMs: 3_000 })
    const doc = await hub.doc(docId, Note)
    expect(doc.headSeq).toBe(updates.length)
    expect((doc as unknown as { crdt: { field(n: string): { handle: Y.Text } } }).crdt.field("body").handle.length).toBe(1_200_000)
    sizes.push(doc.stateSize)
    p.send({ type: "unsubscribe", docId })
    await rt.run({ forMs: 1_000 })
  }
  // Each is over 1 MB of state: none fits the 1 MiB bound, so none is kept.
  expect({ kept: hub.stats().documents, stateSizes: sizes }).toEqual({ kept: 0, stateSizes: sizes.map((s) => (s > 1_000_000 ? s : "over 1 MB")) })
  await hub.close()
})

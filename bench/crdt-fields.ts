/**
 * The automerge-paper trace (bench/peers-text.ts loadTrace) through Canon CRDT fields and
 * through the plain libraries, for the `crdt` suite:
 * - Canon Yjs field: a machine whose only state is `crdt: { body: yText() }`; the writer's
 *   CanonClient (MemoryNetwork with real codec frames, no latency, VirtualRuntime) edits the
 *   Y.Text one transaction per edit, and each edit's `$crdt.body` command is confirmed by the
 *   Hub (MemoryStorage) before the next: the hub validates the update and merges it into its
 *   own copy. Plain Yjs: one Y.Doc, one transaction per edit, each V1 update collected (the
 *   form the field ships).
 * - Canon Automerge field (`automergeText()`) likewise; plain Automerge: `change` + `splice`
 *   per edit and `getLastLocalChange` (the bytes the field ships).
 * - Bytes writer -> hub: the Yjs field over WebSocket loopback (TCP payload counted at the
 *   server, frames included), each edit confirmed before the next; vs the V1 update bytes.
 * - Stored at the hub: after the replay, a snapshot at the head (`snapshotNow`, the default
 *   policy compacts the log behind it keeping min(64 KiB, snapshot size) of entries); every
 *   key and value byte in the hub's MemoryStorage; vs Yjs encodeStateAsUpdateV2.
 */
import * as A from "@automerge/automerge"
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { check, now } from "./harness.js"
import { CountingServer, UNLIMITED, waitFor } from "./peers-common.js"
import { storedBytes, type Trace } from "./peers-text.js"

const touch = { touch: { args: Schema.Struct({}), apply: () => {} } }
export const YjsNote = defineMachine({ name: "ynote", version: 1, initial: () => ({}), crdt: { body: yText() }, commands: touch })
export const AmNote = defineMachine({ name: "amnote", version: 1, initial: () => ({}), crdt: { body: automergeText() }, commands: touch })

const DOC = "paper"
/** Virtual ms between edits: a fast typist (as bench/peers-text.ts). */
const TYPING_MS = 100

const editYText = (t: Y.Text, pos: number, del: number, ins: string): void => {
  t.doc!.transact(() => {
    if (del > 0) t.delete(pos, del)
    if (ins.length > 0) t.insert(pos, ins)
  })
}

export interface FieldReplay {
  readonly ms: number
  /** Bytes the hub's storage holds after a snapshot at the head and compaction behind it. */
  readonly stored: number
  /** The snapshot's own size. */
  readonly snapshot: number
}

const world = (machine: typeof YjsNote | typeof AmNote) => {
  const runtime = new VirtualRuntime(7)
  const network = new MemoryNetwork(runtime, { encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [machine], storage, runtime, limits: UNLIMITED })
  network.listen(hub)
  return { runtime, network, storage, hub }
}

/** Snapshot at the head, run the clock until it is stored and compacted, count the bytes. */
const compactAndCount = async (w: ReturnType<typeof world>, machine: typeof YjsNote | typeof AmNote, head: number) => {
  const doc = await w.hub.doc(DOC, machine)
  let meta: { seq: number; size: number } | undefined
  let failed: unknown
  doc.snapshotNow().then((m) => (meta = m), (e: unknown) => (failed = e))
  for (let i = 0; i < 10_000 && meta === undefined && failed === undefined; i++) await w.runtime.run({ forMs: 10 })
  if (failed !== undefined) throw failed
  check(meta !== undefined && meta.seq === head, "the snapshot is at the head")
  await w.runtime.run({ forMs: 5_000 })
  return { stored: await storedBytes(w.storage), snapshot: meta!.size }
}

/**
 * The trace through a Canon CRDT text field `body`, each edit confirmed by the hub before the
 * next: the same driver for both libraries, which differ only in how an edit is made and read.
 */
const canonField = async <M extends typeof YjsNote | typeof AmNote>(
  trace: Trace, machine: M, edit: (body: any, pos: number, del: number, ins: string) => void, text: (body: any) => string, what: string,
): Promise<FieldReplay> => {
  const w = world(machine)
  const client = await CanonClient.open({ transport: w.network.transport("writer"), runtime: w.runtime, clientId: "writer" })
  try {
    const doc = await client.open(machine as typeof YjsNote, DOC)
    await w.runtime.run({ forMs: 100 })
    const body = (doc.crdt as { body: unknown }).body
    const t0 = now()
    for (const [pos, del, ins] of trace.edits) {
      edit(body, pos, del, ins)
      await w.runtime.run({ forMs: TYPING_MS })
    }
    const ms = now() - t0
    check(doc.pendingCount === 0 && doc.confirmedSeq === trace.edits.length, `every edit confirmed (${doc.confirmedSeq} of ${trace.edits.length}, ${doc.pendingCount} pending)`)
    check(text(body) === trace.text, `the ${what} field's text equals the trace's`)
    return { ms, ...(await compactAndCount(w, machine, trace.edits.length)) }
  } finally {
    await client.close()
    await w.hub.close()
  }
}

/** The trace through a Canon Yjs field, each edit confirmed by the hub before the next. */
export const canonYjsField = (trace: Trace): Promise<FieldReplay> =>
  canonField(trace, YjsNote, editYText, (body: Y.Text) => body.toString(), "Yjs")

/** Plain Yjs: one Y.Doc, one transaction per edit, each V1 update collected. */
export const plainYjs = (trace: Trace): { ms: number; updateBytes: number; v2StateBytes: number } => {
  const doc = new Y.Doc()
  // Every update carries the clientID as a varint: fix it at a 5-byte one (a random uint32
  // is >= 2^28 15 times in 16) so byte figures do not move with the draw between runs.
  doc.clientID = 2 ** 31 + 12_345
  const t = doc.getText("t")
  let updateBytes = 0
  doc.on("update", (u: Uint8Array) => (updateBytes += u.length))
  const t0 = now()
  for (const [pos, del, ins] of trace.edits) editYText(t, pos, del, ins)
  const ms = now() - t0
  check(t.toString() === trace.text, "plain Yjs text equals the trace's")
  const v2StateBytes = Y.encodeStateAsUpdateV2(doc).length
  doc.destroy()
  return { ms, updateBytes, v2StateBytes }
}

/** The trace through a Canon Automerge text field, each edit confirmed before the next. */
export const canonAutomergeField = (trace: Trace): Promise<FieldReplay> =>
  canonField(trace, AmNote, (body: { splice(pos: number, del: number, ins: string): void }, pos, del, ins) => body.splice(pos, del, ins), (body: { text: string }) => body.text, "Automerge")

/** Plain Automerge: `change` + `splice` per edit, and the change's bytes (what a peer ships). */
export const plainAutomerge = (trace: Trace): { ms: number; changeBytes: number } => {
  let doc = A.from<{ text: string }>({ text: "" })
  let changeBytes = 0
  const t0 = now()
  for (const [pos, del, ins] of trace.edits) {
    doc = A.change(doc, (d) => A.splice(d, ["text"], pos, del, ins))
    changeBytes += A.getLastLocalChange(doc)!.length
  }
  const ms = now() - t0
  check(doc.text === trace.text, "plain Automerge text equals the trace's")
  return { ms, changeBytes }
}

/** Bytes writer -> hub (and back) for the Yjs field over WebSocket loopback, each edit confirmed. */
export const canonYjsWire = async (trace: Trace): Promise<{ up: number; down: number }> => {
  const counting = await CountingServer.start()
  const hub = new Hub({ machines: [YjsNote], storage: new MemoryStorage(), runtime: systemRuntime, limits: UNLIMITED })
  const ws = await WsServer.start(hub, { server: counting.server })
  const client = await CanonClient.open({ transport: wsClientTransport(counting.url), runtime: systemRuntime, clientId: "writer" })
  try {
    const doc = await client.open(YjsNote, DOC)
    await waitFor(() => doc.synced, "the writer to sync")
    counting.mark()
    const body = doc.crdt.body
    let sent = 0
    for (const [pos, del, ins] of trace.edits) {
      editYText(body, pos, del, ins)
      sent++
      await waitFor(() => doc.confirmedSeq >= sent && doc.pendingCount === 0, "the edit's confirmation")
    }
    await counting.quiet()
    check(doc.confirmedSeq === trace.edits.length && body.toString() === trace.text, "Canon over ws confirmed every edit")
    return counting.since()
  } finally {
    await client.close()
    await ws.close()
    await hub.close()
    await counting.close()
  }
}

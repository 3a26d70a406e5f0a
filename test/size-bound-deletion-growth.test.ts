/**
 * Deletions on the Canon route (a machine's Yjs field). Found by the review of 236a7a5 and
 * 3e49e1e, which let a deletion use the reserve and pass the bound by as much again, charged
 * three times its bytes (CRDT_GROWTH_FACTOR): a scattered delete of text written by many Yjs
 * clients, each at small clocks (one-byte clocks in the delete set), grew the field's V2 encoding
 * by close to four times its bytes (3.0 to 3.96 measured). One batch of deletions took the
 * document far past max + reserve, and the measure that followed found it there, where nothing,
 * not even a deletion of one character, was accepted. Now a deletion is charged what it can add
 * less what it frees (adapters/yjs/deletion.ts).
 */
import * as Y from "yjs"
import { Hub, defineMachine } from "../core/index.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { tombstoneReserve } from "../core/authority/size-bound.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { editOf } from "./support/yjs-edit.js"

const Note = defineMachine({ name: "note", version: 1, initial: () => ({}), commands: {}, crdt: { body: yText() } })
const MAX = 64 << 10
const RESERVE = tombstoneReserve(MAX)

test("a hostile writer's scattered deletions do not take a document past max + reserve (and a document past it still takes a deletion)", async () => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1 })
  const hub = new Hub({ machines: [Note], storage: new MemoryStorage(), runtime: rt, maxDocumentBytes: MAX })
  net.listen(hub)
  const received: ServerMessage[] = []
  const conn = net.transport("h").connect({ onOpen: () => {}, onMessage: (m) => void received.push(m as ServerMessage), onClose: () => {} })
  await rt.run({ forMs: 5 })
  conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "hostile0000000", machines: [], secret: newClientSecret(rt) })
  conn.send({ type: "subscribe", docId: "d", machine: Note.name, version: Note.version, fingerprint: Note.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 20 })
  const outcomes = () => received.flatMap((m) => (m.type === "results" ? m.outcomes : [])) as Array<{ clientSeq: number; seq?: number; rejection?: { code: string; message: string } }>
  let clientSeq = 0
  /** Submits `updates` in one message; the outcome of each (true: accepted). */
  const submit = async (updates: Uint8Array[]): Promise<Array<true | string>> => {
    const first = clientSeq + 1
    conn.send({ type: "submit", docId: "d", commands: updates.map((args) => ({ clientSeq: ++clientSeq, name: "$crdt.body", args })), ackedClientSeq: 0 })
    for (let i = 0; i < 200 && outcomes().filter((o) => o.clientSeq >= first).length < updates.length; i++) await rt.run({ forMs: 10 })
    return outcomes().filter((o) => o.clientSeq >= first).map((o) => (o.seq !== undefined ? true : `${o.rejection?.code}: ${o.rejection?.message}`))
  }
  // The hostile's copy of the hub's text: every accepted update is applied to it.
  const mirror = new Y.Doc()
  const text = mirror.getText("t")
  const edit = (clientID: number, change: (t: Y.Text) => void): Uint8Array => editOf(mirror, clientID, change)!
  // 1. Text from 190 Yjs clients of its own, 127 characters each (clocks 0..126), each retried
  //    until a measure finds room (the bound charges three times the bytes).
  for (let c = 0; c < 190; c++) {
    const u = edit(1_000_000 + c * 7919, (t) => t.insert(t.length, "x".repeat(127)))
    let out = await submit([u])
    for (let tries = 0; out[0] !== true && tries < 20; tries++) {
      await rt.run({ forMs: 200 })
      out = await submit([u])
    }
    expect(out).toEqual([true])
    Y.applyUpdate(mirror, u)
  }
  const authority = await hub.doc("d", Note)
  // 2. An insert too big for the bound: refused, and the measure it asks for finds the size.
  expect((await submit([edit(42, (t) => t.insert(0, "z".repeat(20_000)))]))[0]).toMatch(/^command-too-large/)
  await rt.run({ forMs: 500 })
  const filled = (await authority.snapshotNow()).size
  expect(filled).toBeLessThan(MAX / 2)

  // 3. Scattered deletions (gaps of 1 to 4 characters), in updates of 100 ranges, all in one message
  //    (a range cutting a 127-character item is charged about 130 bytes: adapters/yjs/deletion.ts).
  let x = 1
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648
  const deletions: Uint8Array[] = []
  const ranges: number[] = []
  for (let at = text.length - 1; at >= 0; at -= 2 + Math.floor(rnd() * 4)) ranges.push(at)
  for (let i = 0; i < ranges.length; i += 100) {
    const u = edit(43, (t) => t.doc!.transact(() => { for (const at of ranges.slice(i, i + 100)) t.delete(at, 1) }))
    deletions.push(u)
    Y.applyUpdate(mirror, u)
  }
  const out = await submit(deletions)
  await rt.run({ forMs: 1_000 })
  const grown = (await authority.snapshotNow()).size
  // What the hub took, and what it is now.
  const taken = out.filter((o) => o === true).length
  expect(taken).toBeGreaterThan(0)

  // 4. A writer then trims the document as told: a deletion of a character is accepted.
  const all = edit(44, (t) => t.delete(0, 1))
  const trimmed = await submit([all])
  // On 3e49e1e: { grown: 73813 (past 66560), trimmed: ["command-too-large: ... past 66560 bytes ..."] }: stuck for good.
  expect({ grown, within: grown <= MAX + RESERVE, trimmed }).toEqual({ grown, within: true, trimmed: [true] })
  conn.close()
  await hub.close()
}, 120_000)

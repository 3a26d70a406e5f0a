/**
 * Hostile madeAs values through the hub (in-process, messages as objects, and encoded), and
 * submit3 frames cut short or mutated: nothing throws, the hub stays up, another client's
 * commands go on, and nobody gets another client's outcome.
 */
import { secretFor } from "./support/secrets.js"
import { Hub, type ClientMessage, type CommandRequest, type Outcome, type ServerMessage } from "../core/index.js"
import { AuthorityStore } from "../core/internal.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { CodecSession, decodeClientMessage, encodeClientMessage } from "../core/protocol/codec.js"
import { Todo } from "./support/machines.js"

const world = (encode: boolean) => {
  const rt = new VirtualRuntime(5)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Todo], storage, runtime: rt })
  net.listen(hub)
  const client = (name: string) => {
    const got: ServerMessage[] = []
    let closed: unknown
    const conn = net.transport(name).connect({ onOpen: () => {}, onMessage: (m: ServerMessage) => void got.push(m), onClose: (i) => { closed = i } })
    return {
      got, send: (m: ClientMessage) => conn.send(m), closed: () => closed,
      outcomes: (): Outcome[] => got.flatMap((m) => (m.type === "results" ? [...m.outcomes] : [])),
      start: () => {
        conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId: name, secret: secretFor(name), machines: [describeMachine(Todo)] })
        conn.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
      },
    }
  }
  return { rt, net, storage, hub, client }
}

const weird: unknown[] = [0, -1, 1.5, Number.NaN, Infinity, 2 ** 53, 2 ** 53 - 1, "1", [1], null, 1e300, -0]

test.each([false, true])("hostile madeAs values (encode %s): no crash, a victim's commands go on and are its own", async (encode) => {
  const w = world(encode)
  const evil = w.client("evil")
  const victim = w.client("victim")
  await w.rt.run({ forMs: 5 })
  evil.start()
  victim.start()
  await w.rt.run({ forMs: 200 })
  // The victim applies "v" under 1.
  victim.send({ type: "submit", docId: "d", commands: [{ clientSeq: 1, name: "note", args: { text: "v" } }], ackedClientSeq: 0 })
  await w.rt.run({ forMs: 50 })
  let seq = 1
  for (const madeAs of encode ? [0, 2 ** 53 - 1, 1, 7] : weird) {
    const cmd = { clientSeq: seq, name: "note", args: { text: "v" }, madeAs } as unknown as CommandRequest
    evil.send({ type: "submit", docId: "d", commands: [cmd], ackedClientSeq: 0 })
    await w.rt.run({ forMs: 30 })
    seq++
  }
  victim.send({ type: "submit", docId: "d", commands: [{ clientSeq: 2, name: "note", args: { text: "w" } }], ackedClientSeq: 1 })
  await w.rt.run({ forMs: 100 })
  expect(evil.closed()).toBeUndefined()
  expect(victim.outcomes().map((o) => ("seq" in o ? o.seq : -1))).toEqual([1, expect.any(Number)])
  const log = await new AuthorityStore(w.storage).entries("d", 0, 100)
  // Every evil command applied as its own (same content "v" each under a new number counts: each its own clientSeq).
  expect(log.filter((e) => e.clientId === "victim").map((e) => (e.args as { text: string }).text)).toEqual(["v", "w"])
  // Outcomes the evil client got are for its own entries.
  const evilSeqs = evil.outcomes().flatMap((o) => ("seq" in o ? [o.seq] : []))
  for (const s of evilSeqs) expect(log.find((e) => e.seq === s)?.clientId).toBe("evil")
})

test("submit3 frames cut short or with one byte changed never throw", () => {
  const m: ClientMessage = { type: "submit", docId: "d", ackedClientSeq: 4, commands: [{ clientSeq: 5, name: "note", args: { text: "a" }, madeAs: 2 }, { clientSeq: 6, name: "note", args: { text: "b" }, madeAs: 2 ** 53 - 1 }] }
  const plain = encodeClientMessage(m, { version: 3 })
  for (const frame of [plain]) {
    for (let n = 0; n < frame.length; n++) {
      const d = decodeClientMessage(frame.subarray(0, n), { version: 3 })
      expect(d.ok).toBe(false)
    }
    for (let i = 0; i < frame.length; i++) {
      for (const b of [0, 1, 2, 0x7f, 0x80, 0xff]) {
        const f = Uint8Array.from(frame)
        f[i] = b
        const d = decodeClientMessage(f, { version: 3 })
        if (d.ok === true && d.message.type === "submit") for (const c of d.message.commands) if (c.madeAs !== undefined) expect(Number.isSafeInteger(c.madeAs) && c.madeAs > 0).toBe(true)
      }
    }
  }
  // The compact form through a session (the subscribe gives the docId its channel).
  const sub: ClientMessage = { type: "subscribe", docId: "d", machine: "m", version: 1, fingerprint: "f", fromSeq: 0, ackedClientSeq: 0 }
  const enc = new CodecSession()
  encodeClientMessage(sub, { version: 3, session: enc })
  const cm: ClientMessage = { ...m, compact: true, commands: m.commands.map((c) => ({ ...c, args: new Uint8Array([1, 2, 3]) })) }
  const compact = encodeClientMessage(cm, { version: 3, session: enc })
  expect(compact[2]).toBe(1)
  const fresh = () => {
    const s = new CodecSession()
    decodeClientMessage(encodeClientMessage(sub, { version: 3, session: new CodecSession() }), { version: 3, session: s })
    return s
  }
  for (let n = 0; n < compact.length; n++) expect(decodeClientMessage(compact.subarray(0, n), { version: 3, session: fresh() }).ok).toBe(false)
  for (let i = 0; i < compact.length; i++) for (const b of [0, 1, 2, 0x7f, 0x80, 0xff]) {
    const f = Uint8Array.from(compact)
    f[i] = b
    decodeClientMessage(f, { version: 3, session: fresh() })
  }
  const ok = decodeClientMessage(compact, { version: 3, session: fresh() })
  expect(ok.ok).toBe(true)
})

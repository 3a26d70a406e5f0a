/**
 * What a connection's codec session remembers (core/protocol/codec-shared.ts CodecSession) is
 * bounded where it enters, in bytes as well as in count, the same on both ends: a subscribe's
 * docId over MAX_DOC_ID_BYTES and a protocol 2 command name over MAX_COMMAND_NAME_BYTES are
 * decode failures and never kept, the session's total is MAX_SESSION_BYTES (of what the strings
 * cost in memory, `rememberedCost`: test/codec-session-heap.test.ts measures it), and the client's
 * encoder refuses exactly what the hub's decoder refuses. defineMachine refuses a command name
 * that could not travel.
 */
import * as Schema from "effect/Schema"
import fc from "fast-check"
import { defineMachine } from "../core/index.js"
import { CanonError } from "../core/errors.js"
import { CodecSession, decodeClientMessage, encodeClientMessage } from "../core/internal.js"
import { MAX_COMMAND_NAME_BYTES, MAX_DOC_ID_BYTES } from "../core/limits.js"
import { MAX_NAMES, MAX_SESSION_BYTES, rememberedCost } from "../core/protocol/codec-shared.js"
import { subscribeFrame, submit2Frame } from "./support/hostile-frames.js"
import { Todo } from "./support/machines.js"

const v2 = (session: CodecSession) => ({ version: 2, session })
const decodeOn = (session: CodecSession, frame: Uint8Array) => decodeClientMessage(frame, v2(session))
const codeOf = (d: ReturnType<typeof decodeClientMessage>): string => (d.ok === false ? d.error.code : `ok:${String(d.ok)}`)
const utf8 = (s: string): number => new TextEncoder().encode(s).length
/** A docId of exactly `bytes` UTF-8 bytes, unique by `i`. */
const docOf = (i: number, bytes: number, fill = "d"): string => `${i}:`.padEnd(bytes, fill)
const ARGS = new Uint8Array([1, 0x00])

describe("a subscribe's docId", () => {
  test("over the protocol's limit is a decode failure, with or without a session, and no channel is kept", () => {
    const session = new CodecSession()
    for (const docId of [docOf(1, MAX_DOC_ID_BYTES + 1), docOf(2, (1 << 20) - 200), "é".repeat(MAX_DOC_ID_BYTES / 2) + "x"]) {
      const d = decodeOn(session, subscribeFrame(docId, Todo))
      expect(codeOf(d)).toBe("bad-value")
      expect(codeOf(decodeClientMessage(subscribeFrame(docId, Todo)))).toBe("bad-value")
      expect(session.channelOf(docId)).toBeUndefined()
    }
    expect(session.docOf(1)).toBeUndefined()
    expect(session.bytes).toBe(0)
  })

  test("at the limit (in UTF-8 bytes, not characters) it gets the next channel", () => {
    const session = new CodecSession()
    const ascii = docOf(1, MAX_DOC_ID_BYTES)
    const wide = "é".repeat(MAX_DOC_ID_BYTES / 2)
    expect(utf8(wide)).toBe(MAX_DOC_ID_BYTES)
    expect(codeOf(decodeOn(session, subscribeFrame(ascii, Todo)))).toBe("ok:true")
    expect(codeOf(decodeOn(session, subscribeFrame(wide, Todo)))).toBe("ok:true")
    expect([session.channelOf(ascii), session.channelOf(wide)]).toEqual([1, 2])
    expect(session.bytes).toBe(rememberedCost(ascii, MAX_DOC_ID_BYTES) + rememberedCost(wide, MAX_DOC_ID_BYTES))
  })

  test("the client's encoder refuses it too, and keeps nothing", () => {
    const session = new CodecSession()
    const docId = docOf(1, MAX_DOC_ID_BYTES + 1)
    expect(() => encodeClientMessage({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(session))).toThrow(CanonError)
    expect(() => encodeClientMessage({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })).toThrow(/at most 512 bytes/)
    expect(session.channelOf(docId)).toBeUndefined()
    expect(session.bytes).toBe(0)
  })
})

describe("a protocol 2 command name", () => {
  const subscribed = (): CodecSession => {
    const session = new CodecSession()
    expect(codeOf(decodeOn(session, subscribeFrame("d", Todo)))).toBe("ok:true")
    return session
  }

  test("over MAX_COMMAND_NAME_BYTES is a decode failure and is not kept; at the limit it is", () => {
    const session = subscribed()
    const long = "n".repeat(MAX_COMMAND_NAME_BYTES + 1)
    for (const name of [long, "n".repeat((1 << 20) - 100)]) {
      expect(codeOf(decodeOn(session, submit2Frame(1, [{ clientSeq: 1, name, args: ARGS }])))).toBe("bad-value")
    }
    expect(session.namesReceived ?? []).toEqual([])
    const fits = "ü".repeat(MAX_COMMAND_NAME_BYTES / 2)
    expect(codeOf(decodeOn(session, submit2Frame(1, [{ clientSeq: 1, name: fits, args: ARGS }])))).toBe("ok:true")
    expect(session.namesReceived).toEqual([fits])
    expect(session.bytes).toBe(rememberedCost("d", 1) + rememberedCost(fits, MAX_COMMAND_NAME_BYTES))
  })

  test("the client's encoder refuses what the hub's decoder refuses", () => {
    const session = new CodecSession()
    encodeClientMessage({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(session))
    const submit = (name: string) => encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, compact: true, commands: [{ clientSeq: 1, name, args: ARGS }] }, v2(session))
    expect(() => submit("n".repeat(MAX_COMMAND_NAME_BYTES + 1))).toThrow(/at most 256 bytes/)
    expect(session.namesSent.size).toBe(0)
    submit("n".repeat(MAX_COMMAND_NAME_BYTES))
    expect(session.namesSent.size).toBe(1)
  })

  test("a name defined twice is refused, however many are known (no linear scan to find it)", () => {
    const session = subscribed()
    const names = Array.from({ length: 2000 }, (_, i) => `c${i}`)
    for (let i = 0; i < names.length; i += 100) {
      expect(codeOf(decodeOn(session, submit2Frame(1, names.slice(i, i + 100).map((name, j) => ({ clientSeq: i + j + 1, name, args: ARGS })))))).toBe("ok:true")
    }
    expect(codeOf(decodeOn(session, submit2Frame(1, [{ clientSeq: 1, name: "c1999", args: ARGS }])))).toBe("bad-value")
    expect(codeOf(decodeOn(session, submit2Frame(1, [{ clientSeq: 1, name: 2000, args: ARGS }])))).toBe("ok:true")
    expect(session.namesReceived?.length).toBe(2000)
    expect(MAX_NAMES).toBeGreaterThan(2000)
  })
})

describe("the session's budget", () => {
  test("docIds and names together stop at MAX_SESSION_BYTES: past it a subscribe or a name is refused, on decode and on encode", () => {
    const hub = new CodecSession()
    const client = new CodecSession()
    const per = MAX_DOC_ID_BYTES
    const cost = rememberedCost(docOf(0, per), per)
    const fit = Math.floor(MAX_SESSION_BYTES / cost)
    for (let i = 0; i < fit; i++) {
      const docId = docOf(i, per)
      expect(codeOf(decodeOn(hub, subscribeFrame(docId, Todo)))).toBe("ok:true")
      encodeClientMessage({ type: "subscribe", docId, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(client))
    }
    expect(hub.bytes).toBe(fit * cost)
    expect(client.bytes).toBe(hub.bytes)
    const left = MAX_SESSION_BYTES - hub.bytes
    // The smallest docId that does not fit what is left.
    const next = docOf(fit, left - rememberedCost("", 0) + 1)
    const d = decodeOn(hub, subscribeFrame(next, Todo))
    expect(d.ok === false && d.error.message).toMatch(/at most 4194304 bytes/)
    expect(() => encodeClientMessage({ type: "subscribe", docId: next, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(client))).toThrow(/at most 4194304 bytes/)
    // Already subscribed documents are no new memory: subscribing again is fine.
    expect(codeOf(decodeOn(hub, subscribeFrame(docOf(0, per), Todo)))).toBe("ok:true")
    const name = "n".repeat(left - rememberedCost("", 0) + 1)
    if (name.length <= MAX_COMMAND_NAME_BYTES) expect(codeOf(decodeOn(hub, submit2Frame(1, [{ clientSeq: 1, name, args: ARGS }])))).toBe("bad-value")
    expect(hub.bytes).toBeLessThanOrEqual(MAX_SESSION_BYTES)
  })

  test("fuzz: whatever frames arrive, the session keeps only strings within their limits and within its budget, and the encoder agrees with the decoder", () => {
    const len = fc.oneof(fc.nat({ max: 40 }), fc.integer({ min: MAX_COMMAND_NAME_BYTES - 2, max: MAX_DOC_ID_BYTES + 2 }), fc.integer({ min: 4000, max: 70_000 }))
    const op = fc.oneof(
      fc.record({ kind: fc.constant("doc" as const), bytes: len, wide: fc.boolean() }),
      fc.record({ kind: fc.constant("name" as const), bytes: len, wide: fc.boolean() }),
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const hub = new CodecSession()
      const client = new CodecSession()
      encodeClientMessage({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(client))
      expect(codeOf(decodeOn(hub, subscribeFrame("d", Todo)))).toBe("ok:true")
      ops.forEach((o, i) => {
        const s = o.wide ? `${i}:`.padEnd(Math.max(2, Math.floor(o.bytes / 2)), "é") : docOf(i, Math.max(2, o.bytes))
        let encoded: Uint8Array | undefined
        let decodedOk: boolean
        if (o.kind === "doc") {
          try {
            encoded = encodeClientMessage({ type: "subscribe", docId: s, machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, v2(client))
          } catch { /* refused */ }
          decodedOk = decodeOn(hub, subscribeFrame(s, Todo)).ok === true
        } else {
          try {
            encoded = encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, compact: true, commands: [{ clientSeq: 1, name: s, args: ARGS }] }, v2(client))
          } catch { /* refused */ }
          decodedOk = decodeOn(hub, submit2Frame(1, [{ clientSeq: 1, name: s, args: ARGS }])).ok === true
        }
        expect(encoded !== undefined).toBe(decodedOk)
      })
      expect(hub.bytes).toBeLessThanOrEqual(MAX_SESSION_BYTES)
      expect(client.bytes).toBe(hub.bytes)
      for (let c = 1; hub.docOf(c) !== undefined; c++) expect(utf8(hub.docOf(c)!)).toBeLessThanOrEqual(MAX_DOC_ID_BYTES)
      for (const n of hub.namesReceived ?? []) expect(utf8(n)).toBeLessThanOrEqual(MAX_COMMAND_NAME_BYTES)
    }), { numRuns: 60 })
  })
})

describe("defineMachine", () => {
  const withCommand = (name: string) => defineMachine({ name: "m", version: 1, initial: () => ({}), commands: { [name]: { args: Schema.Struct({}), apply: () => {} } } })

  test("refuses a command name the wire would refuse, and takes one at the limit", () => {
    expect(() => withCommand("c".repeat(MAX_COMMAND_NAME_BYTES + 1))).toThrow(/at most 256 bytes/)
    expect(() => withCommand("ü".repeat(MAX_COMMAND_NAME_BYTES / 2 + 1))).toThrow(TypeError)
    expect(withCommand("c".repeat(MAX_COMMAND_NAME_BYTES)).compiled.size).toBe(1)
  })
})

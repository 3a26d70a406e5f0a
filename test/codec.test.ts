/**
 * The wire codec (core/protocol/codec.ts): round trips of every message type, the golden
 * corpus of each protocol version (decoded and re-encoded byte for byte), framing rules
 * (optional and unknown types, flags, trailing bytes, limits), shape checks on decode,
 * refusals on encode, and the compactness of the hot messages.
 */
import fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { encodeCanonical } from "../core/canonical.js"
import { CanonError } from "../core/errors.js"
import type { Entry } from "../core/entry.js"
import type { ClientMessage, Entries, ServerMessage } from "../core/protocol/messages.js"
import {
  CodecSession,
  DEFAULT_MAX_FRAME_BYTES, DecodeError, PROTOCOL_VERSIONS, decodeClientMessage, decodeServerMessage, encodeClientMessage,
  encodeServerMessage, type DecodeErrorCode, type Decoded,
} from "../core/protocol/codec.js"
import { CLIENT_TYPES, CORPUS_ROOT, SESSION_PREFIX, corpusVersions, fromJson, toJson } from "./fixtures/protocol/corpus.js"
import { clientMessage, normalizeMessage, serverMessage } from "./fuzz.js"

// ---- helpers ----

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs)
const ascii = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))]

const decoded = <T>(d: Decoded<T>): T => {
  if (d.ok !== true) throw new Error(`expected a message, got ${d.ok === "ignore" ? "ignore" : `${d.error.code}: ${d.error.message}`}`)
  return d.message
}

const failed = <T>(d: Decoded<T>): DecodeError => {
  if (d.ok !== false) throw new Error(`expected a DecodeError, got ${JSON.stringify(d.ok === true ? d.message : d)}`)
  expect(d.error).toBeInstanceOf(DecodeError)
  expect(d.error._tag).toBe("DecodeError")
  return d.error
}

const codeOf = (frame: Uint8Array, side: "client" | "server" = "server"): DecodeErrorCode =>
  failed<unknown>(side === "client" ? decodeClientMessage(frame) : decodeServerMessage(frame)).code

const encodeThrows = (f: () => unknown, code: string, message?: RegExp): void => {
  let error: unknown
  try {
    f()
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(CanonError)
  expect((error as CanonError).code).toBe(code)
  if (message) expect((error as CanonError).message).toMatch(message)
}

const todoEntries = (n: number, clients = ["k3j5h2g8f9d0s1a2"], start = 1): Entry[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: start + i,
    time: 1_718_000_000_000 + i * 7,
    clientId: clients[i % clients.length]!,
    clientSeq: 100 + Math.floor(i / clients.length),
    name: i % 3 === 0 ? "add" : "toggle",
    args: i % 3 === 0 ? { id: `t${i}`, title: `Item ${i}` } : { id: `t${i}` },
  }))

// ---- round trips ----

describe("round trips", () => {
  test("client messages: decode(encode(m)) equals m, and encoding is deterministic", () => {
    fc.assert(fc.property(clientMessage, (m) => {
      const frame = encodeClientMessage(m)
      const back = decoded(decodeClientMessage(frame))
      expect(back).toStrictEqual(normalizeMessage(m))
      expect(encodeClientMessage(back)).toEqual(frame)
    }), { numRuns: 1500 })
  })

  test("server messages: decode(encode(m)) equals m, and encoding is deterministic", () => {
    fc.assert(fc.property(serverMessage, (m) => {
      const frame = encodeServerMessage(m)
      const back = decoded(decodeServerMessage(frame))
      expect(back).toStrictEqual(normalizeMessage(m))
      expect(encodeServerMessage(back)).toEqual(frame)
    }), { numRuns: 2500 })
  })

  test("every message type is generated", () => {
    const seen = new Set<string>()
    for (const m of fc.sample(clientMessage, { seed: 7, numRuns: 300 })) seen.add(m.type)
    for (const m of fc.sample(serverMessage, { seed: 7, numRuns: 500 })) seen.add(m.type)
    expect([...seen].sort()).toEqual([
      "checkpoint", "entries", "error", "fetch-state", "hello", "keepalive", "presence", "presence-set", "refused", "results", "snapshot-ack",
      "snapshot-begin", "snapshot-chunk", "snapshot-end", "state", "submit", "subscribe", "synced", "unsubscribe", "welcome",
    ])
  })

  test("an absent optional field decodes as absent, whether it was missing or undefined", () => {
    const hello = decoded(decodeClientMessage(encodeClientMessage({ type: "hello", protocol: { min: 1, max: 1 }, clientId: "a", machines: [], credentials: undefined })))
    expect("credentials" in hello).toBe(false)
    const refused = decoded(decodeServerMessage(encodeServerMessage({ type: "refused", code: "unauthorized", message: "no" })))
    expect(Object.keys(refused).sort()).toEqual(["code", "message", "type"])
    const entries = decoded(decodeServerMessage(encodeServerMessage({ type: "entries", docId: "d", entries: [], checkpoint: undefined })))
    expect("checkpoint" in entries).toBe(false)
    const error = decoded(decodeServerMessage(encodeServerMessage({ type: "error", code: "x", message: "y" })))
    expect("docId" in error).toBe(false)
  })

  test("command args and presence state keep their plain-data shape", () => {
    const args = { b: [1, -2, 0.5, -0, NaN, Infinity, "é", null, undefined, true], a: { z: new Uint8Array([1, 2]) }, ["__proto__"]: { x: 1 } }
    const m = decoded(decodeClientMessage(encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "n", args }] })))
    const back = (m as unknown as { commands: Array<{ args: Record<string, unknown> }> }).commands[0]!.args
    expect(back).toStrictEqual(args)
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.keys(back)).toContain("__proto__")
  })

  test("decoded bytes are plain Uint8Array copies, not views of a (Buffer) frame", () => {
    const frame = Buffer.from(encodeServerMessage({ type: "snapshot-chunk", docId: "d", snapshotId: 1, offset: 0, bytes: bytes(1, 2, 3) }))
    const m = decoded(decodeServerMessage(frame)) as { bytes: Uint8Array }
    expect(m.bytes.constructor).toBe(Uint8Array)
    frame.fill(0)
    expect(m.bytes).toEqual(bytes(1, 2, 3))
  })

  test("a frame inside a larger buffer (byteOffset) decodes", () => {
    const frame = encodeServerMessage({ type: "synced", docId: "doc", seq: 300 })
    const big = new Uint8Array(frame.length + 10)
    big.set(frame, 5)
    expect(decoded(decodeServerMessage(big.subarray(5, 5 + frame.length)))).toEqual({ type: "synced", docId: "doc", seq: 300 })
  })
})

// ---- golden corpus ----

const readCorpusFrame = (version: number, name: string) => {
  const dir = join(CORPUS_ROOT, `v${version}`)
  const bin = new Uint8Array(readFileSync(join(dir, `${name}.bin`)))
  const jsonText = readFileSync(join(dir, `${name}.json`), "utf8")
  const expected = fromJson(jsonText) as ClientMessage | ServerMessage
  return { bin, jsonText, expected, client: CLIENT_TYPES.has(expected.type) }
}

/**
 * Codec options for a corpus frame's sender and receiver. A session frame gets fresh sessions
 * that have seen the conversation up to it (each earlier frame encoded by its sender's session
 * and decoded by its receiver's), so every frame is checked alone.
 */
const corpusEnds = (version: number, name: string, client: boolean) => {
  if (!name.startsWith(SESSION_PREFIX)) return { sender: { version }, receiver: { version } }
  const sessions = { client: new CodecSession(), hub: new CodecSession() }
  const earlier = readdirSync(join(CORPUS_ROOT, `v${version}`))
    .filter((f) => f.startsWith(SESSION_PREFIX) && f.endsWith(".bin")).map((f) => f.slice(0, -4)).filter((n) => n < name).sort()
  for (const before of earlier) {
    const f = readCorpusFrame(version, before)
    const from = { version, session: f.client ? sessions.client : sessions.hub }
    const to = { version, session: f.client ? sessions.hub : sessions.client }
    if (f.client) encodeClientMessage(f.expected as ClientMessage, from)
    else encodeServerMessage(f.expected as ServerMessage, from)
    decoded<ClientMessage | ServerMessage>(f.client ? decodeClientMessage(f.bin, to) : decodeServerMessage(f.bin, to))
  }
  return {
    sender: { version, session: client ? sessions.client : sessions.hub },
    receiver: { version, session: client ? sessions.hub : sessions.client },
  }
}

describe("golden corpus", () => {
  const versions = corpusVersions()

  test("there is a corpus for every version this build speaks", () => {
    for (let v = PROTOCOL_VERSIONS.min; v <= PROTOCOL_VERSIONS.max; v++) expect(versions).toContain(v)
  })

  for (const version of versions) {
    const dir = join(CORPUS_ROOT, `v${version}`)
    const names = readdirSync(dir).filter((f) => f.endsWith(".bin")).map((f) => f.slice(0, -4)).sort()

    test(`v${version}: every .bin has its .json and the other way round`, () => {
      const jsons = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort()
      expect(jsons).toEqual(names)
    })

    test(`v${version}: covers every message type, hot ones several times`, () => {
      const count: Record<string, number> = {}
      for (const n of names) {
        const t = (fromJson(readFileSync(join(dir, `${n}.json`), "utf8")) as { type: string }).type
        count[t] = (count[t] ?? 0) + 1
      }
      expect(Object.keys(count).length).toBe(20)
      for (const t of ["entries", "results", "submit"]) expect(count[t]).toBeGreaterThanOrEqual(3)
    })

    const read = (name: string) => readCorpusFrame(version, name)
    const endsFor = (name: string, client: boolean) => corpusEnds(version, name, client)

    test.each(names)(`v${version}: %s decodes to its .json and re-encodes byte for byte`, (name) => {
      const { bin, jsonText, expected, client } = read(name)
      const { receiver } = endsFor(name, client)
      const message = decoded<ClientMessage | ServerMessage>(client ? decodeClientMessage(bin, receiver) : decodeServerMessage(bin, receiver))
      expect(message).toStrictEqual(expected)
      expect(toJson(message)).toBe(jsonText)
      const encode = (m: ClientMessage | ServerMessage) => {
        const { sender } = endsFor(name, client)
        return client ? encodeClientMessage(m as ClientMessage, sender) : encodeServerMessage(m as ServerMessage, sender)
      }
      expect(Buffer.from(encode(message)).toString("hex")).toBe(Buffer.from(bin).toString("hex"))
      expect(Buffer.from(encode(expected)).toString("hex")).toBe(Buffer.from(bin).toString("hex"))
    })

    if (version >= 2) {
      test(`v${version}: the session frames need their session (without one they are bad-value)`, () => {
        const compact = names.filter((n) => n.startsWith(SESSION_PREFIX) && /submit2|entries2|results2/.test(n))
        expect(compact.length).toBeGreaterThanOrEqual(6)
        for (const n of compact) {
          const { bin, client } = read(n)
          expect(failed<ClientMessage | ServerMessage>(client ? decodeClientMessage(bin, { version }) : decodeServerMessage(bin, { version })).code).toBe("bad-value")
          // and protocol 1 does not know their types
          expect(failed<ClientMessage | ServerMessage>(client ? decodeClientMessage(bin, { version: 1 }) : decodeServerMessage(bin, { version: 1 })).code).toBe("unknown-type")
        }
      })
    }
  }
})

// ---- layout ----

describe("layout", () => {
  test("frames start with type and flags, then the body (hand-written frames)", () => {
    expect(encodeServerMessage({ type: "synced", docId: "d", seq: 300 })).toEqual(bytes(0x44, 0, ...ascii("d"), 0xac, 0x02))
    expect(encodeClientMessage({ type: "fetch-state", docId: "abc" })).toEqual(bytes(0x04, 0, ...ascii("abc")))
    expect(encodeClientMessage({ type: "presence-set", docId: "d", state: null })).toEqual(bytes(0x07, 1, ...ascii("d"), 0))
    expect(encodeServerMessage({ type: "presence", docId: "d", clientId: "c", state: null })).toEqual(bytes(0x4b, 1, ...ascii("d"), ...ascii("c"), 0))
    expect(encodeServerMessage({ type: "welcome", protocol: 1, clientId: "c" })).toEqual(bytes(0x40, 0, 1, ...ascii("c")))
  })

  test("entries: clientIds and names once per frame, seqs implied, time deltas", () => {
    const frame = encodeServerMessage({
      type: "entries", docId: "d",
      entries: [
        { seq: 10, time: 1000, clientId: "A", clientSeq: 5, name: "add", args: null },
        { seq: 11, time: 1002, clientId: "B", clientSeq: 9, name: "add", args: null },
        { seq: 12, time: 1001, clientId: "A", clientSeq: 6, name: "x", args: true },
      ],
    })
    expect(frame).toEqual(bytes(
      0x42, 0, ...ascii("d"), 3, 10,
      0, ...ascii("A"), 5, 0, ...ascii("add"), 0xd0, 0x0f, 0, // new client A, new name, time z(1000) = 2000
      0, ...ascii("B"), 9, 1, 4, 0, // new client B, name #1, time +2
      1, 0, 0, ...ascii("x"), 1, 2, // client #1 (A), clientSeq 5 + 1 + 0, new name, time -1, true
      0, // no checkpoint
    ))
  })

  test("submit: the first clientSeq, then deltas", () => {
    const frame = encodeClientMessage({
      type: "submit", docId: "d", ackedClientSeq: 4,
      commands: [{ clientSeq: 5, name: "a", args: 1 }, { clientSeq: 6, name: "a", args: 2 }, { clientSeq: 4, name: "b", args: 3 }],
    })
    expect(frame).toEqual(bytes(0x03, 0, ...ascii("d"), 4, 3, 5, 0, ...ascii("a"), 4, 2, 0, 1, 4, 4, 5, 0, ...ascii("b"), 4, 6))
  })

  test("submit3: a submit holding a renumbered command, each command with the number it was made under (0: its own)", () => {
    const m = { type: "submit" as const, docId: "d", ackedClientSeq: 4, commands: [{ clientSeq: 5, name: "a", args: 1, madeAs: 2 }, { clientSeq: 6, name: "a", args: 2 }] }
    const frame = encodeClientMessage(m, { version: 3 })
    // form 0 (plain), then as submit with u madeAs after each clientSeq
    expect(frame).toEqual(bytes(0x09, 0, 0, ...ascii("d"), 4, 2, 5, 2, 0, ...ascii("a"), 4, 2, 0, 0, 1, 4, 4))
    expect(decoded(decodeClientMessage(frame, { version: 3 }))).toStrictEqual({ type: "submit", docId: "d", ackedClientSeq: 4, commands: [{ clientSeq: 5, name: "a", args: 1, madeAs: 2 }, { clientSeq: 6, name: "a", args: 2 }] })
    // A connection of protocol 2 or 1 does not know the type, as an older peer would not.
    expect(failed(decodeClientMessage(frame, { version: 2 })).code).toBe("unknown-type")
    expect(failed(decodeClientMessage(frame, { version: 1 })).code).toBe("unknown-type")
    // A form other than plain (0) or compact (1) is refused.
    const bad = Uint8Array.from(frame)
    bad[2] = 2
    expect(failed(decodeClientMessage(bad, { version: 3 })).code).toBe("bad-value")
    // A number no submit can carry is refused, not written as another.
    for (const madeAs of [-1, 1.5, 2 ** 60]) encodeThrows(() => encodeClientMessage({ ...m, commands: [{ clientSeq: 5, name: "a", args: 1, madeAs }] }, { version: 3 }), "protocol-error")
    // Without a renumbered command, a submit is the same frame as in protocol 1.
    expect(encodeClientMessage({ ...m, commands: [{ clientSeq: 5, name: "a", args: 1 }] }, { version: 3 })[0]).toBe(0x03)
  })

  test("results: clientSeq deltas, seq deltas, rejection codes as a kind byte", () => {
    const frame = encodeServerMessage({
      type: "results", docId: "d",
      outcomes: [{ clientSeq: 7, seq: 20 }, { clientSeq: 8, seq: 22 }, { clientSeq: 9, rejection: { code: "invalid-args", message: "m" } }],
    })
    expect(frame).toEqual(bytes(0x43, 0, ...ascii("d"), 3, 7, 0, 40, 0, 0, 4, 0, 3, ...ascii("m")))
  })
})

// ---- compactness ----

describe("compactness", () => {
  test("a batch of 100 todo entries from 2 clients: clientIds once, about 20 bytes an entry", () => {
    const entries = todoEntries(100, ["k3j5h2g8f9d0s1a2", "p0o9i8u7y6t5r4e3"], 5000)
    const frame = encodeServerMessage({ type: "entries", docId: "list-1", entries })
    const text = Buffer.from(frame).toString("latin1")
    expect(text.split("k3j5h2g8f9d0s1a2").length - 1).toBe(1)
    expect(text.split("p0o9i8u7y6t5r4e3").length - 1).toBe(1)
    expect(text.split("toggle").length - 1).toBe(1)
    // args are most of it: {id: "tN"} or {id, title}; per-entry overhead is ~4 bytes
    const argsBytes = entries.reduce((n, e) => n + encodeCanonical(e.args).length, 0)
    expect(frame.length - argsBytes).toBeLessThan(100 * 5)
    expect(frame.length / 100).toBeLessThan(25)
    expect(frame.length).toBeLessThan(JSON.stringify(entries).length / 4)
  })

  test("a contiguous submit costs a byte of clientSeq per command after the first", () => {
    const commands = Array.from({ length: 50 }, (_, i) => ({ clientSeq: 1_000_000 + i, name: "toggle", args: null }))
    const frame = encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 999_999, commands })
    // header 2, docId 2, acked 3, count 1, first clientSeq 3 + name 8 + args 1, then 49 x (delta 1, name ref 1, args 1)
    expect(frame.length).toBe(2 + 2 + 3 + 1 + 3 + 8 + 1 + 49 * 3)
  })

  test("a live entry (one per frame) stays small", () => {
    const frame = encodeServerMessage({ type: "entries", docId: "list-1", entries: todoEntries(1, undefined, 123456) })
    const args = encodeCanonical({ id: "t0", title: "Item 0" }).length
    // header 2 + docId 7 + count 1 + seq 3 + client marker 1 + clientId 17 + clientSeq 1 + name 5 + time 6 + no checkpoint 1
    expect(frame.length).toBe(2 + 7 + 1 + 3 + 1 + 17 + 1 + 5 + 6 + args + 1)
  })
})

// ---- framing and failures ----

describe("framing", () => {
  const synced = encodeServerMessage({ type: "synced", docId: "doc", seq: 5 })

  test("empty and one-byte frames", () => {
    expect(codeOf(new Uint8Array(0))).toBe("empty")
    expect(codeOf(new Uint8Array(0), "client")).toBe("empty")
    expect(codeOf(bytes(0x44))).toBe("truncated")
  })

  test("unknown types: ignored when optional, refused otherwise, whatever the body", () => {
    expect(decodeServerMessage(bytes(0x7e, 1, 0xff, 0xff))).toEqual({ ok: "ignore", type: 0x7e })
    expect(decodeClientMessage(bytes(0x30, 0x03))).toEqual({ ok: "ignore", type: 0x30 })
    expect(codeOf(bytes(0x7e, 0, 1, 2))).toBe("unknown-type")
    expect(codeOf(bytes(0x30, 2), "client")).toBe("unknown-type")
  })

  test("a message of the other direction is an unknown-type error, optional or not", () => {
    expect(codeOf(synced, "client")).toBe("unknown-type")
    expect(codeOf(encodeClientMessage({ type: "fetch-state", docId: "d" }))).toBe("unknown-type")
    expect(codeOf(encodeClientMessage({ type: "presence-set", docId: "d", state: 1 }))).toBe("unknown-type")
    expect(codeOf(encodeServerMessage({ type: "presence", docId: "d", clientId: "c", state: 1 }), "client")).toBe("unknown-type")
  })

  test("a known type with other flags than its own is bad-value", () => {
    const f = synced.slice()
    f[1] = 1
    expect(codeOf(f)).toBe("bad-value")
    f[1] = 2
    expect(codeOf(f)).toBe("bad-value")
    const p = encodeServerMessage({ type: "presence", docId: "d", clientId: "c", state: 1 })
    p[1] = 0
    expect(codeOf(p)).toBe("bad-value")
  })

  test("trailing bytes", () => {
    expect(codeOf(bytes(...synced, 0))).toBe("trailing-bytes")
  })

  test("every truncation of every corpus frame is an error, never a throw", () => {
    for (const version of corpusVersions()) {
      const dir = join(CORPUS_ROOT, `v${version}`)
      for (const f of readdirSync(dir).filter((x) => x.endsWith(".bin"))) {
        const bin = new Uint8Array(readFileSync(join(dir, f)))
        const client = bin[0]! < 0x40
        for (let n = 0; n < bin.length; n++) {
          const cut = bin.subarray(0, n)
          // The receiver as it is when the frame arrives (a session frame's session has seen its conversation).
          const { receiver } = corpusEnds(version, f.slice(0, -4), client)
          const d = client ? decodeClientMessage(cut, receiver) : decodeServerMessage(cut, receiver)
          const e = failed<unknown>(d)
          expect(["empty", "truncated", "bad-varint", "bad-utf8", "bad-value"]).toContain(e.code)
        }
      }
    }
  })

  test("frame limit: refused before parsing, on decode; refused on encode", () => {
    const big = new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1)
    big[0] = 0x44
    expect(codeOf(big)).toBe("too-large")
    expect(failed(decodeServerMessage(synced, { maxFrameBytes: synced.length - 1 })).code).toBe("too-large")
    expect(decoded(decodeServerMessage(synced, { maxFrameBytes: synced.length }))).toEqual({ type: "synced", docId: "doc", seq: 5 })
    const state = { type: "state" as const, docId: "d", seq: 1, hash: "h", state: new Uint8Array(DEFAULT_MAX_FRAME_BYTES) }
    encodeThrows(() => encodeServerMessage(state), "protocol-error", /over the limit/)
    expect(encodeServerMessage(state, { maxFrameBytes: 2 * DEFAULT_MAX_FRAME_BYTES }).length).toBeGreaterThan(DEFAULT_MAX_FRAME_BYTES)
    // and the codec still works afterwards
    expect(decoded(decodeServerMessage(encodeServerMessage({ type: "synced", docId: "doc", seq: 5 })))).toEqual({ type: "synced", docId: "doc", seq: 5 })
  })

  test("versions: only the ones this build speaks", () => {
    expect(PROTOCOL_VERSIONS).toEqual({ min: 1, max: 4 })
    expect(decoded(decodeServerMessage(synced, { version: 1 }))).toEqual({ type: "synced", docId: "doc", seq: 5 })
    expect(decoded(decodeServerMessage(synced, { version: 2 }))).toEqual({ type: "synced", docId: "doc", seq: 5 })
    expect(decoded(decodeServerMessage(synced, { version: 3 }))).toEqual({ type: "synced", docId: "doc", seq: 5 })
    expect(decoded(decodeServerMessage(synced, { version: 4 }))).toEqual({ type: "synced", docId: "doc", seq: 5 })
    expect(failed(decodeServerMessage(synced, { version: 5 })).code).toBe("unsupported-version")
    expect(failed(decodeClientMessage(synced, { version: 0 })).code).toBe("unsupported-version")
    encodeThrows(() => encodeServerMessage({ type: "synced", docId: "d", seq: 1 }, { version: 5 }), "protocol-error")
  })

  test("a value that is not a Uint8Array is bad-value, not a throw", () => {
    expect(failed(decodeServerMessage("frame" as unknown as Uint8Array)).code).toBe("bad-value")
    expect(failed(decodeClientMessage(null as unknown as Uint8Array)).code).toBe("bad-value")
    expect(failed(decodeClientMessage([1, 0] as unknown as Uint8Array)).code).toBe("bad-value")
  })
})

describe("decode errors", () => {
  test("varint overflow is bad-varint", () => {
    expect(codeOf(bytes(0x44, 0, ...ascii("d"), ...new Array(10).fill(0xff), 0x01))).toBe("bad-varint")
    expect(codeOf(bytes(0x44, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))).toBe("bad-varint")
  })

  test("invalid UTF-8 is bad-utf8", () => {
    expect(codeOf(bytes(0x44, 0, 2, 0xc3, 0x28, 5))).toBe("bad-utf8")
    expect(codeOf(bytes(0x04, 0, 1, 0xff), "client")).toBe("bad-utf8")
  })

  test("canonical values nested past the limit are too-deep", () => {
    const deep = (n: number) => {
      const b = new Uint8Array(4 + 2 * n + 1)
      b.set([0x07, 1, ...ascii("d")])
      for (let i = 0; i < n; i++) b.set([8, 1], 4 + 2 * i)
      return b
    }
    expect(decoded(decodeClientMessage(deep(500))).type).toBe("presence-set")
    expect(codeOf(deep(600), "client")).toBe("too-deep")
    expect(codeOf(deep(100_000), "client")).toBe("too-deep")
  })

  test("an unknown canonical tag is bad-value", () => {
    expect(codeOf(bytes(0x07, 1, ...ascii("d"), 0x63), "client")).toBe("bad-value")
  })

  test("lying counts and lengths are refused before allocating (truncated)", () => {
    const huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f] // 2^53 - 1
    const big = [0x80, 0x80, 0x80, 0x80, 0x10] // 2^32
    const cases: Array<[Uint8Array, "client" | "server"]> = [
      [bytes(0x42, 0, ...ascii("d"), ...huge, 1, 0), "server"], // entries count
      [bytes(0x42, 0, ...ascii("d"), ...big, 1, 0), "server"],
      [bytes(0x43, 0, ...ascii("d"), ...big, 0), "server"], // outcomes
      [bytes(0x03, 0, ...ascii("d"), 0, ...big, 1), "client"], // commands
      [bytes(0x01, 0, 1, 1, ...ascii("c"), ...big, 0), "client"], // machines
      [bytes(0x44, 0, ...big, 1, 2, 3), "server"], // a string length
      [bytes(0x46, 0, ...ascii("d"), 1, ...ascii("h"), ...huge, 1), "server"], // a bytes length
      [bytes(0x4b, 1, ...ascii("d"), ...ascii("c"), 8, ...big, 0), "server"], // a canonical array
      [bytes(0x4b, 1, ...ascii("d"), ...ascii("c"), 9, ...big, 0), "server"], // a canonical object
    ]
    for (const [frame, side] of cases) {
      const before = process.memoryUsage().arrayBuffers
      const t = performance.now()
      expect(codeOf(frame, side)).toBe("truncated")
      // A bound against a loop over the claimed count (2^32, 2^53), not a speed target.
      expect(performance.now() - t).toBeLessThan(2_000)
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20)
    }
  })

  test("bad shapes: references, kinds, codes, ranges, optional-field bits", () => {
    const head = [0x42, 0, ...ascii("d")]
    // a client reference before any client is defined
    expect(codeOf(bytes(...head, 1, 1, 1, 0, 0, ...ascii("n"), 0, 0, 0))).toBe("bad-value")
    // a name reference past the table
    expect(codeOf(bytes(...head, 1, 1, 0, ...ascii("c"), 0, 2, 0, 0, 0))).toBe("bad-value")
    // a clientId defined twice
    expect(codeOf(bytes(...head, 2, 1, 0, ...ascii("c"), 0, 0, ...ascii("n"), 0, 0, 0, ...ascii("c"), 1, 1, 0, 0, 0))).toBe("bad-value")
    // a name defined twice
    expect(codeOf(bytes(...head, 2, 1, 0, ...ascii("c"), 0, 0, ...ascii("n"), 0, 0, 1, 0, 0, ...ascii("n"), 0, 0, 0))).toBe("bad-value")
    // a time below zero (z(-1) = 1)
    expect(codeOf(bytes(...head, 1, 1, 0, ...ascii("c"), 0, 0, ...ascii("n"), 1, 0, 0))).toBe("bad-value")
    // a clientSeq below zero: second entry of client #1 with delta -2 (z = 3)
    expect(codeOf(bytes(...head, 2, 1, 0, ...ascii("c"), 0, 0, ...ascii("n"), 0, 0, 1, 3, 1, 0, 0, 0))).toBe("bad-value")
    // seqs past 2^53 - 1
    expect(codeOf(bytes(...head, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, ...ascii("c"), 0, 0, ...ascii("n"), 0, 0, 1, 0, 1, 0, 0, 0))).toBe("bad-value")
    // an optional-field byte with unknown bits
    expect(codeOf(bytes(...head, 0, 2))).toBe("bad-value")
    expect(codeOf(bytes(0x47, 0, ...ascii("c"), ...ascii("m"), 0x80))).toBe("bad-value")
    // an unknown outcome kind
    expect(codeOf(bytes(0x43, 0, ...ascii("d"), 1, 1, 10, ...ascii("m")))).toBe("bad-value")
    // an unknown refusal code
    expect(codeOf(bytes(0x41, 0, ...ascii("nope"), ...ascii("m"), 0))).toBe("bad-value")
    // a submit clientSeq below zero
    expect(codeOf(bytes(0x03, 0, ...ascii("d"), 0, 2, 0, 0, ...ascii("n"), 0, 3, 1, 0), "client")).toBe("bad-value")
  })

  test("errors carry no stack trace, and the stack trace limit is restored", () => {
    const limit = Error.stackTraceLimit
    const e = failed(decodeServerMessage(bytes(0x7e, 0)))
    expect(e.message).toMatch(/0x7e/)
    expect(e.stack ?? "").not.toMatch(/codec/)
    expect(Error.stackTraceLimit).toBe(limit)
  })
})

// ---- encoding refusals ----

describe("encode refusals", () => {
  const entry = (over: Partial<Entry>): Entry => ({ seq: 1, time: 0, clientId: "c", clientSeq: 0, name: "n", args: null, ...over })
  const entries = (es: Entry[]): Entries => ({ type: "entries", docId: "d", entries: es })

  test("entries must be contiguous", () => {
    encodeThrows(() => encodeServerMessage(entries([entry({ seq: 1 }), entry({ seq: 3 })])), "protocol-error", /contiguous/)
    encodeThrows(() => encodeServerMessage(entries([entry({ seq: 2 }), entry({ seq: 1 })])), "protocol-error", /contiguous/)
  })

  test("seqs, clientSeqs and counters are non-negative integers", () => {
    encodeThrows(() => encodeServerMessage(entries([entry({ seq: -1 })])), "protocol-error")
    encodeThrows(() => encodeServerMessage(entries([entry({ clientSeq: 1.5 })])), "protocol-error")
    encodeThrows(() => encodeServerMessage({ type: "synced", docId: "d", seq: NaN }), "protocol-error")
    encodeThrows(() => encodeServerMessage({ type: "synced", docId: "d", seq: 2 ** 53 }), "protocol-error")
    encodeThrows(() => encodeClientMessage({ type: "snapshot-ack", docId: "d", snapshotId: -3, received: 0 }), "protocol-error")
    encodeThrows(() => encodeServerMessage({ type: "results", docId: "d", outcomes: [{ clientSeq: 1, seq: -5 }] }), "protocol-error")
    encodeThrows(() => encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [{ clientSeq: -1, name: "n", args: 1 }] }), "protocol-error")
  })

  test("times are integers in [0, 2^52)", () => {
    encodeThrows(() => encodeServerMessage(entries([entry({ time: -1 })])), "protocol-error", /time/)
    encodeThrows(() => encodeServerMessage(entries([entry({ time: 1.5 })])), "protocol-error", /time/)
    encodeThrows(() => encodeServerMessage(entries([entry({ time: 2 ** 52 })])), "protocol-error", /time/)
  })

  test("deltas that do not fit", () => {
    const commands = [{ clientSeq: 0, name: "n", args: 1 }, { clientSeq: Number.MAX_SAFE_INTEGER, name: "n", args: 1 }]
    encodeThrows(() => encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, commands }), "protocol-error", /too far/)
  })

  test("strings are strings, codes are known, args are plain data", () => {
    encodeThrows(() => encodeClientMessage({ type: "fetch-state", docId: 5 as unknown as string }), "protocol-error")
    encodeThrows(() => encodeServerMessage({ type: "refused", code: "nope" as "unauthorized", message: "m" }), "protocol-error", /refusal code/)
    encodeThrows(() => encodeServerMessage({ type: "results", docId: "d", outcomes: [{ clientSeq: 1, rejection: { code: "nope" as "rejected", message: "" } }] }), "protocol-error")
    encodeThrows(() => encodeClientMessage({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "n", args: new Map() }] }), "state-unencodable")
    encodeThrows(() => encodeClientMessage({ type: "presence-set", docId: "d", state: new Date() }), "state-unencodable")
    encodeThrows(() => encodeServerMessage({ type: "state", docId: "d", seq: 1, hash: "h", state: [1, 2] as unknown as Uint8Array }), "protocol-error")
  })

  test("malformed values surface as CanonError, not TypeError", () => {
    encodeThrows(() => encodeServerMessage({ type: "entries", docId: "d", entries: [null as unknown as Entry] }), "protocol-error")
    encodeThrows(() => encodeClientMessage({ type: "hello" } as unknown as ClientMessage), "protocol-error")
    encodeThrows(() => encodeClientMessage({ type: "welcome" } as unknown as ClientMessage), "protocol-error", /client message/)
    encodeThrows(() => encodeServerMessage({ type: "hello" } as unknown as ServerMessage), "protocol-error", /server message/)
  })

  test("a failed encode leaves the codec usable", () => {
    expect(() => encodeServerMessage(entries([entry({ seq: 1 }), entry({ seq: 3 })]))).toThrow()
    const m = entries([entry({ seq: 1 }), entry({ seq: 2, clientId: "other" })])
    expect(decoded(decodeServerMessage(encodeServerMessage(m)))).toStrictEqual(m)
  })
})

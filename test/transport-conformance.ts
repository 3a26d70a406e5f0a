/**
 * The shared conformance suite of the Transport port (core/ports/transport.ts): every
 * transport runs it through `transportConformance(name, harness)` from its own test file.
 *
 * It holds a transport to what the hub and CanonClient rely on: a connection opens (onOpen
 * on the client, accept on the server); messages of every type arrive intact (deep-equal,
 * Uint8Array fields included) and in order, both ways; a close from either side reaches the
 * other with its code and reason, exactly once, and the side that closed hears nothing more;
 * connecting to nothing ends in onClose (asynchronously, never a throw); bufferedAmount is a
 * number that returns to 0 when idle; many concurrent connections keep their messages apart;
 * messages up to the frame limit arrive whole; a server that goes away closes its
 * connections; a paused server end (the hub's input flow control) hears nothing until resumed.
 */
import type {
  ClientMessage, ClientTransport, CloseInfo, Connection, ConnectionAcceptor, ConnectionInfo, ServerMessage,
} from "../core/index.js"
import { encodeClientMessage, encodeServerMessage } from "../core/protocol/codec.js"

export interface TransportHarness {
  /** Serves `acceptor`: every connection a client of this harness opens is handed to it. */
  serve(acceptor: ConnectionAcceptor): Promise<void>
  /** A client transport to the served acceptor. */
  client(): ClientTransport
  /** A client transport to an address where nothing listens. */
  nowhere(): ClientTransport
  /** Lets time pass (virtual or real) until `done()` holds or `maxMs` went by; returns done(). */
  until(done: () => boolean, maxMs: number): Promise<boolean>
  /** The server goes away (its connections end; the code is the transport's). */
  stop(): Promise<void>
  /** Largest frame the transport carries in bytes (both ends configured with it). */
  readonly maxFrameBytes: number
  /** Closes whatever the harness opened. Called after each test. */
  dispose(): Promise<void>
}

// ---- recorders ----

interface ServerSide {
  readonly conn: Connection<ServerMessage>
  readonly info: ConnectionInfo | undefined
  readonly got: ClientMessage[]
  closes: CloseInfo[]
}

class Recorder implements ConnectionAcceptor {
  readonly sides: ServerSide[] = []
  /** Called on each accept (e.g. to answer at once). */
  onAccept: ((side: ServerSide) => void) | undefined
  /** Called on each message (e.g. to echo). */
  onMessage: ((side: ServerSide, m: ClientMessage) => void) | undefined

  accept(conn: Connection<ServerMessage>, info?: ConnectionInfo) {
    const side: ServerSide = { conn, info, got: [], closes: [] }
    this.sides.push(side)
    this.onAccept?.(side)
    return {
      onMessage: (m: ClientMessage) => {
        side.got.push(m)
        this.onMessage?.(side, m)
      },
      onClose: (i: CloseInfo) => void side.closes.push(i),
    }
  }
}

interface ClientSide {
  readonly conn: Connection<ClientMessage>
  opens: number
  readonly got: ServerMessage[]
  closes: CloseInfo[]
  /** Events in order: "open", "message", "close". */
  readonly events: string[]
}

const open = (transport: ClientTransport): ClientSide => {
  const side = { opens: 0, got: [] as ServerMessage[], closes: [] as CloseInfo[], events: [] as string[] } as Omit<ClientSide, "conn"> & { conn?: Connection<ClientMessage> }
  side.conn = transport.connect({
    onOpen: () => {
      side.opens++
      side.events.push("open")
    },
    onMessage: (m) => {
      side.got.push(m)
      side.events.push("message")
    },
    onClose: (i) => {
      side.closes.push(i)
      side.events.push("close")
    },
  })
  return side as ClientSide
}

/** The message `make(n)` whose frame (protocol 1, as a connection starts) is exactly `limit + 1` bytes. */
const overLimit = <M>(limit: number, make: (n: number) => M, encode: (m: M, o: { maxFrameBytes: number }) => Uint8Array): M => {
  let n = limit - 256
  for (let tries = 0; tries < 4; tries++) {
    const size = encode(make(n), { maxFrameBytes: Number.MAX_SAFE_INTEGER }).length
    if (size === limit + 1) return make(n)
    n += limit + 1 - size
  }
  throw new Error(`No message of exactly ${limit + 1} bytes near ${n}.`)
}

// ---- sample messages (each as the codec gives it back: no undefined fields) ----

const bytes = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let s = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    out[i] = s & 0xff
  }
  return out
}

const ARGS = { id: "t1", title: "Milk — 2 L, «bio» 🥛", n: 42, neg: -7, f: 1.5, yes: true, no: false, nil: null, list: [1, "two", [3]], blob: bytes(33, 7) }

export const CLIENT_SAMPLES: ReadonlyArray<ClientMessage> = [
  { type: "hello", protocol: { min: 1, max: 3 }, clientId: "client-1", machines: [{ name: "todo", version: 2, fingerprint: "f00d" }, { name: "chess", version: 1, fingerprint: "beef" }], credentials: "token ✓" },
  { type: "hello", protocol: { min: 1, max: 1 }, clientId: "c", machines: [] },
  { type: "subscribe", docId: "doc/1", machine: "todo", version: 2, fingerprint: "f00d", fromSeq: 17, ackedClientSeq: 4 },
  { type: "submit", docId: "doc/1", ackedClientSeq: 3, commands: [
    { clientSeq: 5, name: "add", args: ARGS },
    { clientSeq: 6, name: "toggle", args: { id: "t1" } },
    { clientSeq: 9, name: "add", args: { id: "t2", title: "" } },
  ] },
  { type: "submit", docId: "doc/1", ackedClientSeq: 9, commands: [] },
  { type: "fetch-state", docId: "doc/1" },
  { type: "unsubscribe", docId: "doc/1" },
  { type: "snapshot-ack", docId: "doc/1", snapshotId: 3, received: 65536 },
  { type: "presence-set", docId: "doc/1", state: { cursor: [3, 4], name: "Ada", blob: bytes(5, 1) } },
  { type: "presence-set", docId: "doc/1", state: null },
]

export const SERVER_SAMPLES: ReadonlyArray<ServerMessage> = [
  { type: "welcome", protocol: 1, clientId: "client-1" },
  { type: "refused", code: "protocol-unsupported", message: "Speak 1..1.", protocol: { min: 1, max: 1 } },
  { type: "refused", code: "schema-too-old", message: "Upgrade the app.", machine: "todo" },
  { type: "entries", docId: "doc/1", entries: [
    { seq: 41, time: 1_700_000_000_000, clientId: "a", clientSeq: 1, name: "add", args: ARGS },
    { seq: 42, time: 1_700_000_000_005, clientId: "b", clientSeq: 7, name: "note", args: { text: "hi" } },
    { seq: 43, time: 1_700_000_000_005, clientId: "a", clientSeq: 2, name: "toggle", args: { id: "t1" } },
  ], checkpoint: { seq: 42, hash: "abc123" } },
  { type: "entries", docId: "doc/1", entries: [] },
  { type: "results", docId: "doc/1", outcomes: [
    { clientSeq: 5, seq: 41 },
    { clientSeq: 6, rejection: { code: "rejected", message: "Item t9 does not exist." } },
    { clientSeq: 7, seq: 44 },
    { clientSeq: 8, rejection: { code: "invalid-args", message: "Expected a string." } },
  ] },
  { type: "synced", docId: "doc/1", seq: 44 },
  { type: "checkpoint", docId: "doc/1", seq: 44, hash: "def456" },
  { type: "state", docId: "doc/1", seq: 44, hash: "def456", state: bytes(300, 3) },
  { type: "error", code: "rate-limited", message: "Slow down." },
  { type: "error", code: "not-subscribed", message: "Subscribe first.", docId: "doc/1" },
  { type: "snapshot-begin", docId: "doc/1", snapshotId: 2, seq: 44, hash: "def456", size: 300 },
  { type: "snapshot-chunk", docId: "doc/1", snapshotId: 2, offset: 0, bytes: bytes(300, 4) },
  { type: "snapshot-end", docId: "doc/1", snapshotId: 2 },
  { type: "presence", docId: "doc/1", clientId: "b", state: { cursor: [1, 2] } },
]

/** Every Uint8Array inside `v` (to check they arrive as Uint8Arrays). */
const byteFields = (v: unknown, out: Uint8Array[] = []): Uint8Array[] => {
  if (v instanceof Uint8Array) out.push(v)
  else if (Array.isArray(v)) for (const x of v) byteFields(x, out)
  else if (v !== null && typeof v === "object") for (const x of Object.values(v)) byteFields(x, out)
  return out
}

/** `v` with each Uint8Array as a tagged base64 string: compares fast, and a wrong type shows. */
const plain = (v: unknown): unknown => {
  if (ArrayBuffer.isView(v)) {
    const tag = Object.prototype.toString.call(v)
    return `${tag}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")}`
  }
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

const expectSame = (got: ReadonlyArray<unknown>, sent: ReadonlyArray<unknown>): void => {
  expect(plain(got)).toEqual(plain(sent))
  const a = byteFields(got)
  expect(a.length).toBe(byteFields(sent).length)
  for (const b of a) expect(Object.prototype.toString.call(b)).toBe("[object Uint8Array]")
}

/** A submit whose `ackedClientSeq` numbers it. */
const numbered = (i: number): ClientMessage => ({ type: "submit", docId: "order", ackedClientSeq: i, commands: [{ clientSeq: i + 1, name: "note", args: { text: `m${i}` } }] })
const numberedDown = (i: number): ServerMessage => ({ type: "synced", docId: "order", seq: i })

/** Close codes a transport must carry exactly (the hub's, the client's, one nobody listed). */
const CLOSE_CODES = [
  "closed", "going-away", "protocol-error", "unauthorized", "slow-consumer", "rate-limited", "storage-failed",
  "protocol-unsupported", "machine-unknown", "schema-too-old", "schema-too-new", "schema-mismatch", "timeout",
  "some-future-code",
]

export const transportConformance = (name: string, make: () => TransportHarness | Promise<TransportHarness>): void => {
  describe(`transport conformance: ${name}`, () => {
    let h: TransportHarness
    let server: Recorder

    beforeEach(async () => {
      h = await make()
      server = new Recorder()
      await h.serve(server)
    })

    afterEach(async () => {
      await h.dispose()
    })

    /** Opens a client and waits until both ends know of the connection. */
    const connected = async (): Promise<{ c: ClientSide; s: ServerSide }> => {
      const before = server.sides.length
      const c = open(h.client())
      expect(await h.until(() => c.opens === 1 && server.sides.length > before, 5_000)).toBe(true)
      return { c, s: server.sides[server.sides.length - 1]! }
    }

    test("a connection opens: onOpen on the client, one accept on the server with a remote address", async () => {
      const { c, s } = await connected()
      expect(server.sides.length).toBe(1)
      expect(c.events).toEqual(["open"])
      expect(typeof s.info?.remoteAddress).toBe("string")
      expect(s.info!.remoteAddress!.length).toBeGreaterThan(0)
      expect(c.closes).toEqual([])
      expect(s.closes).toEqual([])
    })

    test("client messages of every type arrive intact and in order", async () => {
      const { c, s } = await connected()
      for (const m of CLIENT_SAMPLES) c.conn.send(m)
      expect(await h.until(() => s.got.length >= CLIENT_SAMPLES.length, 5_000)).toBe(true)
      expectSame(s.got, CLIENT_SAMPLES)
    })

    test("server messages of every type arrive intact and in order", async () => {
      const { c, s } = await connected()
      for (const m of SERVER_SAMPLES) s.conn.send(m)
      expect(await h.until(() => c.got.length >= SERVER_SAMPLES.length, 5_000)).toBe(true)
      expectSame(c.got, SERVER_SAMPLES)
      expect(c.events[0]).toBe("open")
    })

    test("a message sent by the server as it accepts arrives after onOpen", async () => {
      server.onAccept = (side) => side.conn.send(SERVER_SAMPLES[0]!)
      const c = open(h.client())
      expect(await h.until(() => c.got.length === 1, 5_000)).toBe(true)
      expect(c.events).toEqual(["open", "message"])
      expectSame(c.got, [SERVER_SAMPLES[0]])
    })

    test("a paused server end hears nothing until resumed, then every message in order", async () => {
      const { c, s } = await connected()
      // Optional in the port; every transport here implements it.
      expect(typeof s.conn.pause).toBe("function")
      // Twice: paused again after a resume, what comes next waits too.
      for (const upTo of [50, 100]) {
        s.conn.pause!()
        for (let i = upTo - 50; i < upTo; i++) c.conn.send(numbered(i))
        await h.until(() => false, 200)
        // A socket may have read a frame or two before the pause took hold; never all of them.
        expect(s.got.length).toBeLessThan(upTo)
        s.conn.resume!()
        expect(await h.until(() => s.got.length === upTo, 5_000)).toBe(true)
      }
      expect(s.got).toEqual(Array.from({ length: 100 }, (_, i) => numbered(i)))
    })

    test("many messages both ways at once keep their order", async () => {
      const { c, s } = await connected()
      const n = 500
      server.onMessage = (side, m) => {
        if (m.type === "submit") side.conn.send(numberedDown(m.ackedClientSeq))
      }
      for (let i = 0; i < n; i++) {
        c.conn.send(numbered(i))
        s.conn.send(numberedDown(100_000 + i))
      }
      expect(await h.until(() => s.got.length === n && c.got.length === 2 * n, 10_000)).toBe(true)
      expect(s.got).toEqual(Array.from({ length: n }, (_, i) => numbered(i)))
      // Each direction is FIFO: the echoes in order, the server's own sends in order.
      const seqs = c.got.map((m) => (m as { seq: number }).seq)
      expect(seqs.filter((x) => x < 100_000)).toEqual(Array.from({ length: n }, (_, i) => i))
      expect(seqs.filter((x) => x >= 100_000)).toEqual(Array.from({ length: n }, (_, i) => 100_000 + i))
    })

    test.each(CLOSE_CODES)("close from the server reaches the client: %s", async (code) => {
      const { c, s } = await connected()
      s.conn.send(SERVER_SAMPLES[0]!)
      s.conn.close(code, `Closing with ${code}; you may reconnect.`)
      expect(await h.until(() => c.closes.length > 0, 5_000)).toBe(true)
      // What was sent before the close arrives before it.
      expect(c.events).toEqual(["open", "message", "close"])
      expect(c.closes).toEqual([{ code, reason: `Closing with ${code}; you may reconnect.` }])
      // The side that closed hears nothing more.
      await h.until(() => false, 50)
      expect(s.closes).toEqual([])
      expect(c.closes.length).toBe(1)
    })

    test.each(["closed", "going-away", "timeout", "some-future-code"])("close from the client reaches the server: %s", async (code) => {
      const { c, s } = await connected()
      c.conn.send(CLIENT_SAMPLES[2]!)
      c.conn.close(code, `Client leaving (${code}).`)
      expect(await h.until(() => s.closes.length > 0, 5_000)).toBe(true)
      expect(s.got).toEqual([CLIENT_SAMPLES[2]])
      expect(s.closes).toEqual([{ code, reason: `Client leaving (${code}).` }])
      await h.until(() => false, 50)
      expect(c.closes).toEqual([])
      expect(s.closes.length).toBe(1)
    })

    test("a long close reason arrives whole or shortened, its code intact", async () => {
      const { c, s } = await connected()
      const reason = "Ünïcödé reason ✓ ".repeat(20)
      s.conn.close("slow-consumer", reason)
      expect(await h.until(() => c.closes.length > 0, 5_000)).toBe(true)
      expect(c.closes[0]!.code).toBe("slow-consumer")
      const got = c.closes[0]!.reason
      expect(got.length).toBeGreaterThanOrEqual(50)
      // Shortened, it says so ("…"), so an app showing it does not end on half a word.
      if (got !== reason) expect(got.endsWith("…") && reason.startsWith(got.slice(0, -1))).toBe(true)
    })

    test("after close, sends are ignored (no throw) and nothing more is heard on either side", async () => {
      const { c, s } = await connected()
      c.conn.close("closed", "bye")
      expect(() => c.conn.send(CLIENT_SAMPLES[5]!)).not.toThrow()
      expect(() => c.conn.close("closed", "again")).not.toThrow()
      expect(await h.until(() => s.closes.length > 0, 5_000)).toBe(true)
      expect(() => s.conn.send(SERVER_SAMPLES[0]!)).not.toThrow()
      expect(() => s.conn.close("closed", "again")).not.toThrow()
      await h.until(() => false, 50)
      expect(s.got).toEqual([])
      expect(c.got).toEqual([])
      expect(c.closes).toEqual([])
      expect(s.closes.length).toBe(1)
    })

    test("connecting to nothing ends in onClose (unreachable), asynchronously, never a throw", async () => {
      let side: ClientSide | undefined
      expect(() => {
        side = open(h.nowhere())
      }).not.toThrow()
      // Not inside connect(): the caller must get its Connection first.
      expect(side!.closes).toEqual([])
      expect(await h.until(() => side!.closes.length > 0, 10_000)).toBe(true)
      expect(side!.closes.length).toBe(1)
      expect(side!.closes[0]!.code).toBe("unreachable")
      expect(typeof side!.closes[0]!.reason).toBe("string")
      expect(side!.opens).toBe(0)
      expect(() => side!.conn.send(CLIENT_SAMPLES[5]!)).not.toThrow()
      expect(() => side!.conn.close()).not.toThrow()
    })

    test("bufferedAmount is a number on both ends and returns to 0 when idle", async () => {
      const { c, s } = await connected()
      expect(c.conn.bufferedAmount).toBe(0)
      expect(s.conn.bufferedAmount).toBe(0)
      for (let i = 0; i < 200; i++) {
        c.conn.send(CLIENT_SAMPLES[3]!)
        s.conn.send(SERVER_SAMPLES[3]!)
      }
      for (const b of [c.conn.bufferedAmount, s.conn.bufferedAmount]) {
        expect(typeof b).toBe("number")
        expect(Number.isFinite(b) && b >= 0).toBe(true)
      }
      expect(await h.until(() => s.got.length === 200 && c.got.length === 200, 10_000)).toBe(true)
      expect(await h.until(() => c.conn.bufferedAmount === 0 && s.conn.bufferedAmount === 0, 5_000)).toBe(true)
    })

    test("50 concurrent connections keep their messages apart", async () => {
      const n = 50
      const per = 20
      server.onMessage = (side, m) => {
        if (m.type === "hello") side.conn.send({ type: "welcome", protocol: 1, clientId: m.clientId })
      }
      const clients = Array.from({ length: n }, () => open(h.client()))
      expect(await h.until(() => clients.every((c) => c.opens === 1) && server.sides.length === n, 15_000)).toBe(true)
      clients.forEach((c, k) => {
        c.conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId: `c${k}`, machines: [] })
        for (let i = 0; i < per; i++) c.conn.send({ type: "snapshot-ack", docId: `c${k}`, snapshotId: 1, received: i })
      })
      expect(await h.until(() => server.sides.every((s) => s.got.length === per + 1) && clients.every((c) => c.got.length === 1), 15_000)).toBe(true)
      for (const s of server.sides) {
        const hello = s.got[0] as { type: string; clientId: string }
        expect(hello.type).toBe("hello")
        expect(s.got.slice(1)).toEqual(Array.from({ length: per }, (_, i) => ({ type: "snapshot-ack", docId: hello.clientId, snapshotId: 1, received: i })))
      }
      clients.forEach((c, k) => expect(c.got).toEqual([{ type: "welcome", protocol: 1, clientId: `c${k}` }]))
      for (const c of clients) c.conn.close("closed", "done")
      expect(await h.until(() => server.sides.every((s) => s.closes.length === 1), 15_000)).toBe(true)
      expect(server.sides.every((s) => s.closes[0]!.code === "closed")).toBe(true)
    })

    test("messages up to the frame limit arrive whole, both ways", async () => {
      const { c, s } = await connected()
      const limit = h.maxFrameBytes
      // Room for the message's other fields; the payload is nearly the whole frame.
      const payload = limit - 256
      const down: ServerMessage = { type: "state", docId: "big", seq: 9, hash: "h", state: bytes(payload, 11) }
      const up: ClientMessage = { type: "submit", docId: "big", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "blob", args: { data: bytes(payload, 12) } }] }
      s.conn.send(down)
      c.conn.send(up)
      s.conn.send(SERVER_SAMPLES[6]!)
      c.conn.send(CLIENT_SAMPLES[5]!)
      expect(await h.until(() => c.got.length === 2 && s.got.length === 2, 15_000)).toBe(true)
      expectSame(c.got, [down, SERVER_SAMPLES[6]])
      expectSame(s.got, [up, CLIENT_SAMPLES[5]])
      expect(c.closes).toEqual([])
    })

    // A peer that sends more than the limit must not be thrown at (the hub would crash, a
    // client's outbox would stop), and the message must not arrive in part or be lost quietly.
    test("the hub sends a message one byte over the frame limit: the connection ends with too-large on both ends, never a throw", async () => {
      const { c, s } = await connected()
      const over = overLimit(h.maxFrameBytes, (n): ServerMessage => ({ type: "state", docId: "d", seq: 1, hash: "h", state: bytes(n, 13) }), encodeServerMessage)
      expect(() => s.conn.send(over)).not.toThrow()
      expect(await h.until(() => c.closes.length > 0 && s.closes.length > 0, 15_000)).toBe(true)
      expect(c.closes).toEqual([{ code: "too-large", reason: expect.stringMatching(new RegExp(`over the frame limit of ${h.maxFrameBytes} bytes`)) }])
      expect(s.closes.map((i) => i.code)).toEqual(["too-large"])
      expect(c.got).toEqual([])
    })

    test("a client sends a message one byte over the frame limit: the connection ends with too-large on both ends, never a throw", async () => {
      const { c, s } = await connected()
      const over = overLimit(h.maxFrameBytes, (n): ClientMessage => ({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "x", args: { blob: bytes(n, 14) } }] }), encodeClientMessage)
      expect(() => c.conn.send(over)).not.toThrow()
      expect(await h.until(() => c.closes.length > 0 && s.closes.length > 0, 15_000)).toBe(true)
      expect(c.closes.map((i) => i.code)).toEqual(["too-large"])
      expect(s.closes.map((i) => i.code)).toEqual(["too-large"])
      expect(s.got).toEqual([])
    })

    test("a server that goes away ends its connections; the clients hear it once", async () => {
      const a = await connected()
      const b = await connected()
      await h.stop()
      expect(await h.until(() => a.c.closes.length > 0 && b.c.closes.length > 0, 10_000)).toBe(true)
      for (const c of [a.c, b.c]) {
        expect(c.closes.length).toBe(1)
        expect(typeof c.closes[0]!.code).toBe("string")
      }
      // A new connection to the stopped server fails like any unreachable one.
      const late = open(h.client())
      expect(await h.until(() => late.closes.length > 0, 10_000)).toBe(true)
      expect(late.closes[0]!.code).toBe("unreachable")
      expect(late.opens).toBe(0)
    })
  })
}

/**
 * End to end over real WebSockets (loopback only, every loop bounded in count and time):
 * a Hub on MemoryStorage with the system runtime, served by WsServer, Node CanonClients.
 *
 * - convergence under socket drops: 3 clients, a seeded random Todo workload, sockets
 *   terminated at random moments (server side and client side); afterwards every replica
 *   has the authority's hash, every confirmed receipt is in the log, nothing twice;
 * - hostile peers (garbage, text, oversize, unknown types, a flood) get the documented
 *   errors and close codes while a normal client carries on;
 * - a client that stops reading: the hub's buffer for it stays bounded (bytes), it is
 *   dropped with slow-consumer (or paused at the high-water mark) and catches up later.
 */
import { secretFor } from "./support/secrets.js"
import { WebSocket } from "ws"
import { CanonClient, CommandRejected, Hub, type ClientMessage, type CloseInfo, type Connection, type ConnectionAcceptor, type ConnectionInfo, type Doc, type HubOptions, type ServerMessage, type VersionRange } from "../core/index.js"
import { AuthorityStore, decodeServerMessage, encodeClientMessage, encodeServerMessage, seededRandom } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport, type NodeWsClientOptions, type WsServerOptions } from "../adapters/ws/index.js"
import { Todo } from "./support/machines.js"
import { sleep, until } from "./support/ws.js"

let cleanup: Array<() => Promise<unknown> | unknown> = []

afterEach(async () => {
  const steps = cleanup.reverse()
  cleanup = []
  for (const f of steps) await f()
})

/** What the acceptor-side wrapper saw of each connection (by the clientId of its hello). */
interface Watched {
  clientId: string | undefined
  maxBuffered: number
  /** Bytes of frames sent to it, and how many had gone when the socket first buffered (the OS took the rest). */
  sentBytes: number
  sentWhenFirstBuffered: number | undefined
  closedBy: string[]
  closes: CloseInfo[]
}

/** Wraps the hub to watch every connection: buffered bytes after each send, closes. */
const watch = (hub: Hub): { acceptor: ConnectionAcceptor; conns: Watched[] } => {
  const conns: Watched[] = []
  const acceptor: ConnectionAcceptor = {
    accept(conn: Connection<ServerMessage>, info?: ConnectionInfo) {
      const w: Watched = { clientId: undefined, maxBuffered: 0, sentBytes: 0, sentWhenFirstBuffered: undefined, closedBy: [], closes: [] }
      conns.push(w)
      const watched: Connection<ServerMessage> = {
        send: (m) => {
          conn.send(m)
          try {
            w.sentBytes += encodeServerMessage(m).length
          } catch {
            // Not encodable: the transport refuses it too (and says so); nothing was sent.
          }
          const b = conn.bufferedAmount
          if (b > 0 && w.sentWhenFirstBuffered === undefined) w.sentWhenFirstBuffered = w.sentBytes - b
          w.maxBuffered = Math.max(w.maxBuffered, b)
        },
        close: (code, reason) => {
          w.closedBy.push(code ?? "closed")
          conn.close(code, reason)
        },
        get bufferedAmount() {
          return conn.bufferedAmount
        },
      }
      const inner = hub.accept(watched, info)
      return {
        onMessage: (m: ClientMessage) => {
          if (m.type === "hello") w.clientId = m.clientId
          inner.onMessage(m)
        },
        onClose: (i: CloseInfo) => {
          w.closes.push(i)
          inner.onClose(i)
        },
      }
    },
  }
  return { acceptor, conns }
}

const world = async (hubOptions: Partial<HubOptions> = {}, serverOptions: Partial<WsServerOptions> = {}) => {
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime, ...hubOptions })
  const { acceptor, conns } = watch(hub)
  const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], ...serverOptions })
  cleanup.push(() => hub.close(), () => server.close())
  const url = server.urls()[0]!
  const client = async (options: NodeWsClientOptions = {}, clientId?: string, protocol?: VersionRange) => {
    const c = await CanonClient.open({
      transport: wsClientTransport(url, options), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 10, maxMs: 200 },
      ...(clientId !== undefined ? { clientId } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
    })
    cleanup.push(() => c.close())
    return c
  }
  return { storage, hub, server, url, conns, client }
}

const logOf = (storage: MemoryStorage, docId: string) => new AuthorityStore(storage).entries(docId, 0, 1e6)

describe("convergence over ws with sockets destroyed mid-flight", () => {
  const V1 = { min: 1, max: 1 }
  const V12 = { min: 1, max: 2 }
  // Protocol versions: today's (4) everywhere; today's hub serving v2 and v4 clients side by
  // side, and v1 and v4; today's clients speaking v1 to a hub that only speaks v1.
  test.each([
    { seed: 11, hub: undefined, clients: [undefined, undefined, undefined], expected: [4, 4, 4] },
    { seed: 29, hub: undefined, clients: [undefined, V12, undefined], expected: [4, 2, 4] },
    { seed: 47, hub: undefined, clients: [V1, undefined, V1], expected: [1, 4, 1] },
    { seed: 53, hub: V1, clients: [undefined, undefined, undefined], expected: [1, 1, 1] },
  ])("seed $seed, protocols $expected: 3 clients converge; nothing acknowledged lost; nothing applied twice", async ({ seed, hub: hubProtocol, clients: protocols, expected }) => {
    const rand = seededRandom(seed)
    const { storage, hub, server, client } = await world(hubProtocol !== undefined ? { protocol: hubProtocol } : {})
    const clientSockets: WebSocket[][] = [[], [], []]
    const offline = [0, 0, 0]
    const clients = await Promise.all([0, 1, 2].map((k) => client({ onSocket: (s) => clientSockets[k]!.push(s) }, undefined, protocols[k])))
    clients.forEach((c, k) => c.onStatus((s) => {
      if (s === "offline") offline[k]!++
    }))
    const docs: Doc<typeof Todo>[] = await Promise.all(clients.map((c) => c.open(Todo, "e2e")))
    expect(await until(() => clients.every((c) => c.status === "online"), 5_000)).toBe(true)
    expect(clients.map((c) => c.protocol)).toEqual(expected)

    type Settled = { k: number; clientSeq: number; seq?: number; rejected?: string }
    const settled: Settled[] = []
    let submitted = 0
    const ids: string[] = []
    const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(rand() * xs.length)]!
    let serverKills = 0
    let clientKills = 0
    const STEPS = 400
    for (let step = 0; step < STEPS; step++) {
      const k = Math.floor(rand() * 3)
      const doc = docs[k]!
      const r = rand()
      const receipt =
        r < 0.4 || ids.length === 0 ? doc.submit("add", { id: (ids.push(`${k}-${step}`), `${k}-${step}`), title: `t${step}` })
        : r < 0.55 ? doc.submit("rename", { id: pick(ids), title: `r${step}` })
        : r < 0.7 ? doc.submit("toggle", { id: pick(ids) })
        : r < 0.8 ? doc.submit("remove", { id: pick(ids) })
        : doc.submit("note", { text: `n${step}` })
      submitted++
      const clientSeq = receipt.clientSeq
      receipt.then(
        ({ seq }) => void settled.push({ k, clientSeq, seq }),
        (e: unknown) => void settled.push({ k, clientSeq, rejected: e instanceof CommandRejected ? e.code : String(e) }),
      )
      // Faults, at random moments: right after a submit, so frames are in flight.
      const f = rand()
      if (f < 0.03) {
        const socks = server.sockets()
        if (socks.length > 0) {
          pick(socks).terminate()
          serverKills++
        }
      } else if (f < 0.05) {
        const own = clientSockets[Math.floor(rand() * 3)]!
        const last = own[own.length - 1]
        if (last !== undefined && last.readyState === WebSocket.OPEN) {
          last.terminate()
          clientKills++
        }
      }
      if (rand() < 0.3) await sleep(Math.floor(rand() * 4))
    }

    const authority = await hub.doc("e2e", Todo)
    const done = () =>
      settled.length === submitted &&
      clients.every((c) => c.status === "online") &&
      docs.every((d) => d.pendingCount === 0 && d.confirmedSeq === authority.headSeq)
    expect(await until(done, 30_000, 10)).toBe(true)

    // Convergence: every replica's confirmed state is the authority's.
    for (const d of docs) expect(d.confirmedHash()).toBe(authority.stateHash())

    const log = await logOf(storage, "e2e")
    expect(log.length).toBe(authority.headSeq)
    log.forEach((e, i) => expect(e.seq).toBe(i + 1))
    // Exactly once: no (clientId, clientSeq) twice.
    const keys = new Set(log.map((e) => `${e.clientId}/${e.clientSeq}`))
    expect(keys.size).toBe(log.length)
    // Nothing acknowledged lost: each confirmed receipt's seq holds that very command.
    const confirmed = settled.filter((s) => s.seq !== undefined)
    for (const s of confirmed) {
      const e = log[s.seq! - 1]!
      expect({ clientId: e.clientId, clientSeq: e.clientSeq }).toEqual({ clientId: clients[s.k]!.clientId, clientSeq: s.clientSeq })
    }
    // Every entry is a confirmed receipt (the log holds nothing nobody asked for).
    expect(confirmed.length).toBe(log.length)
    // Rejections are the machine's own (no transport failure surfaced as a rejection).
    for (const s of settled) if (s.rejected !== undefined) expect(s.rejected).toBe("rejected")
    // The faults happened and were recovered from.
    expect(serverKills + clientKills).toBeGreaterThanOrEqual(5)
    expect(offline.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5)
    console.log(`seed ${seed}: ${submitted} commands, ${log.length} entries, ${settled.length - confirmed.length} rejected; ` +
      `${serverKills} server-side and ${clientKills} client-side sockets killed; offline events per client ${offline.join("/")}`)
  })
})

describe("protocol 2 on the wire", () => {
  test("a v2 client's own commands come back elided and schema-encoded: fewer bytes both ways than a v1 client's, same state", async () => {
    const { hub, client } = await world()
    const bytes = { v1: { up: 0, down: 0 }, v2: { up: 0, down: 0 } }
    const counted = (which: "v1" | "v2") => ({
      onSocket: (s: WebSocket) => {
        s.on("message", (d: Buffer) => void (bytes[which].down += d.length))
        const send = s.send.bind(s)
        s.send = ((data: Uint8Array, ...rest: never[]) => {
          bytes[which].up += data.length
          return (send as (...a: unknown[]) => void)(data, ...rest)
        }) as typeof s.send
      },
    })
    const c1 = await client(counted("v1"), undefined, { min: 1, max: 1 })
    const c2 = await client(counted("v2"), undefined, { min: 1, max: 2 })
    const [d1, d2] = await Promise.all([c1.open(Todo, "a"), c2.open(Todo, "b")])
    expect(await until(() => c1.status === "online" && c2.status === "online", 5_000)).toBe(true)
    expect([c1.protocol, c2.protocol]).toEqual([1, 2])
    const start = { v1: { ...bytes.v1 }, v2: { ...bytes.v2 } }
    // The same 200 commands on each client's own document, one at a time.
    for (let i = 0; i < 200; i++) {
      await Promise.all([
        d1.submit("add", { id: `item-${i}`, title: `Buy ${i} apples` }),
        d2.submit("add", { id: `item-${i}`, title: `Buy ${i} apples` }),
      ])
    }
    const up = (w: "v1" | "v2") => bytes[w].up - start[w].up
    const down = (w: "v1" | "v2") => bytes[w].down - start[w].down
    expect(up("v2")).toBeLessThan(up("v1") * 0.8)
    expect(down("v2")).toBeLessThan(down("v1") * 0.6)
    const [a, b] = await Promise.all([hub.doc("a", Todo), hub.doc("b", Todo)])
    expect(d1.confirmedHash()).toBe(a.stateHash())
    expect(d2.confirmedHash()).toBe(b.stateHash())
    expect(d2.snapshot().items["item-199"]!.title).toBe("Buy 199 apples")
    console.log(`200 adds one at a time: up ${up("v1")} B (v1) / ${up("v2")} B (v2); down ${down("v1")} B (v1) / ${down("v2")} B (v2)`)
  })
})

/** A raw `ws` client: collects decoded server messages and the close code/reason. */
const raw = async (url: string) => {
  const ws = new WebSocket(url)
  const got: ServerMessage[] = []
  const undecodable: string[] = []
  let close: { code: number; reason: string } | undefined
  ws.on("error", () => {})
  ws.on("message", (data) => {
    const d = decodeServerMessage(new Uint8Array(data as Buffer))
    if (d.ok === true) got.push(d.message)
    else undecodable.push(String(d.ok))
  })
  ws.on("close", (code, reason) => {
    close = { code, reason: reason.toString() }
  })
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  cleanup.push(() => ws.terminate())
  return { ws, got, undecodable, close: () => close }
}

const hello = (clientId: string): Uint8Array => encodeClientMessage({ type: "hello", protocol: { min: 1, max: 1 }, clientId, secret: secretFor(clientId), machines: [] })

describe("hostile peers get the documented errors; others carry on", () => {
  const MAX_FRAME = 64 * 1024

  const setup = async () => {
    const w = await world({ limits: { messagesPerSecond: 50, messageBurst: 100 } }, { maxFrameBytes: MAX_FRAME })
    const good = await w.client()
    const doc = await good.open(Todo, "shared")
    expect(await until(() => good.status === "online" && doc.synced, 5_000)).toBe(true)
    return { ...w, good, doc }
  }

  /** The normal client still works: a submit confirms. */
  const carriesOn = async (doc: Doc<typeof Todo>, id: string) => {
    await expect(doc.submit("add", { id, title: "still here" })).resolves.toEqual({ seq: expect.any(Number) })
  }

  test("garbage bytes: an error message (protocol-error), then close 4002", async () => {
    const { url, doc } = await setup()
    const bad = await raw(url)
    bad.ws.send(Uint8Array.of(0xff, 0x00, 0x13, 0x37, 0x99))
    expect(await until(() => bad.close() !== undefined, 5_000)).toBe(true)
    expect(bad.got).toEqual([{ type: "error", code: "protocol-error", message: expect.stringMatching(/undecodable frame \(unknown-type\)/) }])
    expect(bad.close()!.code).toBe(4002)
    expect(bad.close()!.reason).toMatch(/^protocol-error: /)
    await carriesOn(doc, "a")
  })

  test("a truncated frame of a known type, and a valid frame with trailing bytes: protocol-error", async () => {
    const { url, doc } = await setup()
    const frame = hello("x")
    for (const f of [frame.subarray(0, frame.length - 2), Uint8Array.from([...frame, 0])]) {
      const bad = await raw(url)
      bad.ws.send(f)
      expect(await until(() => bad.close() !== undefined, 5_000)).toBe(true)
      expect(bad.got[0]).toMatchObject({ type: "error", code: "protocol-error" })
      expect(bad.close()!.code).toBe(4002)
    }
    await carriesOn(doc, "b")
  })

  test("a text frame: protocol-error and close 4002", async () => {
    const { url, doc } = await setup()
    const bad = await raw(url)
    bad.ws.send("hello, is this JSON?")
    expect(await until(() => bad.close() !== undefined, 5_000)).toBe(true)
    expect(bad.got).toEqual([{ type: "error", code: "protocol-error", message: expect.stringMatching(/text frame/) }])
    expect(bad.close()).toEqual({ code: 4002, reason: expect.stringMatching(/^protocol-error: /) })
    await carriesOn(doc, "c")
  })

  test("an oversize frame (over maxFrameBytes): the ws library closes with 1009 before reading it", async () => {
    const { url, doc, conns } = await setup()
    const bad = await raw(url)
    bad.ws.send(hello("big"))
    bad.ws.send(new Uint8Array(MAX_FRAME + 1))
    expect(await until(() => bad.close() !== undefined, 5_000)).toBe(true)
    expect(bad.close()!.code).toBe(1009)
    // The hub is told why.
    expect(await until(() => conns.some((c) => c.clientId === "big" && c.closes.length > 0), 5_000)).toBe(true)
    expect(conns.find((c) => c.clientId === "big")!.closes[0]!.code).toBe("too-large")
    await carriesOn(doc, "d")
  })

  test("an unknown optional message type is ignored; an unknown required one is a protocol error", async () => {
    const { url, doc } = await setup()
    const peer = await raw(url)
    peer.ws.send(hello("opt"))
    peer.ws.send(Uint8Array.of(0x3e, 0x01, 1, 2, 3)) // type 0x3e, flags: optional
    peer.ws.send(encodeClientMessage({ type: "subscribe", docId: "shared", machine: "todo", version: 1, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 }))
    expect(await until(() => peer.got.some((m) => m.type === "synced"), 5_000)).toBe(true)
    expect(peer.close()).toBeUndefined()
    peer.ws.send(Uint8Array.of(0x3e, 0x00)) // the same type, required
    expect(await until(() => peer.close() !== undefined, 5_000)).toBe(true)
    expect(peer.got[peer.got.length - 1]).toMatchObject({ type: "error", code: "protocol-error", message: expect.stringMatching(/unknown-type/) })
    expect(peer.close()!.code).toBe(4002)
    await carriesOn(doc, "e")
  })

  test("a message before hello: the hub's protocol-error, close 4002", async () => {
    const { url, doc } = await setup()
    const peer = await raw(url)
    peer.ws.send(encodeClientMessage({ type: "fetch-state", docId: "shared" }))
    expect(await until(() => peer.close() !== undefined, 5_000)).toBe(true)
    expect(peer.got).toEqual([{ type: "error", code: "protocol-error", message: expect.stringMatching(/before "hello"/) }])
    expect(peer.close()!.code).toBe(4002)
    await carriesOn(doc, "f")
  })

  test("a flood over the hub's rate limit: error rate-limited, close 4029", async () => {
    const { url, doc, hub } = await setup()
    const flood = await raw(url)
    flood.ws.send(hello("flood"))
    const frame = encodeClientMessage({ type: "unsubscribe", docId: "nothing" })
    // The hub allows a burst of 100 then 50/s: 1,000 at once is far over.
    for (let i = 0; i < 1_000; i++) flood.ws.send(frame)
    expect(await until(() => flood.close() !== undefined, 5_000)).toBe(true)
    const errors = flood.got.filter((m) => m.type === "error")
    expect(errors[errors.length - 1]).toMatchObject({ type: "error", code: "rate-limited" })
    expect(flood.close()).toEqual({ code: 4029, reason: expect.stringMatching(/^rate-limited: /) })
    // The normal client, on the same hub at the same time, is not limited.
    await carriesOn(doc, "g")
    expect((await hub.doc("shared", Todo)).state.items["g"]?.title).toBe("still here")
  })

  test("all of it at once, while the normal client keeps submitting", async () => {
    const { url, doc, hub } = await setup()
    const receipts = Array.from({ length: 20 }, (_, i) => doc.submit("note", { text: `during ${i}` }))
    const peers = await Promise.all([raw(url), raw(url), raw(url), raw(url)])
    peers[0]!.ws.send(Uint8Array.of(1, 2, 3))
    peers[1]!.ws.send("text")
    peers[2]!.ws.send(new Uint8Array(MAX_FRAME + 100))
    peers[3]!.ws.send(hello("flood2"))
    for (let i = 0; i < 500; i++) peers[3]!.ws.send(encodeClientMessage({ type: "unsubscribe", docId: "x" }))
    expect(await until(() => peers.every((p) => p.close() !== undefined), 5_000)).toBe(true)
    expect(peers.map((p) => p.close()!.code)).toEqual([4002, 4002, 1009, 4029])
    const results = await Promise.all(receipts)
    expect(results.every((r) => typeof r.seq === "number")).toBe(true)
    await carriesOn(doc, "h")
    const authority = await hub.doc("shared", Todo)
    expect(await until(() => doc.confirmedSeq === authority.headSeq, 5_000)).toBe(true)
    expect(doc.confirmedHash()).toBe(authority.stateHash())
  })
})

describe("a client that stops reading", () => {
  // Each note is ~8 KiB; catch-up pages of 32 entries (~256 KiB) stay under the 1 MiB frame.
  const NOTE = "x".repeat(8 * 1024)

  /** Writes `n` big notes, at most `window` in flight (each entries message stays small). */
  const write = async (doc: Doc<typeof Todo>, n: number, window = 8) => {
    let inFlight: Promise<unknown>[] = []
    for (let i = 0; i < n; i++) {
      inFlight.push(doc.submit("note", { text: `${i}:${NOTE}` }))
      if (inFlight.length >= window) {
        await Promise.all(inFlight)
        inFlight = []
      }
    }
    await Promise.all(inFlight)
  }

  test("over the hard limit: dropped with slow-consumer, its hub-side buffer bounded in bytes; it reconnects and catches up", async () => {
    const hardLimit = 256 * 1024
    const { hub, conns, client } = await world({ highWaterMark: 64 << 20, hardLimit, catchUpPage: 32 })
    const writer = await client()
    let slowSocket: WebSocket | undefined
    const slow = await client({ onSocket: (s) => (slowSocket = s) })
    const closes: string[] = []
    slow.onStatus((s, info) => {
      if (s === "offline" && info) closes.push(info.code)
    })
    const w = await writer.open(Todo, "d")
    const s = await slow.open(Todo, "d")
    expect(await until(() => w.synced && s.synced, 5_000)).toBe(true)
    const slowId = slow.clientId

    slowSocket!.pause()
    // Write until the hub drops it: first the loopback socket buffers fill (the OS's, not
    // the hub's), then the hub's own. Bounded: at most 100 rounds of 100 notes (80 MiB).
    const watched = conns.find((c) => c.clientId === slowId)!
    const started = Date.now()
    let n = 0
    for (let round = 0; round < 100 && !watched.closedBy.includes("slow-consumer"); round++) {
      await write(w, 100)
      n += 100
    }
    expect(watched.closedBy).toEqual(["slow-consumer"])
    // Bounded: the hub checks before each send, so at most one message past the limit.
    const largestMessage = 8 * (8 * 1024 + 64) + 1024 // a live entries message: at most `window` notes
    expect(watched.maxBuffered).toBeGreaterThan(hardLimit)
    expect(watched.maxBuffered).toBeLessThanOrEqual(hardLimit + largestMessage)
    console.log(`slow consumer: ${n} x 8 KiB notes in ${Date.now() - started} ms; the OS took ${watched.sentWhenFirstBuffered} bytes ` +
      `before the socket buffered; hub-side buffer peaked at ${watched.maxBuffered} bytes (hardLimit ${hardLimit})`)

    slowSocket!.resume()
    const authority = await hub.doc("d", Todo)
    expect(await until(() => slow.status === "online" && s.confirmedSeq === authority.headSeq, 20_000, 10)).toBe(true)
    expect(closes[0]).toBe("slow-consumer")
    expect(s.confirmedHash()).toBe(authority.stateHash())
    expect(authority.headSeq).toBe(n)
  })

  test("over the high-water mark: paused (buffer bounded in bytes), not dropped; catches up once it reads again", async () => {
    const highWaterMark = 128 * 1024
    const { hub, conns, client } = await world({ highWaterMark, hardLimit: 64 << 20, catchUpPage: 32 })
    const writer = await client()
    let slowSocket: WebSocket | undefined
    const slow = await client({ onSocket: (s) => (slowSocket = s) })
    const w = await writer.open(Todo, "d")
    const s = await slow.open(Todo, "d")
    expect(await until(() => w.synced && s.synced, 5_000)).toBe(true)
    const slowId = slow.clientId

    slowSocket!.pause()
    const watched = conns.find((c) => c.clientId === slowId)!
    // Write until the hub has paused it (its buffer went over the mark), then as much again.
    let rounds = 0
    for (; rounds < 100 && watched.maxBuffered <= highWaterMark; rounds++) await write(w, 100)
    expect(watched.maxBuffered).toBeGreaterThan(highWaterMark)
    await write(w, 100 * rounds)
    // Paused at the mark: at most one message past it (a catch-up page is the largest).
    const largestMessage = 32 * (8 * 1024 + 64) + 1024
    expect(watched.maxBuffered).toBeGreaterThan(0)
    expect(watched.maxBuffered).toBeLessThanOrEqual(highWaterMark + largestMessage)
    expect(watched.closedBy).toEqual([])
    console.log(`paused reader: ${200 * rounds} x 8 KiB notes; the OS took ${watched.sentWhenFirstBuffered} bytes before the socket buffered; ` +
      `hub-side buffer peaked at ${watched.maxBuffered} bytes (highWaterMark ${highWaterMark})`)

    slowSocket!.resume()
    const authority = await hub.doc("d", Todo)
    expect(await until(() => s.confirmedSeq === authority.headSeq, 20_000, 10)).toBe(true)
    expect(s.confirmedHash()).toBe(authority.stateHash())
    expect(watched.closes).toEqual([])
    expect(slow.status).toBe("online")
  })
})

describe("handshake and auth over ws", () => {
  test("a refused client (schema-too-old) gets the refusal and its close code, keeps its outbox, does not hot-loop", async () => {
    const TodoV2 = { ...Todo, version: 2 } as typeof Todo
    const { client, conns } = await world({ machines: [TodoV2] })
    const c = await client()
    const doc = await c.open(Todo, "list")
    doc.submit("add", { id: "a", title: "offline edit" })
    expect(await until(() => c.status === "refused", 5_000)).toBe(true)
    expect(c.refusal?.code).toBe("schema-too-old")
    expect(doc.pendingCount).toBe(1)
    // One connection in all: a refusal retrying cannot fix is not retried.
    await sleep(300)
    expect(conns.length).toBe(1)
    expect(conns[0]!.closedBy).toEqual(["schema-too-old"])
  })

  test("authenticate sees the upgrade request (headers) through ConnectionInfo", async () => {
    const { client } = await world({
      authenticate: (_hello, info) => {
        const user = (info as { headers?: Record<string, string | string[] | undefined> } | undefined)?.headers?.["x-user"]
        return typeof user === "string" ? { id: user } : { refuse: "No user header." }
      },
    })
    const alice = await client({ headers: { "x-user": "alice" } })
    const anon = await client()
    const da = await alice.open(Todo, "d")
    await expect(da.submit("add", { id: "a", title: "by alice" })).resolves.toEqual({ seq: 1 })
    expect(await until(() => anon.status === "refused", 5_000)).toBe(true)
    expect(anon.refusal).toMatchObject({ code: "unauthorized", message: "No user header." })
  })

  test("authorize refuses a write: the rejection reaches the client over ws", async () => {
    const { client, hub } = await world({
      authenticate: (hello) => ({ id: hello.clientId.startsWith("alice") ? "alice" : "bob" }),
      authorize: (principal, _docId, access) => access === "read" || principal.id === "alice",
    })
    const alice = await client({}, "alice-1")
    const bob = await client({}, "bob-1")
    const da = await alice.open(Todo, "d")
    const db = await bob.open(Todo, "d")
    await expect(da.submit("add", { id: "a", title: "by alice" })).resolves.toEqual({ seq: 1 })
    const refused = db.submit("add", { id: "b", title: "by bob" }).then(() => "confirmed", (e: { code?: string }) => e.code)
    const outcome = await Promise.race([refused, sleep(3_000).then(() => "never settled")])
    expect(outcome).toBe("unauthorized")
    expect(await until(() => db.confirmedSeq === 1, 3_000)).toBe(true)
    expect(db.confirmedHash()).toBe((await hub.doc("d", Todo)).stateHash())
  })
})

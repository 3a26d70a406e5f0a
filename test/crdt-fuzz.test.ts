/**
 * Fuzzed CRDT update paths (fast-check, bounded runs; the seed is printed on failure and can
 * be set with CRDT_FUZZ_SEED):
 * - CRDT fields: `$crdt.<field>` commands with hostile bytes (truncated, random, oversized,
 *   valid but missing dependencies, a valid update of the other field's library, Automerge
 *   changes with forged ops or a run-length bomb of ops) from a
 *   client through a hub: each is a typed rejection (a CommandRejected carrying its crdt
 *   reason); afterwards honest edits still flow and the hub, the honest replica and a fresh
 *   reader hold equal state hashes.
 * - Whole documents: random and mutated y-websocket frames on /yjs/<room> and automerge-repo
 *   frames on /automerge, each on its own socket: the socket is closed with one of the
 *   endpoint's close codes, or it keeps serving (answers a sync request); afterwards a fresh
 *   client receives exactly the honest document. The fuzzing sockets are another principal
 *   than the honest writer, and some frames write as the honest writer (its Yjs clientID, its
 *   Automerge actor, at its next clock or seq): those must be refused (4400).
 */
import fc from "fast-check"
import * as Schema from "effect/Schema"
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { WebSocket } from "ws"
import { CanonClient, CommandRejected, Hub, defineMachine, type HubEvent } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { crdtReason, yText } from "../adapters/yjs/index.js"
import { automergeText } from "../adapters/automerge/index.js"
import { yjsDocEngine, yjsRoute, encodeStep1, encodeUpdate, decodeYMessage, encodeAwareness, encodeAwarenessUpdate, decodeAwarenessUpdate } from "../adapters/yjs-server/index.js"
import { automergeDocEngine, automergeRoute, encodeRepoMessage, decodeRepoMessage } from "../adapters/automerge-server/index.js"
import { sleep, until } from "./support/ws.js"
import { cyclicUpdate, rawUpdate } from "./support/yjs-raw.js"

const SEED = process.env.CRDT_FUZZ_SEED !== undefined ? Number(process.env.CRDT_FUZZ_SEED) : 20261201
/** fast-check prints the seed and path of a failing run; the seed is also in the test name. */
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, seed: SEED, endOnFailure: true })

// ---- CRDT fields through a hub ----

const LIMIT = 4096
const Fz = defineMachine({
  name: "fz", version: 1, initial: () => ({ n: 0 }),
  crdt: { body: yText({ maxUpdateBytes: LIMIT }), notes: automergeText({ maxUpdateBytes: LIMIT }) },
  commands: { touch: { args: Schema.Struct({}), apply: (s) => { s.n++ } } },
})

/** A Yjs update pair from a fresh writer: the second depends on the first. */
const yjsPair = (clientID: number, text: string): { first: Uint8Array; second: Uint8Array } => {
  const d = new Y.Doc()
  d.clientID = clientID
  d.getText("t").insert(0, text)
  const first = Y.encodeStateAsUpdate(d)
  const sv = Y.encodeStateVector(d)
  d.getText("t").insert(1, text)
  const second = Y.encodeStateAsUpdate(d, sv)
  d.destroy()
  return { first, second }
}

type Hostile =
  | { kind: "truncated-yjs"; bytes: Uint8Array }
  | { kind: "random-yjs"; bytes: Uint8Array }
  | { kind: "oversized-yjs"; bytes: Uint8Array }
  | { kind: "missing-deps-yjs"; bytes: Uint8Array }
  | { kind: "cyclic-yjs"; bytes: Uint8Array }
  | { kind: "automerge-into-yjs"; bytes: Uint8Array }
  | { kind: "truncated-automerge"; bytes: Uint8Array }
  | { kind: "random-automerge"; bytes: Uint8Array }
  | { kind: "oversized-automerge"; bytes: Uint8Array }
  | { kind: "missing-deps-automerge"; bytes: Uint8Array }
  | { kind: "yjs-into-automerge"; bytes: Uint8Array }
  | { kind: "forged-pred-automerge"; bytes: Uint8Array }
  | { kind: "forged-startop-automerge"; bytes: Uint8Array }
  | { kind: "key-on-text-automerge"; bytes: Uint8Array }
  | { kind: "run-length-bomb-automerge"; bytes: Uint8Array }

/** Automerge changes on top of the field's initial history, from a fresh actor: [first, second]. */
const automergePair = (base: A.Doc<{ text: string }>, actor: string, text: string): [Uint8Array, Uint8Array] => {
  const d = A.clone(base, { actor })
  const one = A.change(d, (x) => A.splice(x, ["text"], 0, 0, text))
  const two = A.change(one, (x) => A.splice(x, ["text"], 0, 0, text))
  return [A.getLastLocalChange(one)!, A.getLastLocalChange(two)!]
}

const hex = (n: number) => n.toString(16).padStart(32, "0")

/**
 * Changes Automerge's decodeChange and applyChanges take but no honest Automerge makes (see
 * test/automerge-validate.test.ts): re-encoded after their decoded ops were rewritten.
 */
const forgedAutomerge = (base: A.Doc<{ text: string }>, actor: string, text: string, how: "pred" | "startop" | "key"): Uint8Array => {
  const one = A.change(A.clone(base, { actor }), (x) => A.splice(x, ["text"], 0, 0, text))
  const dc = A.decodeChange(A.getLastLocalChange(one)!) as any
  delete dc.hash
  if (how === "startop") dc.startOp = 1
  else if (how === "key") {
    delete dc.ops[0].elemId
    delete dc.ops[0].insert
    dc.ops[0].key = "k"
  } else {
    // An overwrite of the text object's own creation (an op of the root map).
    dc.ops[0].insert = false
    dc.ops[0].elemId = dc.ops[0].obj
    dc.ops[0].pred = [dc.ops[0].obj]
  }
  return A.encodeChange(dc)
}

/** A change of a few dozen bytes that decodes to more ops than the field's byte limit: deletes are run-length encoded. */
const runLengthBomb = (base: A.Doc<{ text: string }>, actor: string): Uint8Array => {
  const one = A.change(A.clone(base, { actor }), (x) => A.splice(x, ["text"], 0, 0, "z".repeat(LIMIT + 100)))
  return A.getLastLocalChange(A.change(one, (x) => A.splice(x, ["text"], 0, LIMIT + 100)))!
}

const hostileInput = (amBase: A.Doc<{ text: string }>): fc.Arbitrary<Hostile> => {
  const validYjs = fc.tuple(fc.integer({ min: 1_000_000, max: 2 ** 31 }), fc.string({ minLength: 1, maxLength: 40 })).map(([id, s]) => yjsPair(id, s).first)
  const validAm = fc.tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 40 })).map(([a, s]) => automergePair(amBase, hex(a), s)[0])
  const truncate = (b: Uint8Array, k: number) => b.subarray(0, Math.min(k, b.length - 1))
  return fc.oneof(
    fc.tuple(validYjs, fc.nat(200)).map(([b, k]) => ({ kind: "truncated-yjs" as const, bytes: truncate(b, k) })),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => ({ kind: "random-yjs" as const, bytes })),
    fc.integer({ min: LIMIT + 1, max: LIMIT + 2000 }).map((n) => ({ kind: "oversized-yjs" as const, bytes: new Uint8Array(n).fill(7) })),
    fc.tuple(fc.integer({ min: 1_000_000, max: 2 ** 31 }), fc.string({ minLength: 1, maxLength: 20 })).map(([id, s]) => ({ kind: "missing-deps-yjs" as const, bytes: yjsPair(id, s).second })),
    // Items whose origins form a cycle: Yjs would hold them pending for good.
    fc.uniqueArray(fc.integer({ min: 1_000_000, max: 2 ** 31 }), { minLength: 2, maxLength: 4 }).map((ids) => ({ kind: "cyclic-yjs" as const, bytes: cyclicUpdate(ids) })),
    validAm.map((bytes) => ({ kind: "automerge-into-yjs" as const, bytes })),
    fc.tuple(validAm, fc.nat(200)).map(([b, k]) => ({ kind: "truncated-automerge" as const, bytes: truncate(b, k) })),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => ({ kind: "random-automerge" as const, bytes })),
    fc.integer({ min: LIMIT + 1, max: LIMIT + 2000 }).map((n) => ({ kind: "oversized-automerge" as const, bytes: new Uint8Array(n).fill(7) })),
    fc.tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 20 })).map(([a, s]) => ({ kind: "missing-deps-automerge" as const, bytes: automergePair(amBase, hex(a), s)[1] })),
    fc.tuple(fc.integer({ min: 1_000_000, max: 2 ** 31 }), fc.string({ minLength: 1, maxLength: 20 })).map(([id, s]) => ({ kind: "yjs-into-automerge" as const, bytes: yjsPair(id, s).first })),
    fc.tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 20 })).map(([a, s]) => ({ kind: "forged-pred-automerge" as const, bytes: forgedAutomerge(amBase, hex(a), s, "pred") })),
    fc.tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 20 })).map(([a, s]) => ({ kind: "forged-startop-automerge" as const, bytes: forgedAutomerge(amBase, hex(a), s, "startop") })),
    fc.tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 20 })).map(([a, s]) => ({ kind: "key-on-text-automerge" as const, bytes: forgedAutomerge(amBase, hex(a), s, "key") })),
    fc.integer({ min: 1, max: 2 ** 40 }).map((a) => ({ kind: "run-length-bomb-automerge" as const, bytes: runLengthBomb(amBase, hex(a)) })),
  )
}

/** The reason each kind must be refused with (undefined: any crdt reason). */
const EXPECTED: Partial<Record<Hostile["kind"], string>> = {
  "oversized-yjs": "crdt-too-large",
  "oversized-automerge": "crdt-too-large",
  "missing-deps-yjs": "crdt-missing-deps",
  "cyclic-yjs": "crdt-missing-deps",
  "missing-deps-automerge": "crdt-missing-deps",
  "forged-pred-automerge": "crdt-invalid",
  "forged-startop-automerge": "crdt-equivocation",
  "key-on-text-automerge": "crdt-invalid",
  "run-length-bomb-automerge": "crdt-too-large",
}

describe(`CRDT field update path (seed ${SEED})`, () => {
  test("every hostile $crdt.<field> update is a typed rejection; the document serves on with equal hashes", async () => {
    const rt = new VirtualRuntime(7)
    const net = new MemoryNetwork(rt, { latency: () => 2, encode: true })
    const events: HubEvent[] = []
    const hub = new Hub({ machines: [Fz], storage: new MemoryStorage(), runtime: rt, onEvent: (e) => events.push(e), limits: { commandsPerSecond: 1e9, messagesPerSecond: 1e9 } as never })
    net.listen(hub)
    const clients: CanonClient[] = []
    const open = async (id: string) => {
      const c = await CanonClient.open({ transport: net.transport(id), runtime: rt, clientId: id })
      clients.push(c)
      return c.open(Fz, "d")
    }
    const run = async (ms: number) => { for (let t = 0; t < ms; t += 5) { await rt.run({ forMs: 5 }); await new Promise((r) => setImmediate(r)) } }
    try {
      const honest = await open("h")
      const hostile = await open("m")
      await run(50)
      honest.crdt.body.insert(0, "hello")
      honest.crdt.notes.splice(0, 0, "world")
      await run(50)
      // The hostile writer's Automerge changes build on the field's history as the hub has it.
      const amBase = (hostile.crdt.notes as unknown as { doc: A.Doc<{ text: string }> }).doc
      const seen = new Map<string, number>()
      let i = 0
      await fc.assert(fc.asyncProperty(hostileInput(amBase), async (h) => {
        const field = h.kind.endsWith("automerge") ? "notes" : "body"
        const args = field === "notes" ? [h.bytes] : h.bytes
        let outcome: unknown = "pending"
        try {
          hostile.submit(`$crdt.${field}` as never, args as never).then(() => (outcome = "ok"), (e: unknown) => (outcome = e))
        } catch (e) {
          outcome = e
        }
        for (let t = 0; t < 400 && outcome === "pending"; t += 5) await run(5)
        // Interleave honest edits so the hostile ones race real traffic.
        if (i++ % 8 === 0) honest.crdt.body.insert(honest.crdt.body.length, `${i},`)
        expect(outcome).toBeInstanceOf(CommandRejected)
        const reason = crdtReason(outcome as CommandRejected)
        expect(reason).toBeDefined()
        const want = EXPECTED[h.kind]
        if (want !== undefined) expect(reason).toBe(want)
        seen.set(h.kind, (seen.get(h.kind) ?? 0) + 1)
      }), params(150))
      // Every kind was tried.
      expect([...seen.keys()].sort()).toHaveLength(15)
      honest.crdt.body.insert(0, "still here:")
      honest.crdt.notes.splice(0, 0, "and here:")
      await run(500)
      const reader = await open("r")
      await run(500)
      const authority = await hub.doc("d", Fz)
      expect(reader.crdt.body.toString()).toBe(honest.crdt.body.toString())
      expect(reader.crdt.body.toString().startsWith("still here:hello")).toBe(true)
      expect(reader.crdt.notes.text).toBe("and here:world")
      expect(hostile.crdt.body.toString()).toBe(honest.crdt.body.toString())
      expect(reader.confirmedSeq).toBe(honest.confirmedSeq)
      expect(new Set([honest.confirmedHash(), reader.confirmedHash(), hostile.confirmedHash(), authority.stateHash()]).size).toBe(1)
      expect(events.filter((e) => e.type === "doc-load-failed" || e.type === "doc-broken")).toEqual([])
    } finally {
      for (const c of clients) await c.close()
      await hub.close()
    }
  }, 120_000)
})

// ---- Whole documents over WebSocket ----

describe(`whole-document endpoints (seed ${SEED})`, () => {
  let hub: Hub
  let server: WsServer
  let routes: Array<{ close(): void }>
  let port: number
  const events: HubEvent[] = []

  beforeAll(async () => {
    hub = new Hub({
      machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, onEvent: (e) => events.push(e),
      crdt: { engines: [yjsDocEngine(), automergeDocEngine()], compactAfterBytes: 4096 },
      // The token is the principal: the honest writer and the fuzzing sockets are different users.
      authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
    })
    const y = yjsRoute(hub.crdtDocs)
    const a = automergeRoute(hub.crdtDocs)
    routes = [y, a]
    server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [y, a] })
    port = server.addresses()[0]!.port
  })

  afterAll(async () => {
    for (const r of routes) r.close()
    await server.close()
    await hub.close()
  })

  /** A raw socket: what it received, how it closed. */
  const raw = async (path: string) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`)
    const got: Uint8Array[] = []
    let closed: number | undefined
    ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
    ws.on("close", (code) => (closed = code))
    ws.on("error", () => {})
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    return { ws, got, closed: () => closed }
  }
  const done = async (ws: WebSocket) => {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      ws.close()
      await until(() => ws.readyState === WebSocket.CLOSED, 2_000)
    }
  }

  test("y-websocket: random and mutated frames get a close code or leave the socket serving; the room's document is intact", async () => {
    // The honest document, written through the endpoint.
    const honest = new Y.Doc()
    honest.getText("t").insert(0, "honest text")
    honest.getMap("m").set("k", 1)
    const w = await raw("/yjs/fz-room?token=honest")
    w.ws.send(encodeUpdate(Y.encodeStateAsUpdate(honest)))
    const HONEST_AWARENESS = '{"user":"honest"}'
    w.ws.send(encodeAwareness(encodeAwarenessUpdate([{ clientID: honest.clientID, clock: 1, state: HONEST_AWARENESS }])))
    // The writer stays on as the honest replica: a mutated update can be a valid edit by
    // another Yjs client (a flipped clientID bit), which the hub takes and relays to it.
    w.ws.on("message", (d) => {
      const msg = decodeYMessage(new Uint8Array(d as Buffer))
      if (msg.type === "step2" || msg.type === "update") Y.applyUpdate(honest, msg.update)
    })
    await sleep(100)
    const valid = Y.encodeStateAsUpdate(honest)
    /** An edit as the honest writer (its clientID, its next clock), by the fuzzing principal. */
    const forgedAsHonest = (text: string, at: number): Uint8Array => {
      const forger = new Y.Doc()
      Y.applyUpdate(forger, Y.encodeStateAsUpdate(honest))
      const sv = Y.encodeStateVector(forger)
      forger.clientID = honest.clientID
      const t = forger.getText("t")
      t.insert(at % (t.length + 1), text)
      const u = Y.encodeStateAsUpdate(forger, sv)
      forger.destroy()
      return encodeUpdate(u)
    }
    const zeroAtHonest = (n: number): Uint8Array => {
      const next = Y.decodeStateVector(Y.encodeStateVector(honest)).get(honest.clientID) ?? 0
      return encodeUpdate(rawUpdate([{ client: honest.clientID, clock: next, items: Array.from({ length: n }, () => ({ origin: [honest.clientID, next - 1] as const, text: "" })) }]))
    }
    const hostileFrame = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((u) => encodeUpdate(u)),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((u) => encodeStep1(u)),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((u) => encodeAwareness(u)),
      fc.nat(valid.length - 1).map((k) => encodeUpdate(valid.subarray(0, k))),
      fc.tuple(fc.nat(valid.length * 8 - 1)).map(([bit]) => { const u = valid.slice(); u[bit >> 3]! ^= 1 << (bit & 7); return encodeUpdate(u) }),
      fc.tuple(fc.integer({ min: 1_000_000, max: 2 ** 31 }), fc.string({ minLength: 1, maxLength: 20 })).map(([id, s]) => encodeUpdate(yjsPair(id, s).second)),
      fc.uniqueArray(fc.integer({ min: 1_000_000, max: 2 ** 31 }), { minLength: 2, maxLength: 4 }).map((ids) => encodeUpdate(cyclicUpdate(ids))),
      fc.tuple(fc.nat(2 ** 31), fc.nat(100), fc.string({ maxLength: 40 })).map(([c, clock, s]) => encodeAwareness(encodeAwarenessUpdate([{ clientID: c, clock, state: s } as never]))),
      // The honest writer's awareness, at a newer clock: dropped (not its socket, not its principal).
      fc.tuple(fc.integer({ min: 2, max: 1000 }), fc.string({ maxLength: 40 })).map(([clock, s]) => encodeAwareness(encodeAwarenessUpdate([{ clientID: honest.clientID, clock, state: JSON.stringify(s) }]))),
    )
    const frame = fc.oneof(
      { arbitrary: hostileFrame.map((bytes) => ({ bytes, asHonest: false })), weight: 8 },
      { arbitrary: fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.nat()).map(([text, at]) => ({ bytes: forgedAsHonest(text, at), asHonest: true })), weight: 1 },
      // Zero-length items at the honest writer's next clock (they move no clock, but would take the ID of its next edit).
      { arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => ({ bytes: zeroAtHonest(n), asHonest: true })), weight: 1 },
    )
    const codes = new Map<number | "served", number>()
    let refusedAsHonest = 0
    await fc.assert(fc.asyncProperty(frame, async ({ bytes, asHonest }) => {
      const c = await raw("/yjs/fz-room?token=fuzz")
      try {
        // The hub speaks first (its step1); then the hostile frame.
        expect(await until(() => c.got.length > 0, 5_000)).toBe(true)
        // The hostile frame, then an honest step1 behind it: the hub handles a socket's
        // messages in order, so it either closes the socket or answers the probe.
        const before = c.got.length
        c.ws.send(bytes)
        c.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
        const answered = () => c.got.slice(before).some((m) => decodeYMessage(m).type === "step2")
        expect(await until(() => c.closed() !== undefined || answered(), 5_000)).toBe(true)
        if (asHonest) {
          // Writing as another user: refused (the probe may be answered first), never taken.
          expect(await until(() => c.closed() !== undefined, 5_000)).toBe(true)
          expect(c.closed()).toBe(4400)
          refusedAsHonest++
        }
        if (c.closed() !== undefined) {
          expect([4400, 4503]).toContain(c.closed())
          codes.set(c.closed()!, (codes.get(c.closed()!) ?? 0) + 1)
        } else {
          codes.set("served", (codes.get("served") ?? 0) + 1)
        }
      } finally {
        await done(c.ws)
      }
    }), params(120))
    expect(codes.get(4400)).toBeGreaterThan(10)
    expect(refusedAsHonest).toBeGreaterThan(3)
    // The honest writer's next edit (the clocks the forgeries tried to take) is taken.
    const before = Y.encodeStateVector(honest)
    honest.getText("t").insert(0, "later ")
    w.ws.send(encodeUpdate(Y.encodeStateAsUpdate(honest, before)))
    // A fresh client gets what the honest replica holds, honest content included.
    const fresh = await raw("/yjs/fz-room")
    try {
      fresh.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
      const got = new Y.Doc()
      expect(await until(() => fresh.got.some((m) => decodeYMessage(m).type === "step2"), 5_000)).toBe(true)
      let applied = 0
      const sv = (d: Y.Doc) => Buffer.from(Y.encodeStateVector(d)).toString("hex")
      // The honest writer's last edit may reach the fresh client as a later update.
      expect(await until(() => {
        for (const m of fresh.got.slice(applied)) {
          const msg = decodeYMessage(m)
          if (msg.type === "step2" || msg.type === "update") Y.applyUpdate(got, msg.update)
        }
        applied = fresh.got.length
        return sv(got) === sv(honest)
      }, 5_000)).toBe(true)
      expect(w.closed()).toBeUndefined()
      expect(Buffer.from(Y.encodeStateAsUpdateV2(got))).toEqual(Buffer.from(Y.encodeStateAsUpdateV2(honest)))
      expect(got.getText("t").toString()).toBe(honest.getText("t").toString())
      expect(got.getText("t").toString()).toContain("honest text")
      expect(got.getText("t").toString().startsWith("later ")).toBe(true)
      // The honest writer's awareness is still its own.
      const shown = fresh.got.flatMap((m) => {
        const msg = decodeYMessage(m)
        return msg.type === "awareness" ? decodeAwarenessUpdate(msg.update, 1e9).filter((e) => e.clientID === honest.clientID) : []
      })
      expect(shown.map((e) => e.state)).toEqual([HONEST_AWARENESS])
      expect(got.getMap("m").get("k")).toBe(1)
      got.destroy()
    } finally {
      await done(fresh.ws)
      await done(w.ws)
      honest.destroy()
    }
    expect(events.filter((e) => e.type === "doc-broken" || e.type === "doc-load-failed")).toEqual([])
  }, 120_000)

  test("automerge-repo: random and mutated frames get a close code or leave the socket serving; the document is intact", async () => {
    const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId
    const honest = A.change(A.init<{ text: string }>(), (d) => { d.text = "honest" })
    const change = A.getLastLocalChange(honest)!
    /** A joined socket (the hub answered `peer`). */
    // The peer id is the token: a peer id belongs to the first user that joined with it.
    const joined = async (token = "fuzz") => {
      const c = await raw(`/automerge?token=${token}`)
      c.ws.send(encodeRepoMessage({ type: "join", senderId: token, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
      expect(await until(() => c.got.some((m) => decodeRepoMessage(m)?.type === "peer"), 5_000)).toBe(true)
      return Object.assign(c, { peer: token })
    }
    /**
     * Syncs `doc` with the hub over `c` (bounded rounds) until the hub says it has the heads
     * the client has, or the socket closes; returns the client's document.
     */
    const syncWith = async (c: Awaited<ReturnType<typeof joined>>, start: A.Doc<{ text: string }>, type: "request" | "sync") => {
      let doc = start
      let state = A.initSyncState()
      let seen = c.got.length
      let hubHeads: string | undefined
      const send = (data: Uint8Array, t: "request" | "sync") => {
        if (c.ws.readyState === WebSocket.OPEN) c.ws.send(encodeRepoMessage({ type: t, senderId: c.peer, targetId: "hub", documentId, data }))
      }
      let out: Uint8Array | null
      ;[state, out] = A.generateSyncMessage(doc, state)
      if (out !== null) send(out, type)
      for (let round = 0; round < 20 && hubHeads !== JSON.stringify(A.getHeads(doc)); round++) {
        if (!(await until(() => c.got.length > seen || c.closed() !== undefined, 3_000)) || c.closed() !== undefined) break
        for (const m of c.got.slice(seen)) {
          const r = decodeRepoMessage(m)
          if (r?.type !== "sync" || r.documentId !== documentId) continue
          hubHeads = JSON.stringify(A.decodeSyncMessage(r.data).heads)
          ;[doc, state] = A.receiveSyncMessage(doc, state, r.data)
        }
        seen = c.got.length
        ;[state, out] = A.generateSyncMessage(doc, state)
        if (out !== null) send(out, "sync")
      }
      return doc
    }
    const w = await joined("honest")
    const written = await syncWith(w, honest, "sync")
    expect(A.getHeads(written)).toEqual(A.getHeads(honest))
    await done(w.ws)
    const honestHash = A.getHeads(honest)[0]!

    const syncMsg = A.generateSyncMessage(honest, A.initSyncState())[1]!
    const hostileFrame = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((data) => encodeRepoMessage({ type: "sync", senderId: "fuzz", targetId: "hub", documentId, data })),
      fc.nat(syncMsg.length - 1).map((k) => encodeRepoMessage({ type: "sync", senderId: "fuzz", targetId: "hub", documentId, data: syncMsg.subarray(0, k) })),
      fc.tuple(fc.nat(change.length * 8 - 1)).map(([bit]) => {
        const u = change.slice()
        u[bit >> 3]! ^= 1 << (bit & 7)
        // A sync message carrying the mutated change.
        const carrier = A.encodeSyncMessage({ heads: [], need: [], have: [], changes: [u] } as never)
        return encodeRepoMessage({ type: "sync", senderId: "fuzz", targetId: "hub", documentId, data: carrier })
      }),
      fc.string({ maxLength: 30 }).map((s) => encodeRepoMessage({ type: "sync", senderId: s, targetId: "hub", documentId: s, data: syncMsg } as never)),
      fc.string({ maxLength: 10 }).map((v) => encodeRepoMessage({ type: "join", senderId: "fuzz", peerMetadata: {}, supportedProtocolVersions: [v] })),
    )
    /** A valid change as the honest writer (its actor, its next seq), by the fuzzing principal. */
    const forgedAsHonest = (text: string): Uint8Array => {
      const forged = A.getLastLocalChange(A.change(A.clone(honest, { actor: A.getActorId(honest) }), (d) => { d.text = text }))!
      const carrier = A.encodeSyncMessage({ heads: [A.decodeChange(forged).hash], need: [], have: [], changes: [forged] } as never)
      return encodeRepoMessage({ type: "sync", senderId: "fuzz", targetId: "hub", documentId, data: carrier })
    }
    const frame = fc.oneof(
      { arbitrary: hostileFrame.map((bytes) => ({ bytes, asHonest: false })), weight: 6 },
      { arbitrary: fc.string({ maxLength: 20 }).map((text) => ({ bytes: forgedAsHonest(text), asHonest: true })), weight: 1 },
    )
    const codes = new Map<number | "served", number>()
    let refusedAsHonest = 0
    await fc.assert(fc.asyncProperty(frame, async ({ bytes, asHonest }) => {
      const c = await joined()
      try {
        // The hostile frame, then an honest request behind it (handled in order): the hub
        // either closes the socket or answers the request with the document.
        c.ws.send(bytes)
        const got = await syncWith(c, A.init<{ text: string }>(), "request")
        if (asHonest) {
          // Writing as another user: refused, never taken.
          expect(c.closed()).toBe(4400)
          refusedAsHonest++
        }
        if (c.closed() !== undefined) {
          expect([4400, 4503]).toContain(c.closed())
          codes.set(c.closed()!, (codes.get(c.closed()!) ?? 0) + 1)
        } else {
          // Answered with the document: the honest change included (a mutated change can be
          // a valid one of its own, which the hub takes).
          expect(A.hasHeads(got, [honestHash])).toBe(true)
          codes.set("served", (codes.get("served") ?? 0) + 1)
        }
      } finally {
        await done(c.ws)
      }
    }), params(100))
    expect(codes.get(4400)).toBeGreaterThan(10)
    expect(codes.get("served")).toBeGreaterThan(0)
    expect(refusedAsHonest).toBeGreaterThan(3)
    // Two fresh clients get the same document, with equal heads, the honest change included.
    const fresh = await joined()
    const second = await joined()
    try {
      const got = await syncWith(fresh, A.init<{ text: string }>(), "request")
      const again = await syncWith(second, A.init<{ text: string }>(), "request")
      expect(A.hasHeads(got, [honestHash])).toBe(true)
      expect(A.getHeads(got).length).toBeGreaterThan(0)
      expect(A.getHeads(again)).toEqual(A.getHeads(got))
      expect(again.text).toBe(got.text)
      expect(got.text).toContain("honest")
    } finally {
      await done(fresh.ws)
      await done(second.ws)
    }
    expect(events.filter((e) => e.type === "doc-broken" || e.type === "doc-load-failed")).toEqual([])
  }, 120_000)
})

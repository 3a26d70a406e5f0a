/**
 * The codec's bounds (core/protocol: CodecSession's byte limits, args-codec's item budget)
 * against a real Hub on a WsServer: the hostile peer's frames of the security review
 * (test/attack-wire-*.test.ts on branch atk-wire), hand-made, as an attacker sends them.
 * An oversized docId or command name ends the connection as an undecodable frame (nothing is
 * kept for it); a few hundred bytes of compact arguments no longer stall the hub.
 */
import { Schema } from "effect"
import { WebSocket } from "ws"
import { defineMachine, Hub } from "../core/index.js"
import { CodecSession, encodeClientMessage } from "../core/internal.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { RawClient, closeAllRaw, newIdentity } from "./support/hostile-raw.js"
import { nestedEmptyArrays, submit2Frame, subscribeFrame } from "./support/hostile-frames.js"
import { Todo } from "./support/machines.js"

const Grid = defineMachine({
  name: "grid",
  version: 1,
  initial: () => ({ rows: 0 }),
  commands: {
    // A board of empty cells: rows of nulls (an app might use Literal or an empty Struct alike).
    fill: { args: Schema.Struct({ rows: Schema.Array(Schema.Array(Schema.Null)) }), apply: (s, a) => { s.rows = a.rows.length } },
  },
})

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  await closeAllRaw()
  for (const c of cleanups.splice(0).reverse()) await c()
})

const world = async () => {
  const hub = new Hub({ machines: [Todo, Grid], storage: new MemoryStorage(), runtime: systemRuntime })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxConnectionsPerAddress: Infinity })
  cleanups.push(() => hub.close(), () => server.close())
  return server.urls()[0]!
}

/** A protocol 2 peer with its own codec session, subscribed to `docId` of `machine` (channel 1). */
const peer2 = async (url: string, docId: string, machine: typeof Todo | typeof Grid) => {
  const session = new CodecSession()
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  cleanups.push(async () => ws.terminate())
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once("close", (code, reason) => r({ code, reason: reason.toString() })))
  const me = newIdentity()
  ws.send(encodeClientMessage({ type: "hello", protocol: { min: 2, max: 2 }, clientId: me.clientId, secret: me.secret, machines: [] }, { version: 1, session }))
  await new Promise((r) => setTimeout(r, 200))
  ws.send(encodeClientMessage({ type: "subscribe", docId, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 }, { version: 2, session }))
  await new Promise((r) => setTimeout(r, 200))
  return { ws, session, closed }
}

test("a subscribe with a docId over 512 bytes ends the connection as undecodable; nothing is kept for it", async () => {
  const url = await world()
  const raw = await RawClient.connect(url)
  await raw.helloFresh()
  raw.sendFrame(subscribeFrame("d".repeat((1 << 20) - 200), Todo))
  const closed = await raw.waitClosed(5000)
  expect(closed?.code).toBe(4002)
  expect(raw.received.some((m) => m.type === "error" && m.code === "protocol-error" && /docId of \d+ bytes is over the limit of 512/.test(m.message))).toBe(true)
  // One at the limit is still the hub's to refuse or serve: the connection stays.
  const ok = await RawClient.connect(url)
  await ok.helloFresh()
  ok.sendFrame(subscribeFrame("e".repeat(512), Todo))
  expect(await ok.waitClosed(300)).toBeUndefined()
})

test("a protocol 2 command name over 256 bytes ends the connection as undecodable; nothing is kept for it", async () => {
  const url = await world()
  const { ws, closed } = await peer2(url, "d", Todo)
  ws.send(submit2Frame(1, [{ clientSeq: 1, name: "n".repeat((1 << 20) - 100), args: new Uint8Array([1, 0x00]) }]))
  const how = await closed
  expect(how.code).toBe(4002)
})

test("a submit of a few hundred bytes of nested empty arrays does not stall the hub for everyone", async () => {
  const url = await world()
  const { ws } = await peer2(url, "g", Grid)
  const frame = submit2Frame(1, [{ clientSeq: 1, name: "fill", args: nestedEmptyArrays(200) }])
  expect(frame.length).toBeLessThan(1000)
  // A bystander measures how long the hub takes to answer.
  const bystander = await RawClient.connect(url)
  const start = Date.now()
  ws.send(frame)
  await new Promise((r) => setTimeout(r, 5))
  const answer = await bystander.hello(newIdentity().clientId, { secret: newIdentity().secret })
  const stall = Date.now() - start
  expect(answer.kind).toBe("welcome")
  expect(`a ${frame.length}-byte frame stalled the hub ${stall} ms`).toBe(`a ${frame.length}-byte frame stalled the hub ${Math.min(stall, 500)} ms`)
})

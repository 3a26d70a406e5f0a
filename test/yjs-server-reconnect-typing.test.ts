/**
 * A stock y-websocket provider that typed while the hub was away, and goes on typing as it
 * reconnects, sends its next edit as an `update` before the step2 that answers the hub's
 * step1 (the edit happens before that step1 arrives): the update continues its clientID's
 * clock past what the hub has, and what comes before it is in the step2 right behind. The
 * route refused it `update-missing-deps` and closed the socket 4400, which stops a stock
 * provider for good: its user's edits never reached the hub again. Found by the crdt chaos
 * scenario (test/crash/crdt-docs-crash.ts, seed 1: every writer typing through a hub restart
 * was closed this way). Now an `update` whose dependencies the hub lacks is dropped and the
 * socket asked (a step1 with the hub's state vector, at most once a second while no step2 has
 * come) for what the hub lacks, as a peer session does (adapters/peer/yjs-sync.ts); its step2
 * carries the dropped edit too. A step2 with missing dependencies still closes the socket.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep2, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

/** Polls an async reading until `ok` holds (bounded); the last reading. */
const settle = async (read: () => Promise<string>, ok: (v: string) => boolean, ms: number): Promise<string> => {
  const end = Date.now() + ms
  let v = await read()
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20))
    v = await read()
  }
  return v
}

const open = (target: string) => {
  const ws = new WebSocket(target)
  const got: Array<ReturnType<typeof decodeYMessage>> = []
  const state = { closed: undefined as number | undefined, reason: "" }
  ws.on("message", (d) => got.push(decodeYMessage(new Uint8Array(d as Buffer))))
  ws.on("close", (code, reason) => {
    state.closed = code
    state.reason = reason.toString()
  })
  return { ws, got, state, opened: new Promise<void>((r, j) => { ws.once("open", () => r()); ws.once("error", j) }) }
}

test("an update sent ahead of the step2 that holds what it continues is not refused: the socket stays, the hub gets every edit", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const sock = open(`${url("/yjs/room")}?token=ann`)
  try {
    await sock.opened
    expect(await until(() => sock.got.some((m) => m.type === "step1"), 5_000)).toBe(true)
    // Typed while the hub was away...
    const doc = new Y.Doc()
    const text = doc.getText("t")
    text.insert(0, "offline ")
    const before = Y.encodeStateVector(doc)
    // ...and one more edit as the socket opens: a stock provider sends it as an update at once.
    text.insert(text.length, "typing")
    sock.ws.send(encodeUpdate(Y.encodeStateAsUpdate(doc, before)))
    // Then its answer to the hub's step1 (the hub had nothing): everything, the last edit included.
    sock.ws.send(encodeStep2(Y.encodeStateAsUpdate(doc)))
    const stored = async () => (await hub.crdtDocs.open<Y.Doc>("yjs", "room")).doc.getText("t").toString()
    const last = await settle(stored, (v) => v === "offline typing" || sock.state.closed !== undefined, 5_000)
    expect(sock.state).toEqual({ closed: undefined, reason: "" })
    expect(last).toBe("offline typing")
  } finally {
    sock.ws.terminate()
    await stop()
  }
})

test("a dropped update's content comes in the step2 the hub asks for", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const sock = open(`${url("/yjs/room")}?token=ann`)
  try {
    await sock.opened
    expect(await until(() => sock.got.some((m) => m.type === "step1"), 5_000)).toBe(true)
    const doc = new Y.Doc()
    const text = doc.getText("t")
    text.insert(0, "a")
    const before = Y.encodeStateVector(doc)
    text.insert(1, "b")
    // Only the continuation: the hub asks again (a second step1), and the answer lands it all.
    const step1s = () => sock.got.filter((m) => m.type === "step1").length
    sock.ws.send(encodeUpdate(Y.encodeStateAsUpdate(doc, before)))
    expect(await until(() => step1s() === 2 || sock.state.closed !== undefined, 5_000)).toBe(true)
    expect(sock.state.closed).toBeUndefined()
    const asked = sock.got.filter((m) => m.type === "step1").at(-1) as { stateVector: Uint8Array }
    sock.ws.send(encodeStep2(Y.encodeStateAsUpdate(doc, asked.stateVector)))
    expect(await settle(async () => (await hub.crdtDocs.open<Y.Doc>("yjs", "room")).doc.getText("t").toString(), (v) => v === "ab", 5_000)).toBe("ab")
  } finally {
    sock.ws.terminate()
    await stop()
  }
})

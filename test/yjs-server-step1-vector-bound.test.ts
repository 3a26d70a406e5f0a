/**
 * A step1 whose state vector lists far more clients than the document has (the attack of
 * .scratch/atk-interop/yjs-step1-sv-flood.mts: 1.5 million entries, 6.4 MB, about once a
 * second). The hub decoded every vector as it arrived (Y.decodeStateVector, 0.8 s each), before
 * the step1 pace and outside the work budget, so one socket slowed every other client's first
 * message from milliseconds to seconds. Now a vector listing more than the document's clients
 * plus MAX_UNSEEN_STATE_VECTOR_CLIENTS is answered as an empty one (the whole document) from
 * its count, and never read; one at the bound is read once paced, and a stock provider (a real
 * vector) syncs.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { MAX_UNSEEN_STATE_VECTOR_CLIENTS, yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep1, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { ByteWriter } from "../core/bytes.js"
import { until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { rawYSocket, stockProvider } from "./support/yjs-sockets.js"

/** A state vector of `n` clients the hub has never seen (clock 1 each); `claim`: the count it says, if not n. */
const vectorOf = (n: number, claim = n): Uint8Array => {
  const w = new ByteWriter(n * 8 + 8)
  w.varint(claim)
  for (let i = 0; i < n; i++) {
    w.varint(2_000_000_000 + i)
    w.varint(1)
  }
  return w.finish()
}

test("a step1 listing more clients than the document's plus the bound is answered with the whole document, unread; at the bound, and a stock provider's, it is read", async () => {
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs/sv-bound")
  const sockets: WebSocket[] = []
  let provider: WebsocketProvider | undefined
  const raw = async (token: string) => {
    const socket = await rawYSocket(base, token, sockets)
    const step2s = () => socket.got.map((f) => decodeYMessage(f)).filter((m) => m.type === "step2")
    return { ...socket, step2s }
  }
  try {
    // A document written by three Yjs clients.
    const writer = await raw("writer")
    const source = new Y.Doc()
    for (const text of ["a", "b", "c"]) {
      const d = new Y.Doc()
      Y.applyUpdate(d, Y.encodeStateAsUpdate(source))
      d.getText("t").insert(d.getText("t").length, text)
      Y.applyUpdate(source, Y.encodeStateAsUpdate(d))
    }
    writer.ws.send(encodeUpdate(Y.encodeStateAsUpdate(source)))
    const docClients = 3

    // A stock provider: its real vector is answered and it syncs.
    provider = new WebsocketProvider(base.slice(0, base.lastIndexOf("/")), "sv-bound", new Y.Doc(), {
      WebSocketPolyfill: WebSocket as never, params: { token: "ann" }, maxBackoffTime: 200, disableBc: true,
    })
    expect(await until(() => provider!.synced && provider!.doc.getText("t").toString() === "abc", 10_000)).toBe(true)

    // At the bound: answered (with the whole document: it names none of the document's clients).
    const most = docClients + MAX_UNSEEN_STATE_VECTOR_CLIENTS
    const atBound = await raw("bea")
    atBound.ws.send(encodeStep1(vectorOf(most)))
    expect(await until(() => atBound.step2s().length === 1, 5_000)).toBe(true)
    const got = new Y.Doc()
    const answer = atBound.step2s()[0]!
    Y.applyUpdate(got, answer.type === "step2" ? answer.update : new Uint8Array())
    expect(got.getText("t").toString()).toBe("abc")
    expect(atBound.closed()).toBeUndefined()

    // One past it: the whole document, as to an empty vector (a right answer to any step1).
    const past = await raw("mallory")
    past.ws.send(encodeStep1(vectorOf(most + 1)))
    expect(await until(() => past.step2s().length === 1, 5_000)).toBe(true)
    const whole = past.step2s()[0]!
    expect(whole.type === "step2" && Buffer.from(whole.update).equals(Buffer.from(answer.type === "step2" ? answer.update : []))).toBe(true)
    expect(past.closed()).toBeUndefined()

    // A count of 1.5 million over 12 bytes: answered from its count, so its entries were never
    // read (reading them would fail on the missing bytes: "Bad state vector.", 4400).
    const claim = await raw("mallet")
    claim.ws.send(encodeStep1(vectorOf(2, 1_500_000)))
    expect(await until(() => claim.step2s().length === 1, 5_000)).toBe(true)
    expect(claim.closed()).toBeUndefined()

    // Within the bound but truncated: still refused as malformed once read (past the pace).
    const short = await raw("mina")
    short.ws.send(encodeStep1(vectorOf(2, 5)))
    expect(await until(() => short.closed() !== undefined, 5_000)).toBe(true)
    expect(short.closed()!.code).toBe(4400)
    expect(short.step2s()).toEqual([])

    // An honest vector naming the document's clients gets the diff only.
    const partial = new Y.Doc()
    Y.applyUpdate(partial, Y.encodeStateAsUpdate(source))
    const late = new Y.Doc()
    Y.applyUpdate(late, Y.encodeStateAsUpdate(partial))
    source.getText("t").insert(3, "d")
    writer.ws.send(encodeUpdate(Y.encodeStateAsUpdate(source, Y.encodeStateVector(partial))))
    expect(await until(() => provider!.doc.getText("t").toString() === "abcd", 5_000)).toBe(true)
    const honest = await raw("hal")
    honest.ws.send(encodeStep1(Y.encodeStateVector(late)))
    expect(await until(() => honest.step2s().length === 1, 5_000)).toBe(true)
    const diff = honest.step2s()[0]!
    Y.applyUpdate(late, diff.type === "step2" ? diff.update : new Uint8Array())
    expect(late.getText("t").toString()).toBe("abcd")
    expect(diff.type === "step2" && diff.update.length < Y.encodeStateAsUpdate(source).length).toBe(true)
    expect(writer.closed() ?? honest.closed()).toBeUndefined()
  } finally {
    provider?.destroy()
    provider?.doc.destroy()
    for (const ws of sockets) ws.terminate()
    await stop()
  }
})

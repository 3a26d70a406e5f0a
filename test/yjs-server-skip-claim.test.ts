/**
 * End to end over the y-websocket route: a hostile principal learns a stock provider's
 * clientID from its awareness (sent on connect) and claims it with an update holding one
 * GC clock of its own and a Skip (no data) for the victim's clientID. The victim's first
 * edit is then refused `not-owner` and its socket closed 4400 (y-websocket never retries).
 */
import * as Y from "yjs"
import * as encoding from "lib0/encoding"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"

const skipClaim = (own: number, victim: number): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, own); encoding.writeVarUint(e, 0); encoding.writeUint8(e, 0); encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, victim); encoding.writeVarUint(e, 0); encoding.writeUint8(e, 10); encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}

test("a stock provider's edits are not refused after another principal Skip-claims its clientID", async () => {
  const hub = new Hub({
    machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] },
    authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
  })
  const route = yjsRoute(hub.crdtDocs)
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [route] })
  const base = `ws://127.0.0.1:${server.addresses()[0]!.port}/yjs`
  const vdoc = new Y.Doc()
  const victim = new WebsocketProvider(base, "room", vdoc, { WebSocketPolyfill: WebSocket as never, params: { token: "victim" }, maxBackoffTime: 200, disableBc: true })
  let victimClosed: number | undefined
  victim.on("connection-close", (ev: { code: number } | null) => { if (ev) victimClosed = ev.code })
  const atk = new WebSocket(`${base}/room?token=mallory`)
  const seen = new Set<number>()
  const opened = new Promise((r, j) => { atk.once("open", r); atk.once("error", j) })
  atk.on("message", (d) => {
    const m = decodeYMessage(new Uint8Array(d as Buffer))
    if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e6)) if (e.state !== "null") seen.add(e.clientID)
  })
  try {
    expect(await until(() => victim.synced, 5_000)).toBe(true)
    await opened
    expect(await until(() => seen.has(vdoc.clientID), 5_000)).toBe(true)
    atk.send(encodeUpdate(skipClaim(31337, vdoc.clientID)))
    await sleep(300)
    vdoc.getText("t").insert(0, "victim's text")
    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "room")
    await until(() => doc.doc.getText("t").toString() === "victim's text" || victimClosed !== undefined, 3_000)
    expect({ text: doc.doc.getText("t").toString(), victimClosed }).toEqual({ text: "victim's text", victimClosed: undefined })
    hub.crdtDocs.release(doc)
  } finally {
    victim.destroy(); vdoc.destroy(); atk.close()
    route.close(); await server.close(); await hub.close()
  }
}, 20_000)

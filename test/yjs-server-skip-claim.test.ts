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
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

const skipClaim = (own: number, victim: number): Uint8Array => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, own); encoding.writeVarUint(e, 0); encoding.writeUint8(e, 0); encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 1); encoding.writeVarUint(e, victim); encoding.writeVarUint(e, 0); encoding.writeUint8(e, 10); encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}

test("a stock provider's edits are not refused after another principal Skip-claims its clientID", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs")
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
    await stop()
  }
}, 20_000)

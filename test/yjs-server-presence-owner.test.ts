/**
 * Awareness ownership over the y-websocket route: a clientID's presence belongs to its
 * socket; once that socket closes (a network blip, a reconnect), another principal may set a
 * state under that clientID (if the clientID has written no document data, e.g. a reader or
 * a user who has not typed yet) with a higher clock, and the victim's reconnecting socket is
 * then refused its own presence.
 */
import { WebSocket } from "ws"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, decodeAwarenessUpdate, encodeAwareness, encodeAwarenessUpdate, encodeQueryAwareness } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

test("after a victim's socket drops, another principal cannot take over its clientID's presence and lock the victim out", async () => {
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)])
  const base = url("/yjs/room")
  const sockets: WebSocket[] = []
  const connect = async (token: string) => {
    const ws = new WebSocket(`${base}?token=${token}`)
    sockets.push(ws)
    const got: Uint8Array[] = []
    ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
    await until(() => got.length > 0, 5_000)
    return { ws, got }
  }
  const say = (clientID: number, clock: number, state: string) => encodeAwareness(encodeAwarenessUpdate([{ clientID, clock, state }]))
  const X = 555_555
  try {
    const observer = await connect("observer")
    let victim = await connect("victim")
    victim.ws.send(say(X, 1, `{"user":{"name":"Victim"}}`))
    await sleep(150)
    victim.ws.close() // a network blip: the stock provider reconnects with the same clientID
    await sleep(150)
    const mallory = await connect("mallory")
    mallory.ws.send(say(X, 1_000_000, `{"user":{"name":"Victim"},"cursor":"forged"}`))
    await sleep(150)
    victim = await connect("victim")
    victim.ws.send(say(X, 2, `{"user":{"name":"Victim"}}`))
    await sleep(150)
    const before = observer.got.length
    observer.ws.send(encodeQueryAwareness())
    await until(() => observer.got.length > before, 2_000)
    const shown: string[] = []
    for (const f of observer.got.slice(before)) {
      const m = decodeYMessage(f)
      if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e6)) if (e.clientID === X) shown.push(e.state)
    }
    expect(shown).toEqual([`{"user":{"name":"Victim"}}`])
  } finally {
    for (const ws of sockets) ws.close()
    await stop()
  }
}, 20_000)

/**
 * A stock y-websocket reader shows its clientID in awareness before it ever writes, and the
 * hub relays that to the room, and relays at once when it leaves. Before the fix the first
 * principal to write as a clientID owned it: a collaborator who saw a reader's clientID wrote
 * one character as it while the reader was offline; the reader typed, reconnected, had its
 * step2 refused `not-owner` (4400), and a stock provider stops there: its offline work never
 * reached anyone. Now a clientID is bound to the principal that first shows it
 * (core/crdt-docs/authority.ts `claim`).
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeAwarenessUpdate, decodeYMessage, encodeUpdate } from "../adapters/yjs-server/protocol.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

test("a collaborator cannot write as an offline reader's clientID it saw in awareness; the reader's offline edits land", async () => {
  const refusals: string[] = []
  const { url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host)], {
    onEvent: (e: any) => {
      const ev = e.type === "crdt" ? e.event : e
      if (ev.type === "refused") refusals.push(`${ev.code}: ${String(ev.message).slice(0, 140)}`)
    },
  })
  const providers: WebsocketProvider[] = []
  const mallory = new WebSocket(`${url("/yjs/room")}?token=mallory`)
  try {
    // Mallory: a raw socket that watches awareness.
    const present = new Set<number>()
    const left: number[] = []
    let malloryClosed: number | undefined
    mallory.on("close", (code) => { malloryClosed = code })
    mallory.on("message", (d) => {
      const m = decodeYMessage(new Uint8Array(d as Buffer))
      if (m.type !== "awareness") return
      for (const e of decodeAwarenessUpdate(m.update, 1e6)) {
        if (e.state !== "null") present.add(e.clientID)
        else if (present.delete(e.clientID)) left.push(e.clientID)
      }
    })
    await new Promise((resolve, reject) => { mallory.once("open", resolve); mallory.once("error", reject) })

    // Ann opens the room with a stock provider and only reads.
    const annDoc = new Y.Doc()
    const ann = new WebsocketProvider(url("/yjs"), "room", annDoc, { WebSocketPolyfill: WebSocket as never, params: { token: "ann" }, disableBc: true, maxBackoffTime: 200 })
    providers.push(ann)
    const annCloses: Array<number | undefined> = []
    ann.on("connection-close", (ev: any) => annCloses.push(ev?.code))
    expect(await until(() => ann.synced && present.has(annDoc.clientID), 10_000)).toBe(true)

    // Ann loses the network; Mallory, told she left, writes one character as her clientID.
    ann.disconnect()
    expect(await until(() => left.includes(annDoc.clientID), 5_000)).toBe(true)
    const forged = new Y.Doc()
    forged.clientID = annDoc.clientID
    forged.getText("t").insert(0, "~")
    mallory.send(encodeUpdate(Y.encodeStateAsUpdate(forged)))
    expect(await until(() => refusals.some((r) => r.startsWith("not-owner")), 5_000)).toBe(true)

    // Ann types offline, then the network comes back.
    annDoc.getText("t").insert(0, "ann's offline paragraph")
    ann.connect()

    const bobDoc = new Y.Doc()
    const bob = new WebsocketProvider(url("/yjs"), "room", bobDoc, { WebSocketPolyfill: WebSocket as never, params: { token: "bob" }, disableBc: true })
    providers.push(bob)
    expect(await until(() => bobDoc.getText("t").toString() === "ann's offline paragraph", 10_000)).toBe(true)
    expect(annCloses.filter((c) => c !== undefined && c >= 4000)).toEqual([])
    expect(malloryClosed).toBe(4400)
  } finally {
    mallory.close()
    for (const p of providers) p.destroy()
    await sleep(100)
    for (const p of providers) p.doc.destroy()
    await stop()
  }
}, 30_000)

/**
 * The demo board in the browser: opens the replica (IndexedDB + WebSocket), shows the board
 * named in the URL (`#board=team`), and keeps the status, people and board views current.
 * `window.canon` is a debug handle (the tests read the document through it).
 */
import type { CanonClient, Doc } from "../../../core/index.js"
import type { Board } from "../board.js"
import { boardFromHash, renderBoards } from "./boards-view.js"
import { openBoard, type BoardSession } from "./board-session.js"
import { openReplica } from "./connection.js"
import { slot } from "./dom.js"
import { loadIdentity, saveIdentity, type Identity } from "./identity.js"
import { PeopleView } from "./people-view.js"
import { StatusView } from "./status-view.js"
import { toast } from "./toast.js"

declare global {
  interface Window {
    canon?: { client: CanonClient; doc: Doc<typeof Board>; board: string; identity: Identity; slot: number }
  }
}

const registerServiceWorker = (): void => {
  if (!("serviceWorker" in navigator)) return
  navigator.serviceWorker.register("/sw.js").catch((e: unknown) => console.warn("No offline support:", e))
}

const main = async (): Promise<void> => {
  registerServiceWorker()
  const status = new StatusView(slot("status"))
  let identity = loadIdentity()
  let session: BoardSession | undefined
  const people = new PeopleView(slot("people"), (name) => {
    identity = { ...identity, name }
    saveIdentity(identity)
    session?.setIdentity(identity)
    if (window.canon !== undefined) window.canon.identity = identity
  })

  const replica = await openReplica((message) => toast(message))
  const { client } = replica
  client.onStatus((s) => {
    status.setStatus(s, client.refusal?.message)
    if (s === "refused") toast(`The hub refused this app: ${client.refusal?.message ?? "no reason given"}. Your edits stay on this device.`)
  })
  status.setStatus(client.status)
  slot("retry").addEventListener("click", () => client.reconnectNow())
  addEventListener("online", () => status.render())
  addEventListener("offline", () => status.render())

  // Board switches run one after another, so a fast double switch cannot interleave.
  let switching = Promise.resolve()
  const show = (name: string) => {
    switching = switching.then(async () => {
      if (session?.name === name) return
      renderBoards(slot("boards"), name)
      document.title = `${name} · Canon board`
      const previous = session
      session = undefined
      await previous?.close()
      session = await openBoard(client, name, identity, { status, people })
      window.canon = { client, doc: session.doc, board: name, identity, slot: replica.slot }
    }).catch((e: unknown) => toast(`Could not open the board: ${e instanceof Error ? e.message : String(e)}`))
    return switching
  }
  addEventListener("hashchange", () => void show(boardFromHash()))
  await show(boardFromHash())
}

void main().catch((e: unknown) => {
  toast(`The board could not start: ${e instanceof Error ? e.message : String(e)}`)
  console.error(e)
})

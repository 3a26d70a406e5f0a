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
import { Devtools } from "./devtools.js"
import { NetworkShaper } from "./net-shaper.js"
import { appVersion } from "./version.js"

declare global {
  interface Window {
    canon?: { client: CanonClient; doc: Doc<typeof Board>; board: string; identity: Identity; slot: number; shaper: NetworkShaper; version: number }
  }
}

const registerServiceWorker = (): void => {
  if (!("serviceWorker" in navigator)) return
  navigator.serviceWorker.register("/sw.js").catch((e: unknown) => console.warn("No offline support:", e))
}

const main = async (): Promise<void> => {
  registerServiceWorker()
  if (appVersion() === 1) {
    // An old app kept beside the new one, to show what versions do: say which this is.
    const badge = document.createElement("span")
    badge.className = "app-version"
    badge.title = "This tab runs version 1 of the board (no priorities). Remove ?v=1 from the address for the current version."
    badge.textContent = "v1 app"
    document.querySelector(".brand")?.append(badge)
  }
  const status = new StatusView(slot("status"))
  let identity = loadIdentity()
  let session: BoardSession | undefined
  const people = new PeopleView(slot("people"), (name) => {
    identity = { ...identity, name }
    saveIdentity(identity)
    session?.setIdentity(identity)
    if (window.canon !== undefined) window.canon.identity = identity
  })

  const shaper = new NetworkShaper()
  const replica = await openReplica((message) => toast(message), shaper)
  const { client } = replica
  const devtools = new Devtools({ client, shaper, who: (id) => session?.who(id) ?? { name: id.slice(0, 6), colour: "#868e96" }, offline: (b) => status.setChosenOffline(b), loadMany: () => void loadMany() })
  document.body.append(devtools.el)
  slot("devtools-toggle").addEventListener("click", () => devtools.toggle())
  const undo = () => session?.history.undo() ?? toast("Nothing of yours to undo on this board.", "info")
  const redo = () => session?.history.redo() ?? toast("Nothing to redo.", "info")
  slot("undo").addEventListener("click", () => void undo())
  slot("redo").addEventListener("click", () => void redo())
  addEventListener("keydown", (e) => {
    const target = e.target as HTMLElement
    if (target.closest("input, textarea, [contenteditable]") !== null || !(e.ctrlKey || e.metaKey)) return
    const key = e.key.toLowerCase()
    if (key === "z" && !e.shiftKey) undo()
    else if ((key === "z" && e.shiftKey) || key === "y") redo()
    else return
    e.preventDefault()
  })
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
      session = await openBoard(client, name, identity, { status, people }, replica.slot)
      devtools.attach(session.doc)
      window.canon = { client, doc: session.doc, board: name, identity, slot: replica.slot, shaper, version: appVersion() }
    }).catch((e: unknown) => toast(`Could not open the board: ${e instanceof Error ? e.message : String(e)}`))
    return switching
  }
  /** 20 commands of 1,000 cards on a new board: enough log for the hub to snapshot and compact it. */
  const loadMany = async () => {
    const name = `big-${Date.now().toString(36)}`
    location.hash = `board=${name}`
    await show(name)
    const doc = session!.doc
    const columns = doc.state.columns
    for (let batch = 0; batch < 20; batch++) {
      const cards = Array.from({ length: 1000 }, (_, i) => {
        const n = batch * 1000 + i
        return { id: `c${n}`, title: `Card ${n + 1}`, column: columns[n % columns.length]!, position: n }
      })
      void doc.submit("addCards", { cards }).catch(() => {})
    }
    toast(`20,000 cards on board "${name}": open ${location.href} in another window to watch it arrive as a snapshot.`, "info")
  }
  // A reload or close while an edit is not stored yet would lose it: the browser asks first.
  // (Without storage nothing pending survives a reload.)
  // The board's and the open card description's: typing there is pending from the keystroke on.
  addEventListener("beforeunload", (e) => {
    const pending = [...(session?.doc.pending ?? []), ...(window.canonText?.pending ?? [])]
    if (pending.some((p) => !p.stored || replica.storage === undefined)) e.preventDefault()
  })
  addEventListener("hashchange", () => void show(boardFromHash()))
  await show(boardFromHash())
}

void main().catch((e: unknown) => {
  toast(`The board could not start: ${e instanceof Error ? e.message : String(e)}`)
  console.error(e)
})

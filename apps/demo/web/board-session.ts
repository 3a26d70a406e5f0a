/**
 * One open board: the Canon document behind it, its views, and every edit as a command.
 * Edits apply at once (optimistic); a command the hub rejects (say, moving a card someone
 * just deleted) is rolled back by Canon and explained in a toast. Whatever asks for a redraw
 * (a change, a peer's presence) is drawn at the next animation frame, once however many asked.
 */
import { CommandRejected, type CanonClient, type Doc } from "../../../core/index.js"
import type { Board } from "../board.js"
import { BoardView, type Editor } from "./board-view.js"
import { colourOf } from "./colours.js"
import { showDetails } from "./details.js"
import { History, type Edit } from "./history.js"
import { enableDragAndDrop } from "./dnd.js"
import { asPresence, type Identity, type Presence } from "./identity.js"
import type { PeopleView } from "./people-view.js"
import { OwnChanges } from "./own-changes.js"
import type { StatusView } from "./status-view.js"
import { toast } from "./toast.js"
import { knownNames, rememberNames } from "./known-names.js"
import { hideUpdateRequired, showUpdateRequired } from "./update-banner.js"
import { appVersion, boardMachine } from "./version.js"

export interface BoardSession {
  readonly name: string
  readonly doc: Doc<typeof Board>
  readonly history: History
  /** A person's name and colour (as shown on this board) for a clientId. */
  who(clientId: string): { readonly name: string; readonly colour: string }
  setIdentity(identity: Identity): void
  close(): Promise<void>
}

/**
 * Which card each unconfirmed command touches, kept in localStorage per storage slot and
 * board: the outbox survives a reload (IndexedDB), so the "not synced" dots must too.
 */
const touchedStore = (key: string) => ({
  load: (): Map<number, string> => {
    try {
      const saved: unknown = JSON.parse(localStorage.getItem(key) ?? "[]")
      return new Map(Array.isArray(saved) ? saved.filter((x): x is [number, string] => Array.isArray(x) && typeof x[0] === "number" && typeof x[1] === "string") : [])
    } catch {
      return new Map()
    }
  },
  save: (touched: ReadonlyMap<number, string>): void => {
    try {
      localStorage.setItem(key, JSON.stringify([...touched]))
    } catch {
      // private mode: the dots last for this page only
    }
  },
})

/** The board is arriving as a snapshot stream: a bar at the top until it is installed. */
const showSnapshotProgress = (received: number, size: number): void => {
  let bar = document.getElementById("snapshot-progress") as HTMLProgressElement | null
  if (bar === null) {
    bar = document.createElement("progress")
    bar.id = "snapshot-progress"
    bar.setAttribute("aria-label", "Receiving the board")
    document.body.prepend(bar)
  }
  bar.max = size
  bar.value = received
  bar.title = `Receiving the board: ${Math.round(received / 1024)} of ${Math.round(size / 1024)} KiB`
  bar.dataset.done = String(received >= size)
  // For the tests and the curious: how many progress steps this page saw.
  document.body.dataset.snapshotSteps = String(Number(document.body.dataset.snapshotSteps ?? 0) + 1)
  document.body.dataset.snapshotReceived = `${received}/${size}`
  if (received >= size) setTimeout(() => bar?.remove(), 800)
}

/** How long after your rename or move someone else's replacing it counts as a race you lost. */
const RACE_MS = 15_000

/** A hidden tab gets no animation frames: it draws on a timer instead (browsers slow it to about 1 s). */
const HIDDEN_DRAW_MS = 100

/** Events of a person acting on the board: what was scheduled to draw is drawn first, so they act on what the board holds. */
const INPUT_EVENTS = ["keydown", "click", "dblclick", "drop"] as const

const VERBS: Record<string, string> = {
  addCard: "add the card",
  renameCard: "rename the card",
  moveCard: "move the card",
  deleteCard: "delete the card",
  setPriority: "change the priority",
}

/** "Couldn't move the card: this card was deleted by someone else." */
export const friendly = (command: string, message: string): string =>
  `Couldn't ${VERBS[command] ?? "save that change"}: ${message.slice(0, 1).toLowerCase()}${message.slice(1)}`

const newCardId = (): string => {
  const bytes = crypto.getRandomValues(new Uint8Array(6))
  return `${Date.now().toString(36)}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`
}

/** The board's document name: boards are documents `board/<name>`. */
export const docIdOf = (board: string): string => `board/${board}`

export const openBoard = async (client: CanonClient, name: string, identity: Identity, ui: { status: StatusView; people: PeopleView }, slotNumber = 0): Promise<BoardSession> => {
  const doc = await client.open(boardMachine(), docIdOf(name))
  // A fresh element per board: its listeners go with it.
  const old = document.getElementById("board")!
  const root = old.cloneNode(false) as HTMLElement
  old.replaceWith(root)

  let me = identity
  let editing: string | null = null
  /** Which card each unconfirmed command of this page touches (for the "not synced" dot). */
  const touchedKey = touchedStore(`canon-demo-touched/${slotNumber}/${doc.docId}`)
  const touched = touchedKey.load()
  const names = knownNames(localStorage)

  const share = () => doc.setPresence({ name: me.name, colour: me.colour, editing })

  /** Your confirmed renames and moves, to tell you when someone else's edit replaced one. */
  const mine = new Map<string, { kind: "rename" | "move"; value: string; at: number }>()

  const send = (edit: Edit) => {
    const receipt = doc.submit(edit.name, edit.args as never)
    // Applied already: the view's order takes the card now, in about log n (every edit names one card).
    own.submitted(receipt.clientSeq)
    view.changed(doc.state, [edit.args.id])
    if (receipt.clientSeq >= 0) {
      touched.set(receipt.clientSeq, edit.args.id)
      touchedKey.save(touched)
    }
    receipt.then(
      () => {
        if (edit.name === "renameCard") mine.set(edit.args.id, { kind: "rename", value: edit.args.title, at: Date.now() })
        if (edit.name === "moveCard") mine.set(edit.args.id, { kind: "move", value: edit.args.column, at: Date.now() })
        noticeOverwrites()
      },
      (e: unknown) => {
        // Refused before sending (invalid arguments); the hub's rejections come as events.
        if (e instanceof CommandRejected && e.code === "update-required") toast("This version of the app can only show this board: use the button at the top to reload with the new version (your changes are kept).", "info")
        else if (e instanceof CommandRejected && e.clientSeq === -1) toast(friendly(edit.name, e.message))
      },
    )
  }
  const history = new History(send, () => schedule())
  /** An edit made by hand: applied, and undoable. */
  const submit = (edit: Edit) => {
    history.record(doc.state, edit)
    send(edit)
  }

  // Places and positions come from the view's order, the board's as positions.ts orders it
  // (positionAt, locate: the same answers, without sorting a column per edit).
  const add = (column: string, title: string) => {
    const id = newCardId()
    const o = order()
    submit({ name: "addCard", args: { id, title, column, position: o.positionAt(column, o.column(column).length) } })
  }
  const move = (id: string, column: string, index: number) => {
    const o = order()
    const at = o.place(id)
    if (at === undefined || (at.column === column && at.index === index)) return
    submit({ name: "moveCard", args: { id, column, position: o.positionAt(column, index, id) } })
  }
  const who = (clientId: string) => {
    const present = [client.clientId, ...doc.presence.keys()]
    const name = clientId === client.clientId ? me.name : (asPresence(doc.presence.get(clientId))?.name ?? names.get(clientId) ?? `someone (${clientId.slice(0, 6)})`)
    return { name, colour: colourOf(clientId, present.includes(clientId) ? present : [...present, clientId]) }
  }
  const view = new BoardView(root, {
    add,
    move,
    rename: (id, title) => submit({ name: "renameCard", args: { id, title } }),
    remove: (id) => submit({ name: "deleteCard", args: { id } }),
    details: (id) => showDetails({ doc, who, me: client.clientId, openText: async (cardId) => {
      // Loaded on first use: the description brings Yjs, which the board's first render does not need.
      const { openDescription, bindDescription } = await import("./description.js")
      return { text: await openDescription(client, name, cardId), bind: bindDescription }
    }, priorities: appVersion() >= 2 }, id),
    priority: appVersion() >= 2 ? (id, priority) => submit({ name: "setPriority", args: { id, priority } }) : undefined,
    editing: (id) => {
      editing = id
      share()
    },
  }, () => toast("The card you were renaming was deleted by someone else.", "info"))
  // A drop shows where the card landed, even past the end of the page it was dropped on.
  enableDragAndDrop(root, (id, column, index) => {
    view.followCard(id)
    move(id, column, index)
  })

  /** Others present, each with a colour no one else present has. */
  const others = (): Map<string, Presence> => {
    const out = new Map<string, Presence>()
    const present = [client.clientId, ...doc.presence.keys()]
    let learned = false
    for (const [clientId, state] of doc.presence) {
      const p = asPresence(state)
      if (p === undefined || clientId === client.clientId) continue
      out.set(clientId, { ...p, colour: colourOf(clientId, present) })
      if (names.get(clientId) !== p.name) {
        // Last seen last: the oldest names go first when there are too many.
        names.delete(clientId)
        names.set(clientId, p.name)
        learned = true
      }
    }
    if (learned) rememberNames(localStorage, names)
    return out
  }

  /** Someone else's rename or move replaced one of yours (they were ordered after you): say so, once. */
  const noticeOverwrites = () => {
    const now = Date.now()
    for (const [id, m] of mine) {
      const card = doc.state.cards[id]
      if (now - m.at > RACE_MS || card === undefined) {
        mine.delete(id)
        continue
      }
      if ([...touched.values()].includes(id)) continue // an edit of yours is still on its way
      const current = m.kind === "rename" ? card.title : card.column
      if (current === m.value) continue
      mine.delete(id)
      toast(m.kind === "rename"
        ? `Someone renamed a card you had just renamed: "${card.title}" replaced your "${m.value}".`
        : `Someone moved a card you had just moved: it is in "${card.column}" now, not "${m.value}".`, "info")
    }
  }

  /**
   * The board's state changed (a command, a rebase, a snapshot): the view is a live object
   * whose identity never changes, so this count says which content a render drew, and a
   * render for presence alone does not order the cards again (BoardView.render). A change
   * that was only this page's own edits leaves it as it is: those cards were placed already.
   */
  let version = 0
  /** The version the view's order was last brought up to. */
  let ordered: number | undefined
  const own = new OwnChanges(doc)
  /** The view's order, brought up to the document first if a change is not in it yet (one was drawn before the input that asks, so rarely). */
  const order = () => {
    if (ordered !== version) {
      own.mark()
      view.sync(doc.state, version)
      ordered = version
    }
    return view.order
  }
  let closed = false
  let frame: number | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  /**
   * Draws now what was scheduled (nothing if nothing was). Every trigger (a change, a
   * presence, a rename of yourself) schedules; the draw comes at the next animation frame,
   * so a stream of them (a peer's presence at 20 Hz, a crowd of peers) costs at most one
   * render a frame, never one each.
   */
  /** Drops the draw that was scheduled; false if none was. */
  const unschedule = (): boolean => {
    if (frame === undefined && timer === undefined) return false
    if (frame !== undefined) cancelAnimationFrame(frame)
    if (timer !== undefined) clearTimeout(timer)
    frame = timer = undefined
    return true
  }
  const draw = () => {
    if (unschedule() && !closed) render()
  }
  const schedule = () => {
    if (closed) return
    if (document.visibilityState === "hidden") timer ??= setTimeout(draw, HIDDEN_DRAW_MS)
    else frame ??= requestAnimationFrame(draw)
  }
  /** Hidden or shown with a draw due: the way it comes must suit the tab as it is now. */
  const visibility = () => {
    if (frame !== undefined || timer !== undefined) schedule()
  }
  document.addEventListener("visibilitychange", visibility)
  for (const type of INPUT_EVENTS) root.addEventListener(type, draw, true)

  const render = () => {
    const people = others()
    const editors = new Map<string, Editor>()
    for (const p of people.values()) if (p.editing !== null) editors.set(p.editing, p)
    const pending = new Set<string>()
    const live = new Set(doc.pending.map((p) => p.clientSeq))
    let dropped = false
    for (const [clientSeq, cardId] of touched) {
      if (live.has(clientSeq)) pending.add(cardId)
      else dropped = touched.delete(clientSeq)
    }
    if (dropped) touchedKey.save(touched)
    order()
    view.render(doc.state, editors, pending, who, version)
    ui.people.render({ ...me, colour: colourOf(client.clientId, [client.clientId, ...doc.presence.keys()]) }, people)
    ui.status.setPending(doc.pendingCount)
    noticeOverwrites()
  }

  const stops = [
    doc.subscribe(() => {
      if (!own.ownOnly()) version++
      schedule()
    }),
    () => own.close(),
    doc.on("presence", schedule),
    doc.on("rejected", ({ command, rejection }) => toast(friendly(command, rejection.message))),
    // An older app than the board's: read-only from here; its changes wait for the new version.
    doc.on("updateRequired", () => {
      ui.status.setUpdateRequired(true)
      showUpdateRequired(doc.pendingCount)
    }),
    doc.on("error", ({ code, message }) => code === "update-required" || toast(message)),
    doc.on("snapshot", ({ received, size }) => showSnapshotProgress(received, size)),
  ]
  share()
  render()
  ui.status.setUpdateRequired(doc.updateRequired !== undefined)
  if (doc.updateRequired !== undefined) showUpdateRequired(doc.pendingCount)
  else hideUpdateRequired()

  return {
    name,
    doc,
    history,
    who,
    setIdentity: (identity) => {
      me = identity
      share()
      schedule()
    },
    close: async () => {
      for (const stop of stops) stop()
      closed = true
      unschedule()
      document.removeEventListener("visibilitychange", visibility)
      hideUpdateRequired()
      await doc.close()
    },
  }
}

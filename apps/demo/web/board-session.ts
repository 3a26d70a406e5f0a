/**
 * One open board: the Canon document behind it, its views, and every edit as a command.
 * Edits apply at once (optimistic); a command the hub rejects (say, moving a card someone
 * just deleted) is rolled back by Canon and explained in a toast.
 */
import { CommandRejected, type CanonClient, type Doc } from "../../../core/index.js"
import { Board } from "../board.js"
import { BoardView, type Editor } from "./board-view.js"
import { enableDragAndDrop } from "./dnd.js"
import { asPresence, type Identity, type Presence } from "./identity.js"
import type { PeopleView } from "./people-view.js"
import { cardsIn, locate, positionAt } from "./positions.js"
import type { StatusView } from "./status-view.js"
import { toast } from "./toast.js"

export interface BoardSession {
  readonly name: string
  readonly doc: Doc<typeof Board>
  setIdentity(identity: Identity): void
  close(): Promise<void>
}

const VERBS: Record<string, string> = {
  addCard: "add the card",
  renameCard: "rename the card",
  moveCard: "move the card",
  deleteCard: "delete the card",
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

export const openBoard = async (client: CanonClient, name: string, identity: Identity, ui: { status: StatusView; people: PeopleView }): Promise<BoardSession> => {
  const doc = await client.open(Board, docIdOf(name))
  // A fresh element per board: its listeners go with it.
  const old = document.getElementById("board")!
  const root = old.cloneNode(false) as HTMLElement
  old.replaceWith(root)

  let me = identity
  let editing: string | null = null
  /** Which card each unconfirmed command of this page touches (for the "not synced" dot). */
  const touched = new Map<number, string>()

  const share = () => doc.setPresence({ name: me.name, colour: me.colour, editing })

  const submit = <K extends "addCard" | "renameCard" | "moveCard" | "deleteCard">(command: K, args: Parameters<typeof doc.submit<K>>[1], cardId: string) => {
    const receipt = doc.submit(command, args)
    if (receipt.clientSeq >= 0) touched.set(receipt.clientSeq, cardId)
    receipt.catch((e: unknown) => {
      // Refused before sending (invalid arguments); the hub's rejections come as events.
      if (e instanceof CommandRejected && e.clientSeq === -1) toast(friendly(command, e.message))
    })
  }

  const add = (column: string, title: string) => {
    const id = newCardId()
    submit("addCard", { id, title, column, position: positionAt(doc.state, column, cardsIn(doc.state, column).length) }, id)
  }
  const move = (id: string, column: string, index: number) => {
    const at = locate(doc.state, id)
    if (at === undefined || (at.column === column && at.index === index)) return
    submit("moveCard", { id, column, position: positionAt(doc.state, column, index, id) }, id)
  }
  const view = new BoardView(root, {
    add,
    move,
    rename: (id, title) => submit("renameCard", { id, title }, id),
    remove: (id) => submit("deleteCard", { id }, id),
    editing: (id) => {
      editing = id
      share()
    },
  }, () => toast("The card you were renaming was deleted by someone else.", "info"))
  enableDragAndDrop(root, move)

  const others = (): Map<string, Presence> => {
    const out = new Map<string, Presence>()
    for (const [clientId, state] of doc.presence) {
      const p = asPresence(state)
      if (p !== undefined && clientId !== client.clientId) out.set(clientId, p)
    }
    return out
  }

  const render = () => {
    const people = others()
    const editors = new Map<string, Editor>()
    for (const p of people.values()) if (p.editing !== null) editors.set(p.editing, p)
    const pending = new Set<string>()
    const live = new Set(doc.pending.map((p) => p.clientSeq))
    for (const [clientSeq, cardId] of touched) {
      if (live.has(clientSeq)) pending.add(cardId)
      else touched.delete(clientSeq)
    }
    view.render(doc.state, editors, pending)
    ui.people.render(me, people)
    ui.status.setPending(doc.pendingCount)
  }

  const stops = [
    doc.subscribe(render),
    doc.on("presence", render),
    doc.on("rejected", ({ command, rejection }) => toast(friendly(command, rejection.message))),
    doc.on("error", ({ message }) => toast(message)),
  ]
  share()
  render()

  return {
    name,
    doc,
    setIdentity: (identity) => {
      me = identity
      share()
      render()
    },
    close: async () => {
      for (const stop of stops) stop()
      await doc.close()
    },
  }
}

/**
 * Undo and redo of your own edits, as commands: undoing submits the inverse command
 * (rename back, move back, delete what you added, add back what you deleted), so an undo is
 * an edit like any other: ordered by the hub, seen by everyone, itself undoable. An undo
 * that no longer applies (someone deleted the card) is rejected like any command.
 */
import type { BoardState } from "../board.js"

export type Edit =
  | { readonly name: "addCard"; readonly args: { id: string; title: string; column: string; position: number } }
  | { readonly name: "renameCard"; readonly args: { id: string; title: string } }
  | { readonly name: "moveCard"; readonly args: { id: string; column: string; position: number } }
  | { readonly name: "deleteCard"; readonly args: { id: string } }
  | { readonly name: "setPriority"; readonly args: { id: string; priority: number } }

/** The edit that takes `edit` back, given the state just before it; undefined if there is none. */
export const inverseOf = (state: BoardState, edit: Edit): Edit | undefined => {
  const card = state.cards[edit.args.id]
  switch (edit.name) {
    case "addCard":
      return { name: "deleteCard", args: { id: edit.args.id } }
    case "renameCard":
      return card && { name: "renameCard", args: { id: edit.args.id, title: card.title } }
    case "moveCard":
      return card && { name: "moveCard", args: { id: edit.args.id, column: card.column, position: card.position } }
    case "deleteCard":
      return card && { name: "addCard", args: { id: edit.args.id, title: card.title, column: card.column, position: card.position } }
    case "setPriority":
      return card && { name: "setPriority", args: { id: edit.args.id, priority: card.priority ?? 0 } }
  }
}

interface Step {
  readonly edit: Edit
  readonly inverse: Edit
}

export class History {
  private readonly done: Step[] = []
  private readonly undone: Step[] = []

  constructor(private readonly submit: (edit: Edit) => void, private readonly changed: () => void = () => {}) {}

  /** A new edit of yours (made by hand): undoable; clears what could be redone. */
  record(state: BoardState, edit: Edit): void {
    const inverse = inverseOf(state, edit)
    if (inverse === undefined) return
    this.done.push({ edit, inverse })
    if (this.done.length > 100) this.done.shift()
    this.undone.length = 0
    this.changed()
  }

  get canUndo(): boolean {
    return this.done.length > 0
  }

  get canRedo(): boolean {
    return this.undone.length > 0
  }

  undo(): Edit | undefined {
    const step = this.done.pop()
    if (step === undefined) return undefined
    this.undone.push(step)
    this.submit(step.inverse)
    this.changed()
    return step.inverse
  }

  redo(): Edit | undefined {
    const step = this.undone.pop()
    if (step === undefined) return undefined
    this.done.push(step)
    this.submit(step.edit)
    this.changed()
    return step.edit
  }
}

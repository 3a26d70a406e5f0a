/**
 * Drag and drop of cards (HTML5 drag events): a line shows where the card will land; the
 * drop becomes one moveCard command. Buttons and keys do the same without a mouse.
 */
export type DropHandler = (id: string, column: string, index: number) => void

const MIME = "application/x-canon-card"

export const enableDragAndDrop = (root: HTMLElement, onDrop: DropHandler): void => {
  let dragging: string | undefined

  const clear = () => {
    for (const el of root.querySelectorAll(".drop-before, .drop-end, .dragging")) el.classList.remove("drop-before", "drop-end", "dragging")
  }

  /**
   * The list under the pointer and the index among its cards (the dragged one excluded); a
   * long column shows a window of its cards: `start`, the column's index of the list's first.
   */
  const target = (e: DragEvent): { list: HTMLElement; column: string; index: number; start: number; others: HTMLElement[] } | undefined => {
    const column = (e.target as Element).closest<HTMLElement>(".column")
    const list = column?.querySelector<HTMLElement>(".cards")
    if (column == null || list == null) return undefined
    const others = [...list.querySelectorAll<HTMLElement>(":scope > .card")].filter((el) => el.dataset.id !== dragging)
    let index = others.findIndex((el) => {
      const r = el.getBoundingClientRect()
      return e.clientY < r.top + r.height / 2
    })
    if (index < 0) index = others.length
    return { list, column: column.dataset.column!, index, start: Number(list.dataset.start ?? 0), others }
  }

  root.addEventListener("dragstart", (e) => {
    const card = (e.target as Element).closest<HTMLElement>(".card")
    if (card === null || !card.draggable || e.dataTransfer === null) return
    dragging = card.dataset.id
    e.dataTransfer.effectAllowed = "move"
    e.dataTransfer.setData(MIME, dragging!)
    e.dataTransfer.setData("text/plain", card.querySelector(".card-title")?.textContent ?? "")
    // After the browser took its drag image.
    setTimeout(() => card.classList.add("dragging"), 0)
  })

  root.addEventListener("dragover", (e) => {
    if (dragging === undefined) return
    const t = target(e)
    if (t === undefined) return
    e.preventDefault()
    if (e.dataTransfer !== null) e.dataTransfer.dropEffect = "move"
    for (const el of root.querySelectorAll(".drop-before, .drop-end")) el.classList.remove("drop-before", "drop-end")
    if (t.index < t.others.length) t.others[t.index]!.classList.add("drop-before")
    else t.list.classList.add("drop-end")
  })

  root.addEventListener("drop", (e) => {
    const id = dragging ?? e.dataTransfer?.getData(MIME)
    const t = target(e)
    clear()
    dragging = undefined
    if (id === undefined || id === "" || t === undefined) return
    e.preventDefault()
    onDrop(id, t.column, t.start + t.index)
  })

  root.addEventListener("dragend", () => {
    dragging = undefined
    clear()
  })
}

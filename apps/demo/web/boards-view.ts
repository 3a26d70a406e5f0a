/**
 * The board tabs: boards visited on this device (kept in localStorage), the current one
 * highlighted, and "+ New board". A board is a Canon document chosen by the URL: `/#board=team`.
 */
import { h } from "./dom.js"

const KEY = "canon-demo-boards"
const MAX = 8
export const DEFAULT_BOARD = "team"

/** A board name as it may appear in a URL and a docId: lower case letters, digits, dashes. */
export const cleanBoardName = (raw: string): string =>
  raw.trim().toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40)

export const boardFromHash = (): string => {
  const m = /(?:^#|&)board=([^&]*)/.exec(location.hash)
  let raw = ""
  try {
    raw = m ? decodeURIComponent(m[1]!) : ""
  } catch {
    raw = m?.[1] ?? ""
  }
  return cleanBoardName(raw) || DEFAULT_BOARD
}

const recent = (): string[] => {
  try {
    const list: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]")
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === "string" && cleanBoardName(x) === x && x !== "") : []
  } catch {
    return []
  }
}

const remember = (board: string): string[] => {
  const list = [board, ...recent().filter((b) => b !== board)].slice(0, MAX)
  try {
    localStorage.setItem(KEY, JSON.stringify(list))
  } catch {
    // not kept: fine
  }
  return list
}

export const renderBoards = (el: HTMLElement, current: string): void => {
  const list = remember(current)
  const tabs = [...list].sort().map((b) => h("a", { href: `#board=${b}`, "aria-current": b === current ? "page" : undefined }, b))
  const add = h("button", { type: "button", title: "Open or create a board" }, "+ New board")
  add.addEventListener("click", () => {
    const input = h("input", { placeholder: "board name", maxlength: "40", "aria-label": "Board name" })
    const form = h("form", {}, input)
    form.addEventListener("submit", (e) => {
      e.preventDefault()
      const name = cleanBoardName(input.value)
      if (name !== "") location.hash = `board=${name}`
    })
    input.addEventListener("keydown", (e) => e.key === "Escape" && renderBoards(el, current))
    input.addEventListener("blur", () => setTimeout(() => form.isConnected && renderBoards(el, current), 150))
    add.replaceWith(form)
    input.focus()
  })
  el.replaceChildren(...tabs, add)
}

/** Short messages at the bottom of the window: rejections, errors, notes. */
import { h, slot } from "./dom.js"

const SHOW_MS = 6000
const MAX = 3

export const toast = (message: string, kind: "error" | "info" = "error"): void => {
  const box = slot("toasts")
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("p", {}, message),
    h("button", { "aria-label": "Dismiss", onclick: () => el.remove() }, "×"),
  )
  box.append(el)
  while (box.children.length > MAX) box.firstElementChild?.remove()
  setTimeout(() => el.remove(), SHOW_MS)
}

/** A tiny element builder: `h("button", { class: "x", onclick }, "Label")`. */
type Child = Node | string | null | undefined | false

export const h = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: Child[]): HTMLElementTagNameMap[K] => {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key === "class") el.className = String(value)
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value as EventListener)
    else if (key === "dataset") Object.assign(el.dataset, value)
    else if (key === "style") el.setAttribute("style", String(value))
    else el.setAttribute(key, value === true ? "" : String(value))
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child)
  return el
}

/** The element with this id (the page's fixed slots). */
export const slot = (id: string): HTMLElement => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`The page has no #${id}.`)
  return el
}

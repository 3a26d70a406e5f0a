/**
 * "Update required": this tab runs an older version of the board (`?v=1`) and the board has
 * a change it cannot show (a priority). The board is read-only here; the changes not yet
 * confirmed stay in this device's outbox, and the new version sends them after the reload
 * (applied once: the hub knows them by their numbers).
 */
import { h } from "./dom.js"
import { currentVersionUrl } from "./version.js"

const changes = (n: number): string => (n === 1 ? "your 1 change is kept" : `your ${n} changes are kept`)

export const hideUpdateRequired = (): void => {
  document.getElementById("update-required")?.remove()
  delete document.body.dataset.updateRequired
}

export const showUpdateRequired = (pending: number): void => {
  document.getElementById("update-required")?.remove()
  document.body.dataset.updateRequired = "true"
  const banner = h("div", { id: "update-required", class: "update-required", role: "alert" },
    h("p", {},
      h("strong", {}, "Update required: "),
      `${changes(pending)}. This board has changes this version of the app cannot show, so it is read-only here. Reload into the new version to see them and send yours.`,
    ),
    h("button", { type: "button", "data-testid": "update-reload", onclick: () => location.assign(currentVersionUrl()) }, "Reload with the new version"),
  )
  document.body.prepend(banner)
}

/**
 * The connection pill, always visible: online / offline / reconnecting, and how many local
 * changes the hub has not confirmed yet. `data-state` and `data-pending` carry the same for
 * tests and styles.
 */
import type { ClientStatus } from "../../../core/index.js"

export type Shown = "online" | "offline" | "reconnecting" | "connecting" | "refused" | "update-required"

export class StatusView {
  private status: ClientStatus = "connecting"
  private pending = 0
  private everOnline = false
  private refusal = ""
  /** Offline on purpose (the devtools' switch): not "reconnecting". */
  private chosenOffline = false
  /** This app's version cannot show the board any more (a v1 tab): read-only, changes kept. */
  private updateRequired = false

  constructor(private readonly el: HTMLElement) {}

  setStatus(status: ClientStatus, refusal = ""): void {
    this.status = status
    this.refusal = refusal
    if (status === "online") this.everOnline = true
    this.render()
  }

  setChosenOffline(offline: boolean): void {
    this.chosenOffline = offline
    this.render()
  }

  setUpdateRequired(required: boolean): void {
    if (required === this.updateRequired) return
    this.updateRequired = required
    this.render()
  }

  setPending(n: number): void {
    if (n === this.pending) return
    this.pending = n
    this.render()
  }

  render(): void {
    const shown = this.shown()
    const n = this.pending
    const changes = `${n} change${n === 1 ? "" : "s"}`
    const label: Record<Shown, string> = {
      online: n === 0 ? "Online · all changes synced" : `Online · syncing ${changes}`,
      offline: n === 0 ? "Offline · edits are kept on this device" : `Offline · ${changes} not yet synced`,
      reconnecting: n === 0 ? "Reconnecting…" : `Reconnecting… · ${changes} not yet synced`,
      connecting: "Connecting…",
      refused: `Not syncing: ${this.refusal || "the hub refused this app"}`,
      "update-required": n === 0 ? "Update required · read-only" : `Update required · ${changes} kept on this device`,
    }
    this.el.dataset.state = shown
    this.el.dataset.pending = String(n)
    this.el.title = shown === "offline" ? "No network: keep working, your changes sync when you are back online." : ""
    const text = this.el.querySelector(".status-text")
    if (text !== null) text.textContent = label[shown]
    // Retrying is automatic (at most 2 s apart); the link skips the wait, or retries a refusal.
    const retry = document.getElementById("retry")
    if (retry !== null) retry.hidden = !(shown === "reconnecting" || shown === "refused")
  }

  private shown(): Shown {
    if (this.status === "refused") return "refused"
    if (this.updateRequired) return "update-required"
    if (this.status === "online") return "online"
    if (!navigator.onLine || this.status === "closed" || this.chosenOffline) return "offline"
    return this.everOnline ? "reconnecting" : this.status === "connecting" ? "connecting" : "reconnecting"
  }
}

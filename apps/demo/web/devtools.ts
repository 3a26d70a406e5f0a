/**
 * The devtools drawer: what Canon is doing under the board. The document's log as the hub
 * holds it (seq, time, who, command, arguments), this page's outbox (pending commands, and a
 * line each time a rebase replays them over someone else's entries), checkpoints with their
 * state hashes and a "verify" against this replica, the versions in use, snapshot progress,
 * and the network controls (offline switch, added latency each way).
 */
import type { CanonClient, Doc } from "../../../core/index.js"
import type { Board } from "../board.js"
import { h, slot } from "./dom.js"
import type { NetworkShaper } from "./net-shaper.js"

export interface LogEntry {
  readonly seq: number
  readonly time: number
  readonly clientId: string
  readonly name: string
  readonly args: { readonly id?: string; readonly title?: string; readonly column?: string }
}

export interface LogView {
  readonly head: { readonly seq: number; readonly machine: string; readonly version: number } | null
  /** Entries at or below this seq were compacted into a snapshot. */
  readonly compactedThrough?: number
  readonly entries: ReadonlyArray<LogEntry>
  readonly checkpoints: ReadonlyArray<{ readonly seq: number; readonly hash: string }>
  readonly hub?: { readonly seq: number; readonly hash: string }
}

export const fetchLog = async (docId: string, limit = 200): Promise<LogView> => {
  const res = await fetch(`/api/log?doc=${encodeURIComponent(docId)}&limit=${limit}`, { cache: "no-store" })
  if (!res.ok) throw new Error(`The hub answered ${res.status}.`)
  return (await res.json()) as LogView
}

const clock = (t: number): string => new Date(t).toLocaleTimeString([], { hour12: false })

export interface DevtoolsContext {
  readonly client: CanonClient
  readonly shaper: NetworkShaper
  /** A person's name and colour for a clientId, as the board knows it. */
  readonly who: (clientId: string) => { readonly name: string; readonly colour: string }
  /** The offline switch was flipped. */
  readonly offline?: (offline: boolean) => void
  /** "Load 20,000 cards": fills a new board. */
  readonly loadMany?: () => void
}

export class Devtools {
  private doc: Doc<typeof Board> | undefined
  private readonly outboxEl = h("ol", { class: "dt-outbox", "data-testid": "outbox" })
  private readonly eventsEl = h("ol", { class: "dt-events", "data-testid": "events" })
  private readonly logEl = h("tbody", {})
  private readonly checkpointsEl = h("ol", { class: "dt-checkpoints" })
  private readonly versionsEl = h("p", { class: "dt-versions" })
  private readonly snapshotEl = h("progress", { class: "dt-snapshot", max: "1", value: "0", hidden: true })
  private readonly latencyLabel = h("output", {}, "0 ms")
  private refreshTimer: ReturnType<typeof setTimeout> | undefined
  private stops: Array<() => void> = []
  private lastSeq = 0
  private lastPending = 0
  readonly el: HTMLElement

  constructor(private readonly ctx: DevtoolsContext) {
    const offline = h("input", { type: "checkbox", "data-testid": "offline" })
    offline.addEventListener("change", () => {
      ctx.offline?.(offline.checked)
      if (offline.checked) ctx.client.disconnect()
      else ctx.client.connect()
    })
    const latency = h("input", { type: "range", min: "0", max: "2000", step: "100", value: "0", "data-testid": "latency", "aria-label": "Added latency each way" })
    latency.addEventListener("input", () => {
      ctx.shaper.latencyMs = Number(latency.value)
      this.latencyLabel.textContent = `${latency.value} ms`
    })
    this.el = h("aside", { class: "devtools", id: "devtools", hidden: true, "aria-label": "Devtools" },
      h("header", {}, h("h2", {}, "Under the hood"), h("button", { type: "button", class: "dt-close", "aria-label": "Close devtools", onclick: () => this.toggle(false) }, "×")),
      h("section", {}, h("h3", {}, "Network"),
        h("label", { class: "dt-row" }, offline, " Offline (edits wait in the outbox)"),
        h("label", { class: "dt-row" }, "Latency each way ", latency, this.latencyLabel),
        this.versionsEl),
      h("section", {}, h("h3", {}, "Outbox (this page, not yet confirmed)"), this.outboxEl, h("h3", {}, "What the replica did"), this.eventsEl),
      h("section", {}, h("h3", {}, "Snapshot"),
        h("p", { class: "muted dt-snapshot-note" }, "A page that joins a long board gets its state as a streamed snapshot; progress shows here. Fill a new board, then open it in another window:"),
        h("button", { type: "button", "data-testid": "load-many", onclick: () => ctx.loadMany?.() }, "Load 20,000 cards into a new board"),
        this.snapshotEl),
      h("section", {}, h("h3", {}, "Log (the hub's order)"), h("table", { class: "dt-log", "data-testid": "log" }, h("thead", {}, h("tr", {}, h("th", {}, "seq"), h("th", {}, "time"), h("th", {}, "who"), h("th", {}, "command"), h("th", {}, "args"))), this.logEl)),
      h("section", {}, h("h3", {}, "Checkpoints"), this.checkpointsEl),
    )
    ctx.client.onStatus(() => this.renderVersions())
  }

  get open(): boolean {
    return !this.el.hidden
  }

  toggle(open = !this.open): void {
    this.el.hidden = !open
    slot("devtools-toggle").setAttribute("aria-expanded", String(open))
    if (open) this.refresh()
  }

  /** Follows a (new) board's document. */
  attach(doc: Doc<typeof Board>): void {
    for (const stop of this.stops) stop()
    this.doc = doc
    this.lastSeq = doc.confirmedSeq
    this.lastPending = doc.pendingCount
    this.eventsEl.replaceChildren()
    this.stops = [
      doc.subscribe(() => this.changed()),
      doc.on("confirmed", ({ clientSeq, command, seq }) => this.event(`#${clientSeq} ${command} confirmed at seq ${seq}`)),
      doc.on("rejected", ({ clientSeq, command, rejection }) => this.event(`#${clientSeq} ${command} rejected: ${rejection.message}`, "bad")),
      doc.on("resent", ({ clientSeq, command }) => this.event(`#${clientSeq} ${command} refused for needing a refused change; what it carried goes again`)),
      doc.on("desync", () => this.event("checkpoint hash differs: resyncing from the hub", "bad")),
      doc.on("updateRequired", ({ seq }) => this.event(`update required: the hub's entry at seq ${seq} has no form for v${doc.machine.version}; read-only, ${doc.pendingCount} pending kept`, "bad")),
      doc.on("snapshot", ({ seq, received, size }) => {
        this.snapshotEl.hidden = false
        this.snapshotEl.max = size
        this.snapshotEl.value = received
        if (received === size) this.event(`snapshot at seq ${seq} installed (${Math.round(size / 1024)} KiB)`)
      }),
    ]
    this.changed()
  }

  private event(text: string, kind = ""): void {
    this.eventsEl.prepend(h("li", { class: kind }, `${clock(Date.now())} ${text}`))
    while (this.eventsEl.children.length > 30) this.eventsEl.lastElementChild!.remove()
  }

  private changed(): void {
    const doc = this.doc
    if (doc === undefined) return
    // Others' entries arrived under pending commands of ours: the replica undid them,
    // applied the hub's order and replayed them on top.
    if (doc.confirmedSeq > this.lastSeq && this.lastPending > 0 && doc.pendingCount > 0) {
      this.event(`rebase: ${doc.pendingCount} pending replayed over seq ${this.lastSeq + 1}..${doc.confirmedSeq}`, "rebase")
    }
    this.lastSeq = doc.confirmedSeq
    this.lastPending = doc.pendingCount
    this.outboxEl.replaceChildren(...doc.pending.map((p) => h("li", {}, `#${p.clientSeq} ${p.name}`)))
    if (this.outboxEl.children.length === 0) this.outboxEl.append(h("li", { class: "muted" }, "empty: everything is confirmed"))
    this.renderVersions()
    if (!this.open) return
    clearTimeout(this.refreshTimer)
    this.refreshTimer = setTimeout(() => this.refresh(), 250)
  }

  private renderVersions(): void {
    const doc = this.doc
    const c = this.ctx.client
    this.versionsEl.textContent = `${c.status} · protocol ${c.protocol ?? "-"} · machine ${doc?.machine.name ?? "-"} v${doc?.machine.version ?? "-"} (${doc?.machine.fingerprint.slice(0, 8) ?? ""}) · you are ${c.clientId.slice(0, 8)} · confirmed seq ${doc?.confirmedSeq ?? 0}`
  }

  async refresh(): Promise<void> {
    const doc = this.doc
    if (doc === undefined) return
    let log: LogView
    try {
      log = await fetchLog(doc.docId)
    } catch {
      this.logEl.replaceChildren(h("tr", {}, h("td", { colspan: "5", class: "muted" }, "The hub cannot be reached: the log shows when it can.")))
      return
    }
    const me = this.ctx.client.clientId
    this.logEl.replaceChildren(...[...log.entries].reverse().map((e) => {
      const who = this.ctx.who(e.clientId)
      return h("tr", { class: e.clientId === me ? "mine" : "", "data-seq": String(e.seq) },
        h("td", {}, String(e.seq)), h("td", {}, clock(e.time)),
        h("td", {}, h("span", { class: "dt-who", style: `--c:${who.colour}` }, e.clientId === me ? "you" : who.name)),
        h("td", {}, e.name), h("td", { class: "dt-args" }, JSON.stringify(e.args)))
    }))
    this.checkpointsEl.replaceChildren(...[...log.checkpoints].reverse().slice(0, 8).map((cp) => {
      const result = h("span", { class: "dt-verify" })
      const verify = h("button", { type: "button", onclick: () => (result.textContent = this.verify(cp)) }, "verify")
      return h("li", {}, `seq ${cp.seq} · ${cp.hash.slice(0, 16)}… `, verify, result)
    }))
    if (log.checkpoints.length === 0) this.checkpointsEl.replaceChildren(h("li", { class: "muted" }, "none yet (every 256 entries, and when the board goes quiet)"))
  }

  /** This replica's confirmed state hash against a checkpoint's, when they are at the same seq. */
  private verify(cp: { readonly seq: number; readonly hash: string }): string {
    const doc = this.doc
    if (doc === undefined) return ""
    if (doc.confirmedSeq !== cp.seq || doc.pendingCount > 0) return ` this replica is at seq ${doc.confirmedSeq}${doc.pendingCount > 0 ? " with pending edits" : ""}; it checked this checkpoint when it arrived`
    const mine = doc.confirmedHash()
    return mine === cp.hash ? " ✓ same state hash here" : ` ✗ differs here (${mine.slice(0, 16)}…)`
  }
}

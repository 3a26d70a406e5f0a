/**
 * A Canon replica of a whole Yjs document held by the hub: a Y.Doc kept in sync with the
 * hub's y-websocket endpoint over a reconnecting WebSocket link. Offline edits (and edits
 * received from peers over other links meanwhile) reach the hub on reconnect: both sides
 * exchange step1/step2 on every connect. For peers, attach more sessions to the same doc:
 * `new YSyncSession(doc, memoryOrWsOrBroadcastLink)`.
 *
 * @example
 * ```ts
 * const { doc, synced } = openYDoc("ws://127.0.0.1:8787/yjs", "notes", { token, WebSocket })
 * await synced
 * doc.getText("body").insert(0, "hi")
 * ```
 */
import * as Y from "yjs"
import { connectWsLink, type WebSocketConstructor, type WsLink } from "./ws-link.js"
import { YSyncSession, type YSyncOptions } from "./yjs-sync.js"

export interface OpenYDocOptions extends YSyncOptions {
  /** The Y.Doc to sync (default: a new one). */
  readonly doc?: Y.Doc
  /** Sent as the `token` query parameter (the hub's authenticate hook gets it as credentials). */
  readonly token?: string
  readonly WebSocket?: WebSocketConstructor
  /** Each close of the hub link (a refusal's code and reason included). */
  readonly onClose?: (code: number, reason: string) => void
}

export interface OpenedYDoc {
  readonly doc: Y.Doc
  readonly link: WsLink
  readonly session: YSyncSession
  /** Resolves once the hub's step2 arrived (the doc holds what the hub holds); rejects (`closed`) if closed first. */
  readonly synced: Promise<void>
  /** Stops syncing with the hub and closes the link (the doc stays). */
  close(): void
}

/** `endpoint` is the hub's y-websocket prefix URL (e.g. ws://host:8787/yjs). */
export const openYDoc = (endpoint: string, docId: string, options: OpenYDocOptions = {}): OpenedYDoc => {
  const doc = options.doc ?? new Y.Doc()
  const url = `${endpoint.replace(/\/+$/, "")}/${docId}${options.token !== undefined ? `?token=${encodeURIComponent(options.token)}` : ""}`
  const link = connectWsLink(url, {
    ...(options.WebSocket !== undefined ? { WebSocket: options.WebSocket } : {}),
    ...(options.onClose !== undefined ? { onClose: options.onClose } : {}),
  })
  const session = new YSyncSession(doc, link, options)
  return {
    doc, link, session,
    synced: session.whenSynced(),
    close() {
      session.destroy()
      link.close()
    },
  }
}

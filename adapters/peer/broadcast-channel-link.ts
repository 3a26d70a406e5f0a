/**
 * A PeerLink over a BroadcastChannel: tabs of one origin in a browser (in Node, threads of
 * one process). Every other member of the channel hears each message, so it is a link to
 * all of them at once; the sync protocols are idempotent, which makes that harmless.
 */
import { endedLink, type PeerLink, type PeerLinkListener } from "../../core/crdt-docs/peer-link.js"

export const broadcastChannelLink = (name: string): PeerLink => {
  const Ctor = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel
  if (Ctor === undefined) throw new TypeError("No BroadcastChannel in this environment.")
  const channel = new Ctor(name)
  const listeners = new Set<PeerLinkListener>()
  let open = true
  channel.onmessage = (ev: MessageEvent) => {
    const data = ev.data as unknown
    if (!(data instanceof Uint8Array)) return
    for (const l of listeners) l.message(data)
  }
  return {
    get isOpen() {
      return open
    },
    send(bytes) {
      if (open) channel.postMessage(bytes)
    },
    subscribe(listener) {
      if (!open) return endedLink(listener)
      // Open from the start: sessions check isOpen when they begin.
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      if (!open) return
      open = false
      channel.close()
      for (const l of listeners) l.close?.()
      for (const l of listeners) l.end?.()
      listeners.clear()
    },
  }
}

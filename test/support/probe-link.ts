/** A PeerLink that records what a replica sends and lets the test deliver messages to it, synchronously. */
import type { PeerLink, PeerLinkListener } from "../../core/crdt-docs/index.js"

export const probeLink = () => {
  const listeners = new Set<PeerLinkListener>()
  const sent: Uint8Array[] = []
  const link: PeerLink = {
    isOpen: true,
    send: (b) => { sent.push(b) },
    subscribe: (l) => { listeners.add(l); return () => listeners.delete(l) },
    close: () => {},
  }
  return { link, sent, deliver: (b: Uint8Array) => { for (const l of listeners) l.message(b) } }
}

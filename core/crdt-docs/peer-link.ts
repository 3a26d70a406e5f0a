/**
 * The PeerLink port: a bidirectional byte channel between two peers, with no authority
 * involved. CRDT sync sessions (adapters/peer: Yjs sync steps, Automerge sync messages) run
 * over it, replica to replica while the hub is unreachable, or replica to hub (a WebSocket
 * link to the hub's y-websocket endpoint).
 *
 * A link may go down and come back (a WebSocket reconnecting): `open` fires each time it is
 * usable again, and a session then re-runs its handshake. `send` while down drops the bytes:
 * the handshake on the next `open` sends what the other side lacks.
 *
 * @example
 * ```ts
 * const [a, b] = memoryLinkPair()
 * a.subscribe({ message: (bytes) => console.log(bytes) })
 * b.send(new Uint8Array([1, 2, 3]))
 * ```
 */
export interface PeerLinkListener {
  message(bytes: Uint8Array): void
  open?(): void
  close?(): void
  /**
   * The link is closed for good (after `close` if it was open): it never opens again and
   * drops its listeners. Sessions let go of what they hold for it here (an accepted socket
   * that closes ends its link; without this every connection left a session behind).
   */
  end?(): void
}

export interface PeerLink {
  /** Whether `send` currently delivers. */
  readonly isOpen: boolean
  /** Sends one message (dropped while the link is down). */
  send(bytes: Uint8Array): void
  /** Listens; returns the unsubscribe function. */
  subscribe(listener: PeerLinkListener): () => void
  /** Closes the link for good. */
  close(): void
}

/**
 * What `subscribe` does on a link that has ended: the listener hears `end` (on a later turn,
 * never inside `subscribe`) and nothing else, so a session made on it lets go at once.
 * Every link uses it (test/peer-link-conformance.ts).
 */
export const endedLink = (listener: PeerLinkListener): (() => void) => {
  queueMicrotask(() => listener.end?.())
  return () => {}
}

/** A link in memory: the other end receives each message in a later microtask (never inside `send`). */
export interface MemoryLink extends PeerLink {
  /** Takes the link down (`false`) or up (`true`), as a network partition would. */
  setConnected(up: boolean): void
}

export const memoryLinkPair = (): [MemoryLink, MemoryLink] => {
  let up = true
  let closed = false
  const listeners: [Set<PeerLinkListener>, Set<PeerLinkListener>] = [new Set(), new Set()]
  const end = (me: 0 | 1): MemoryLink => ({
    get isOpen() {
      return up && !closed
    },
    send(bytes) {
      if (!up || closed) return
      const copy = bytes.slice()
      queueMicrotask(() => {
        if (!up || closed) return
        for (const l of listeners[me === 0 ? 1 : 0]) l.message(copy)
      })
    },
    subscribe(listener) {
      if (closed) return endedLink(listener)
      listeners[me].add(listener)
      return () => listeners[me].delete(listener)
    },
    close() {
      if (closed) return
      closed = true
      for (const set of listeners) for (const l of set) l.close?.()
      for (const set of listeners) for (const l of set) l.end?.()
      for (const set of listeners) set.clear()
    },
    setConnected(next) {
      if (closed || next === up) return
      up = next
      queueMicrotask(() => {
        for (const set of listeners) for (const l of set) (up ? l.open : l.close)?.()
      })
    },
  })
  return [end(0), end(1)]
}

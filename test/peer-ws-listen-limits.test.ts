/**
 * listenWsLinks bounds the sockets it keeps open (adapters/peer/ws-listen.ts): each may hold a
 * message of up to 64 MiB partway, so an unbounded number was unbounded memory for whoever
 * could reach the port. One past the bound is closed with 1013 and never becomes a link; a
 * slot freed by a closed socket is taken again. Real sockets on 127.0.0.1.
 */
import { WebSocket } from "ws"
import { DEFAULT_MAX_CONNECTIONS, listenWsLinks } from "../adapters/peer/ws-listen.js"
import type { PeerLink } from "../core/crdt-docs/peer-link.js"

/** Opens a socket and resolves with how it ended up: "open", or the close code it was sent. */
const dial = (port: number): Promise<{ ws: WebSocket; outcome: Promise<number | "open"> }> =>
  new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    const outcome = new Promise<number | "open">((settle) => {
      ws.once("close", (code) => settle(code))
      // Open, and still open a moment later (a refused socket is closed right after opening).
      ws.once("open", () => setTimeout(() => ws.readyState === WebSocket.OPEN && settle("open"), 100))
    })
    ws.once("open", () => resolve({ ws, outcome }))
    ws.once("error", () => resolve({ ws, outcome }))
  })

test("one socket past maxConnections is closed with 1013 and is no link; a freed slot is taken again", async () => {
  const links: PeerLink[] = []
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0, maxConnections: 2 }, (link) => links.push(link))
  try {
    const a = await dial(listener.port)
    const b = await dial(listener.port)
    const c = await dial(listener.port)
    expect(await a.outcome).toBe("open")
    expect(await b.outcome).toBe("open")
    expect(await c.outcome).toBe(1013)
    expect(links.length).toBe(2)
    a.ws.close()
    await new Promise((r) => a.ws.once("close", r))
    await new Promise((r) => setTimeout(r, 50))
    const d = await dial(listener.port)
    expect(await d.outcome).toBe("open")
    expect(links.length).toBe(3)
    b.ws.close()
    d.ws.close()
  } finally {
    await listener.close()
  }
})

test(`by default ${DEFAULT_MAX_CONNECTIONS} sockets are kept and the next is refused`, async () => {
  let links = 0
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, () => links++)
  const sockets: WebSocket[] = []
  try {
    const outcomes: Array<number | "open"> = []
    for (let i = 0; i <= DEFAULT_MAX_CONNECTIONS; i++) {
      const s = await dial(listener.port)
      sockets.push(s.ws)
      outcomes.push(await s.outcome)
    }
    expect(outcomes.filter((o) => o === "open").length).toBe(DEFAULT_MAX_CONNECTIONS)
    expect(outcomes[DEFAULT_MAX_CONNECTIONS]).toBe(1013)
    expect(links).toBe(DEFAULT_MAX_CONNECTIONS)
  } finally {
    for (const s of sockets) s.terminate()
    await listener.close()
  }
}, 30_000)

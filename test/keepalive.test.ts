/**
 * Browser clients cannot see pings: the hub's keepalive frames keep a quiet but healthy link
 * open, and their absence (a hub that stopped answering) ends it with `timeout`.
 */
import { WebSocket, WebSocketServer } from "ws"
import { WsServer } from "../adapters/ws/index.js"
import { wsClientTransport, type BrowserWebSocketConstructor } from "../adapters/ws/client-browser.js"
import type { CloseInfo, ConnectionAcceptor, ServerMessage } from "../core/index.js"

const acceptor: ConnectionAcceptor = { accept: () => ({ onMessage: () => {}, onClose: () => {} }) }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test("a quiet hub's keepalives keep a browser client's link open past its idle timeout", async () => {
  const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 50, pongTimeoutMs: 1_000 })
  const messages: ServerMessage[] = []
  let closed: CloseInfo | undefined
  const conn = wsClientTransport(server.urls()[0]!, { idleTimeoutMs: 300, WebSocket: WebSocket as unknown as BrowserWebSocketConstructor })
    .connect({ onMessage: (m) => messages.push(m), onClose: (i) => { closed = i } })
  await sleep(1_000)
  expect(closed).toBeUndefined()
  expect(messages).toEqual([]) // keepalives are absorbed by the transport
  conn.close()
  await server.close()
})

test("a hub that goes silent is declared dead by the browser client's idle timer", async () => {
  // A raw server that accepts and then says nothing, as a half-open link looks from the page.
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise((r) => wss.once("listening", r))
  const port = (wss.address() as { port: number }).port
  let closed: CloseInfo | undefined
  wsClientTransport(`ws://127.0.0.1:${port}/`, { idleTimeoutMs: 200, WebSocket: WebSocket as unknown as BrowserWebSocketConstructor })
    .connect({ onMessage: () => {}, onClose: (i) => { closed = i } })
  const end = Date.now() + 3_000
  while (closed === undefined && Date.now() < end) await sleep(20)
  expect(closed?.code).toBe("timeout")
  for (const c of wss.clients) c.terminate()
  await new Promise((r) => wss.close(r))
})

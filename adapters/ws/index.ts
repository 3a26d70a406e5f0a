/**
 * The WebSocket transport, Node side: the server (on `ws`) and the Node client (on `ws`).
 * Browsers import `canon/ws/browser` (client-browser.ts) instead: same client interface, on
 * the global WebSocket, no Node modules.
 */
export {
  WsServer, DEFAULT_PING_INTERVAL_MS, DEFAULT_PONG_TIMEOUT_MS, DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_REQUEST_TIMEOUT_MS, requestDeadlines,
  type WsServerOptions, type WsServerEvent, type WsConnectionInfo, type ListenAddress, type BoundAddress, type WsRoute,
} from "./server.js"
export { closeUpgradesUntilReady, STARTING_CLOSE } from "./starting.js"
export { boundPipelining, MAX_PIPELINED_REQUESTS } from "./pipelining.js"
export { SocketCap, socketCapFor, type SocketCapOptions } from "./socket-cap.js"
export { DEFAULT_MAX_UNSENT_BYTES, MIN_MAX_UNSENT_BYTES } from "./unsent-budget.js"
export { normalizeAddress, proxyTrust, type TrustProxy } from "./remote-address.js"
export { wsClientTransport, type NodeWsClientOptions } from "./client-node.js"
export {
  WS_CLOSE_CODES, WS_CLOSE_OTHER, toWsClose, fromWsClose, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS,
  type WsClientOptions,
} from "./shared.js"

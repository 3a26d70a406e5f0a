/**
 * Automerge documents on the hub (Node side): the engine of whole Automerge documents and the
 * automerge-repo WebSocket endpoint. Browser code never imports this entry.
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines, storage, runtime: systemRuntime, crdt: { engines: [automergeDocEngine()] } })
 * const server = await WsServer.start(hub, { listen, routes: [automergeRoute(hub.crdtDocs)] })
 * // a stock client: new Repo({ network: [new WebSocketClientAdapter("ws://127.0.0.1:8787/automerge")] })
 * ```
 */
export { automergeDocEngine, DEFAULT_MAX_DOC_CHANGES, DEFAULT_MAX_DOC_OPS, DEFAULT_MAX_HOST_OPS, type AutomergeBox, type AutomergeEngineOptions } from "./engine.js"
export { automergeRoute, type AutomergeRoute, type AutomergeRouteOptions } from "./endpoint.js"
export { decodeRepoMessage, encodeRepoMessage, PROTOCOL_VERSION, type RepoMessage } from "./protocol.js"

/**
 * Yjs documents on the hub (Node side): the engine of whole Yjs documents and the
 * y-websocket endpoint. Browser code never imports this entry.
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines, storage, runtime: systemRuntime, crdt: { engines: [yjsDocEngine()] } })
 * const server = await WsServer.start(hub, { listen, routes: [yjsRoute(hub.crdtDocs)] })
 * // a stock client: new WebsocketProvider("ws://127.0.0.1:8787/yjs", "my-room", ydoc)
 * ```
 */
export { yjsDocEngine, newHubYDoc, missingDependency, DEFAULT_MAX_DOC_STRUCTS, DEFAULT_MAX_HOST_STRUCTS, MAX_YJS_CLOCK, type YjsEngineOptions } from "./engine.js"
export {
  yjsRoute, MAX_AWARENESS_STATES_PER_ROOM, MAX_AWARENESS_BYTES_PER_ROOM, MAX_AWARENESS_STATES_PER_SOCKET, type YjsRoute, type YjsRouteOptions,
} from "./endpoint.js"
export * from "./protocol.js"

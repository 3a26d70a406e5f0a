/**
 * Peer-to-peer CRDT sync without the authority (and replica-to-hub links for whole CRDT
 * documents): PeerLinks (memory: `memoryLinkPair` from core; WebSocket: `connectWsLink` /
 * `listenWsLinks`; BroadcastChannel) and the sync sessions that run over them.
 */
export { memoryLinkPair, type PeerLink, type PeerLinkListener, type MemoryLink } from "../../core/crdt-docs/peer-link.js"
export { connectWsLink, type WsLink, type WsLinkOptions, type WebSocketConstructor, type WebSocketLike } from "./ws-link.js"
export { broadcastChannelLink } from "./broadcast-channel-link.js"
export { YSyncSession, type YSyncOptions } from "./yjs-sync.js"
export { AutomergeReplica, type AutomergeSyncOptions } from "./automerge-sync.js"
export { openYDoc, type OpenYDocOptions, type OpenedYDoc } from "./open-ydoc.js"

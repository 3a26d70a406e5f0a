/**
 * Every PeerLink adapter passes the one conformance suite (test/peer-link-conformance.ts):
 * memory pairs, BroadcastChannel (Node's, between two channels of one name), and WebSocket
 * (connectWsLink to listenWsLinks on 127.0.0.1).
 */
import { WebSocket } from "ws"
import { memoryLinkPair, type PeerLink } from "../core/crdt-docs/peer-link.js"
import { broadcastChannelLink, connectWsLink } from "../adapters/peer/index.js"
import { listenWsLinks, type PeerListener } from "../adapters/peer/ws-listen.js"
import { peerLinkConformance } from "./peer-link-conformance.js"
import { until } from "./support/ws.js"

peerLinkConformance("memory", () => ({
  pair: async () => memoryLinkPair(),
  dispose: async () => {},
}))

let channels = 0
peerLinkConformance("BroadcastChannel", () => {
  const opened: PeerLink[] = []
  return {
    pair: async () => {
      const name = `canon-conformance-${process.pid}-${channels++}`
      const pair = [broadcastChannelLink(name), broadcastChannelLink(name)] as const
      opened.push(...pair)
      return pair
    },
    dispose: async () => {
      for (const l of opened) l.close()
    },
  }
})

peerLinkConformance("WebSocket (connectWsLink to listenWsLinks)", () => {
  const opened: PeerLink[] = []
  let listener: PeerListener | undefined
  return {
    pair: async () => {
      let accepted: PeerLink | undefined
      listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => (accepted = link))
      const client = connectWsLink(`ws://127.0.0.1:${listener.port}/`, { WebSocket, reconnect: false })
      opened.push(client)
      if (!(await until(() => client.isOpen && accepted !== undefined, 5_000))) throw new Error("the WebSocket link did not open")
      opened.push(accepted!)
      return [client, accepted!] as const
    },
    dispose: async () => {
      for (const l of opened) l.close()
      await listener?.close()
    },
  }
})

/**
 * A client whose "hub" is the test: a transport that hands every frame the client sends to
 * `sent` (and each close to `closes`), and `deliver`, the hub's message arriving (what a
 * transport's onMessage does). The tests of what a client does with what a hub (honest,
 * broken or hostile) sends start here.
 */
import { CanonClient, type ClientMessage, type ConnectionListener, type Machine, type ServerMessage } from "../../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"

export const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

/** The transport alone (the test opens the client and welcomes it). */
export const scriptedTransport = () => {
  let listener: ConnectionListener<ServerMessage> | undefined
  const sent: ClientMessage[] = []
  const closes: string[] = []
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      listener = l
      queueMicrotask(() => l.onOpen?.())
      return { send: (m: ClientMessage) => void sent.push(m), close: (code?: string) => void closes.push(code ?? "closed"), bufferedAmount: 0 }
    },
  }
  return { transport, sent, closes, deliver: (m: ServerMessage) => listener!.onMessage(m) }
}

/** A client on a scripted transport, welcomed at protocol 1 under `clientId`. */
export async function scriptedHub(machines: ReadonlyArray<Machine<any, any>>, clientId = "c1") {
  const hub = scriptedTransport()
  const runtime = new VirtualRuntime(1)
  const client = await CanonClient.open({ transport: hub.transport, runtime, storage: new MemoryStorage(), clientId, machines })
  await flush()
  hub.deliver({ type: "welcome", protocol: 1, clientId })
  return { ...hub, client, runtime }
}

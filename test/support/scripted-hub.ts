/**
 * A CanonClient whose "hub" is the test: its transport hands every frame the client sends to
 * `sent`, and `deliver` is the hub's message arriving (what a transport's onMessage does).
 * Welcomed at protocol 1 under `clientId`; the tests of what a client does with what a hub
 * (honest, broken or hostile) sends start here.
 */
import { CanonClient, type ClientMessage, type ConnectionListener, type Machine, type ServerMessage } from "../../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../../adapters/memory/index.js"

export const flush = (): Promise<void> => new Promise((r) => setImmediate(r))

export async function scriptedHub(machines: ReadonlyArray<Machine<any, any>>, clientId = "c1") {
  let listener: ConnectionListener<ServerMessage> | undefined
  const sent: ClientMessage[] = []
  const runtime = new VirtualRuntime(1)
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      listener = l
      queueMicrotask(() => l.onOpen?.())
      return { send: (m: ClientMessage) => void sent.push(m), close: () => {}, bufferedAmount: 0 }
    },
  }
  const client = await CanonClient.open({ transport, runtime, storage: new MemoryStorage(), clientId, machines })
  await flush()
  listener!.onMessage({ type: "welcome", protocol: 1, clientId })
  return { client, runtime, sent, deliver: (m: ServerMessage) => listener!.onMessage(m) }
}

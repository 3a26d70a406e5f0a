/**
 * A handshake refused for a machine only documents opened since use is answered once: the
 * machine is left out and the client connects again at once. A hub that then refuses again
 * naming it (hostile, or inconsistent) is backed off from as any refusal; before, every such
 * refusal reconnected with no delay, forever. Found by a helper's review of c1450e5.
 */
import * as Schema from "effect/Schema"
import { CanonClient, defineMachine, type ClientMessage, type ConnectionListener, type ServerMessage } from "../core/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"

const Late = defineMachine({
  name: "late",
  version: 1,
  initial: () => ({ n: 0 }),
  commands: { inc: { args: Schema.Struct({}), apply: (s: { n: number }) => { s.n++ } } },
})

test("a hub that refuses every handshake naming a machine the client left out is not reconnected to without backoff", async () => {
  const rt = new VirtualRuntime(3)
  const hellos: ClientMessage[] = []
  let connects = 0
  const transport = {
    connect(l: ConnectionListener<ServerMessage>) {
      connects++
      let open = true
      // Bounded: past 500 connections the fake hub stops answering (the loop would never end).
      if (connects <= 500) rt.setTimer(1, () => l.onOpen?.())
      return {
        send: (m: ClientMessage) => {
          if (m.type !== "hello" || !open) return
          hellos.push(m)
          rt.setTimer(1, () => {
            l.onMessage({ type: "refused", code: "machine-unknown", machine: "late", message: "No machine late." })
            open = false
            l.onClose({ code: "machine-unknown", reason: "No machine late." })
          })
        },
        close: () => { open = false },
        bufferedAmount: 0,
      }
    },
  }
  const client = await CanonClient.open({ transport, runtime: rt, clientId: "c1", storage: new MemoryStorage(), autoConnect: false })
  await client.open(Late, "d")
  client.connect()
  await rt.run({ forMs: 60_000, maxEvents: 20_000 })
  // A minute of refusals: a backoff (or the refused status the app must answer) keeps this small.
  expect(connects).toBeLessThan(30)
  await client.close()
})

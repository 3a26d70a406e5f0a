/**
 * A stored document of another machine (or a newer version) is refused at load as
 * machine-mismatch, with a sentence the hub writes for the peer: it passes as written
 * (peer-text.ts PEER_SENTENCES). d48d77b replaced it with "The hub's storage failed reading
 * ..." under code machine-mismatch (a review found it).
 */
import { Hub } from "../core/index.js"
import { newClientSecret } from "../core/ports/runtime.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { WirePeer } from "./support/hub-wire.js"
import { Todo, Counter } from "./support/machines.js"

test("zz-rev3 a stored document of another machine is refused at load with a sentence that says so, not 'storage failed'", async () => {
  const rt = new VirtualRuntime(1)
  const storage = new MemoryStorage()
  const connect = async (hub: Hub, clientId: string) => {
    const p = new WirePeer(clientId)
    p.listener = hub.accept(p.conn, { remoteAddress: `test:${clientId}` })
    p.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret: newClientSecret(rt) })
    await rt.run({ forMs: 5 })
    return p
  }
  const hub1 = new Hub({ machines: [Counter], storage, runtime: rt })
  const a = await connect(hub1, "peer000000000000")
  a.send({ type: "subscribe", docId: "d", machine: Counter.name, version: Counter.version, fingerprint: Counter.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 50 })
  a.send({ type: "submit", docId: "d", ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "incr", args: { by: 1 } }] })
  await rt.run({ forMs: 200 })
  expect((await hub1.doc("d", Counter)).headSeq).toBe(1)
  await hub1.close?.()

  const hub2 = new Hub({ machines: [Todo, Counter], storage, runtime: rt })
  const b = await connect(hub2, "peer000000000001")
  b.send({ type: "subscribe", docId: "d", machine: Todo.name, version: Todo.version, fingerprint: Todo.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 200 })
  const errors = b.of("error", "d").map((e) => `${e.code}: ${e.message}`)
  expect(errors).toEqual([expect.stringMatching(/^machine-mismatch: .*belongs to machine/)])
  await hub2.close?.()
})

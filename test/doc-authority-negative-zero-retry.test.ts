/**
 * A command an app built before ed45355 sent with -0 in a literal or enum argument travelled
 * as the literal (+0), and the hub recorded its hash over +0. If its answer was lost and the
 * updated app sends it again, the new codec sends -0 as a value: other bytes, another hash.
 * The hub took it for another command under that number (`sequence-reset`), the client
 * renumbered it, and it was applied twice. A conflicting retry is now also looked up with its
 * -0s made +0 (plain machines; a machine with versions hashes its commands' forms, and is
 * not covered). Found by a helper's review of ed45355.
 */
import * as Schema from "effect/Schema"
import { Hub, defineMachine, type ClientMessage, type ServerMessage } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { argsCodecOf } from "../core/protocol/args-codec.js"
import { AuthorityStore } from "../core/internal.js"
import { secretFor } from "./support/secrets.js"

const Lit = defineMachine({
  name: "lit",
  version: 1,
  initial: () => ({ n: 0, last: 1 as number }),
  commands: { set: { args: Schema.Struct({ lit: Schema.Literals([0, 1, 2]) }), apply: (s: { n: number; last: number }, a: { lit: number }) => { s.n++; s.last = a.lit } } },
})

test("a command an old-codec app sent with -0, sent again after the app's update, gets its outcome and is not applied twice", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Lit], storage, runtime: rt })
  net.listen(hub)
  const codec = argsCodecOf(Lit.commands.set.args.ast)
  const connect = async () => {
    const got: ServerMessage[] = []
    const conn = net.transport("app").connect({ onOpen: () => {}, onMessage: (m: ServerMessage) => void got.push(m), onClose: () => {} })
    await rt.run({ forMs: 5 })
    conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId: "app", secret: secretFor("app"), machines: [describeMachine(Lit)] })
    conn.send({ type: "subscribe", docId: "d", machine: Lit.name, version: Lit.version, fingerprint: Lit.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
    await rt.run({ forMs: 100 })
    return { got, send: (m: ClientMessage) => conn.send(m), close: () => conn.close("closed", "bye") }
  }
  // The old codec wrote -0 as the literal 0: the bytes this codec writes for +0.
  const oldBytes = codec.encode({ lit: 0 })
  const newBytes = codec.encode({ lit: -0 })
  expect(Array.from(newBytes)).not.toEqual(Array.from(oldBytes))
  const first = await connect()
  first.send({ type: "submit", docId: "d", compact: true, ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "set", args: oldBytes }] })
  await rt.run({ forMs: 50 })
  first.close()
  await rt.run({ forMs: 100 })
  // The app, updated, sends its outbox again.
  const second = await connect()
  second.send({ type: "submit", docId: "d", compact: true, ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "set", args: newBytes }] })
  await rt.run({ forMs: 200 })
  const errors = second.got.filter((m) => m.type === "error").map((m) => (m as { code: string }).code)
  const outcomes = second.got.flatMap((m) => (m.type === "results" ? m.outcomes : []))
  const log = await new AuthorityStore(storage).entries("d", 0, 100)
  expect({ errors, outcomes, entries: log.length }).toEqual({ errors: [], outcomes: [{ clientSeq: 1, seq: 1 }], entries: 1 })
  await hub.close()
})

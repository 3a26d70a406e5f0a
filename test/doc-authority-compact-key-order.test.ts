/**
 * A protocol 2 command is applied with its arguments as the log holds them: canonical, a
 * record's keys sorted. The hub applied them as the compact codec decoded them, in the order
 * the sender wrote a record's keys, and logged them canonically; protocol 1 readers and the
 * hub's own replay read them sorted. A command whose apply walks a record's keys (to push ids
 * onto a list, say) then gave the hub and its readers other states: one writer's submit made
 * every protocol 1 reader desync and fetch the whole state, and after a hub restart every
 * protocol 2 reader too. Honest clients send sorted keys, but compat mode sends the app's
 * downcast output as it is, and a hostile one anything. Found by a helper's review of ed45355
 * (the same class: a compact form and the canonical form telling values apart differently).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { SUPPORTED_PROTOCOL, describeMachine } from "../core/protocol/negotiate.js"
import { argsCodecOf } from "../core/protocol/args-codec.js"
import type { ServerMessage } from "../core/protocol/messages.js"
import { secretFor } from "./support/secrets.js"

const Tags = defineMachine({
  name: "tags",
  version: 1,
  initial: () => ({ order: [] as string[] }),
  commands: {
    tag: {
      args: Schema.Struct({ tags: Schema.Record(Schema.String, Schema.Boolean) }),
      apply: (s: { order: string[] }, a: { tags: Record<string, boolean> }) => { for (const k of Object.keys(a.tags)) s.order.push(k) },
    },
  },
})

test("a compact submit with a record's keys out of order gives the hub and every reader one state", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 1, encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Tags], storage, runtime: rt, quietCheckpointMs: 100 })
  net.listen(hub)
  const v1 = await CanonClient.open({ transport: net.transport("v1-reader"), runtime: rt, protocol: { min: 1, max: 1 } })
  const v2 = await CanonClient.open({ transport: net.transport("v2-reader"), runtime: rt })
  const r1 = await v1.open(Tags, "t")
  const r2 = await v2.open(Tags, "t")
  const desyncs: string[] = []
  r1.on("desync", () => desyncs.push("v1"))
  r2.on("desync", () => desyncs.push("v2"))

  // A protocol 2 writer whose compact arguments list the record's keys as "b", "a".
  const got: ServerMessage[] = []
  const conn = net.transport("writer").connect({ onOpen: () => {}, onMessage: (m: ServerMessage) => void got.push(m), onClose: () => {} })
  await rt.run({ forMs: 5 })
  conn.send({ type: "hello", protocol: SUPPORTED_PROTOCOL, clientId: "writer", secret: secretFor("writer"), machines: [describeMachine(Tags)] })
  conn.send({ type: "subscribe", docId: "t", machine: Tags.name, version: Tags.version, fingerprint: Tags.fingerprint, fromSeq: 0, ackedClientSeq: 0 })
  await rt.run({ forMs: 200 })
  const args = argsCodecOf(Tags.commands.tag.args.ast).encode({ tags: { b: true, a: true } })
  conn.send({ type: "submit", docId: "t", compact: true, ackedClientSeq: 0, commands: [{ clientSeq: 1, name: "tag", args }] })
  await rt.run({ forMs: 1000 })
  expect(got.some((m) => m.type === "results" || m.type === "entries")).toBe(true)

  const authority = await hub.doc("t", Tags)
  const states = { hub: [...authority.state.order], v1: [...r1.state.order], v2: [...r2.state.order] }
  // One state for all, and no reader had to fetch it whole.
  expect({ ...states, desyncs }).toEqual({ hub: states.hub, v1: states.hub, v2: states.hub, desyncs: [] })
  await v1.close()
  await v2.close()
  await hub.close()
  // And the hub itself, reloaded from its log, holds the state it published.
  const again = new Hub({ machines: [Tags], storage, runtime: rt })
  expect((await again.doc("t", Tags)).state.order).toEqual(states.hub)
  await again.close()
})

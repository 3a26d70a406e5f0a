/**
 * `$crdt` is the reserved root key of a machine with CRDT fields (snapshots carry the
 * fields' bytes under it), but runApply (core/machine.ts) refused it only when a command
 * RETURNS a new root holding it. A command that writes a root key taken from its arguments
 * (`s[key] = value`) lets any peer write `$crdt` into the plain state through the draft:
 * accepted, acknowledged, hashed into checkpoints, and then silently replaced by the fields'
 * bytes in every snapshot (`{ ...root, $crdt: fields.encode() }`), and deleted from the root
 * when a snapshot is loaded. A hub restarted from its snapshot, or a replica joining by
 * snapshot, then holds other state than the replicas that replayed the log (acknowledged data
 * lost, a checkpoint mismatch).
 */
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { running, settleWithTurns } from "./support/virtual-time.js"

const Settings = defineMachine({
  name: "settings",
  version: 1,
  initial: () => ({}) as Record<string, string>,
  crdt: { body: yText() },
  commands: {
    set: { args: Schema.Struct({ key: Schema.String, value: Schema.String }), apply: (s, { key, value }) => { s[key] = value } },
  },
})

test("a command writing the reserved `$crdt` root key through the draft is refused, or survives a snapshot reload", async () => {
  const rt = new VirtualRuntime(3)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const storage = new MemoryStorage()
  const hub = new Hub({ machines: [Settings], storage, runtime: rt, quietCheckpointMs: 100 })
  net.listen(hub)
  const client = await CanonClient.open({ transport: net.transport("m"), runtime: rt, clientId: "m" })
  const doc = await client.open(Settings, "s1")
  await settleWithTurns(rt, 100)
  doc.crdt.body.insert(0, "hello")
  let outcome: string = "pending"
  doc.submit("set", { key: "$crdt", value: "x" }).then(() => { outcome = "accepted" }, () => { outcome = "rejected" })
  await settleWithTurns(rt, 500)
  // Refused where it is written: the root key belongs to the fields.
  expect(outcome).toBe("rejected")
  const authority = await hub.doc("s1", Settings)
  const before = authority.stateHash()
  const stateBefore = JSON.stringify(authority.state)
  await running(rt, authority.snapshotNow())
  await running(rt, hub.close())
  const reports: string[] = []
  const hub2 = new Hub({ machines: [Settings], storage, runtime: rt, quietCheckpointMs: 100, onEvent: (e) => { if (e.type === "doc-report") reports.push(e.code) } })
  net.listen(hub2)
  const reloaded = await running(rt, hub2.doc("s1", Settings))
  if (outcome === "accepted") {
    // Acknowledged: it must survive the hub's own snapshot.
    expect(JSON.stringify(reloaded.state)).toBe(stateBefore)
    expect(reloaded.stateHash()).toBe(before)
  }
  expect(reports).not.toContain("checkpoint-mismatch")
})

/**
 * `canon inspect`/`canon compact`'s replay (apps/cli/replay.ts) of a document that went from a
 * plain v1 to a v2 with its first CRDT field: it must find no problem, and reach the hub's hash;
 * and `canon compact` of a document with fields keeps the fields (its snapshot holds `$crdt`).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Schema from "effect/Schema"
import { CanonClient, Hub, defineMachine } from "../core/index.js"
import { MemoryNetwork, MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { yText } from "../adapters/yjs/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { AuthorityStore } from "../core/internal.js"
import { replayDoc } from "../apps/cli/replay.js"
import { surveyDoc } from "../apps/cli/doc-records.js"
import { LevelStorage } from "../adapters/level/index.js"
import { compact } from "../apps/cli/compact.js"
import { settleWithTurns } from "./support/virtual-time.js"
import { PadV2 as ModPadV2 } from "./support/first-field-pad.js"

const DOC = "p"
type Pad = { title: string }
const rename = { args: Schema.Struct({ title: Schema.String }), apply: (s: Pad, { title }: { readonly title: string }) => { s.title = title } }
const PlainV1 = defineMachine({ name: "pad", version: 1, initial: (): Pad => ({ title: "" }), commands: { rename } })
const PadV2 = evolve(PlainV1, { version: 2, crdt: { notes: yText() }, migrateState: (s: Pad): Pad => ({ title: s.title }), commands: { rename } })
const V1 = historyOf(PadV2)!.at(1) as typeof PlainV1

test("the CLI replay of a plain -> fields document agrees with the hub", async () => {
  const rt = new VirtualRuntime(11)
  const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
  const hubStore = new MemoryStorage()
  let hub = new Hub({ machines: [PlainV1], storage: hubStore, runtime: rt, quietCheckpointMs: 200 })
  net.listen(hub)
  const a = await (await CanonClient.open({ transport: net.transport("a"), runtime: rt, clientId: "a" })).open(V1, DOC)
  await settleWithTurns(rt, 200)
  a.submit("rename", { title: "one" })
  await settleWithTurns(rt, 1000)
  await hub.close()
  net.stopServer()
  hub = new Hub({ machines: [PadV2], storage: hubStore, runtime: rt, quietCheckpointMs: 200 })
  net.listen(hub)
  const b = await (await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b" })).open(PadV2, DOC)
  await settleWithTurns(rt, 1000)
  b.crdt.notes.insert(0, "notes")
  b.submit("rename", { title: "two" })
  await settleWithTurns(rt, 2000)
  const hd = await hub.doc(DOC, PadV2)
  const head = (await new AuthorityStore(hubStore).head(DOC))!
  const r = await replayDoc(hubStore, DOC, PadV2, head.seq, await surveyDoc(hubStore, DOC), () => {})
  if ("problem" in r) throw new Error(r.problem)
  expect({ problems: r.problems, hash: r.hash }).toEqual({ problems: [], hash: hd.stateHash() })
})


test("canon compact of a document with fields keeps the fields' content (its snapshot holds $crdt)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canon-ff-"))
  try {
    const rt = new VirtualRuntime(11)
    const net = new MemoryNetwork(rt, { latency: () => 3, encode: true })
    let kv = await LevelStorage.open(dir)
    let hub = new Hub({ machines: [ModPadV2], storage: kv, runtime: rt, quietCheckpointMs: 200 })
    net.listen(hub)
    const b = await (await CanonClient.open({ transport: net.transport("b"), runtime: rt, clientId: "b" })).open(ModPadV2, DOC)
    await settleWithTurns(rt, 500)
    b.crdt.notes.insert(0, "keep me")
    for (let i = 0; i < 5; i++) b.submit("rename", { title: `t${i}` })
    // The hub writes to a real disk: virtual time passes while its writes land (bounded).
    for (let i = 0; i < 400 && b.pendingCount > 0; i++) {
      await settleWithTurns(rt, 50)
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(b.pendingCount).toBe(0)
    const want = (await hub.doc(DOC, ModPadV2)).stateHash()
    await hub.close()
    net.stopServer()
    await kv.close()
    const lines: string[] = []
    const code = await compact({ dir, docId: DOC, machines: "test/support/first-field-pad.ts", tailBytes: 0 }, { log: (l: string) => lines.push(l), progress: () => {} })
    expect({ code, lines: lines.filter((l) => /not compacted|problem/.test(l)) }).toEqual({ code: 0, lines: [] })
    kv = await LevelStorage.open(dir)
    const reports: string[] = []
    hub = new Hub({ machines: [ModPadV2], storage: kv, runtime: rt, onEvent: (e) => { if (e.type === "doc-report" || e.type === "doc-broken") reports.push(JSON.stringify(e)) } })
    const hd = await hub.doc(DOC, ModPadV2)
    expect({ hash: hd.stateHash(), reports }).toEqual({ hash: want, reports: [] })
    await hub.close()
    await kv.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 20000)

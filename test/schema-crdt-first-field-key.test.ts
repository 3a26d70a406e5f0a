/**
 * A plain v1 state is free to hold the key "$crdt" (nothing reserves it in a machine without
 * fields): its value must not become the first fields' content at the upgrade to a version
 * with fields, nor disappear without the app's migration seeing it.
 */
import * as Schema from "effect/Schema"
import * as Y from "yjs"
import { defineMachine } from "../core/index.js"
import { yText } from "../adapters/yjs/index.js"
import { evolve, historyOf } from "../core/schema/versions.js"
import { versionsWorld } from "./support/versions-world.js"

const DOC = "p"
type Props = Record<string, unknown>
const set = {
  args: Schema.Struct({ key: Schema.String, value: Schema.Unknown }),
  apply: (s: Props, { key, value }: { readonly key: string; readonly value: unknown }) => { s[key] = value },
}
const PlainV1 = defineMachine({ name: "props", version: 1, initial: (): Props => ({}), commands: { set } })
const seen: unknown[] = []
const PropsV2 = evolve(PlainV1, {
  version: 2,
  crdt: { notes: yText() },
  migrateState: (s: Props): Props => {
    seen.push(s)
    return { ...s }
  },
  commands: { set },
})
const V1 = historyOf(PropsV2)!.at(1) as typeof PlainV1

const world = () => versionsWorld(DOC)

/** A field's stored form (what a snapshot's `$crdt.notes` holds) with this text. */
const fieldBytes = (text: string): Uint8Array => {
  const f = yText().engine.create()
  ;(f.handle as Y.Text).insert(0, text)
  return f.encode()
}

const writeV1 = async (value: unknown) => {
  const w = world()
  await w.start(PlainV1)
  const a = await w.open(V1, "a")
  await w.run(100)
  a.doc.submit("set", { key: "title", value: "t" })
  a.doc.submit("set", { key: "$crdt", value })
  await w.run(1000)
  expect(a.doc.pendingCount).toBe(0)
  return { w, a }
}

test("a v1 value under the key $crdt is not taken for the new field's content", async () => {
  const { w } = await writeV1({ notes: fieldBytes("injected by a v1 writer") })
  const hub = await w.start(PropsV2)
  const hd = await hub.doc(DOC, PropsV2)
  const b = await w.open(PropsV2, "b")
  await w.run(1500)
  expect({ version: hd.version, notes: b.doc.crdt.notes.toString() }).toEqual({ version: hd.version, notes: "" })
})

test("a v1 value under the key $crdt that is not a field's bytes: the upgrade either keeps it or holds the document unchanged", async () => {
  const { w, a } = await writeV1({ notes: new Uint8Array([1, 2, 3, 4]) })
  const before = JSON.parse(JSON.stringify(a.doc.state, (_k, v) => (v instanceof Uint8Array ? [...v] : v)))
  const hub = await w.start(PropsV2)
  const hd = await hub.doc(DOC, PropsV2)
  if (hd.version === 1) {
    await w.run(1500)
    expect(a.doc.confirmedHash()).toBe(hd.stateHash())
    expect(JSON.parse(JSON.stringify(hd.state, (_k, v) => (v instanceof Uint8Array ? [...v] : v)))).toEqual(before)
    expect(a.errors).toEqual([])
  }
})

test("a v1 string under the key $crdt is seen by the app's migration", async () => {
  seen.length = 0
  const { w } = await writeV1("just a value")
  const hub = await w.start(PropsV2)
  await hub.doc(DOC, PropsV2)
  expect(seen).toEqual([{ title: "t", $crdt: "just a value" }])
})

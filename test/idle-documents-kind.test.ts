/**
 * Idle documents, CRDT host: a kept document opened as the wrong kind is taken out of
 * the kept set (host.ts `open`: `this.idleDocs?.take(docId)` runs before the kind check) and
 * nobody releases it (the endpoints release only what they opened successfully). It then stays
 * loaded forever: a reader can pin every document it can read (automerge-repo request, leave,
 * then a y-websocket connect to the same room), so hub memory grows with what readers touch.
 */
import { CrdtDocHost } from "../core/crdt-docs/host.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"
import { automergeDocEngine } from "../adapters/automerge-server/index.js"
import { MemoryStorage, VirtualRuntime } from "../adapters/memory/index.js"
import { DEFAULT_IDLE_DOCUMENTS } from "../core/authority/idle-documents.js"
import * as A from "@automerge/automerge"
import type { CrdtDocAuthority } from "../core/crdt-docs/authority.js"

/** Opened and written once: a document never written is not kept idle (its reload costs nothing). */
const written = async (h: CrdtDocHost, docId: string): Promise<CrdtDocAuthority<unknown>> => {
  const d = await h.open("automerge", docId)
  expect((await d.submit([A.getLastLocalChange(A.change(A.init<{ x?: number }>(), (x) => { x.x = 1 }))!])).stored).toBe(1)
  return d
}

test("a kept document opened as another kind (doc-kind-mismatch) is still let go when its time is up", async () => {
  const rt = new VirtualRuntime(1)
  const h = new CrdtDocHost({ engines: [yjsDocEngine(), automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime: rt })
  const first = await written(h, "d")
  h.release(first)
  await rt.run({ forMs: 10 })
  // Kept: a quick return finds the same instance.
  expect(await h.open("automerge", "d")).toBe(first)
  h.release(first)
  await rt.run({ forMs: 10 })
  // A y-websocket client asks for the same room.
  await expect(h.open("yjs", "d")).rejects.toMatchObject({ code: "doc-kind-mismatch" })
  await rt.run({ forMs: DEFAULT_IDLE_DOCUMENTS.ms * 3 })
  // Nobody follows it, nothing is in flight, its time is long up: it must have been unloaded.
  expect((await h.open("automerge", "d")) === first).toBe(false)
  await h.close()
})

test("many documents pinned that way stay loaded: not bounded by the kept-documents count", async () => {
  const rt = new VirtualRuntime(2)
  const h = new CrdtDocHost({ engines: [yjsDocEngine(), automergeDocEngine()], storage: new MemoryStorage(), sync: false, runtime: rt, idleDocuments: { count: 2 } })
  const firsts: unknown[] = []
  for (let i = 0; i < 10; i++) {
    const d = await written(h, `d${i}`)
    firsts.push(d)
    h.release(d)
    await rt.run({ forMs: 10 })
    await h.open("yjs", `d${i}`).catch(() => undefined)
  }
  await rt.run({ forMs: DEFAULT_IDLE_DOCUMENTS.ms * 3 })
  let still = 0
  for (let i = 0; i < 10; i++) if ((await h.open("automerge", `d${i}`)) === firsts[i]) still++
  expect(still).toBe(0)
  await h.close()
})
